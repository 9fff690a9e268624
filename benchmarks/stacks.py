"""Stacks: build time and diff size of every base and stack spec, and the start latency of a task on a
three-layer stack next to a one-layer one.

    python benchmarks/stacks.py [--rounds 500] [--passes 5] [--stacks python3.11,ruby3.1] [--root DIR]

Builds happen in a throw-away state root (or in --root, where what is built already is a no-op),
bases first, then every stack after its parent, each timed on its own. Start latency is `true` run
through lxrun.run on debian-bookworm (1 layer), python3.11 (2) and python3.11-media (3), measured as
startup.py measures (common.measure), repeated in `--passes` passes so the cases alternate in ten
blocks rather than two: the differences sought are tenths of a millisecond, and load elsewhere on a
shared VM drifts by more than that within a minute. Prints markdown tables, writes
benchmarks/results/stacks.json. Needs mmdebstrap and the Debian mirror.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from common import Case, bench_root, machine, measure, table, write_json

from lxrun import TaskSpec, run
from lxrun.cli.tables import human
from lxrun.layout import Layout
from lxrun.store.bases import build_base
from lxrun.store.builds import build_stack
from lxrun.store.layers import LayerStore
from lxrun.store.specs import SOURCE_TREE, load_base_spec, load_stack_spec
from lxrun.store.stacks import StackStore, StackVersion
from lxrun.store.usage import Accountant

LATENCY_STACKS = ("debian-bookworm", "python3.11", "python3.11-media")


def build_order(names: list[str]) -> list[str]:
    """Stacks after their parents (a parent outside `names` is built with its child, as the CLI does)."""
    parents = {name: load_stack_spec(SOURCE_TREE / "stacks" / f"{name}.toml").parent for name in names}
    ordered: list[str] = []
    while len(ordered) < len(names):
        ordered += sorted(n for n in names if n not in ordered and (parents[n] not in names or parents[n] in ordered))
    return ordered


@dataclass
class BuildFigures:
    stack: str
    on: str
    layers: int
    build_s: float
    diff_bytes: int
    total_bytes: int


def build_all(layout: Layout, names: list[str]) -> list[BuildFigures]:
    """Build every base, then every stack; time each and read its diff's size."""
    figures: list[BuildFigures] = []
    layers = LayerStore(layout)

    def record(version: StackVersion, seconds: float) -> None:
        sizes = [layers.info(digest).size for digest in version.layers]
        on = version.parent or "(base)"
        figures.append(BuildFigures(version.name, on, len(sizes), round(seconds, 1), sizes[-1], sum(sizes)))
        print(f"built {version.ref} in {seconds:.1f} s", flush=True)

    with open(os.devnull, "w") as devnull:
        for path in sorted((SOURCE_TREE / "rootfs").glob("*.toml")):
            started = time.monotonic()
            record(build_base(load_base_spec(path), layout, log_fd=devnull.fileno()), time.monotonic() - started)
        for name in build_order(names):
            started = time.monotonic()
            record(build_stack(name, layout, log_fd=devnull.fileno()).version, time.monotonic() - started)
    return figures


def latency_cases(root: Path) -> list[Case]:
    devnull = os.open(os.devnull, os.O_WRONLY)
    cases = []
    for name in LATENCY_STACKS:
        spec = TaskSpec(stack=name, argv=["true"], stdout=devnull, stderr=devnull)
        depth = len(StackStore(Layout(root)).resolve(name).layers)

        def start(spec: TaskSpec = spec) -> None:
            result = run(spec, root=root)
            if result.exit_code != 0:
                raise RuntimeError(f"lxrun task failed: {result}")

        cases.append(Case(f"{name} ({depth} layer{'s' if depth > 1 else ''})", start))
    return cases


@contextlib.contextmanager
def state_root(given: str | None) -> Iterator[Path]:
    if given:
        yield Path(given)
    else:
        with bench_root() as root:
            yield root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500, help="timed runs per case, over all passes")
    parser.add_argument("--passes", type=int, default=5, help="forward-and-back passes over the cases")
    parser.add_argument("--stacks", help="comma-separated stacks to build (default: every stacks/*.toml)")
    parser.add_argument("--root", help="state root to build in and keep (default: a throw-away one)")
    args = parser.parse_args()
    names = args.stacks.split(",") if args.stacks else sorted(p.stem for p in (SOURCE_TREE / "stacks").glob("*.toml"))
    names = sorted(set(names) | set(LATENCY_STACKS[1:]))
    with state_root(args.root) as root:
        layout = Layout(root)
        builds = build_all(layout, names)
        cases = latency_cases(root)
        for _ in range(args.passes):
            measure(cases, args.rounds // args.passes)
        usage = Accountant(layout).current()
    print()
    rows = [
        (b.stack, b.on, str(b.layers), f"{b.build_s:.1f}", human(b.diff_bytes), human(b.total_bytes)) for b in builds
    ]
    print(table(rows, ("stack", "on", "layers", "build s", "diff", "total")))
    summaries = {case.name: case.summary() for case in cases}
    one_layer = float(cases[0].summary()["p50_ms"])
    latency = [
        (name, f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}", f"{(float(s['p50_ms']) / one_layer - 1) * 100:+.1f}%")
        for name, s in summaries.items()
    ]
    print()
    print(table(latency, ("start-to-exit of `true`", "p50 ms", "p99 ms", "p50 vs 1 layer")))
    ratio = usage.flattened / usage.as_layers
    print(f"\n{len(usage.stacks)} stacks as layers, each stored once: {human(usage.as_layers)}")
    print(f"{len(usage.stacks)} stacks as flattened images: {human(usage.flattened)} ({ratio:.1f}x)")
    path = write_json(
        "stacks",
        {
            "machine": machine(),
            "rounds": args.rounds,
            "passes": args.passes,
            "builds": [asdict(b) for b in builds],
            "latency": summaries,
            "disk": {"stacks": len(usage.stacks), "as_layers": usage.as_layers, "flattened": usage.flattened},
        },
    )
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
