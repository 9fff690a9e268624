"""Start-to-exit of `true` on the busybox stack: lxrun in-process and via the CLI, next to references.

    python benchmarks/startup.py [--rounds 300]

Through `lxrun serve`: `lxrun exec --socket` (the native client relaying to a server started for the
run), and the native launcher without a socket (what `lxrun exec` costs when `lxrun` is the launcher).
References, each where installed: /bin/true, `unshare -mupinf true`, bwrap, crun (its cgroup
manager disabled: on this hybrid host it writes into the unified hierarchy), lxc-execute, and the
interpreter's own `-c pass`. The whole run happens in a private mount namespace (see
common.in_private_mount_namespace). Prints a markdown table, each case's p50 and p99 also as a
multiple of /bin/true's, bwrap's and crun's in the same run, and writes benchmarks/results/startup.json
(benchmarks/report.py charts it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from common import (
    Case,
    bench_root,
    in_private_mount_namespace,
    machine,
    measure,
    pool_case,
    spawn_runner,
    table,
    write_json,
)
from references import remove_lxc_execute_leftovers, runtime_cases

import lxrun
from lxrun import Pool, TaskSpec, run
from lxrun.cgroups import detect
from lxrun.layout import Layout
from lxrun.sandbox import helper
from lxrun.spec import Limits, Security
from lxrun.store.stacks import StackStore

LXRUN = str(Path(sys.executable).with_name("lxrun"))
CLIENT = str(Path(lxrun.__file__).with_name("_lxrun_client"))
WARM_REFILL = 0.02  # seconds between tasks through the pooled server (untimed): its pool refills
# The runtimes every case is also shown as a multiple of (case name -> short name).
REFERENCES = {"/bin/true": "true", "bwrap": "bwrap", "crun run": "crun", "subprocess.run(['/bin/true'])": "subprocess"}


@contextlib.contextmanager
def served(root: Path, *pools: str) -> Iterator[str]:
    """`lxrun serve` on a socket in the state root while the cases run, with `pools` (--pool values); its path."""
    path = str(root / f"bench{len(pools)}.sock")
    pool_args = ["--root", str(root), *(arg for value in pools for arg in ("--pool", value))] if pools else []
    server = subprocess.Popen([LXRUN, "serve", "--socket", path, *pool_args], stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        if not line.startswith("lxrun serve: listening"):
            raise RuntimeError(f"lxrun serve did not start: {line}")
        yield path
    finally:
        server.terminate()
        server.wait()


def serve_cases(root: Path, socket: str, warm_socket: str, scratch: Path) -> list[Case]:
    """`lxrun exec` through the server (cold, and with a pool), and the native launcher handing a
    socketless exec to Python."""
    launcher = scratch / "bin" / "lxrun"
    launcher.parent.mkdir()
    shutil.copy(CLIENT, launcher)
    (launcher.parent / "lxrun-python").symlink_to(LXRUN)
    task = ["--root", str(root), "--stack", "busybox", "--", "true"]
    return [
        Case(
            "lxrun exec through lxrun serve",
            spawn_runner([CLIENT, "exec", "--socket", socket, *task]),
            "the native client relaying to a server; the task itself runs cold",
        ),
        Case(
            "lxrun exec through lxrun serve --pool",
            spawn_runner([CLIENT, "exec", "--socket", warm_socket, *task]),
            "the same, the server's pool of busybox sandboxes handing the task to a prepared one",
            ready=lambda: time.sleep(WARM_REFILL),
        ),
        Case(
            "lxrun exec, native launcher, no socket",
            spawn_runner([str(launcher), "exec", *task]),
            "`lxrun` as the native launcher: its exec of the Python CLI on top of `lxrun exec (CLI)`",
        ),
    ]


def lxrun_cases(root: Path, pool: Pool) -> list[Case]:
    devnull = os.open(os.devnull, os.O_WRONLY)
    spec = TaskSpec(stack="busybox", argv=["true"], stdout=devnull, stderr=devnull)
    limited = spec.replace(limits=Limits(memory=256 << 20, pids=100, cpus=1.0))
    # The same sandbox without what isolates tenants: no user namespace, no seccomp, no capability dropped.
    unconfined = spec.replace(security=Security(userns="host", seccomp="unconfined", cap_add=["ALL"]))

    def in_process(task: TaskSpec) -> Callable[[], None]:
        def once() -> None:
            result = run(task, root=root)
            if result.exit_code != 0:
                raise RuntimeError(f"lxrun task failed: {result}")

        return once

    def joined_by_write(task: TaskSpec) -> Callable[[], None]:
        run_once = in_process(task)

        def once() -> None:
            helper.CAN_CLONE_INTO_CGROUP = False
            try:
                run_once()
            finally:
                helper.CAN_CLONE_INTO_CGROUP = True

        return once

    join_by_write_case = []
    if helper.CAN_CLONE_INTO_CGROUP and detect().version == "v2":
        note = "v2 without CLONE_INTO_CGROUP: the task moves into its cgroup, as on v1"
        join_by_write_case = [Case("lxrun in-process, cgroup joined by a write", joined_by_write(spec), note)]

    def subprocess_true() -> None:
        subprocess.run(["/bin/true"], check=True)

    return [
        Case("lxrun in-process (lxrun.run)", in_process(spec)),
        pool_case(
            "lxrun in-process, warm (Pool.run)",
            pool,
            spec,
            "handed to a sandbox a lxrun.Pool prepared; not timed: waiting for the pool to refill",
        ),
        Case("subprocess.run(['/bin/true'])", subprocess_true, "from the same process: what warm is measured against"),
        *join_by_write_case,
        Case("lxrun in-process + limits", in_process(limited), "--memory 256m --pids-limit 100 --cpus 1"),
        Case(
            "lxrun in-process, unconfined",
            in_process(unconfined),
            "--userns host, seccomp=unconfined, --cap-add ALL: the cost of tenant isolation is the difference",
        ),
        Case(
            "lxrun exec (CLI)", spawn_runner([LXRUN, "exec", "--root", str(root), "--stack", "busybox", "--", "true"])
        ),
        Case("python -c pass", spawn_runner([sys.executable, "-c", "pass"]), "the CLI's interpreter, for reference"),
    ]


def reference_cases(rootfs: str, scratch: Path) -> list[Case]:
    cases = [Case("/bin/true", spawn_runner(["/bin/true"]))]
    unshare = shutil.which("unshare")
    if unshare:
        cases.append(Case("unshare -mupinf true", spawn_runner([unshare, "-mupinf", "/bin/true"])))
    return cases + runtime_cases(rootfs, scratch)


def ratios(case: Case, cases: list[Case]) -> dict[str, float]:
    """`case`'s p50 and p99 as multiples of each reference's (bwrap, crun) in the same run."""
    found = {}
    for other in cases:
        if other.name in REFERENCES:
            key = REFERENCES[other.name]
            ours, theirs = case.summary(), other.summary()
            for figure in ("p50", "p99"):
                found[f"{figure}_x_{key}"] = round(float(ours[f"{figure}_ms"]) / float(theirs[f"{figure}_ms"]), 3)
    return found


def render(summaries: dict[str, dict[str, float | int | str]]) -> str:
    """The markdown table: p50, p99, their multiples of /bin/true's, bwrap's and crun's (lower is faster), the note."""
    keys = [
        key
        for key in (
            "p50_x_true",
            "p50_x_subprocess",
            "p50_x_bwrap",
            "p50_x_crun",
            "p99_x_true",
            "p99_x_bwrap",
            "p99_x_crun",
        )
        if key in next(iter(summaries.values()))
    ]
    rows = []
    for name, figures in summaries.items():
        cells = [f"{float(figures[key]):.2f}x" for key in keys]
        rows.append((name, f"{figures['p50_ms']:.2f}", f"{figures['p99_ms']:.2f}", *cells, str(figures["note"])))
    headers = [key.replace("_x_", " / ") for key in keys]
    return table(rows, ("start-to-exit of `true`", "p50 ms", "p99 ms", *headers, "note"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    in_private_mount_namespace()
    with (
        bench_root() as root,
        tempfile.TemporaryDirectory(prefix="lxrun-bench-refs-") as scratch,
        served(root) as socket,
        served(root, "busybox=2") as warm_socket,
        Pool("busybox", size=2, root=root) as pool,
    ):
        stack = StackStore(Layout(root)).resolve("busybox")
        cases = lxrun_cases(root, pool) + serve_cases(root, socket, warm_socket, Path(scratch))
        cases += reference_cases(stack.layer_paths[0], Path(scratch))
        try:
            measure(cases, args.rounds)
        finally:
            remove_lxc_execute_leftovers(Path(scratch))
    summaries = {case.name: {**case.summary(), **ratios(case, cases)} for case in cases}
    print(render(summaries))
    path = write_json("startup", {"machine": machine(), "rounds": args.rounds, "cases": summaries})
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
