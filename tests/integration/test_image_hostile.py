"""Hostile images, made here: each is refused by `lxrun stack import` with one line and exit 125, and
leaves no layer, no version and nothing outside the store (needs root: the import writes as root)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import require
from tests.integration import imagetools as it
from tests.integration.conftest import LXRUN

OUTSIDE = "/var/tmp/lxrun-hostile-outside"  # where an escaping entry would land; must stay absent

Maker = Callable[[Path], Path]


def archive_of(*entries: it.Entry) -> Maker:
    return lambda where: it.docker_archive(where / "img.tar", [it.layer_tar(list(entries))])


def wrong_layer_digest(where: Path) -> Path:
    layer = it.layer_tar([it.file("a", "a")])
    config = it.image_config([it.layer_tar([it.file("a", "b")])])
    return it.docker_archive(where / "img.tar", [layer], config)


def wrong_manifest_digest(where: Path) -> Path:
    layout = where / "oci"
    descriptor = it.oci_manifest(layout, [it.layer_tar([it.file("a", "a")])])
    blob = layout / "blobs/sha256" / descriptor["digest"].removeprefix("sha256:")
    manifest = json.loads(blob.read_text())
    manifest["annotations"] = {"tampered": "yes"}
    blob.write_text(json.dumps(manifest))
    return it.oci_layout(layout, [descriptor])


def truncated(where: Path) -> Path:
    path = it.docker_archive(where / "img.tar", [it.layer_tar([it.file("big", os.urandom(64 << 10))])])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def bomb(where: Path) -> Path:
    """A gzip layer of 64 KiB that unpacks to 64 MiB: 1,000x, above the test's --max-size of 1m."""
    layer = it.layer_tar([it.file("zeros", bytes(64 << 20))])
    layout = where / "oci"
    descriptor = it.oci_manifest(layout, [layer])
    assert sum(p.stat().st_size for p in (layout / "blobs").rglob("*")) < 1 << 20 and len(gzip.compress(layer)) > 0
    return it.oci_layout(layout, [descriptor])


def layout_with(change: Callable[[Path], None]) -> Maker:
    """A valid OCI layout directory whose files `change` then alters."""

    def make(where: Path) -> Path:
        layout = where / "oci"
        it.oci_layout(layout, [it.oci_manifest(layout, [it.layer_tar([it.file("a", "a")])])])
        change(layout)
        return layout

    return make


def index_outside(layout: Path) -> None:
    """index.json moved out of the layout (still valid), a symlink to it in its place."""
    outside = layout.parent / "index-outside.json"
    (layout / "index.json").rename(outside)
    (layout / "index.json").symlink_to(outside)


def blobs_outside(layout: Path) -> None:
    """The blobs directory moved out, a symlink to it in its place (every digest still right)."""
    outside = layout.parent / "blobs-outside"
    (layout / "blobs").rename(outside)
    (layout / "blobs").symlink_to(outside)


def layer_is_a_fifo(layout: Path) -> None:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / it.blob_path(index["manifests"][0]["digest"])).read_text())
    layer = layout / it.blob_path(manifest["layers"][0]["digest"])
    layer.unlink()
    os.mkfifo(layer)


HOSTILE: dict[str, tuple[Maker, str]] = {
    "dotdot": (archive_of(it.file("../../../../../../var/tmp/lxrun-hostile-outside", "x")), "climbs out"),
    "absolute": (archive_of(it.file(f"{OUTSIDE}/x", "x")), "absolute path"),
    "write through a symlink": (
        archive_of(it.symlink("evil", OUTSIDE), it.file("evil/pwned", "x")),
        "through the symlink evil",
    ),
    "write through a relative symlink": (
        archive_of(it.directory("d"), it.symlink("d/up", "../../../.."), it.file("d/up/x", "x")),
        "through the symlink d/up",
    ),
    "hardlink outside": (archive_of(it.hardlink("h", "../../../etc/passwd")), "climbs out"),
    "hardlink absolute": (archive_of(it.hardlink("h", "/etc/passwd")), "absolute path"),
    "hardlink through a symlink": (
        archive_of(it.symlink("etc", "/etc"), it.hardlink("h", "etc/passwd")),
        "through the symlink etc",
    ),
    "hardlink to nothing": (archive_of(it.hardlink("h", "missing")), "not in this layer"),
    "device node": (archive_of(it.entry("sda", tarfile.CHRTYPE, devmajor=8, devminor=0)), "device node"),
    "block device": (archive_of(it.entry("sdb", tarfile.BLKTYPE, devmajor=8, devminor=16)), "device node"),
    "4096-byte name": (archive_of(it.file("/".join(["d" * 200] * 20) + "/" + "n" * 95, "x")), "PATH_MAX"),
    "256-byte component": (archive_of(it.file("n" * 256, "x")), "NAME_MAX"),
    "layer digest mismatch": (wrong_layer_digest, "not sha256:"),
    "manifest digest mismatch": (wrong_manifest_digest, "corrupt or tampered"),
    "truncated tarball": (truncated, ""),
    "decompression bomb": (bomb, "size limit of 1048576 bytes"),
    "layout file a symlink": (layout_with(index_outside), "index.json is a symlink"),
    "layout dir a symlink": (layout_with(blobs_outside), "blobs is a symlink"),
    "layout blob a fifo": (layout_with(layer_is_a_fifo), "is not a regular file"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_image_is_refused_and_leaves_nothing(case: str, tmp_path: Path) -> None:
    require(os.geteuid() == 0, "the import writes layers as root")
    assert not os.path.lexists(OUTSIDE)
    make, reason = HOSTILE[case]
    source = make(tmp_path)
    root = tmp_path / "root"
    done = subprocess.run(
        [LXRUN, "stack", "import", "--root", str(root), "--max-size", "1m", "bad", str(source)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 125, done.stderr
    lines = [line for line in done.stderr.splitlines() if not line.startswith("lxrun: layer ")]  # progress
    assert len(lines) == 1 and lines[0].startswith("lxrun: stack import ") and reason in lines[0], lines
    assert not os.path.lexists(OUTSIDE)
    assert not (root / "stacks/bad").exists()
    for kept in ("layers", "tmp", "run"):
        assert list((root / kept).iterdir()) == [] if (root / kept).exists() else True, kept


def test_setuid_bits_are_kept_as_docker_keeps_them(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "the import writes layers as root")
    source = archive_of(it.file("su", "x", mode=0o4755, uid=0), it.file("g", "x", mode=0o2711))(tmp_path)
    root = tmp_path / "root"
    done = subprocess.run([LXRUN, "stack", "import", "--root", str(root), "ok", str(source)], capture_output=True)
    assert done.returncode == 0, done.stderr
    (layer,) = (root / "layers").iterdir()
    assert (layer / "rootfs/su").stat().st_mode & 0o7777 == 0o4755
    assert (layer / "rootfs/g").stat().st_mode & 0o7777 == 0o2711
