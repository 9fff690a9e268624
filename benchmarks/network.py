"""Attach and detach of one bridge-mode task (lxrun.net.task_network), each timed on its own.

    python benchmarks/network.py [--rounds 300]

attach: entering the context (address lease, netns, veth pair, addresses and route inside, published
ports); detach: leaving it (everything released, the veth deleted synchronously). The bridge and table
exist already (made by the warm-up), as for every task but the first. Uses its own bridge (lxbench0,
10.216.0.0/24) and a throw-away state root, and removes both at the end. Prints a markdown table and
writes benchmarks/results/network.json.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time

from common import machine, percentile, table, write_json

from lxrun.layout import Layout
from lxrun.net import NetworkSpec, parse_publish
from lxrun.net.attach import task_network
from lxrun.net.config import NetworkConfig
from lxrun.net.gc import gc_network

CONFIG = NetworkConfig("lxbench0", "10.216.0.0/24")
CASES = {
    "bridge": NetworkSpec("bridge"),
    "bridge + 2 published ports": NetworkSpec("bridge", [parse_publish("18931:80"), parse_publish("18932:53/udp")]),
}


def summary(samples: list[float]) -> dict[str, float | int]:
    ordered = sorted(samples)
    return {
        "runs": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(percentile(ordered, 99) * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="lxrun-bench-net-")
    layout = Layout(root)
    results: dict[str, dict[str, dict[str, float | int]]] = {}
    try:
        for name, spec in CASES.items():
            attach: list[float] = []
            detach: list[float] = []
            for number in range(args.warmup + args.rounds):
                started = time.perf_counter()
                context = task_network(layout, f"bench-{number}", spec, CONFIG)
                context.__enter__()
                attached = time.perf_counter()
                context.__exit__(None, None, None)
                ended = time.perf_counter()
                if number >= args.warmup:
                    attach.append(attached - started)
                    detach.append(ended - attached)
            results[name] = {"attach": summary(attach), "detach": summary(detach)}
    finally:
        gc_network(layout, CONFIG)
        shutil.rmtree(root, ignore_errors=True)
    rows = [
        (name, step, str(figures["p50_ms"]), str(figures["p99_ms"]), str(figures["runs"]))
        for name, steps in results.items()
        for step, figures in steps.items()
    ]
    print(table(rows, ("case", "step", "p50 ms", "p99 ms", "runs")))
    print(f"written to {write_json('network', {'machine': machine(), 'results': results})}")


if __name__ == "__main__":
    main()
