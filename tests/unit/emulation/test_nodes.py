"""Containernet's Docker keywords as the engine gets them, or refused in one line naming them."""

import pytest

from twin.emulation.nodes import WORKER_SYSCTLS, run_options
from twin.errors import TwinError


def test_resource_keywords_reach_the_engine():
    opts = run_options("d1", {"cpuset_cpus": "0,1", "cpus": 1.5, "shm_size": "256m",
                              "mem_limit": "512m", "memswap_limit": "1g", "cpu_shares": 20,
                              "cpu_quota": 25000, "cpu_period": 50000})
    assert opts["cpuset_cpus"] == "0,1" and opts["nano_cpus"] == 1_500_000_000
    assert opts["shm_size"] == "256m" and opts["mem_limit"] == "512m"
    assert opts["memswap_limit"] == "1g" and opts["cpu_shares"] == 20
    assert (opts["cpu_quota"], opts["cpu_period"]) == (25000, 50000)


def test_unset_values_are_not_sent():
    """Containernet's and the twin's "not set" values (None, -1, empty) leave the engine's
    defaults; 0 is a value."""
    opts = run_options("d1", {"cpu_quota": -1, "cpu_period": None, "volumes": [], "dns": [],
                              "environment": {}, "cpu_shares": 0})
    assert not {"cpu_quota", "cpu_period", "volumes", "dns", "environment"} & set(opts)
    assert opts["cpu_shares"] == 0


def test_fixed_part_and_what_is_added_to_it():
    plain = run_options("d1", {})
    assert plain["network_mode"] == "none" and plain["cap_drop"] == ["ALL"]
    assert plain["cap_add"] == ["NET_RAW"] and plain["sysctls"] == WORKER_SYSCTLS
    assert "privileged" not in plain
    opts = run_options("d1", {"cap_add": ["net_admin", "NET_RAW"],
                              "sysctls": {"net.core.somaxconn": "1024"},
                              "volumes": ["/tmp/a:/a:ro"], "environment": {"X": "1"},
                              "tmpfs": ["/scratch:size=8m"], "devices": ["/dev/net/tun"],
                              "dns": ["10.0.0.53"], "ipc_mode": "shareable",
                              "storage_opt": {"size": "1G"}, "device_requests": [{"count": 1}]})
    assert opts["cap_add"] == ["NET_RAW", "net_admin"]
    assert opts["sysctls"]["net.core.somaxconn"] == "1024"
    assert opts["sysctls"]["net.ipv4.tcp_slow_start_after_idle"] == "0"
    for key in ("volumes", "environment", "tmpfs", "devices", "dns", "ipc_mode", "storage_opt",
                "device_requests"):
        assert key in opts


def test_publishing_needs_a_docker_network():
    for key, value in (("ports", [80]), ("port_bindings", {80: 8080}),
                       ("publish_all_ports", True)):
        with pytest.raises(TwinError, match=rf"^d5: {key} needs a Docker network.*network_mode='bridge'"):
            run_options("d5", {key: value})
    assert run_options("d5", {"publish_all_ports": False})["network_mode"] == "none"
    opts = run_options("d5", {"network_mode": "bridge", "ports": [9999, 80],
                              "port_bindings": {9999: 9999}})
    assert opts["ports"] == {9999: 9999, 80: None} and opts["publish_all_ports"] is True
    quiet = run_options("d5", {"network_mode": "bridge", "ports": [9999, "53/udp"],
                               "publish_all_ports": False,
                               "port_bindings": {"9999/tcp": ("127.0.0.1", 9999), "53/udp": 5353}})
    assert quiet["ports"] == {"9999/tcp": ("127.0.0.1", 9999), "53/udp": 5353}
    assert quiet["publish_all_ports"] is False


def test_ports_only_exposed_are_refused():
    """Containernet would expose ``ports`` without publishing them when publish_all_ports=False;
    the twin publishes or binds, so a listed port that nothing binds is named, not dropped."""
    with pytest.raises(TwinError, match=r"^d5: ports=\[80\] with publish_all_ports=False would only "
                                        r"be exposed, .*publish_all_ports=True.*port_bindings\)$"):
        run_options("d5", {"network_mode": "bridge", "ports": [80, 9999], "publish_all_ports": False,
                           "port_bindings": {9999: ("127.0.0.1", 9999)}})
    with pytest.raises(TwinError, match=r"ports=\['53/udp'\]"):  # bound over TCP only
        run_options("d5", {"network_mode": "bridge", "ports": ["53/udp"], "publish_all_ports": False,
                           "port_bindings": {53: 5353}})


@pytest.mark.parametrize("mode", ["host", "container:mn.d1"])
def test_network_modes_that_would_take_the_interfaces_elsewhere_are_refused(mode):
    with pytest.raises(TwinError, match=rf"^d1: network_mode='{mode}' is not supported"):
        run_options("d1", {"network_mode": mode})


def test_privileged_only_when_meant():
    with pytest.raises(TwinError, match=r"^d1: privileged=True .*allow_privileged=True"):
        run_options("d1", {"privileged": True})
    opts = run_options("d1", {"privileged": True, "allow_privileged": True, "cap_add": ["x"]})
    assert opts["privileged"] is True and "cap_drop" not in opts and "cap_add" not in opts
    assert "privileged" not in run_options("d1", {"privileged": False})


def test_unknown_and_bad_keywords_are_named():
    with pytest.raises(TwinError, match=r"^d1: unknown keyword cpu_quotas=5 for a Docker host$"):
        run_options("d1", {"cpu_quotas": 5})
    with pytest.raises(TwinError, match=r"^d1: cpus='many' is not a number of CPUs$"):
        run_options("d1", {"cpus": "many"})
    with pytest.raises(TwinError, match=r"^d1: cpus and nano_cpus both given"):
        run_options("d1", {"cpus": 1, "nano_cpus": 10**9})
