"""lxrun as an OCI runtime under real engines: start-to-exit of `true` through `docker run --rm --runtime lxrun`
next to `--runtime runc` (and crun where dockerd has it), and through podman with lxrun-oci next to runc,
in one run (p50, p99).

    scripts/dockerd run -- python benchmarks/oci.py [--rounds 100]    (dockerd started with LXRUN_OCI_RUNTIME)

The runtime is $LXRUN_OCI_RUNTIME (dockerd's too), else `lxrun-oci` beside this interpreter. crun refuses
this host's cgroup v1/v2 hybrid (DESIGN.md), so podman's reference is runc here. Prints a markdown table;
writes benchmarks/results/oci.json.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from common import Case, machine, measure, spawn_runner, table, write_json

IMAGE = "lxrun-oci-bench:busybox"
PODMAN_CGROUPS = "/sys/fs/cgroup/*/libpod_parent"
PODMAN_CONF = (
    '[containers]\ndefault_ulimits = ["nofile=1024:20000", "nproc=4096:32768"]\n'
    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n'
)


def busybox_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "tmp", "etc"):
            entry = tarfile.TarInfo(directory)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(entry)
        tar.add("/bin/busybox", "bin/busybox")
        for applet in ("sh", "true"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def docker_cases(image_tar: bytes) -> list[Case]:
    if not os.environ.get("DOCKER_HOST"):
        return []
    subprocess.run(["docker", "import", "-", IMAGE], input=image_tar, check=True, capture_output=True)
    runtimes = subprocess.run(["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True)
    names = [name for name in ("lxrun", "runc", "crun") if f'"{name}"' in runtimes.stdout]
    docker = shutil.which("docker") or "docker"
    return [
        Case(
            f"docker run --runtime {name}",
            spawn_runner([docker, "run", "--rm", "--runtime", name, "--network", "none", IMAGE, "true"]),
        )
        for name in names
    ]


def podman_cases(image_tar: bytes, state: Path) -> list[Case]:
    podman = shutil.which("podman")
    if podman is None:
        return []
    (state / "containers.conf").write_text(PODMAN_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(state / "containers.conf")}
    command = [podman, "--root", str(state / "root"), "--runroot", str(state / "run"), "--storage-driver", "vfs"]
    subprocess.run([*command, "import", "-", IMAGE], input=image_tar, check=True, capture_output=True, env=env)
    lxrun_oci = os.environ.get("LXRUN_OCI_RUNTIME") or str(Path(sys.executable).with_name("lxrun-oci"))
    return [
        Case(f"podman run --runtime {name}",
             spawn_runner([*command, "--runtime", path, "run", "--rm", "--network", "none", IMAGE, "true"], env))
        for name, path in (("lxrun", lxrun_oci), ("runc", shutil.which("runc") or "runc"))
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    image_tar = busybox_tar()
    podman_cgroups = set(glob.glob(PODMAN_CGROUPS))
    with tempfile.TemporaryDirectory(prefix="lxrun-oci-bench-") as state:
        cases = docker_cases(image_tar) + podman_cases(image_tar, Path(state))
        if not cases:
            sys.exit("no engine to measure: run under scripts/dockerd with LXRUN_OCI_RUNTIME, or install podman")
        measure(cases, args.rounds, warmup=5)
        if shutil.which("podman"):
            subprocess.run(["podman", "--root", f"{state}/root", "--runroot", f"{state}/run", "--storage-driver",
                            "vfs", "rmi", "-af"], capture_output=True, env={**os.environ,
                            "CONTAINERS_CONF": f"{state}/containers.conf"})  # fmt: skip
    if os.environ.get("DOCKER_HOST"):
        subprocess.run(["docker", "rmi", "-f", IMAGE], capture_output=True)
    # podman's cgroupfs parent, which it leaves behind (as it does under runc): this run's, deepest first.
    for top in set(glob.glob(PODMAN_CGROUPS)) - podman_cgroups:
        for directory, _, _ in sorted(os.walk(top), key=lambda entry: len(entry[0]), reverse=True):
            os.rmdir(directory)
    summaries = {case.name: case.summary() for case in cases}
    p50 = {name: float(summary["p50_ms"]) for name, summary in summaries.items()}
    rows = [
        (name, f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}", ratio_to_runc(name, p50)) for name, s in summaries.items()
    ]
    print(table(rows, ("engine and runtime", "p50 ms", "p99 ms", "lxrun / runc (p50)")))
    write_json("oci", {"machine": machine(), "rounds": args.rounds, "cases": summaries})


def ratio_to_runc(name: str, p50: dict[str, float]) -> str:
    """An lxrun row's p50 over the same engine's runc row, measured in this run ("" for other rows)."""
    reference = p50.get(name.replace("--runtime lxrun", "--runtime runc"))
    if "--runtime lxrun" not in name or reference is None:
        return ""
    return f"{p50[name] / reference:.2f}x"


if __name__ == "__main__":
    main()
