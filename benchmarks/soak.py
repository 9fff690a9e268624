"""Soak: many tasks of every kind, 4 at once, then `lxrun gc`; nothing may leak and nothing may drift.

    python benchmarks/soak.py [--tasks 10000] [--parallel 4]

The mix: plain tasks, non-zero exits, OOM kills, timeouts, fork bombs, full disks, and runners
(`lxrun exec` processes) SIGKILLed mid-task; every third task of a kind that runs through the API
goes through a lxrun.Pool instead (warm where it can serve it), and pool owners and `lxrun serve
--pool` servers are SIGKILLed mid-task too. Every task's outcome is checked against its kind.
Afterwards gc runs and the run fails (exit 1) on any leak: mounts, task cgroups, network
namespaces, veths, processes, files in the state root. Reported: tasks/s; p50/p99 latency of plain
tasks per bucket of 1000 (the last bucket's p99 against the first's: no drift); this runner's RSS
after warm-up and at the end (no growth). Writes benchmarks/results/soak.json.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from common import bench_root, machine, percentile, table, write_json

from lxrun import Pool, Result, Runtime, TaskSpec, run
from lxrun.cgroups import detect
from lxrun.layout import Layout
from lxrun.spec import Limits

LXRUN = str(Path(sys.executable).with_name("lxrun"))
BUCKET = 1000
WARMUP = 50
BATCH = 100
TARGETS = {"p99 drift": 0.20, "rss growth MB": 10.0}


def kinds(devnull: int) -> dict[str, tuple[float, TaskSpec | None, Callable[[Result], bool]]]:
    """kind -> (share of the mix, the task, what its result must say). None: a runner killed mid-task."""

    def spec(script: str, **kwargs: object) -> TaskSpec:
        return TaskSpec(stack="busybox", argv=["sh", "-c", script], stdout=devnull, stderr=devnull, **kwargs)  # type: ignore[arg-type]

    return {
        "ok": (0.70, spec("echo ok"), lambda r: r.exit_code == 0),
        "exit": (0.10, spec("exit 3"), lambda r: r.exit_code == 3 and not r.oom_killed),
        "oom": (0.04, spec("dd if=/dev/zero of=/dev/null bs=64M count=1", limits=Limits(memory=16 << 20)),
                lambda r: r.oom_killed),
        "timeout": (0.04, spec("trap '' TERM; sleep 10", timeout=0.2, stop_timeout=0.1), lambda r: r.timed_out),
        "forkbomb": (0.03, spec("b() { b | b & }; b; sleep 0.3", limits=Limits(pids=20), timeout=1, stop_timeout=0),
                     lambda r: r.pids_peak is not None and r.pids_peak <= 20),
        "disk": (0.04, spec("dd if=/dev/zero of=/fill bs=1M count=16; test $? -ne 0", disk=4 << 20),
                 lambda r: r.exit_code == 0),
        "killed runner": (0.03, None, lambda r: True),
        "killed pool owner": (0.01, None, lambda r: True),
        "killed server": (0.01, None, lambda r: True),
    }  # fmt: skip


def killed_runner(root: Path, rng: random.Random) -> float:
    """An `lxrun exec` process SIGKILLed while its task runs; its leftovers are gc's."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [LXRUN, "exec", "--root", str(root), "--stack", "busybox", "-m", "64m", "--", "sleep", "30"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(rng.uniform(0.02, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return time.perf_counter() - started


# A process that fills a pool, starts a task in it, says so and waits: killed, its pid 1s die with it
# (their parent-death signal) and what they held is gc's.
POOL_OWNER = """
import sys, lxrun
pool = lxrun.Pool("busybox", size=2, root=sys.argv[1])
pool.wait_ready()
print("ready", flush=True)
pool.run(lxrun.TaskSpec(stack="busybox", argv=["sleep", "30"]))
"""


