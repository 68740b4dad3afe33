"""The real DDP job (traffic.ddp) through `twin run` on ci-2site: four ranks over two sites train
an MLP with DistributedDataParallel over gloo, DDP's buckets cross the emulated WAN, and every
replica ends bit for bit equal."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.locations import ROOT, TOPOS
from twin.drive.ddp import combine, rank_result
from twin.spec.topology import load_topology

RANK_LINE = re.compile(r"^\[(\d+) \S+\] (.*)$")


def test_ddp_through_twin_run_keeps_the_replicas_equal_and_pays_the_wan(torch_image, clean_machine):
    width, depth = 512, 4  # 4 layers of 1,050,624 B of gradient: over a 1 MiB cap, a bucket each
    proc = subprocess.run(
        [sys.executable, "-m", "twin.cli.main", "run", "--topology", str(TOPOS / "ci-2site.yaml"),
         "--torch", "--", "python3", "-m", "traffic.ddp", "--width", str(width), "--depth", str(depth),
         "--batch", "16", "--bucket-cap-mb", "1", "--warmup", "1", "--compute-iters", "1",
         "--iters", "3", "--timeout", "120"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    by_rank: dict[int, list[str]] = {}
    for line in proc.stdout.splitlines():  # "[RANK WORKER] what it printed", among progress lines
        if m := RANK_LINE.match(line):
            by_rank.setdefault(int(m[1]), []).append(m[2])
    results = [rank_result("\n".join(by_rank[r])) for r in sorted(by_rank)]
    assert [r["rank"] for r in results] == [0, 1, 2, 3] and results[0]["world_size"] == 4
    run = combine(results)
    assert run.in_sync, {r["rank"]: r["param_sha256"][:12] for r in results}
    assert run.params == depth * (width + 1) * width and run.gradient_bytes == 4 * run.params
    assert run.buckets == (4 * (width + 1) * width,) * depth  # DDP's own buckets, one per layer
    # Each site's partial sum of the whole gradient crosses the 400 Mbit/s WAN (one way, 6.7 ms):
    # no iteration can be shorter, unless gloo's bytes took another path than the emulated link
    topo = load_topology(TOPOS / "ci-2site.yaml")
    (link,) = topo.links
    floor = topo.link_delay(link) + run.gradient_bytes * 8 / topo.emulated_rate(link.rate)
    assert min(run.iteration_s) >= floor, (run.iteration_s, floor)
    assert run.compute_s < min(run.iteration_s)
