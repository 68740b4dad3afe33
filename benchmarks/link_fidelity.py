"""Link fidelity: configured vs measured RTT, TCP throughput and delay variation across a grid
of delays and rates, with the mechanism this machine offers (netem or the delay line).

Two sites, one worker each, one WAN link set to each (delay, rate) point in turn with
`twin link set`-equivalent live changes (no re-bring-up), measured with ping and iperf3.
  .venv/bin/python benchmarks/link_fidelity.py [--delays 1 5 10 30] [--rates 10 100 400 1000]
Writes results/benchmarks/link_fidelity.csv.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from traffic.probe import percentile
from twin.emulation import cleanup, runtime
from twin.host.rundirs import project_root
from twin.measure.iperf import iperf
from twin.measure.ping import ping
from twin.output.csvrows import write_rows
from twin.units import tcp_payload_share

ROOT = project_root()

TOPO = """name: fidelity
scale: {bandwidth: 1}
mtu: MTU
sites:
  - {name: a, lat: 0, lon: 0, workers: 1, fabric: {rate: 10Gbit}}
  - {name: b, lat: 0, lon: 1, workers: 1, fabric: {rate: 10Gbit}}
links:
  - {a: a, b: b, rate: 1Gbit, delay: 10ms}
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delays", nargs="+", type=float, default=[1, 5, 10, 30], help="one-way ms")
    ap.add_argument("--rates", nargs="+", type=float, default=[10, 100, 400, 1000], help="Mbit/s")
    ap.add_argument("--mtus", nargs="+", type=int, default=[1500, 9000],
                    help="interface MTUs (frames per emulated bit is what costs CPU)")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "link_fidelity.csv"))
    args = ap.parse_args()
    from twin.spec.topology import load_topology
    runtime.ensure_services()
    cleanup.clean()
    rows = []
    for mtu in args.mtus:
        f = Path(tempfile.mkdtemp()) / "fidelity.yaml"
        f.write_text(TOPO.replace("MTU", str(mtu)))
        topo = load_topology(f)
        _, state = runtime.up(topo, str(f), "none", progress=lambda s: None)
        try:
            a, b = state.worker("a1"), state.worker("b1")
            for d in args.delays:
                for r in args.rates:
                    runtime.set_link("a", "b", delay_s=d / 1e3, rate_bps=r * 1e6, scale=1.0)
                    rtts = ping(a, b.ip, 200, 0.01)
                    bps, retrans = iperf(a, b, args.seconds)
                    cfg = 2 * d
                    row = {"mtu": mtu, "one_way_delay_ms": d, "rate_mbps": r,
                           "configured_rtt_ms": cfg,
                           "rtt_min_ms": min(rtts), "rtt_median_ms": statistics.median(rtts),
                           "rtt_error_ms": round(statistics.median(rtts) - cfg, 3),
                           "rtt_error_pct": round((statistics.median(rtts) - cfg) / cfg, 4),
                           "pdv_ms": round(percentile(rtts, 99) - min(rtts), 3),
                           "goodput_mbps": round(bps / 1e6, 2),
                           "wire_ratio": round(bps / (r * 1e6) / tcp_payload_share(mtu), 4),
                           "retransmits": retrans, "mechanism": state.mechanism,
                           "ovs_datapath": state.datapath}
                    rows.append(row)
                    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        finally:
            runtime.down()
    out = write_rows(rows, Path(args.out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
