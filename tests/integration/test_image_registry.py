"""`lxrun stack import docker://...`: images pushed (with skopeo) to a local registry (Debian's
docker-registry, registry v2, on 127.0.0.1 with its own storage), fetched, verified, imported."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxrun.runtime import Runtime
from tests.conftest import require
from tests.integration import imagetools as it
from tests.integration.conftest import LXRUN

BASE = it.busybox_layer()
TOP = it.layer_tar([it.directory("app"), it.file("app/hello", "from the registry\n")])
READY_WAIT = 30  # seconds; it answers in well under one


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A registry on 127.0.0.1 (plain HTTP), one per test (the tests check no process outlives them): its
    address and storage dir; stopped and removed after."""
    binary = shutil.which("docker-registry")
    require(binary is not None, "docker-registry is not installed (apt-get install docker-registry)")
    require(shutil.which("skopeo") is not None, "skopeo is not installed (apt-get install skopeo)")
    assert binary is not None
    work = tmp_path_factory.mktemp("registry")
    storage, port = work / "storage", free_port()
    config = work / "config.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with open(work / "registry.log", "w") as log:
        server = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + READY_WAIT
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                break
            assert server.poll() is None and time.monotonic() < deadline, (work / "registry.log").read_text()
            time.sleep(0.05)
        yield f"127.0.0.1:{port}", storage
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work)


@pytest.fixture
def root(tmp_path: Path, native_ready: None) -> Path:
    """A state root of the test's own: what it imports is not in the session's (whose tests count layers)."""
    return tmp_path / "root"


def push(source: str, registry: str, repo: str, *options: str) -> str:
    """skopeo copy of `source` (a transport:path) to the registry; the docker:// reference."""
    target = f"docker://{registry}/{repo}"
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", *options, source, target],
        check=True,
        capture_output=True,
    )
    return target


def lxrun(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LXRUN_ROOT": str(root)}
    return subprocess.run([LXRUN, *args], capture_output=True, text=True, env=env)


def test_an_image_in_a_registry_is_imported_layer_for_layer(
    registry: tuple[str, Path], root: Path, tmp_path: Path
) -> None:
    config = it.image_config([BASE, TOP], Cmd=["cat", "/app/hello"], Env=["PATH=/bin:/usr/bin"])
    archive = it.docker_archive(tmp_path / "img.tar", [BASE, TOP], config)
    ref = push(f"docker-archive:{archive}", registry[0], "test/hello:1")
    refused = lxrun(root, "stack", "import", "reg-hello", ref)
    assert refused.returncode == 125 and len(refused.stderr.splitlines()) == 1
    assert "--insecure-registry" in refused.stderr  # a plain-HTTP registry only when asked
    done = lxrun(root, "stack", "import", "--insecure-registry", "reg-hello", ref)
    assert done.returncode == 0, done.stderr
    assert "stored=2/2" in done.stdout
    stack = Runtime(root).inspect_stack("reg-hello").stack
    assert stack.layers == tuple(it.sha256(layer).removeprefix("sha256:") for layer in (BASE, TOP))
    assert stack.image is not None and stack.image.source == ref
    assert stack.image.cmd == ("cat", "/app/hello")
    assert lxrun(root, "exec", "--stack", "reg-hello").stdout == "from the registry\n"
    again = lxrun(root, "stack", "import", "--insecure-registry", "reg-hello", ref)
    assert again.returncode == 0 and "stored=0/2" in again.stdout
    assert [list((root / top).iterdir()) for top in ("tmp", "run", "scratch")] == [[], [], []]


def test_a_platform_is_picked_from_a_multi_platform_image(
    registry: tuple[str, Path], root: Path, tmp_path: Path
) -> None:
    layout = it.two_platform_layout(tmp_path / "oci", [BASE, TOP], [BASE])
    ref = push(f"oci:{layout}", registry[0], "test/multi:1", "--multi-arch", "all")
    runtime = Runtime(root)
    arm = runtime.import_stack("reg-arm", ref, platform="linux/arm64/v8", insecure=True)
    amd = runtime.import_stack("reg-amd", ref, platform="linux/amd64", insecure=True)
    assert len(arm.version.layers) == 1 and len(amd.version.layers) == 2
    assert arm.version.layers[0] == amd.version.layers[0]


def test_a_blob_changed_in_the_registry_is_refused_and_nothing_kept(
    registry: tuple[str, Path], root: Path, tmp_path: Path
) -> None:
    layer = it.layer_tar([it.file("payload", os.urandom(256 << 10))])
    archive = it.docker_archive(tmp_path / "img.tar", [BASE, layer])
    ref = push(f"docker-archive:{archive}", registry[0], "test/tampered:1")
    blob = max((registry[1] / "docker/registry/v2/blobs").rglob("data"), key=lambda path: path.stat().st_size)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    Runtime(root).import_stack("reg-base", str(it.docker_archive(tmp_path / "base.tar", [BASE])))
    before = sorted(os.listdir(root / "layers"))
    done = lxrun(root, "stack", "import", "--insecure-registry", "reg-tampered", ref)
    assert done.returncode == 125 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "digest" in done.stderr.lower()
    assert sorted(os.listdir(root / "layers")) == before and not (root / "stacks/reg-tampered").exists()
    assert list((root / "tmp").iterdir()) == []
