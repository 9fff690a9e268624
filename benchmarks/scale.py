"""Concurrency and scale: tasks/s at 1, 2, 4, 8 at once, and a new task's start with many in flight.

    python benchmarks/scale.py [--concurrency 1,2,4,8] [--tasks 200] [--in-flight 0,50,200,1000]
                               [--rounds 200] [--probe-limit 1100]

Throughput: --tasks runs of `true` on the busybox stack, N at once, from threads of this process
(`lxrun.run`) and as separate processes (`lxrun exec`), next to bwrap and crun at the same
concurrency. Load: long `sleep` tasks started in the background through `lxrun.run` from threads
(one thread each, as a runner host would), then --rounds starts of `true` timed one at a time at
each --in-flight count, with the helper's step (see steps.py) timed apart. Last, with
--probe-limit, sleepers are added until that many are in flight or one fails to start: the error
says what limits the count. Prints markdown tables and writes benchmarks/results/scale.json. Runs
in a private mount namespace (crun needs it here; see common.in_private_mount_namespace).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import (
    Sleepers,
    bench_root,
    in_private_mount_namespace,
    machine,
    percentile,
    spawn_runner,
    table,
    write_json,
)
from references import bwrap_runner, crun_runner
from steps import Marks, instrumented, runtime_with, timed

from lxrun import TaskSpec
from lxrun.layout import Layout
from lxrun.runtime import Runtime
from lxrun.sandbox import helper
from lxrun.store.stacks import StackStore

LXRUN = str(Path(sys.executable).with_name("lxrun"))
LXRUN_THREADS = "lxrun.run (threads)"


def counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def runners(runtime: Runtime, root: Path, scratch: Path) -> dict[str, Callable[[], None]]:
    """One start-to-exit of `true` per call, for each runtime compared; bwrap and crun where installed."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    spec = TaskSpec(stack="busybox", argv=["true"], stdout=devnull, stderr=devnull)

    def in_process() -> None:
        result = runtime.run(spec)
        if result.exit_code != 0:
            raise RuntimeError(f"lxrun task failed: {result}")

    cli = [LXRUN, "exec", "--root", str(root), "--stack", "busybox", "--", "true"]
    found = {LXRUN_THREADS: in_process, "lxrun exec (processes)": spawn_runner(cli)}
    rootfs = StackStore(Layout(root)).resolve("busybox").layer_paths[0]
    for name, command in (("bwrap", "bwrap"), ("crun run", "crun")):
        path = shutil.which(command)
        if path is None:
            print(f"skipping {name}: {command} is not installed", file=sys.stderr)
        elif name == "bwrap":
            found[name] = bwrap_runner(path, rootfs)
        else:
            found[name] = crun_runner(path, rootfs, scratch)
    return found


def throughput(task: Callable[[], None], tasks: int, parallel: int) -> float:
    """Tasks per second for `tasks` runs of `task`, `parallel` at a time (after a warm-up of `parallel`)."""
    with ThreadPoolExecutor(parallel) as pool:
        for future in [pool.submit(task) for _ in range(parallel)]:
            future.result()
        started = time.perf_counter()
        for future in [pool.submit(task) for _ in range(tasks)]:
            future.result()
    return tasks / (time.perf_counter() - started)


def concurrency(found: dict[str, Callable[[], None]], levels: list[int], tasks: int) -> dict[str, dict[str, float]]:
    """tasks/s of every runtime at every level; the levels in order, then the runtimes in order and reverse."""
    rates: dict[str, dict[str, float]] = {name: {} for name in found}
    for index, level in enumerate(levels):
        order = list(found) if index % 2 == 0 else list(found)[::-1]  # drift hits every runtime alike
        for name in order:
            rates[name][str(level)] = round(throughput(found[name], tasks, level), 1)
    return rates


