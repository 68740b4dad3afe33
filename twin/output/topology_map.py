"""Draw a topology: cities placed by their coordinates, links labelled with km, ms and rate."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from twin.spec.topology import Topology
from twin.units import format_rate  # noqa: E402


def draw(topo: Topology, out: Path) -> Path:
    if out.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"{out}: output must end in .png or .svg")
    n = len(topo.sites)
    fig, ax = plt.subplots(figsize=(8 + n / 8, 6 + n / 10))
    pos = {s.name: (s.lon, s.lat) for s in topo.sites}
    for link in topo.links:
        (x1, y1), (x2, y2) = pos[link.a], pos[link.b]
        ax.plot([x1, x2], [y1, y2], color="tab:blue", lw=1 + link.rate / 4e11, alpha=0.6, zorder=1)
        if n <= 12:
            label = (f"{topo.link_distance_km(link):.0f} km\n{topo.link_delay(link) * 1e3:.1f} ms\n"
                     f"{format_rate(link.rate)}")
            ax.text((x1 + x2) / 2, (y1 + y2) / 2, label, fontsize=7, ha="center", va="center",
                    bbox=dict(fc="white", ec="none", alpha=0.7))
    for s in topo.sites:
        ax.scatter(*pos[s.name], s=40 + 20 * s.workers, color="tab:red", zorder=2)
        ax.annotate(f"{s.city or s.name} ({s.workers})", pos[s.name], fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"{topo.name}: {n} sites, {len(topo.links)} links, span {topo.span_km():.0f} km "
                 f"(scale: {topo.scale.describe()})", fontsize=9)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