def killed_pool_owner(root: Path, rng: random.Random) -> float:
    """A process with a pool SIGKILLed while its task runs: its sandboxes, ready and busy, are gc's."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", POOL_OWNER, str(root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    time.sleep(rng.uniform(0.0, 0.1))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return time.perf_counter() - started


def killed_server(root: Path, rng: random.Random) -> float:
    """`lxrun serve --pool` SIGKILLed while a client's task runs on it: the client ends (125), the rest is gc's."""
    started = time.perf_counter()
    socket = str(root / f"soak-{os.getpid()}-{rng.randrange(1 << 30)}.sock")
    server = subprocess.Popen(
        [LXRUN, "serve", "--socket", socket, "--root", str(root), "--pool", "busybox=1"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stderr is not None
    server.stderr.readline()  # listening: its pool is full
    client = subprocess.Popen(
        [LXRUN, "exec", "--socket", socket, "--root", str(root), "--stack", "busybox", "--", "sleep", "30"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(rng.uniform(0.02, 0.2))
    server.send_signal(signal.SIGKILL)
    server.wait()
    client.wait()
    os.unlink(socket)  # a killed server leaves its socket (the next one would take it over)
    return time.perf_counter() - started


KILLED = {"killed runner": killed_runner, "killed pool owner": killed_pool_owner, "killed server": killed_server}
WARM_EVERY = 3  # every third API task of a kind goes through the soak's pool


def command(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def snapshot(layout: Layout) -> dict[str, object]:
    """What must look the same before and after: mounts, lxrun's cgroups, namespaces, veths, files."""
    parents = [Path(p) for p in detect().parent_dirs()]
    state_dirs = (layout.run, layout.names, layout.scratch, layout.tmp, layout.kept)
    return {
        "mounts": sorted(" ".join(line.split()[3:]) for line in Path("/proc/self/mountinfo").read_text().splitlines()),
        "task cgroups": sorted(str(c) for p in parents if p.is_dir() for c in p.iterdir() if c.is_dir()),
        "net namespaces": len(command("lsns", "-n", "-t", "net").splitlines()),
        "veths": command("ip", "-o", "link", "show", "type", "veth"),
        "processes": command("pgrep", "-f", "lxrun-init").split(),
        "state files": sorted(str(p) for d in state_dirs for p in Path(d).rglob("*")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    devnull = os.open(os.devnull, os.O_WRONLY)
    mix = kinds(devnull)
    rng = random.Random(args.seed)
    plan = rng.choices(list(mix), weights=[share for share, _, _ in mix.values()], k=args.tasks)
    lock = threading.Lock()
    latencies: list[tuple[int, str, float]] = []  # (task number, kind, seconds)
    wrong: list[str] = []

    with bench_root() as root:
        layout = Layout(root)
        before = snapshot(layout)
        warm = Pool("busybox", size=args.parallel, root=root)

        def one(number: int) -> None:
            kind = plan[number]
            _, spec, check = mix[kind]
            if spec is None:
                elapsed = KILLED[kind](root, random.Random(number))
            else:
                started = time.perf_counter()
                result = warm.run(spec) if number % WARM_EVERY == 0 else run(spec, root=root)
                elapsed = time.perf_counter() - started
                if not check(result):
                    with lock:
                        wrong.append(f"task {number} ({kind}): {result.to_json()}")
            with lock:
                latencies.append((number, kind, elapsed))

        rss: dict[str, float] = {}
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(max_workers=args.parallel) as pool:
                list(pool.map(one, range(min(WARMUP, args.tasks))))
                rss["after warm-up MB"] = psutil.Process().memory_info().rss / 2**20
                # In batches: 10,000 futures at once would weigh more in this process than lxrun does.
                for first in range(min(WARMUP, args.tasks), args.tasks, BATCH):
                    list(pool.map(one, range(first, min(first + BATCH, args.tasks))))
            elapsed = time.monotonic() - started
            rss["at the end MB"] = psutil.Process().memory_info().rss / 2**20
        finally:
            warm.close()
            time.sleep(0.5)  # parent-death signals reach the killed runners' sandboxes
            # Even when a task failed: the killed runners' leftovers are only findable through this root.
            released = Runtime(root).gc().released
        after = snapshot(layout)

    leaks = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
    buckets = []
    ok = sorted((n, s) for n, kind, s in latencies if kind == "ok")
    for first in range(0, args.tasks, BUCKET):
        samples = sorted(s for n, s in ok if first <= n < first + BUCKET)
        if samples:
            buckets.append((first, len(samples), samples[len(samples) // 2], percentile(samples, 99)))
    drift = buckets[-1][3] / buckets[0][3] - 1 if len(buckets) > 1 else 0.0
    growth = rss["at the end MB"] - rss["after warm-up MB"]
    rows = [(f"{f}-{f + BUCKET - 1}", str(n), f"{p50 * 1000:.2f}", f"{p99 * 1000:.2f}") for f, n, p50, p99 in buckets]
    print(table(rows, ("tasks", "plain tasks", "p50 ms", "p99 ms")))
    counts = {kind: plan.count(kind) for kind in mix}
    rate = args.tasks / elapsed
    print(f"\n{args.tasks} tasks in {elapsed:.1f} s: {rate:.1f} tasks/s at {args.parallel} at once; mix {counts}")
    print(f"p99 of the last bucket vs the first: {drift:+.1%} (target: no slower than +{TARGETS['p99 drift']:.0%})")
    print(
        f"runner RSS: {rss['after warm-up MB']:.1f} MB after warm-up, {rss['at the end MB']:.1f} MB at the end "
        f"({growth:+.1f} MB; target < {TARGETS['rss growth MB']:.0f})"
    )
    orphans = len(released.tasks)
    print(f"gc released the leftovers of {orphans} killed runners")
    print(f"wrong outcomes: {len(wrong)}; leaks: {sorted(leaks) or 'none'}")
    for line in wrong[:10]:
        print("  " + line)
    for key, (was, now) in leaks.items():
        print(f"  leaked {key}: before {was!r:.300} after {now!r:.300}")
    path = write_json("soak", {
        "machine": machine(), "tasks": args.tasks, "parallel": args.parallel, "seconds": elapsed,
        "tasks_per_second": args.tasks / elapsed, "mix": counts, "buckets": buckets, "p99_drift": drift,
        "rss_mb": rss, "wrong": wrong, "leaks": sorted(leaks),
    })  # fmt: skip
    print(f"written {path}")
    sys.exit(1 if leaks or wrong else 0)


if __name__ == "__main__":
    main()
