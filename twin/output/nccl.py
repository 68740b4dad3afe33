"""NCCL-tests' output format for collective rows, with the emulation context as comment lines.
"""

from __future__ import annotations

import statistics

from twin.drive.benchmark import CollectiveRow


def nccl_table(rows: list[CollectiveRow]) -> str:
    """NCCL-tests' output format, with the emulation context as comment lines and a last column
    naming the backend of each row (rows of both backends can share one table, size by size)."""
    if not rows:
        return ""
    r0 = rows[0]
    backends = ", ".join(dict.fromkeys(r.backend for r in rows))
    lines = [
        f"# fabric-twin {r0.op} ({r0.algo}; backend {backends}): {r0.ranks} ranks over {r0.sites} "
        f"sites, topology {r0.topology}, {r0.conns} TCP connection(s) per peer",
        f"# emulated: {r0.scale}; links: {r0.mechanism}; bottleneck {r0.bottleneck_mbps:g} Mbit/s",
        "#",
        f"# {'size':>12} {'count':>12} {'type':>8} {'redop':>6} {'root':>6} {'time':>11} "
        f"{'algbw':>8} {'busbw':>8} {'#wrong':>7}  backend",
        f"# {'(B)':>12} {'(elements)':>12} {'':>8} {'':>6} {'':>6} {'(us)':>11} "
        f"{'(GB/s)':>8} {'(GB/s)':>8} {'':>7}",
    ]
    for r in rows:
        wrong = "N/A" if r.wrong < 0 else str(r.wrong)
        lines.append(f"  {r.size_bytes:>12} {r.count:>12} {r.type:>8} {r.redop:>6} {r.root:>6} "
                     f"{r.time_us:>11.1f} {r.algbw_GBps:>8.4f} {r.busbw_GBps:>8.4f} {wrong:>7}  {r.backend}")
    lines.append(f"# Out of bounds values : {sum(1 for r in rows if r.wrong > 0)} "
                 f"{'OK' if all(r.wrong <= 0 for r in rows) else 'FAILED'}")
    by_backend = {b: [r for r in rows if r.backend == b] for b in dict.fromkeys(r.backend for r in rows)}
    for b, mine in by_backend.items():
        which = f" ({b})" if len(by_backend) > 1 else ""
        lines.append(f"# Avg bus bandwidth    : {statistics.mean(r.busbw_GBps for r in mine):.6f}{which}")
    for b, mine in by_backend.items():
        which = f" {b}" if len(by_backend) > 1 else ""
        peak = max(mine, key=lambda r: r.busbw_GBps)
        lines.append(f"# Peak busbw{which} {peak.busbw_GBps * 8e3:.1f} Mbit/s = "
                     f"{peak.busbw_vs_bottleneck:.1%} of the {peak.bottleneck_mbps:g} Mbit/s bottleneck "
                     f"(at {peak.size_bytes} B)")
    for b, mine in by_backend.items():
        which = f" ({b})" if len(by_backend) > 1 else ""
        bound = [r for r in mine if r.host_bound]
        for r in bound:
            lines.append(f"# {r.host} at {r.size_bytes} B{which}")
        if not bound and mine[-1].host:
            lines.append(f"# {mine[-1].host} (largest size){which}")
    return "\n".join(lines)
