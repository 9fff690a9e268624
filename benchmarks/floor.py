"""The kernel's floor under lxrun's start-up, measured in the same run as lxrun: what no runtime on this
machine can go below, whatever its language.

    python benchmarks/floor.py [--rounds 300]

benchmarks/floor.c (built here with cc) times, with no Python in the way: posix_spawn of `true` (what
subprocess.run does); the hand-over of `true` to a process that already waits (a warm sandbox's
design, without the sandbox): forking it then, forking its child ahead, or exec'ing it in place (the
least a hand-over costs); and a clone into bwrap --unshare-all's namespaces that execs `true` (a cold
start's namespaces, before any mount). Next to them, from Python: subprocess.run of the same `true`,
and lxrun.Pool.run of `true` on the busybox stack. `true` is the busybox base's own binary
everywhere. Each case runs as one block, forward then backward (common.measure). Prints a markdown
table with each figure's ratio to posix_spawn's and writes benchmarks/results/floor.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import Case, bench_root, in_private_mount_namespace, machine, measure, pool_case, table, write_json

from lxrun import Pool, TaskSpec
from lxrun.layout import Layout
from lxrun.store.stacks import StackStore

SOURCE = Path(__file__).resolve().with_name("floor.c")
C_MODES = {
    "spawn": "posix_spawn + waitpid (C)",
    "handover": "hand-over to a waiting process, which forks it (C)",
    "handover-ahead": "hand-over to a waiting process whose child, forked ahead, execs it (C)",
    "handover-exec": "hand-over to a waiting process, which execs it (C)",
    "namespaces": "clone into 7 new namespaces, exec (C)",
}


def build(scratch: Path) -> Path:
    binary = scratch / "floor"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(SOURCE)], check=True)
    return binary


def timed_by_floor(binary: Path, mode: str, true: str) -> Callable[[int], list[float]]:
    """A Case's block: floor.c runs `mode` so many times and prints each run's nanoseconds."""

    def block(count: int) -> list[float]:
        output = subprocess.run([str(binary), mode, true, str(count)], check=True, capture_output=True, text=True)
        return [int(line) / 1e9 for line in output.stdout.split()]

    return block


def not_run() -> None:
    raise AssertionError("floor.c's cases run as blocks")


def python_cases(true: str, pool: Pool) -> list[Case]:
    devnull = os.open(os.devnull, os.O_WRONLY)
    spec = TaskSpec(stack="busybox", argv=["true"], stdout=devnull, stderr=devnull)

    def subprocess_true() -> None:
        subprocess.run([true], check=True)

    return [
        Case("subprocess.run of true (Python)", subprocess_true),
        pool_case("lxrun.Pool.run of true (Python)", pool, spec, "not timed: the pool's refill"),
    ]


def render(summaries: dict[str, dict[str, float | int | str]], reference: str) -> str:
    base = summaries[reference]
    rows = [
        (
            name,
            f"{figures['p50_ms']:.3f}",
            f"{figures['p99_ms']:.3f}",
            f"{float(figures['p50_ms']) / float(base['p50_ms']):.2f}x",
        )
        for name, figures in summaries.items()
    ]
    return table(rows, ("start-to-reap of `true`", "p50 ms", "p99 ms", "p50 / posix_spawn's"))


def busybox_true(root: Path, scratch: Path) -> str:
    """The busybox base's binary, copied where a task without mapped ids can run it, named `true`."""
    layer = StackStore(Layout(root)).resolve("busybox").layer_paths[0]
    true = scratch / "true"
    shutil.copy(f"{layer}/bin/busybox", true)
    return str(true)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    in_private_mount_namespace()
    with bench_root() as root, tempfile.TemporaryDirectory(prefix="lxrun-bench-floor-") as scratch_dir:
        scratch = Path(scratch_dir)
        scratch.chmod(0o755)  # the namespaces case runs `true` as an unmapped user
        binary, true = build(scratch), busybox_true(root, scratch)
        with Pool("busybox", size=2, root=root) as pool:
            cases = [
                Case(name, not_run, f"floor.c {mode}", block=timed_by_floor(binary, mode, true))
                for mode, name in C_MODES.items()
            ]
            cases += python_cases(true, pool)
            measure(cases, args.rounds)
    summaries = {case.name: case.summary() for case in cases}
    print(render(summaries, C_MODES["spawn"]))
    path = write_json("floor", {"machine": machine(), "rounds": args.rounds, "cases": summaries})
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
