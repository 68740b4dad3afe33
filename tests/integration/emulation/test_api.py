"""The Python API keeps Containernet's vocabulary and works with any image that has /bin/sh."""

from __future__ import annotations

import io
import statistics
import subprocess
import tarfile

import pytest

from tests.integration.machine import cpu_emulated
from twin.emulation.net import Twin
from twin.host.engine import docker_client
from twin.measure.ping import parse_ping_rtts

BUSYBOX_IMAGE = "twin-test-busybox:1"


@pytest.fixture(scope="module")
def busybox_image(daemons):
    """An image holding nothing but a static busybox as /bin/sh: no bash, no iproute2, no python."""
    client = docker_client()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(link)
    subprocess.run(["docker", "import", "-", BUSYBOX_IMAGE], input=buf.getvalue(), check=True,
                   capture_output=True)
    yield BUSYBOX_IMAGE
    client.images.remove(BUSYBOX_IMAGE, force=True)


def test_containernet_style_script(clean_machine, busybox_image):
    with Twin() as net:
        d1 = net.addDocker("d1", ip="10.0.0.251/24", dimage=busybox_image, mem_limit="64m",
                           cpu_quota=50000, cpu_period=100000, environment={"ROLE": "test"})
        d2 = net.addDocker("d2", ip="10.0.0.252/24", dimage=busybox_image)
        s1, s2 = net.addSwitch("tw91"), net.addSwitch("tw92")
        net.addLink(d1, s1, bw=100)
        net.addLink(d2, s2, bw=100)
        net.addLink(s1, s2, bw=50, delay="2ms", loss=0)
        net.start()
        for sw in (s1, s2):
            sw.cmd("ovs-ofctl", "-O", "OpenFlow13", "add-flow", sw.name, "actions=NORMAL")
        rtts = parse_ping_rtts(d1.cmd("ping", "-n", "-c", "10", "-i", "0.05", "10.0.0.252"))
        # never earlier than the 4 ms configured; later by the switches' and shaping's own time
        # (an emulated CPU's more: see tests/integration/stock_kernel)
        upper = 4.0 + (5.0 if cpu_emulated() else 2.0)
        assert len(rtts) >= 9 and min(rtts) >= 3.95 and statistics.median(rtts) < upper, rtts
        # the container itself: its filesystem, its environment, its limits
        rc, out = d1.dexec(["/bin/sh", "-c", "echo $ROLE; ls /bin"])
        assert rc == 0 and out.split()[0] == "test" and "busybox" in out
        attrs = d1.container.attrs["HostConfig"]
        assert attrs["Memory"] == 64 * 1024**2 and attrs["CpuQuota"] == 50000
        d1.updateCpuLimit(cpu_quota=25000)
        d1.container.reload()
        assert d1.container.attrs["HostConfig"]["CpuQuota"] == 25000
        net.removeDocker("d2")
        assert "d2" not in net and len(net.hosts) == 1
