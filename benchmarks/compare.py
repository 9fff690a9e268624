"""Backends side by side: start-to-exit of `true` and throughput, each figure next to `docker run`'s.

    python benchmarks/compare.py [--rounds 200] [--tasks 200] [--update-docs]

Cases, all on the busybox stack, in one run: every backend that can run here, in-process through
`lxrun.run(..., backend=NAME)`; and as references, each where installed: crun (cgroups disabled),
lxc-execute, bwrap and `docker run --rm --network none` on the image the docker backend loaded for
the stack (so $DOCKER_HOST must name a running dockerd: `scripts/dockerd run -- python ...`).
For each: p50 and p99 of start-to-exit over --rounds runs, and tasks per second for --tasks tasks
one at a time and 4 at once. The whole run happens in a private mount namespace without the cgroup2
mount (crun needs it on this hybrid host; see common.in_private_mount_namespace).

Prints a markdown table (each figure also as a multiple of docker run's: how many times faster),
writes benchmarks/results/compare.json and compare.png; --update-docs also puts the table and the
chart into docs/backends.md (between its compare markers) and docs/backends-compare.png. (The
README's start-up table is startup.py's, against bwrap and crun: benchmarks/report.py writes it.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import (
    RESULTS,
    Case,
    bench_root,
    in_private_mount_namespace,
    kept_cgroup2,
    machine,
    measure,
    spawn_runner,
    table,
)
from common import write_json as write_results
from references import remove_lxc_execute_leftovers, runtime_cases

from lxrun import TaskSpec, run
from lxrun.backends.docker_image import ensure_image
from lxrun.layout import Layout
from lxrun.runtime import BACKENDS, Runtime
from lxrun.store.stacks import StackStore

DOCS = Path(__file__).resolve().parents[1] / "docs"
DOCKER_RUN = "docker run --rm --network none"
START, END = "<!-- compare:start -->", "<!-- compare:end -->"


def backend_cases(root: Path) -> list[Case]:
    devnull = os.open(os.devnull, os.O_WRONLY)
    spec = TaskSpec(stack="busybox", argv=["true"], stdout=devnull, stderr=devnull)
    cases = []
    for name in BACKENDS:
        probe = Runtime(root).backend(name).probe()
        if not probe.available:
            print(f"skipping backend {name}: {probe.reason}", file=sys.stderr)
            continue

        def task(backend: str = name) -> None:
            result = run(spec, backend=backend, root=root)
            if result.exit_code != 0:
                raise RuntimeError(f"{backend}: {result}")

        cases.append(Case(f"lxrun backend {name} (in-process)", task))
    return cases


def reference_cases(root: Path, scratch: Path) -> list[Case]:
    stack = StackStore(Layout(root)).resolve("busybox")
    rootfs = stack.layer_paths[0]
    cases = runtime_cases(rootfs, scratch)
    docker = shutil.which("docker")
    if docker and Runtime(root).backend("docker").probe().available:
        import docker as docker_sdk

        client = docker_sdk.from_env(version="1.41")
        try:
            image = ensure_image(client.api, stack, str(scratch))
        finally:
            client.close()
        argv = [docker, "run", "--rm", "--network", "none", image, "true"]
        cases.append(Case(DOCKER_RUN, spawn_runner(argv), "the docker CLI, the stack's image"))
    else:
        print("skipping docker run: no docker CLI or no dockerd ($DOCKER_HOST)", file=sys.stderr)
    return cases


def throughput(task: Callable[[], None], tasks: int, parallel: int) -> float:
    """Tasks per second for `tasks` runs of `task`, `parallel` at a time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        for future in [pool.submit(task) for _ in range(tasks)]:
            future.result()
    return tasks / (time.perf_counter() - started)


def times_docker(value: float, docker: float | None, lower_is_better: bool) -> str:
    if docker is None or value == 0:
        return ""
    ratio = docker / value if lower_is_better else value / docker
    return f" ({ratio:.0f}x)" if ratio >= 10 else f" ({ratio:.1f}x)"


