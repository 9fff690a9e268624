"""`make demo`: build the busybox base, run a real task through `lxrun exec`, show its result and start-up time."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from lxrun import TaskSpec, run

LXRUN = os.path.join(os.path.dirname(sys.executable), "lxrun")
STACK = "busybox"
SCRIPT = 'echo "hello from $(hostname): pid $$, $(ls /proc | grep -c "^[0-9]") processes in sight"; uname -sr; id; ls /'


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> None:
    step(f"lxrun base build {STACK}")
    subprocess.run([LXRUN, "base", "build", STACK], check=True)

    step(f"lxrun exec --stack {STACK} --name demo -- sh -c '...'")
    with tempfile.TemporaryDirectory() as scratch:
        result_file = os.path.join(scratch, "result.json")
        done = subprocess.run(
            [LXRUN, "exec", "--stack", STACK, "--name", "demo", "--result-json", result_file, "--", "sh", "-c", SCRIPT],
            check=False,
        )
        step(f"result (exit status {done.returncode})")
        with open(result_file) as file:
            print(json.dumps(json.load(file), indent=1))

    step("start-up time: `true` on busybox, 100 tasks through the Python API (lxrun.run)")
    devnull = os.open(os.devnull, os.O_WRONLY)
    spec = TaskSpec(stack=STACK, argv=["true"], stdout=devnull, stderr=devnull)
    times = []
    for _ in range(110):
        started = time.perf_counter()
        run(spec)
        times.append(time.perf_counter() - started)
    times = sorted(times[10:])
    print(f"median {statistics.median(times) * 1000:.2f} ms, fastest {times[0] * 1000:.2f} ms")
    started = time.perf_counter()
    subprocess.run([LXRUN, "exec", "--stack", STACK, "--", "true"], check=True)
    elapsed = (time.perf_counter() - started) * 1000
    print(f"one `lxrun exec -- true` from the shell: {elapsed:.1f} ms (interpreter start included)")


if __name__ == "__main__":
    main()
