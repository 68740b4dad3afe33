"""`twin calibrate` on a live twin: one-way delay in both directions, and a rate this machine
cannot test reported "not measured", never "ok"."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.machine import early_ms
from tests.locations import ROOT, TOPOS
from twin.emulation import runtime
from twin.measure.calibrate import NOT_MEASURED, OK, calibrate, fabric_of, pdv_status, summary
from twin.measure.ceiling import measure_ceiling
from twin.spec.topology import load_topology


def test_a_rate_above_the_machines_ceiling_is_not_measured_and_one_below_it_is(clean_machine):
    """ci-2site at 1/10: 40 Gbit/s emulated on the WAN link and both sites' fabric, far above
    what one TCP flow carries through the userspace switch on this machine. Then the WAN link
    alone set to 1 Gbit/s real (100 Mbit/s emulated, the path's bottleneck): measured, met."""
    path = TOPOS / "ci-2site.yaml"
    topo = load_topology(path).with_scale("1/10")
    _, state = runtime.up(topo, str(path), "none", progress=lambda s: None)
    try:
        ceiling = measure_ceiling(state.mtu, state.datapath, probe=(500, 1000))
        assert 100e6 < ceiling.wire_bps < 0.95 * 40e9  # the premise: 40 Gbit/s is untestable
        # the probe crossed the scratch switch: its one-way PDV is a measured, sane figure
        assert ceiling.pdv_ms is not None and 0.0 < ceiling.pdv_ms < 50.0
        (fast,) = calibrate(state, fabric_of(topo), pings=50, seconds=3, max_pairs=0,
                            ceiling=ceiling)
        assert fast.emulated_rate_mbps == 40000
        assert fast.throughput_status == NOT_MEASURED and not fast.throughput_ok
        assert fast.rtt_status != NOT_MEASURED
        assert fast.machine_pdv_floor_ms == pytest.approx(ceiling.pdv_ms, abs=1e-4)
        assert fast.pdv_status == pdv_status(fast.fwd_pdv_ms, fast.rev_pdv_ms, ceiling.pdv_ms)
        assert summary([fast]).endswith(f"({1 + (fast.pdv_status == NOT_MEASURED)} not measured)")
        # one-way delay, both directions: never below the fiber (less what compensation takes
        # off), the probes all arrived
        for d, sites in (("fwd", ["beijing", "wuhan"]), ("rev", ["wuhan", "beijing"])):
            assert getattr(fast, f"{d}_owd_min_ms") >= fast.configured_owd_ms - early_ms(state, sites)
            assert getattr(fast, f"{d}_owd_p50_ms") < fast.configured_owd_ms + 2.0
            assert getattr(fast, f"{d}_loss") == 0.0
            # each field is rounded to 0.1 us on its own: the difference of two rounded ones
            # may differ from the rounded difference by one unit
            assert getattr(fast, f"{d}_pdv_ms") == pytest.approx(
                getattr(fast, f"{d}_owd_p999_ms") - getattr(fast, f"{d}_owd_min_ms"), abs=1.5e-4)
            assert getattr(fast, f"{d}_ipdv_min_ms") <= 0 <= getattr(fast, f"{d}_ipdv_max_ms")

        link = subprocess.run([sys.executable, "-m", "twin.cli.main", "link", "set", "beijing",
                               "wuhan", "--rate", "1Gbit"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert link.returncode == 0, link.stderr
        (slow,) = calibrate(runtime.require_state(), fabric_of(topo), pings=50, seconds=3,
                            max_pairs=0, ceiling=ceiling)
        assert slow.emulated_rate_mbps == 100
        assert slow.throughput_status == OK and slow.wire_ratio >= 0.95
        # measured now, but for the PDV target where this machine's own PDV is above it
        unmeasured = int(slow.pdv_status == NOT_MEASURED)
        assert slow.rtt_status != NOT_MEASURED and summary([slow]).endswith(
            f"({unmeasured} not measured)" if unmeasured else "within targets")
    finally:
        runtime.down()