def render(results: dict[str, dict[str, float | int | str]]) -> str:
    docker = results.get(DOCKER_RUN)
    rows = []
    for name, figures in results.items():
        cells = [name]
        for key, lower in (("p50_ms", True), ("p99_ms", True), ("tps_1", False), ("tps_4", False)):
            value = float(figures[key])
            reference = float(docker[key]) if docker else None
            cells.append(f"{value:.2f}{times_docker(value, reference, lower)}")
        rows.append(tuple(cells))
    header = ("`true` on busybox", "p50 ms", "p99 ms", "tasks/s, 1 at once", "tasks/s, 4 at once")
    return table(rows, header)


def chart(results: dict[str, dict[str, float | int | str]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    figure, (latency, rate) = plt.subplots(1, 2, figsize=(12, 0.5 * len(names) + 1.5))
    positions = range(len(names))
    latency.barh(positions, [float(results[n]["p50_ms"]) for n in names], color="tab:blue")
    latency.set(xscale="log", xlabel="p50 start-to-exit of `true`, ms (log)", yticks=list(positions))
    latency.set_yticklabels(names)
    latency.invert_yaxis()
    rate.barh(positions, [float(results[n]["tps_4"]) for n in names], color="tab:green")
    rate.set(xscale="log", xlabel="tasks per second, 4 at once (log)", yticks=list(positions), yticklabels=[])
    rate.invert_yaxis()
    figure.suptitle(f"lxrun backends and references, {machine()['date']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def update_docs(text: str, image: Path, load: float) -> None:
    """The table and chart, between the markers of docs/backends.md."""
    about = machine()
    shutil.copy(RESULTS / "compare.png", image)
    page = DOCS / "backends.md"
    block = (
        f"{START}\nMeasured {about['date']} on {about['host']}: {about['cpus']} CPUs, Linux {about['kernel']}, "
        f"Python {about['python']}, load average {load:.1f} when it started (`make bench`; the figure in "
        "brackets: how many times docker run's).\n\n"
        f"{text}\n\n![backends compared]({os.path.relpath(image, page.parent)})\n{END}"
    )
    before, _, rest = page.read_text().partition(START)
    _, _, after = rest.partition(END)
    page.write_text(before + block + after)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed runs per case for p50/p99")
    parser.add_argument("--tasks", type=int, default=200, help="tasks per throughput figure")
    parser.add_argument("--update-docs", action="store_true", help="write the table and chart into docs/")
    args = parser.parse_args()
    in_private_mount_namespace(keep_cgroup2=True)
    load = os.getloadavg()[0]  # the VM may be shared: say how busy it was
    with (
        kept_cgroup2(),
        bench_root() as root,
        tempfile.TemporaryDirectory(prefix="lxrun-bench-refs-") as scratch,
    ):
        cases = backend_cases(root) + reference_cases(root, Path(scratch))
        try:
            measure(cases, args.rounds)
            rates = {
                case.name: (throughput(case.run, args.tasks, 1), throughput(case.run, args.tasks, 4)) for case in cases
            }
        finally:
            remove_lxc_execute_leftovers(Path(scratch))
    results: dict[str, dict[str, float | int | str]] = {}
    for case in cases:
        results[case.name] = {
            **case.summary(),
            "tps_1": round(rates[case.name][0], 2),
            "tps_4": round(rates[case.name][1], 2),
        }
    text = render(results)
    print(text)
    path = write_results(
        "compare", {"machine": machine(), "rounds": args.rounds, "tasks": args.tasks, "cases": results}
    )
    chart(results, RESULTS / "compare.png")
    print(f"\nwritten {path} and {RESULTS / 'compare.png'}")
    if args.update_docs:
        update_docs(text, DOCS / "backends-compare.png", load)
        print(f"updated {DOCS / 'backends.md'}")


if __name__ == "__main__":
    main()
