"""Images docker itself made (the private dockerd of `make test`): `docker build` with deletions and an
opaque directory, imported through the docker SDK (docker-daemon:IMAGE), run by docker and by lxrun:
the two root filesystems list the same files."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.integration import imagetools as it
from tests.integration.conftest import LXRUN
from tests.integration.stacktools import build_deleting_stack, specs_env

BASE_TAG = "lxrun-test-import-base:1"
IMAGE_TAG = "lxrun-test-import:1"
EXPORT_TAG = "lxrun-test-export:1"
DOCKERFILE = f"""FROM {BASE_TAG}
RUN mkdir -p /opq/sub /keep && echo a > /opq/old && echo s > /opq/sub/f && echo b > /keep/k && echo c > /gone
RUN rm /gone /keep/k && rm -rf /opq && mkdir /opq && echo n > /opq/new
ENTRYPOINT ["/bin/echo"]
CMD ["from", "cmd"]
"""
# What one runtime or the other puts over the root (mount points; docker's init layer adds /etc/mtab): not the
# image's files.
MOUNTED = (
    "/dev",
    "/proc",
    "/sys",
    "/tmp",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/.dockerenv",
    "/etc/mtab",
)


@pytest.fixture(scope="module")
def docker_image(state_root: Path) -> Iterator[Any]:
    import docker.errors

    from lxrun.backends.docker import DockerBackend, _client
    from lxrun.layout import Layout

    probe = DockerBackend(Layout(state_root)).probe()
    require(probe.available, f"backend docker can't run here: {probe.reason}")
    client = _client(120)
    try:
        archive = it.docker_archive(state_root / "tmp" / "base-image.tar", [it.busybox_layer()], tag=BASE_TAG)
        client.images.load(archive.read_bytes())
        archive.unlink()
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            it.add_bytes(tar, "Dockerfile", DOCKERFILE.encode())
        context.seek(0)
        client.images.build(fileobj=context, custom_context=True, tag=IMAGE_TAG, network_mode="none", rm=True)
        yield client
    finally:
        for tag in (IMAGE_TAG, BASE_TAG, EXPORT_TAG):
            with contextlib.suppress(docker.errors.ImageNotFound):  # never made: the build failed
                client.images.remove(tag, force=True)
        client.close()


def files(listing: str) -> list[str]:
    return sorted(path for path in listing.split() if not any(path == m or path.startswith(f"{m}/") for m in MOUNTED))


def test_a_docker_built_image_has_the_same_files_under_lxrun_as_under_docker(
    docker_image: Any, state_root: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [LXRUN, "stack", "import", "--root", str(state_root), "built", f"docker-daemon:{IMAGE_TAG}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    layers = docker_image.api.inspect_image(IMAGE_TAG)["RootFS"]["Layers"]
    assert f"stored={len(layers)}/{len(layers)}" in done.stdout
    under_docker = docker_image.containers.run(
        IMAGE_TAG, ["/bin/find", "/", "-xdev"], entrypoint="", network_mode="none", remove=True
    ).decode()
    under_lxrun = subprocess.run(
        [LXRUN, "exec", "--root", str(state_root), "--stack", "built", "--entrypoint", "/bin/find", "--", "/", "-xdev"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "/opq/new" in files(under_lxrun) and "/opq/old" not in files(under_lxrun)
    assert "/gone" not in files(under_lxrun) and "/keep" in files(under_lxrun)
    assert files(under_lxrun) == files(under_docker)
    default = subprocess.run(
        [LXRUN, "exec", "--root", str(state_root), "--stack", "built"], capture_output=True, text=True, check=True
    )
    assert default.stdout == "from cmd\n"
    version = subprocess.run(
        [LXRUN, "stack", "inspect", "--root", str(state_root), "--json", "built"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [f"sha256:{layer['digest']}" for layer in json.loads(version)["layers"]] == layers
    exported = subprocess.run(
        [LXRUN, "stack", "export", "--root", str(state_root), "built", str(tmp_path / "again.tar")],
        capture_output=True,
        text=True,
    )
    assert exported.returncode == 0, exported.stderr
    with tarfile.open(tmp_path / "again.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
    assert config["rootfs"]["diff_ids"] == layers  # docker's own layer tars, byte for byte


def test_a_built_stack_exported_runs_under_docker_and_imports_back_with_the_same_layers(
    docker_image: Any, state_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LXRUN_SPECS", specs_env(tmp_path / "specs"))
    name = build_deleting_stack(state_root, tmp_path / "specs", "docker-export")
    archive = tmp_path / "exported.tar"
    done = subprocess.run(
        [LXRUN, "stack", "export", "--root", str(state_root), "--tag", EXPORT_TAG, name, str(archive)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        diff_ids = json.load(tar.extractfile(manifest[0]["Config"]))["rootfs"]["diff_ids"]  # type: ignore[arg-type]
    docker_image.images.load(archive.read_bytes())
    assert docker_image.api.inspect_image(EXPORT_TAG)["RootFS"]["Layers"] == diff_ids
    script = "cat /srv/a/two; ls /srv/a; cat /etc/os-release 2>/dev/null || echo no os-release; echo $PATH"
    shown = docker_image.containers.run(EXPORT_TAG, ["sh", "-c", script], network_mode="none", remove=True).decode()
    assert shown.splitlines()[:3] == ["2", "two", "no os-release"] and "/bin" in shown.splitlines()[3]
    under_docker = docker_image.containers.run(
        EXPORT_TAG, ["find", "/", "-xdev"], network_mode="none", remove=True
    ).decode()
    under_lxrun = subprocess.run(
        [LXRUN, "exec", "--root", str(state_root), "--stack", name, "--", "find", "/", "-xdev"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "/srv/a/two" in files(under_docker) and files(under_lxrun) == files(under_docker)
    back = subprocess.run(
        [LXRUN, "stack", "import", "--root", str(state_root), f"{name}-back", f"docker-daemon:{EXPORT_TAG}"],
        capture_output=True,
        text=True,
    )
    assert back.returncode == 0, back.stderr
    inspected = subprocess.run(
        [LXRUN, "stack", "inspect", "--root", str(state_root), "--json", f"{name}-back"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [f"sha256:{layer['digest']}" for layer in json.loads(inspected)["layers"]] == diff_ids
