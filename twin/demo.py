"""``make demo``: the main job, on the smallest topology, in a few minutes.

Brings up ci-2site (two data centres ~1,370 km of fiber apart), checks every cross-site path
against its configured delay and rate with independent tools, writes results/demo/, and tears
the twin down, also on failure or Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from twin import runtime
from twin.calibrate import calibrate, fabric_of, summary, write_csv
from twin.cli import _progress, console
from twin.errors import TwinError
from twin.topology import load_topology

TOPOLOGY = Path(__file__).resolve().parent.parent / "topologies" / "ci-2site.yaml"


def main() -> int:
    out = Path("results/demo")
    topo = load_topology(TOPOLOGY)
    t0 = time.monotonic()
    try:
        net, state = runtime.up(topo, str(TOPOLOGY), "none", _progress)
        _progress(f"up in {time.monotonic() - t0:.1f} s ({state.mechanism} links, "
                  f"OVS {state.datapath}; scale {state.scale})")
        rows = calibrate(state, fabric_of(topo), progress=_progress)
        write_csv(rows, out / "calibration.csv")
        for r in rows:
            console.print(f"{r.src} -> {r.dst}: RTT {r.measured_rtt_median_ms:.2f} ms "
                          f"(configured {r.configured_rtt_ms:.2f}), TCP {r.goodput_mbps:.0f} Mbit/s "
                          f"of {r.emulated_rate_mbps:g} emulated ({r.wire_ratio:.1%} at frame level)")
        console.print(f"{summary(rows)}; CSV: {out / 'calibration.csv'}")
    except TwinError as exc:
        console.print(f"demo: {exc}")
        return 1
    finally:
        _progress(runtime.down().summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
