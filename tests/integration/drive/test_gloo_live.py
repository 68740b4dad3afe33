"""`twin allreduce --backend gloo`: PyTorch's torch.distributed over gloo on ci-2site, beside the
twin's own ring in the same twin, exact, with NCCL-tests rows and a CSV row per size and backend."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

from tests.locations import ROOT, TOPOS


def test_gloo_allreduce_beside_the_twin_is_exact_with_a_backend_column(torch_image, clean_machine, tmp_path):
    out = tmp_path / "allreduce.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "twin.cli.main", "allreduce", str(TOPOS / "ci-2site.yaml"),
         "--backend", "twin", "gloo", "--sizes", "4,1000003,4M", "--iters", "2", "--csv", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith("  ") and ln.split()[0].isdigit()]
    assert sorted(r[-1] for r in data) == ["gloo"] * 3 + ["twin"] * 3
    assert all(r[-2] == "0" for r in data)  # #wrong
    with out.open() as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = list(reader)
    # the newer columns come after the older ones, which keep their order; the code's commit last
    assert columns[-9:] == ["backend", "dilation", "host_cpu_saturated_share", "host_bound",
                            "line_late_share", "line_late_p99_ms", "generator_cpu_share", "host",
                            "git_commit"]
    assert all(r["git_commit"] for r in rows), rows
    assert columns[:3] == ["topology", "op", "algo"]
    gloo = [r for r in rows if r["backend"] == "gloo"]
    assert [int(r["size_bytes"]) for r in gloo] == [4, 1000000, 4 * 1024**2]  # whole float32s
    assert all(r["wrong"] == "0" and r["ranks"] == "4" and r["sites"] == "2" for r in gloo)
    big = gloo[-1]
    # gloo's bytes cross the emulated WAN (its fabric interface, not another one): never faster
    assert 0 < float(big["busbw_GBps"]) * 8e9 <= float(big["bottleneck_mbps"]) * 1e6 * 1.02


def test_twin_run_starts_an_unchanged_torch_distributed_program_on_every_worker(torch_image, clean_machine):
    program = ("import torch, torch.distributed as dist\n"
               "dist.init_process_group('gloo')\n"  # env://, from twin run's environment
               "t = torch.full((1000,), float(dist.get_rank() + 1))\n"
               "dist.all_reduce(t)\n"
               "print('sum', dist.get_rank(), dist.get_world_size(), t.min().item(), t.max().item())\n"
               "dist.destroy_process_group()\n")
    proc = subprocess.run(
        [sys.executable, "-m", "twin.cli.main", "run", "--topology", str(TOPOS / "ci-2site.yaml"),
         "--torch", "--", "python3", "-c", program],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    sums = sorted(ln.split("] ", 1)[1] for ln in proc.stdout.splitlines() if "] sum " in ln)
    assert sums == [f"sum {r} 4 10.0 10.0" for r in range(4)]  # 1 + 2 + 3 + 4 on every rank