def latency_under_load(
    runtime: Runtime, marks: Marks, sleepers: Sleepers, levels: list[int], rounds: int
) -> dict[str, dict[str, float]]:
    """p50/p90/p99 of a new task's start-to-exit, and its helper step's p50, at each count in flight."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    spec = TaskSpec(stack="busybox", argv=["true"], stdout=devnull, stderr=devnull)
    figures: dict[str, dict[str, float]] = {}
    for level in sorted(levels):
        error = sleepers.add(level - len(sleepers.handles))
        if error is not None:
            print(f"stopped at {len(sleepers.handles)} in flight: {error}", file=sys.stderr)
            break
        totals, helper_times = [], []
        for number in range(10 + rounds):
            with marks.task() as times:
                result = runtime.run(spec)
            if result.exit_code != 0:
                raise RuntimeError(f"lxrun task failed: {result}")
            if number >= 10:
                totals.append(times["end"] - times["start"])
                helper_times.append(times["spawn.end"] - times["spawn"])  # the whole helper call
        totals.sort()
        figures[str(level)] = {
            "p50_ms": round(statistics.median(totals) * 1000, 3),
            "p90_ms": round(percentile(totals, 90) * 1000, 3),
            "p99_ms": round(percentile(totals, 99) * 1000, 3),
            "helper_p50_ms": round(statistics.median(helper_times) * 1000, 3),
        }
    os.close(devnull)
    return figures


def render_rates(rates: dict[str, dict[str, float]], levels: list[int]) -> str:
    rows = [(name, *(f"{by_level[str(level)]:.1f}" for level in levels)) for name, by_level in rates.items()]
    for reference in ("bwrap", "crun run"):
        if reference in rates:
            ours, theirs = rates[LXRUN_THREADS], rates[reference]
            ratios = (f"{ours[str(level)] / theirs[str(level)]:.2f}x" for level in levels)
            rows.append((f"lxrun.run / {reference}", *ratios))
    return table(rows, ("tasks/s of `true`", *(f"{level} at once" for level in levels)))


def render_latency(figures: dict[str, dict[str, float]]) -> str:
    idle = figures.get("0")
    rows = []
    for level, values in figures.items():
        ratio = f"{values['p50_ms'] / idle['p50_ms']:.2f}x" if idle else "-"
        cells = (values["p50_ms"], values["p90_ms"], values["p99_ms"], values["helper_p50_ms"])
        rows.append((level, *(f"{value:.2f}" for value in cells), ratio))
    header = ("tasks in flight", "p50 ms", "p90 ms", "p99 ms", "helper step p50 ms", "p50 vs idle")
    return table(rows, header)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--concurrency", type=counts, default=[1, 2, 4, 8], help="levels, comma-separated")
    parser.add_argument("--tasks", type=int, default=200, help="tasks per throughput figure")
    parser.add_argument("--in-flight", type=counts, default=[0, 50, 200, 1000], help="counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=200, help="timed starts per in-flight count")
    parser.add_argument("--probe-limit", type=int, default=1100, help="add sleepers up to this many (0: don't)")
    args = parser.parse_args()
    in_private_mount_namespace()
    threading.stack_size(1 << 20)  # a thread per sleeper: a thousand of them need no 8 MiB stacks
    marks = Marks()
    limit: dict[str, object] = {}
    with bench_root() as root, tempfile.TemporaryDirectory(prefix="lxrun-bench-refs-") as scratch:
        runtime = runtime_with(root, timed(marks, "spawn", helper.spawn))
        rates = concurrency(runners(runtime, root, Path(scratch)), args.concurrency, args.tasks)
        sleepers = Sleepers(runtime)
        try:
            with instrumented(marks):
                latency = latency_under_load(runtime, marks, sleepers, args.in_flight, args.rounds)
            if args.probe_limit > len(sleepers.handles):
                error = sleepers.add(args.probe_limit - len(sleepers.handles))
                limit = {"in_flight": len(sleepers.handles), "error": error}
        finally:
            sleepers.stop()
    print(render_rates(rates, args.concurrency))
    print()
    print(render_latency(latency))
    if limit:
        outcome = f"the next start failed: {limit['error']}" if limit["error"] else "none failed"
        print(f"\nsleepers started up to {args.probe_limit}: {limit['in_flight']} in flight, {outcome}")
    path = write_json(
        "scale",
        {
            "machine": machine(),
            "tasks": args.tasks,
            "rounds": args.rounds,
            "tasks_per_s": rates,
            "in_flight": latency,
            "limit": limit,
        },
    )
    print(f"written {path}")


if __name__ == "__main__":
    main()
