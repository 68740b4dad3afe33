"""Bring-up and tear-down: the twin vs plain Mininet (namespace hosts) on the same graph.

Both bring up one OVS userspace switch per site, one endpoint per worker and one link per
WAN edge, in the same run on the same machine. Plain Mininet's hosts are bare namespaces and its
links get HTB rate only (this kernel has no netem, so plain Mininet cannot emulate delay here);
the twin's endpoints are Docker containers and its WAN links carry delay lines. Prints a table and
writes results/benchmarks/bringup.csv.

  .venv/bin/python benchmarks/bringup.py [--topologies ci-2site fntf-4site fntf-40city] [--repeats 1]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

from mininet.link import TCLink
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch

from twin.emulation import cleanup, runtime
from twin.host.capabilities import link_mechanism, ovs_datapath
from twin.host.rundirs import project_root
from twin.output.csvrows import write_rows
from twin.spec.topology import load_topology

ROOT = project_root()


def mem_used() -> int:
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        info[key] = int(value.split()[0]) * 1024
    return info["MemTotal"] - info["MemAvailable"]


class PeakMemory:
    """Peak of (MemTotal - MemAvailable) above its value at entry, sampled every 20 ms: the whole
    machine's view, so containers, namespaces, OVS and delay lines all count."""

    def __enter__(self) -> "PeakMemory":
        self.base = self.peak = mem_used()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, mem_used())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, mem_used())

    @property
    def bytes(self) -> int:
        return self.peak - self.base


def plain_mininet(topo) -> tuple[float, float, int]:
    with PeakMemory() as mem:
        net = Mininet(controller=None, switch=OVSSwitch, link=TCLink, build=False)
        t0 = time.monotonic()
        idx = {s.name: i for i, s in enumerate(topo.sites, 1)}
        sw = {s.name: net.addSwitch(f"s{idx[s.name]}", datapath="user", failMode="secure",
                                    batch=True) for s in topo.sites}
        n = 0
        for s in topo.sites:
            for k in range(1, s.workers + 1):
                n += 1
                h = net.addHost(f"h{n}", ip=f"10.{idx[s.name]}.0.{k}/8")
                net.addLink(h, sw[s.name], bw=topo.emulated_rate(s.fabric.rate) / 1e6)
        for link in topo.links:
            net.addLink(sw[link.a], sw[link.b], bw=topo.emulated_rate(link.rate) / 1e6)
        net.start()
        up = time.monotonic() - t0
        time.sleep(1.0)  # steady state, like the twin's
    t1 = time.monotonic()
    net.stop()
    return up, time.monotonic() - t1, mem.bytes


def twin(topo, path: str) -> tuple[float, float, int]:
    with PeakMemory() as mem:
        t0 = time.monotonic()
        runtime.up(topo, path, "none", progress=lambda s: None)
        up = time.monotonic() - t0
        time.sleep(1.0)
    t1 = time.monotonic()
    runtime.down()
    return up, time.monotonic() - t1, mem.bytes


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--topologies", nargs="+", default=["ci-2site", "fntf-4site", "fntf-40city"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "bringup.csv"))
    args = ap.parse_args()
    setLogLevel("error")
    runtime.ensure_services()
    cleanup.clean()
    rows = []
    for name in args.topologies:
        path = str(ROOT / "topologies" / f"{name}.yaml")
        topo = load_topology(path)
        workers = sum(s.workers for s in topo.sites)
        res: dict[str, list] = {"twin": [], "mininet": []}
        for _ in range(args.repeats):
            res["mininet"].append(plain_mininet(topo))
            res["twin"].append(twin(topo, path))
        med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in res.items()}
        rows.append({
            "topology": name, "sites": len(topo.sites), "workers": workers, "wan_links": len(topo.links),
            "repeats": args.repeats,
            "twin_up_s": round(med["twin"][0], 2), "twin_down_s": round(med["twin"][1], 2),
            "mininet_up_s": round(med["mininet"][0], 2), "mininet_down_s": round(med["mininet"][1], 2),
            "up_ratio": round(med["twin"][0] / med["mininet"][0], 2),
            "down_ratio": round(med["twin"][1] / med["mininet"][1], 2),
            "twin_s_per_worker": round(med["twin"][0] / workers, 3),
            "twin_peak_mem_mb": round(med["twin"][2] / 2**20),
            "mininet_peak_mem_mb": round(med["mininet"][2] / 2**20),
            "twin_links": link_mechanism(), "ovs_datapath": ovs_datapath(),
            "kernel": platform.release(), "cores": __import__("os").cpu_count(),
        })
        print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    out = write_rows(rows, Path(args.out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
