"""Shared by the benchmarks: timing loops, statistics, a throw-away state root, tables and JSON.

Every benchmark compares side by side in one run. Each case runs as one block after its own warm-up
(interleaving them lets one tool's asynchronous teardown, e.g. of network namespaces, land in
another's timings); the blocks run in order and then in reverse order, so slow drift on this shared
VM hits every case alike. Figures are medians and p99s, never single runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lxrun import Pool, TaskSpec
from lxrun.backends.base import TaskHandle
from lxrun.errors import LxrunError
from lxrun.layout import Layout
from lxrun.runtime import Runtime
from lxrun.store.bases import build_base
from lxrun.store.specs import find_spec, load_base_spec

RESULTS = Path(__file__).resolve().parent / "results"
PRIVATE_NS_ENV = "LXRUN_BENCH_PRIVATE_NS"
CGROUP2_KEEP_ENV = "LXRUN_BENCH_CGROUP2_AT"
UNIFIED = "/sys/fs/cgroup/unified"


@dataclass
class Case:
    """One thing to time: `run` performs it once and raises if it failed; `ready`, if given, is called
    untimed before each run (a pool refilling: the latency timed is a hand-out's, not a refill's).
    `block`, if given, replaces both for a case that times itself (a C program with its own clock):
    given a number of runs, it performs them and returns their durations in seconds."""

    name: str
    run: Callable[[], None]
    note: str = ""
    samples: list[float] = field(default_factory=list)
    ready: Callable[[], None] | None = None
    block: Callable[[int], list[float]] | None = None

    def summary(self) -> dict[str, float | int | str]:
        ordered = sorted(self.samples)
        return {
            "runs": len(ordered),
            "p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(percentile(ordered, 99) * 1000, 3),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
            "note": self.note,
        }


def pool_case(name: str, pool: Pool, spec: TaskSpec, note: str) -> Case:
    """`pool.run(spec)`, timed; the pool's refill before each run is not. Fails if the task failed or
    ran cold (a notice says why)."""

    def pooled() -> None:
        result = pool.run(spec)
        if result.exit_code != 0 or result.notices:
            raise RuntimeError(f"lxrun pooled task failed or ran cold: {result}")

    def refilled() -> None:
        if not pool.wait_ready():
            raise RuntimeError(f"the pool could not refill: {pool.failure}")

    return Case(name, pooled, note, ready=refilled)


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of sorted samples."""
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def spawn_runner(argv: list[str] | Callable[[], list[str]], env: dict[str, str] | None = None) -> Callable[[], None]:
    """Start argv (or what the callable returns, per run) with stdio on /dev/null and wait; raises if it
    fails. posix_spawn uses vfork, so the timing is not inflated by copying this process."""
    devnull = os.open(os.devnull, os.O_RDWR)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    environment = env if env is not None else dict(os.environ)

    def run() -> None:
        args = argv() if callable(argv) else argv
        pid = os.posix_spawn(args[0], args, environment, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise RuntimeError(f"{args} failed with wait status {status}")

    return run


def measure(cases: list[Case], rounds: int, warmup: int = 10) -> None:
    """`rounds` timed runs of every case: half in a forward pass, half in a backward one, each block warmed up."""
    halves = (rounds - rounds // 2, rounds // 2)
    for order, count in zip((cases, cases[::-1]), halves, strict=True):
        for case in order:
            if case.block is not None:
                case.samples += case.block(warmup + count)[warmup:]
                continue
            for number in range(warmup + count):
                if case.ready is not None:
                    case.ready()
                started = time.perf_counter()
                case.run()
                elapsed = time.perf_counter() - started
                if number >= warmup:
                    case.samples.append(elapsed)


def in_private_mount_namespace(keep_cgroup2: bool = False) -> None:
    """Re-exec this benchmark in a private mount namespace without the cgroup2 mount.

    crun refuses this host's v1/v2 hybrid unless /sys/fs/cgroup/unified is gone; unmounting it in a
    namespace of our own leaves the host untouched. Every case then runs in the same namespace.
    With keep_cgroup2, the hierarchy stays reachable at another place (see kept_cgroup2): backends
    that create cgroups there, or whose daemon does, must still be able to find and remove them."""
    if os.environ.get(PRIVATE_NS_ENV) == "1":
        # SIGTERM (e.g. `timeout`, or a CI job cancelled) unwinds like Ctrl-C: the cleanup blocks run.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        if os.path.ismount(UNIFIED):
            keep = os.environ.get(CGROUP2_KEEP_ENV)
            if keep:
                subprocess.run(["mount", "--bind", UNIFIED, keep], check=True)
            subprocess.run(["umount", "-l", UNIFIED], check=True)
        return
    env = {**os.environ, PRIVATE_NS_ENV: "1"}
    if keep_cgroup2:
        env[CGROUP2_KEEP_ENV] = tempfile.mkdtemp(prefix="lxrun-bench-cgroup2-")
    unshare = ["unshare", "--mount", "--propagation", "private", "--"]
    os.execvpe("unshare", [*unshare, sys.executable, *sys.argv], env)


@contextlib.contextmanager
def kept_cgroup2() -> Iterator[str | None]:
    """Where in_private_mount_namespace(keep_cgroup2=True) put the cgroup2 hierarchy; gone afterwards."""
    keep = os.environ.get(CGROUP2_KEEP_ENV)
    try:
        yield keep
    finally:
        if keep:
            if os.path.ismount(keep):
                subprocess.run(["umount", keep], check=True)
            os.rmdir(keep)


@contextlib.contextmanager
def bench_root() -> Iterator[Path]:
    """A throw-away lxrun state root with the busybox base built."""
    root = Path(tempfile.mkdtemp(prefix="lxrun-bench-"))
    try:
        build_base(load_base_spec(find_spec("rootfs", "busybox")), Layout(root))
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def machine() -> dict[str, str | int | float]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average": round(os.getloadavg()[0], 1),  # the VM may be shared: how busy it was
        "kernel": platform.release(),
        "cpus": os.cpu_count() or 0,
        "python": platform.python_version(),
        "host": platform.node(),
    }


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(name: str, data: dict[str, object]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


class Sleepers:
    """Long `sleep` tasks in flight, one thread each running `lxrun.run`; `stop` kills and joins them all."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.devnull = os.open(os.devnull, os.O_WRONLY)
        self.handles: list[TaskHandle] = []
        self.threads: list[threading.Thread] = []

    def add(self, count: int) -> str | None:
        """Start `count` more, one after the other; returns the first start's error, if one fails."""
        spec = TaskSpec(stack="busybox", argv=["sleep", "3600"], stdout=self.devnull, stderr=self.devnull)
        for _ in range(count):
            started = threading.Event()
            failure: list[str] = []

            def on_start(handle: TaskHandle, started: threading.Event = started) -> None:
                self.handles.append(handle)
                started.set()

            def sleeper(started: threading.Event = started, failure: list[str] = failure) -> None:
                try:
                    self.runtime.run(spec, on_start=on_start)
                except LxrunError as exc:
                    failure.append(f"{type(exc).__name__}: {exc}")
                    started.set()

            thread = threading.Thread(target=sleeper, daemon=True)
            thread.start()
            self.threads.append(thread)
            started.wait()
            if failure:
                return failure[0]
        return None

    def stop(self) -> None:
        for handle in self.handles:
            handle.send_signal(signal.SIGKILL)
        for thread in self.threads:
            thread.join()
        self.handles.clear()
        self.threads.clear()
