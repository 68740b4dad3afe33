"""The machine as the twin finds it on a stock kernel: doctor reports netem and the OVS kernel
datapath, and where systemd runs, its units (not the twin) keep dockerd and OVS up."""

from __future__ import annotations

import subprocess

import pytest

from tests.locations import ROOT
from twin.host import capabilities, services

TWIN = str(ROOT / ".venv" / "bin" / "twin")


def test_doctor_reports_netem_links_and_the_kernel_datapath():
    out = subprocess.run([TWIN, "doctor"], capture_output=True, text=True, timeout=300,
                         env={"COLUMNS": "220", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert "sch_netem present" in out.stdout and "netem delay/loss/jitter" in out.stdout, out.stdout
    assert "kernel module present" in out.stdout and "kernel datapath" in out.stdout, out.stdout
    assert out.returncode == 0, out.stderr  # a stock kernel needs no delay line


@pytest.mark.skipif(not services.has_systemd(), reason="no systemd on this machine")
def test_systemd_runs_dockerd_and_ovs():
    for unit in ("docker.service", "openvswitch-switch.service", "ovs-vswitchd.service"):
        state = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True)
        assert state.stdout.strip() == "active", f"{unit}: {state.stdout.strip()}"
    pid = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", "ovs-vswitchd.service"],
                         capture_output=True, text=True).stdout.strip()
    assert pid not in ("", "0"), "ovs-vswitchd is not the unit's process"


def test_the_openvswitch_module_is_live():
    """openvswitch.ko came up with its dependencies (libcrc32c wants the crc32c crypto module)."""
    assert capabilities.ovs_kernel_module()
    modules = {line.split()[0]: line.split() for line in open("/proc/modules")}
    assert "openvswitch" in modules and modules["openvswitch"][4] == "Live", modules.get("openvswitch")
    assert "libcrc32c" in modules
