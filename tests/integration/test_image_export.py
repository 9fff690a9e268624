"""`lxrun stack export`: a stack version written as a docker save tarball or an OCI layout, and imported
back layer for layer (the same digests, the same trees, the same image config). No docker needed here;
tests/integration/test_image_docker.py runs the exports under docker."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from lxrun.runtime import Runtime
from tests.integration import imagetools as it
from tests.integration.conftest import LXRUN
from tests.integration.stacktools import build_deleting_stack, specs_env, tree_hash


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "specs"
    monkeypatch.setenv("LXRUN_SPECS", specs_env(directory))
    return directory


def lxrun(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LXRUN_ROOT": str(root)}
    return subprocess.run([LXRUN, *args], capture_output=True, text=True, env=env)


def listing(root: Path, stack: str) -> str:
    done = lxrun(root, "exec", "--stack", stack, "--", "find", "/", "-xdev")
    assert done.returncode == 0, done.stderr
    return "\n".join(sorted(done.stdout.split()))


@pytest.mark.parametrize(("form", "dest"), [("docker", "img.tar"), ("oci", "oci.tar"), ("oci", "oci-dir")])
def test_an_exported_stack_imports_back_with_the_same_layers(
    state_root: Path, specs: Path, tmp_path: Path, form: str, dest: str
) -> None:
    name = build_deleting_stack(state_root, specs, f"exp-{form}-{dest.replace('.', '-')}")
    done = lxrun(state_root, "stack", "export", "--format", form, name, str(tmp_path / dest))
    assert done.returncode == 0, done.stderr
    assert f"format={form}" in done.stdout and done.stdout.startswith(f"{name}@1 exported")
    back = lxrun(state_root, "stack", "import", f"{name}-back", str(tmp_path / dest))
    assert back.returncode == 0, back.stderr
    built = Runtime(state_root).inspect_stack(name).stack
    imported = Runtime(state_root).inspect_stack(f"{name}-back").stack
    assert len(imported.layers) == 3 and imported.env["PATH"]
    for ours, theirs in zip(built.layers, imported.layers, strict=True):
        assert tree_hash(state_root / "layers" / ours / "rootfs") == tree_hash(
            state_root / "layers" / theirs / "rootfs"
        )
    top = state_root / "layers" / imported.layers[2] / "rootfs"
    assert os.getxattr(top / "srv/a", "trusted.overlay.opaque") == b"y"
    whiteout = (state_root / "layers" / imported.layers[1] / "rootfs/etc/os-release").lstat()
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert listing(state_root, f"{name}-back") == listing(state_root, name)
    # The layers' digests are those of the tars the export wrote; exported again, they come out the same.
    again = Runtime(state_root).export_stack(f"{name}-back", str(tmp_path / f"again-{dest}"), format=form)
    assert tuple(digest.removeprefix("sha256:") for digest in again.diff_ids) == imported.layers


def test_an_imported_image_goes_out_with_its_config_and_layer_digests(tmp_path: Path, native_ready: None) -> None:
    base = it.busybox_layer()
    config = it.image_config(
        [base], Entrypoint=["/bin/echo"], Cmd=["hi"], WorkingDir="/w", User="app", Env=["A=1"], Labels={"l": "v"}
    )
    runtime = Runtime(tmp_path / "root")  # its own: the session's root must not hold the test base image
    first = runtime.import_stack("exp-config", str(it.docker_archive(tmp_path / "in.tar", [base], config)))
    out = runtime.export_stack("exp-config", str(tmp_path / "out.tar"), tag="team/img:2")
    assert out.tag == "team/img:2" and len(out.diff_ids) == 1
    with tarfile.open(tmp_path / "out.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        written = json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["team/img:2"]
    run = written["config"]
    assert (run["Entrypoint"], run["Cmd"], run["WorkingDir"], run["User"]) == (["/bin/echo"], ["hi"], "/w", "app")
    assert "A=1" in run["Env"] and run["Labels"] == {"l": "v"}
    assert out.diff_ids == (it.sha256(base),)  # the layer's own tar again: the same layer
    second = runtime.import_stack("exp-config-back", str(tmp_path / "out.tar"))
    assert second.stored == 0 and second.version.layers == first.version.layers
    assert second.version.image is not None and first.version.image is not None
    assert second.version.image.replace(digest="", source="") == first.version.image.replace(digest="", source="")
    assert dict(second.version.env) == {**first.version.env, "PATH": second.version.env["PATH"]}


def test_an_export_never_overwrites_and_leaves_nothing_when_refused(state_root: Path, tmp_path: Path) -> None:
    existing = tmp_path / "there.tar"
    existing.write_text("mine")
    done = lxrun(state_root, "stack", "export", "busybox", str(existing))
    assert done.returncode == 125 and "exists already" in done.stderr and len(done.stderr.splitlines()) == 1
    assert existing.read_text() == "mine"
    missing = lxrun(state_root, "stack", "export", "no-such-stack", str(tmp_path / "x.tar"))
    assert missing.returncode == 125 and len(missing.stderr.splitlines()) == 1
    bad_tag = lxrun(state_root, "stack", "export", "--tag", "Upper/Case", "busybox", str(tmp_path / "y.tar"))
    assert bad_tag.returncode == 125 and "not a docker image name" in bad_tag.stderr
    assert sorted(os.listdir(tmp_path)) == ["there.tar"]


def test_imported_layers_go_out_as_the_very_tars_they_came_in(tmp_path: Path, native_ready: None) -> None:
    top = it.layer_tar(
        [
            it.directory("etc"),
            it.whiteout("etc/group"),
            it.opaque("etc"),
            it.file("etc/" + "long-name-" * 12, "a name past ustar's 100 bytes"),
            it.file("tool", os.urandom(70_000), mode=0o4755),
            it.hardlink("alias", "tool"),
            it.symlink("link", "/etc/passwd"),
            it.file("tagged", "t", pax_headers={"SCHILY.xattr.user.note": "kept"}),
            it.file("empty"),
        ]
    )
    base = it.busybox_layer()
    layout = tmp_path / "oci"  # gzip layers: the split is of the uncompressed tar
    it.oci_layout(layout, [it.oci_manifest(layout, [base, top])])
    runtime = Runtime(tmp_path / "root")
    runtime.import_stack("split", str(layout))
    for form, dest in (("docker", "out.tar"), ("oci", "out-oci")):
        out = runtime.export_stack("split", str(tmp_path / dest), format=form)
        assert out.diff_ids == (it.sha256(base), it.sha256(top)), form
    blob = tmp_path / "out-oci" / it.blob_path(it.sha256(top))
    assert blob.read_bytes() == top


def test_a_layer_whose_tree_lost_a_file_of_its_tar_is_written_from_its_tree(tmp_path: Path, native_ready: None) -> None:
    replaced = it.layer_tar([it.file("f", "first"), it.file("f", "second"), it.file("g", "g")])
    runtime = Runtime(tmp_path / "root")
    first = runtime.import_stack("replaced", str(it.docker_archive(tmp_path / "in.tar", [replaced])))
    assert not (tmp_path / "root/layers" / first.version.layers[0] / "tar-split").exists()
    out = runtime.export_stack("replaced", str(tmp_path / "out.tar"))
    assert out.diff_ids != (it.sha256(replaced),)
    back = runtime.import_stack("replaced-back", str(tmp_path / "out.tar"))
    layers = tmp_path / "root/layers"
    assert tree_hash(layers / back.version.layers[0] / "rootfs") == tree_hash(
        layers / first.version.layers[0] / "rootfs"
    )
    assert (layers / back.version.layers[0] / "rootfs/f").read_text() == "second"
