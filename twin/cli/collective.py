"""``twin collective`` and ``twin allreduce``: collectives across the twin over real TCP, printed
as NCCL-tests prints them."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

from traffic.collectives import ALLREDUCE_ALGOS, BACKENDS, OPS
from twin.cli.console import console, progress
from twin.cli.options import add_scale, scaled
from twin.errors import TwinError

if TYPE_CHECKING:
    from twin.emulation.state import TwinState
    from twin.spec.topology import Topology


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``allreduce`` is ``collective --op allreduce``."""
    for name, op in (("collective", None), ("allreduce", "allreduce")):
        p = subparsers.add_parser(name, help="run collectives across the twin, NCCL-tests style")
        p.add_argument("topology", nargs="?", help="bring this up (default: the running twin)")
        if op is None:
            p.add_argument("--op", default="allreduce",
                           choices=OPS)
        else:
            p.set_defaults(op=op)
        p.add_argument("--algo", nargs="+", default=["ring"], choices=ALLREDUCE_ALGOS)
        p.add_argument("--backend", nargs="+", default=["twin"], choices=list(BACKENDS),
                       help="twin: the twin's generator; gloo: torch.distributed over gloo (the "
                            "torch image, built on first use); '--backend twin gloo': both in one table, "
                            "size by size")
        p.add_argument("--sizes", default="1M:64M", help="'1M:64M' (doubling) or '1M,8M'")
        p.add_argument("--iters", type=int, default=5)
        p.add_argument("--warmup", type=int, default=1)
        p.add_argument("--conns", type=int, default=1, help="TCP connections per peer")
        p.add_argument("--timeout", type=float, default=30.0, help="per-operation deadline (s)")
        p.add_argument("--no-check", action="store_true", help="move bytes only, no reduce/verify")
        p.add_argument("--csv", help="write the rows to this CSV")
        add_scale(p)
        p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.drive.benchmark import backend_module, parse_sizes, run_collective
    from twin.output.csvrows import write_rows
    from twin.output.nccl import nccl_table
    try:
        sizes = parse_sizes(args.sizes)
    except ValueError as exc:
        raise TwinError(f"--sizes: {exc}") from None
    for algo in args.algo:  # refused before anything is brought up
        for backend in args.backend:
            backend_module(backend, args.op, algo, args.conns)
    with twin_for(args.topology, backends=args.backend, scale=args.scale,
                  dilation=args.dilation) as (topo, state):
        fabric = min(topo.emulated_rate(s.fabric.rate) for s in topo.sites)
        rows = []
        for algo in args.algo:
            table = []
            for backend in args.backend:
                table += run_collective(state, args.op, algo, sizes, iters=args.iters,
                                        warmup=args.warmup, conns=args.conns,
                                        check=not args.no_check, timeout=args.timeout,
                                        fabric_bps=fabric, backend=backend)
            rows += table
            print(nccl_table(sorted(table, key=lambda r: r.size_bytes)), flush=True)
    if args.csv:
        write_rows(rows, Path(args.csv))
        console.print(f"CSV: {args.csv}")
    return 1 if any(r.wrong > 0 for r in rows) else 0


@contextlib.contextmanager
def twin_for(topology: Optional[str], controller: str = "none",
             backends: tuple[str, ...] | list[str] = ("twin",), scale: Optional[str] = None,
             dilation: Optional[float] = None) -> Iterator[tuple[Topology, TwinState]]:
    """The running twin, or one brought up for this command and torn down after it (with the
    torch image when the gloo backend is asked for: see topology_for_backends; at ``--scale``
    and ``--dilation`` when given: a running twin keeps the ones it came up with)."""
    from twin.drive.benchmark import topology_for_backends
    from twin.emulation import runtime
    from twin.spec.topology import load_topology
    if topology is None:
        state = runtime.require_state()
        if scale or dilation is not None:
            raise TwinError("--scale and --dilation apply when a topology is brought up; the "
                            f"running twin is at {state.scale}")
        yield scaled(load_topology(state.topology_file), None, state.dilation), state
        return
    topo = topology_for_backends(scaled(load_topology(topology), scale, dilation), list(backends),
                                 progress)
    _, state = runtime.up(topo, topology, controller, progress)
    try:
        yield topo, state
    finally:
        progress(runtime.down().summary())
