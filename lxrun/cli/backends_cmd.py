"""`lxrun backends`: each backend, whether it can run on this host, and why not (exit 0 either way)."""

from __future__ import annotations

from lxrun.cli.common import Parser, add_root_option
from lxrun.runtime import BACKENDS, Runtime


def parser() -> Parser:
    p = Parser("lxrun backends", "List the backends and whether each can run here (and if not, why).")
    add_root_option(p)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    runtime = Runtime(args.root)
    width = max(len(name) for name in BACKENDS)
    for name in BACKENDS:
        probe = runtime.backend(name).probe()
        state = "available" if probe.available else "unavailable"
        print(f"{name:<{width}}  {state:<11}  {probe.reason}")
    return 0
