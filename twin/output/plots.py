"""Plots of measurement CSV rows: efficiency (measured next to model), busbw vs size, delay CDFs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def efficiency_bars(rows, out: Path, title: str) -> Path:
    """Measured vs model efficiency and iteration-time breakdown per (algo, overlap)."""
    spread = [r for r in rows if r.layout == "spread"]
    labels = [f"{r.algo}\n{'overlap' if r.overlap else 'no overlap'}" for r in spread]
    x = range(len(spread))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.bar([i - 0.2 for i in x], [r.measured_efficiency * 100 for r in spread], 0.4, label="measured")
    a1.bar([i + 0.2 for i in x], [r.model_efficiency * 100 for r in spread], 0.4, label="model")
    a1.axhline(98, color="grey", ls="--", lw=1, label="FNTF claim 98%")
    a1.set_xticks(list(x), labels)
    a1.set_ylabel("efficiency vs single site (%)")
    a1.set_ylim(0, 105)
    a1.legend(fontsize=8)
    comp = [r.compute_s for r in spread]
    exp = [max(0.0, r.measured_exposed_s) for r in spread]
    a2.bar(list(x), comp, 0.5, label="compute")
    a2.bar(list(x), exp, 0.5, bottom=comp, label="exposed communication")
    a2.set_xticks(list(x), labels)
    a2.set_ylabel("iteration time (s)")
    a2.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    return _save(fig, out)


def busbw_vs_size(rows, out: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    for algo in sorted({r.algo for r in rows}):
        rs = [r for r in rows if r.algo == algo]
        ax.plot([r.size_bytes for r in rs], [r.busbw_GBps * 8e3 for r in rs], "o-", label=algo)
    if rows:
        ax.axhline(rows[0].bottleneck_mbps, color="grey", ls="--", lw=1, label="bottleneck rate")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("message size (bytes, emulated)")
    ax.set_ylabel("bus bandwidth (Mbit/s, emulated)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(fig, out)


def delay_cdf(series: dict[str, list[float]], out: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in series.items():
        if values:
            v = sorted(values)
            ax.plot(v, [(i + 1) / len(v) for i in range(len(v))], label=label)
    ax.set_xlabel("one-way delay (ms)")
    ax.set_ylabel("CDF")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(fig, out)
