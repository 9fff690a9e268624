"""`make demo`: build debian-bookworm + python3.11 (cached after the first time), run a Python task through
`lxrun exec`, show its output, its result and the start-up time of tasks on that stack."""

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
STACK = "python3.11"
SCRIPT = """\
import os, platform, socket
debian = open("/etc/debian_version").read().strip()
print(f"hello from {socket.gethostname()}: Python {platform.python_version()} on Debian {debian}, pid {os.getpid()}")
print("processes in sight:", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
print("network interfaces:", os.listdir("/sys/class/net"))
"""


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def median_ms(spec: TaskSpec, runs: int) -> tuple[float, float]:
    """Median and fastest start-to-exit of `spec` through the Python API, after 10 warm-up runs."""
    times = []
    for _ in range(runs + 10):
        started = time.perf_counter()
        if run(spec).exit_code != 0:
            raise SystemExit(f"demo task failed: {spec.argv}")
        times.append(time.perf_counter() - started)
    ordered = sorted(times[10:])
    return statistics.median(ordered) * 1000, ordered[0] * 1000


def main() -> None:
    step(f"lxrun stack build {STACK}   (builds debian-bookworm first if needed; a no-op once built)")
    subprocess.run([LXRUN, "stack", "build", STACK], check=True)

    step(f"lxrun exec --stack {STACK} --name demo -- python3 -c '...'")
    with tempfile.TemporaryDirectory() as scratch:
        result_file = os.path.join(scratch, "result.json")
        argv = [LXRUN, "exec", "--stack", STACK, "--name", "demo", "--result-json", result_file]
        done = subprocess.run([*argv, "--", "python3", "-c", SCRIPT], check=False)
        step(f"result (exit status {done.returncode})")
        with open(result_file) as file:
            print(json.dumps(json.load(file), indent=1))

    step(f"start-up time on {STACK} (2 layers), 100 tasks each through the Python API (lxrun.run)")
    devnull = os.open(os.devnull, os.O_WRONLY)
    for argv in (["true"], ["python3", "-c", "pass"]):
        median, fastest = median_ms(TaskSpec(stack=STACK, argv=argv, stdout=devnull, stderr=devnull), 100)
        print(f"{' '.join(argv):<20} median {median:.2f} ms, fastest {fastest:.2f} ms")
    started = time.perf_counter()
    subprocess.run([LXRUN, "exec", "--stack", STACK, "--", "true"], check=True)
    elapsed = (time.perf_counter() - started) * 1000
    print(f"one `lxrun exec -- true` from the shell: {elapsed:.1f} ms (interpreter start included)")


if __name__ == "__main__":
    main()
