"""`twin up --detach` then `twin clean` on the stock kernel: nothing of the twin stays, not in
Docker, OVS, the kernel's datapath or tc."""

from __future__ import annotations

import re
import subprocess

from tests.integration.machine import leftovers
from tests.integration.stock_kernel.conftest import run
from tests.locations import ROOT, TOPOS
from twin.host import rundirs

TWIN = str(ROOT / ".venv" / "bin" / "twin")


def datapath_ports() -> set[str]:
    return set(re.findall(r"port \d+: (\S+)", run(["ovs-dpctl", "show"])))


def netem_devs() -> list[str]:
    out = run(["tc", "qdisc", "show"])
    return [m.group(1) for m in re.finditer(r"qdisc netem \S+ .*?dev (\S+)", out)]


def test_clean_after_a_detached_twin_with_a_controller_leaves_nothing(clean_machine):
    """With the baseline controller: it must report both switches programmed first (its barrier
    replies once came back before os-ken counted the switch as connected, and were lost)."""
    up = subprocess.run([TWIN, "up", str(TOPOS / "ci-2site.yaml"), "--controller", "baseline",
                         "--detach"], capture_output=True, text=True, timeout=900,
                        stdin=subprocess.DEVNULL)
    assert up.returncode == 0, up.stderr
    assert "controller baseline: 2 switches programmed" in up.stdout, up.stdout
    assert "links: netem, OVS datapath: kernel" in up.stdout, up.stdout
    ours = {p for p in datapath_ports() if p.startswith(rundirs.prefix())}
    assert len(ours) >= 4 + 2, ours  # four worker ports and both ends of the WAN link
    assert netem_devs(), "no netem qdisc while the twin runs"

    out = run([TWIN, "clean"], timeout=300)
    assert "removed" in out
    assert not any(leftovers().values()), leftovers()
    assert not {p for p in datapath_ports() if p.startswith(rundirs.prefix())}
    assert not [d for d in netem_devs() if d.startswith(rundirs.prefix())]
    assert not rundirs.state_file().exists()
