"""``twin link set|down|up A B``: change, cut or restore a live long-haul link."""

from __future__ import annotations

import argparse

from twin.cli.console import console


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("link", help="change, cut or restore a live WAN link")
    p.add_argument("action", choices=["set", "down", "up"])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--delay")
    p.add_argument("--rate", help="real units; the topology's scale applies")
    p.add_argument("--loss")
    p.add_argument("--jitter")
    p.add_argument("--mid-span", action="store_true",
                   help="down/up: cut the fiber itself, the switch ports stay up (detpath detects "
                        "it by BFD); without it both switch ports go down")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.emulation import runtime
    from twin.units import (
        format_rate,
        format_time,
        parse_fraction,
        parse_rate,
        parse_time,
    )
    if args.action == "set":
        w = runtime.set_link(
            args.a, args.b,
            delay_s=parse_time(args.delay) if args.delay else None,
            rate_bps=parse_rate(args.rate) if args.rate else None,
            loss=parse_fraction(args.loss) if args.loss else None,
            jitter_s=parse_time(args.jitter) if args.jitter else None)
        console.print(f"{w.a}-{w.b}: delay {format_time(w.delay_s)}, rate {format_rate(w.rate_bps)} "
                      f"(emulated {format_rate(w.emulated_bps)}), loss {w.loss:.4%}")
    else:
        cut = runtime.set_link_span if args.mid_span else runtime.set_link_state
        w = cut(args.a, args.b, args.action == "up")
        console.print(f"{w.a}-{w.b}: {args.action}" + (" (mid-span)" if args.mid_span else ""))
    return 0
