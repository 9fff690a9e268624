"""Image import next to `docker load`: the same `docker save` tarball, timed both ways in one run.

    scripts/dockerd run -- python benchmarks/images.py [--size-mb 225] [--rounds 5]

The tarball is made here, no network: two uncompressed layers the size of the python3.11 stack's
(a ~178 MB Debian base and a ~48 MB diff, scaled to --size-mb), ~13,000 files of mixed sizes
(median 5 KB), half random bytes and half text, a few directories deep. Each round times `lxrun
stack import` into a fresh state root and `docker load -i` after `docker rmi` of the image (so docker
unpacks every layer too), lxrun first in odd rounds and docker first in even ones. The target (docs/images.md): lxrun's
median at most 1.2x docker's. Writes benchmarks/results/images.json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from common import machine, table, write_json

LXRUN = str(Path(sys.executable).with_name("lxrun"))
TAG = "lxrun-bench-import:1"
BASE_SHARE = 178 / 226  # of the python3.11 stack: its Debian base, the rest its python diff
TEXT = b"".join(f"line {n}: the quick brown fox jumps over the lazy dog\n".encode() for n in range(2000))


def layer(path: Path, size: int, seed: int) -> str:
    """An uncompressed layer tar of about `size` bytes at `path`; its digest."""
    rng = random.Random(seed)
    written = 0
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        directories = [f"usr/share/d{seed}-{n}/sub{n % 7}" for n in range(60)]
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        number = 0
        while written < size:
            length = min(int(rng.lognormvariate(8.5, 1.6)), 8 << 20, size - written + 1)
            data = rng.randbytes(length) if number % 2 else (TEXT * (length // len(TEXT) + 1))[:length]
            info = tarfile.TarInfo(f"{rng.choice(directories)}/f{number}")
            info.size, info.mode, info.mtime = length, 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
            written += length
            number += 1
    return "sha256:" + hashlib.file_digest(path.open("rb"), "sha256").hexdigest()


def make_archive(work: Path, size: int) -> Path:
    """A `docker save` tarball of two layers, `size` bytes in all (roughly)."""
    parts = [(work / "base.tar", int(size * BASE_SHARE), 1), (work / "diff.tar", size - int(size * BASE_SHARE), 2)]
    diff_ids = [layer(path, part, seed) for path, part, seed in parts]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    archive = work / "image.tar"
    with tarfile.open(archive, "w") as tar:
        names = []
        for (path, _, _), diff_id in zip(parts, diff_ids, strict=True):
            names.append(f"{diff_id.removeprefix('sha256:')}/layer.tar")
            tar.add(path, arcname=names[-1])
            path.unlink()
        manifest = json.dumps([{"Config": config_name, "RepoTags": [TAG], "Layers": names}]).encode()
        for name, data in ((config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def lxrun_import(archive: Path, work: Path) -> float:
    root = Path(tempfile.mkdtemp(prefix="root-", dir=work))
    try:
        return timed([LXRUN, "stack", "import", "--root", str(root), "bench", str(archive)])
    finally:
        shutil.rmtree(root)


def docker_load(docker: str, archive: Path) -> float:
    subprocess.run([docker, "rmi", "-f", TAG], check=False, capture_output=True)
    return timed([docker, "load", "-q", "-i", str(archive)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=225)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    docker = shutil.which("docker")
    if docker is None or "DOCKER_HOST" not in os.environ:
        print("images.py: needs the docker CLI and $DOCKER_HOST (scripts/dockerd run -- ...)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="lxrun-bench-images-"))
    try:
        archive = make_archive(work, args.size_mb << 20)
        size = archive.stat().st_size
        samples: dict[str, list[float]] = {"lxrun stack import": [], "docker load": []}
        for round_number in range(args.rounds):
            order = ["lxrun stack import", "docker load"]
            for name in order if round_number % 2 == 0 else order[::-1]:
                took = lxrun_import(archive, work) if name.startswith("lxrun") else docker_load(docker, archive)
                samples[name].append(took)
        subprocess.run([docker, "rmi", "-f", TAG], check=False, capture_output=True)
    finally:
        shutil.rmtree(work)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    ratio = medians["lxrun stack import"] / medians["docker load"]
    rows = [
        (
            name,
            f"{medians[name]:.2f}",
            " ".join(f"{value:.2f}" for value in values),
            f"{size / medians[name] / 1e6:.0f}",
        )
        for name, values in samples.items()
    ]
    print(f"a docker save tarball of {size / 1e6:.0f} MB (2 layers), {args.rounds} rounds")
    print(table(rows, ("", "median s", "runs s", "MB/s")))
    print(f"lxrun / docker: {ratio:.2f}x (target <= 1.2x)")
    path = write_json(
        "images",
        {"machine": machine(), "tarball_bytes": size, "seconds": samples, "ratio": round(ratio, 3)},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
