"""Our layers as image layers: overlayfs whiteouts and opaque dirs become OCI `.wh.` files (needs root:
a 0/0 device node and a trusted.* xattr are what overlayfs itself writes)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from lxrun.backends.docker_image import image_tag, write_archive
from lxrun.store.layertar import write_layer
from lxrun.store.stacks import ResolvedStack
from tests.conftest import require


@pytest.fixture
def diff_layer(tmp_path: Path) -> Path:
    require(os.geteuid() == 0, "needs root to make whiteouts as overlayfs does")
    tree = tmp_path / "diff"
    (tree / "etc/opaque").mkdir(parents=True)
    (tree / "etc/opaque/kept").write_text("k")
    os.setxattr(tree / "etc/opaque", "trusted.overlay.opaque", b"y")
    os.mknod(tree / "etc/gone", 0o600 | stat.S_IFCHR, os.makedev(0, 0))
    os.mknod(tree / "removed", 0o600 | stat.S_IFCHR, os.makedev(0, 0))
    (tree / "bin").mkdir()
    (tree / "bin/tool").write_text("#!/bin/sh\n")
    os.link(tree / "bin/tool", tree / "bin/alias")
    (tree / "bin/link").symlink_to("tool")
    return tree


def test_whiteouts_and_opaque_dirs_become_oci_markers(diff_layer: Path) -> None:
    out = io.BytesIO()
    diff_id = write_layer(str(diff_layer), out)
    assert diff_id == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        members = {member.name: member for member in tar.getmembers()}
    assert set(members) == {
        "bin", "bin/alias", "bin/link", "bin/tool", "etc", "etc/.wh.gone", "etc/opaque",
        "etc/opaque/.wh..wh..opq", "etc/opaque/kept", ".wh.removed",
    }  # fmt: skip
    assert not any(member.ischr() for member in members.values())
    assert members["bin/link"].issym() and members["bin/link"].linkname == "tool"
    hard = [members["bin/alias"], members["bin/tool"]]
    assert sorted(member.islnk() for member in hard) == [False, True]  # one copy of the data, one link to it


def test_an_archive_docker_can_load(tmp_path: Path, diff_layer: Path) -> None:
    base = tmp_path / "base"
    (base / "bin").mkdir(parents=True)
    (base / "bin/sh").write_text("sh")
    stack = ResolvedStack("s", "1", ["b" * 64, "d" * 64], [str(base), str(diff_layer)], {})
    tag = image_tag(stack)
    assert tag.startswith("lxrun-stack:") and tag != image_tag(ResolvedStack("s", "2", ["b" * 64], [str(base)], {}))
    out = io.BytesIO()
    write_archive(stack, tag, out, str(tmp_path))
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(archive.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        layers = [archive.extractfile(name).read() for name in manifest[0]["Layers"]]  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == [tag]
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    assert config["config"]["Labels"]["lxrun.layers"] == f"{'b' * 64},{'d' * 64}"


def test_stacks_on_one_base_share_it_inside_docker(state_root: Path) -> None:
    from lxrun.backends.docker import DockerBackend, _client
    from lxrun.backends.docker_image import ensure_image
    from lxrun.layout import Layout
    from lxrun.store.stacks import StackStore
    from tests.conformance.test_task import add_trimmed_stack

    probe = DockerBackend(Layout(state_root)).probe()
    require(probe.available, f"backend docker can't run here: {probe.reason}")
    add_trimmed_stack(state_root)
    stacks = StackStore(Layout(state_root))
    client = _client(60)
    try:
        tags = [
            ensure_image(client.api, stacks.resolve(name), str(state_root / "tmp")) for name in ("busybox", "trimmed")
        ]
        assert (
            ensure_image(client.api, stacks.resolve("trimmed"), str(state_root / "tmp")) == tags[1]
        )  # the same stack, the same image
        base, trimmed = (client.api.inspect_image(tag)["RootFS"]["Layers"] for tag in tags)
    finally:
        client.close()
    assert len(base) == 1 and len(trimmed) == 2
    assert trimmed[0] == base[0]  # the same image layer: Docker stores the base once
