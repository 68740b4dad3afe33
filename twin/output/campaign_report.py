"""Turn a campaign CSV into plots (measured points over model curves) and a markdown report.

Each point counts by its latest attempt: a point that failed and then succeeded on
``--retry-failed`` is a measured point here, its failed attempt only counted.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Optional

import matplotlib

from twin.experiments.campaign import latest_attempts, read_campaign_csv
from twin.measure.hostload import verdict

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# What the plots and the report read of each row; of measured rows, these must be numbers.
REPORT_FIELDS = ("row_id", "campaign", "status", "error", "topology", "scale", "sites", "workers",
                 "git_commit", "kernel", "link_mechanism", "ovs_datapath", "distance_km",
                 "wan_rate_real", "wan_rate_emulated_mbps", "algo", "overlap", "controller",
                 "interference", "compute_s", "iteration_s", "exposed_s", "efficiency",
                 "model_iteration_s", "model_error", "model_efficiency")
MEASURED_NUMBERS = ("distance_km", "wan_rate_emulated_mbps", "compute_s", "iteration_s",
                    "exposed_s", "efficiency", "model_iteration_s", "model_error",
                    "model_efficiency")


def read_attempts(csv_path: Path) -> list[dict]:
    """Every row of a campaign CSV, each attempt of each point; a CSV that is not a campaign's
    (a column missing, a measured row with a value that is not a number) is one line."""
    table = read_campaign_csv(Path(csv_path), REPORT_FIELDS)
    table.require_numbers(MEASURED_NUMBERS, lambda r: r["status"] == "ok", blank=("efficiency",))
    return table.rows


def read(csv_path: Path) -> list[dict]:
    """The latest attempt of every point of a campaign CSV."""
    return latest_attempts(read_attempts(csv_path))


def _f(r: dict, k: str) -> float:
    try:
        return float(r[k])
    except (KeyError, ValueError, TypeError):
        return float("nan")


def plot(rows: list[dict], out_dir: Path) -> list[Path]:
    ok = [r for r in rows if r["status"] == "ok"]
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for xkey, label, fname in (("distance_km", "fiber distance between sites (km)", "efficiency_vs_distance.png"),
                               ("wan_rate_emulated_mbps", "WAN rate (Mbit/s emulated)", "efficiency_vs_wan_rate.png")):
        xs = sorted({_f(r, xkey) for r in ok})
        if len(xs) < 2:
            continue
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        series = defaultdict(list)
        other = "wan_rate_real" if xkey == "distance_km" else "distance_km"
        for r in ok:
            series[(r["algo"], r["overlap"], r["controller"], r["interference"], r[other])].append(r)
        for (algo, overlap, ctl, intf, o), rs in sorted(series.items()):
            rs.sort(key=lambda r: _f(r, xkey))
            name = f"{algo}{' +overlap' if overlap == 'True' else ''}" + \
                   (f" {ctl}" if ctl != "none" else "") + (" +interference" if intf == "True" else "") + f" ({o})"
            line, = ax.plot([_f(r, xkey) for r in rs], [_f(r, "model_efficiency") * 100 for r in rs], "-", alpha=0.6)
            ax.plot([_f(r, xkey) for r in rs], [_f(r, "efficiency") * 100 for r in rs], "o",
                    color=line.get_color(), label=name)
        ax.axhline(98, color="grey", ls="--", lw=1)
        ax.text(xs[0], 98.5, "FNTF claim: 98%", fontsize=7, color="grey")
        ax.set_xlabel(label)
        ax.set_ylabel("efficiency vs single site (%)")
        ax.set_title(f"{ok[0]['campaign']}: points measured, lines model ({ok[0]['scale']})", fontsize=9)
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(out_dir / fname, dpi=120)
        plt.close(fig)
        made.append(out_dir / fname)
    if ok:
        fig, ax = plt.subplots(figsize=(max(6, len(ok) * 0.35), 4.5))
        labels = [f"{r['algo']}{'+o' if r['overlap'] == 'True' else ''} {float(r['distance_km']):.0f}km "
                  f"{r['wan_rate_real']}" + (f" {r['controller']}" if r['controller'] != 'none' else '')
                  + (" +intf" if r["interference"] == "True" else "") for r in ok]
        comp = [_f(r, "compute_s") for r in ok]
        exp = [max(0.0, _f(r, "exposed_s")) for r in ok]
        ax.bar(range(len(ok)), comp, label="compute")
        ax.bar(range(len(ok)), exp, bottom=comp, label="exposed communication")
        ax.set_xticks(range(len(ok)), labels, rotation=75, fontsize=6)
        ax.set_ylabel("iteration time (s)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "iteration_breakdown.png", dpi=120)
        plt.close(fig)
        made.append(out_dir / "iteration_breakdown.png")
    return made


def _host(r: dict) -> str:
    """The host column: the flag with the CPU figure (rows of older CSVs may not carry it)."""
    if r.get("host_bound") == "True":
        return f"host-bound ({float(r.get('host_cpu_saturated_share') or 0):.0%} CPU-saturated)"
    return "headroom" if r.get("host_bound") == "False" else "not recorded"


def report(rows: list[dict], csv_path: Path, plots: list[Path], attempts: Optional[int] = None) -> str:
    """The markdown report of the latest attempt of every point (``rows``, as read()); with
    ``attempts``, the CSV's rows in all, the earlier attempts of retried points are counted."""
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] != "ok"]
    earlier = (attempts or len(rows)) - len(rows)
    retried = (f"; {earlier} earlier attempt{'s' * (earlier > 1)} of retried points not counted"
               if earlier > 0 else "")
    lines = [f"# Campaign {rows[0]['campaign'] if rows else '?'}", "",
             f"Source: `{csv_path}` ({len(rows)} rows, {len(failed)} failed{retried}).", ""]
    if ok:
        r0 = ok[0]
        lines += [f"Emulated: {r0['scale']}; topology {r0['topology']} ({r0['sites']} sites, "
                  f"{r0['workers']} workers); links: {r0['link_mechanism']}; OVS {r0['ovs_datapath']} "
                  f"datapath; kernel {r0['kernel']}; git {r0['git_commit']}.", "",
                  "| km | WAN (real) | algo | overlap | controller | interference | iteration s (model) "
                  "| error | efficiency measured | model | host |",
                  "|---:|---|---|---|---|---|---:|---:|---:|---:|---|"]
        for r in ok:
            lines.append(f"| {float(r['distance_km']):.0f} | {r['wan_rate_real']} | {r['algo']} | "
                         f"{r['overlap']} | {r['controller']} | {r['interference']} | "
                         f"{_f(r, 'iteration_s'):.3f} ({_f(r, 'model_iteration_s'):.3f}) | "
                         f"{_f(r, 'model_error'):+.1%} | {_f(r, 'efficiency'):.1%} | "
                         f"{_f(r, 'model_efficiency'):.1%} | {_host(r)} |")
        errs = sorted(abs(_f(r, "model_error")) for r in ok)
        lines += ["", f"Model error |measured - model| / model: median {statistics.median(errs):.1%}, "
                      f"max {errs[-1]:.1%}; within 5%: {sum(e <= 0.05 for e in errs)}/{len(errs)}.",
                  "", f"Host: {verdict(ok)}.", ""]
    for r in failed:
        lines.append(f"- failed: {r['algo']} {r['distance_km']} km {r['wan_rate_real']}: {r['error']}")
    lines += [""] + [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"
