"""The other runtimes our benchmarks measure lxrun against, each run as a command on the stack's base layer.

bwrap (a read-only bind of the layer: it has no overlay), crun (an OCI bundle on the layer, cgroups
disabled) and lxc-execute (no common.conf; its cgroups kept under one directory of ours, a name per
run since lxc-execute refuses a name that is running). `remove_lxc_execute_leftovers` takes away
what lxc-execute leaves: that cgroup directory and its lock dir.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from common import Case, spawn_runner

from lxrun.cgroups.discover import own_hierarchies

LXC_BENCH_TOP = "lxrun-bench"


def bwrap_runner(bwrap: str, rootfs: str) -> Callable[[], None]:
    argv = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", rootfs, "/", "--proc", "/proc"]
    return spawn_runner([*argv, "--dev", "/dev", "--tmpfs", "/tmp", "/bin/true"])


def crun_runner(crun: str, rootfs: str, scratch: Path) -> Callable[[], None]:
    bundle = scratch / "crun"
    bundle.mkdir()
    subprocess.run([crun, "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": rootfs, "readonly": True}
    config["process"].update(args=["/bin/true"], terminal=False)
    (bundle / "config.json").write_text(json.dumps(config))
    counter = itertools.count()
    state = str(scratch / "crun-state")

    def argv() -> list[str]:
        container = f"bench-{os.getpid()}-{next(counter)}"
        return [crun, "--root", state, "--cgroup-manager=disabled", "run", "--bundle", str(bundle), container]

    return spawn_runner(argv)


def lxc_runner(lxc_execute: str, rootfs: str, scratch: Path) -> Callable[[], None]:
    config = scratch / "lxc.conf"
    config.write_text(
        f"lxc.uts.name = bench\nlxc.rootfs.path = dir:{rootfs}\nlxc.net.0.type = empty\n"
        "lxc.mount.auto = proc:rw sys:ro\nlxc.autodev = 1\nlxc.cgroup.relative = 1\n"
    )
    counter = itertools.count()

    def argv() -> list[str]:
        name = f"bench-{next(counter)}"
        dirs = {"container": f"{name}/lxc", "monitor": f"{name}/monitor", "monitor.pivot": f"{name}/pivot"}
        options = [f"lxc.cgroup.dir.{key}={LXC_BENCH_TOP}/{value}" for key, value in dirs.items()]
        return (
            [lxc_execute, "-n", name, "-P", str(scratch), "-f", str(config)]
            + [arg for option in options for arg in ("-s", option)]
            + ["--", "/bin/true"]
        )

    return spawn_runner(argv)


def remove_lxc_execute_leftovers(scratch: Path) -> None:
    """lxc-execute's cgroups (every hierarchy we see, the kept cgroup2 one included) and its lock dir."""
    for hierarchy in own_hierarchies():
        top = hierarchy.path(LXC_BENCH_TOP)
        for directory, _, _ in sorted(os.walk(top), key=lambda entry: len(entry[0]), reverse=True):
            os.rmdir(directory)
    shutil.rmtree(f"/run/lxc/lock{scratch}", ignore_errors=True)


def runtime_cases(rootfs: str, scratch: Path) -> list[Case]:
    """bwrap, crun and lxc-execute running `true` on `rootfs`, each where installed."""
    cases = []
    bwrap = shutil.which("bwrap")
    if bwrap:
        cases.append(Case("bwrap", bwrap_runner(bwrap, rootfs), "read-only bind of the layer, no overlay"))
    crun = shutil.which("crun")
    if crun:
        cases.append(Case("crun run", crun_runner(crun, rootfs, scratch), "--cgroup-manager=disabled"))
    lxc_execute = shutil.which("lxc-execute")
    if lxc_execute:
        cases.append(Case("lxc-execute", lxc_runner(lxc_execute, rootfs, scratch), "no common.conf; cgroups"))
    return cases
