"""Capability parsers, fed with outputs captured from real machines."""


from tests.locations import DATA
from twin.host.capabilities import (
    cgroup_version,
    parse_datapath_types,
    parse_meminfo,
    parse_ovs_version,
    qdisc_supported,
)


def test_ovs_version_debian12():
    assert parse_ovs_version("ovs-vsctl (Open vSwitch) 3.1.0\nDB Schema 8.3.1\n") == "3.1.0"


def test_ovs_version_ubuntu2404():
    assert parse_ovs_version("ovs-vsctl (Open vSwitch) 3.3.0\nDB Schema 8.5.0") == "3.3.0"


def test_ovs_version_absent():
    assert parse_ovs_version("bash: ovs-vsctl: command not found") is None


def test_datapath_types():
    assert parse_datapath_types("[netdev, system]\n") == ["netdev", "system"]
    assert parse_datapath_types("[]") == []


def test_netem_missing_message_from_this_machine():
    text = (DATA / "tc-netem-missing.txt").read_text()
    assert not qdisc_supported(2, text)
    assert qdisc_supported(0, "")


def test_cgroup_versions():
    v1 = ("tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n"
          "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n")
    v2 = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n"
    assert cgroup_version(v1) == 1
    assert cgroup_version(v2) == 2


def test_meminfo():
    mem = parse_meminfo("MemTotal:       24684092 kB\nMemAvailable:   24162760 kB\n")
    assert mem["MemTotal"] == 24684092 * 1024
    assert mem["MemAvailable"] == 24162760 * 1024
