"""How a docker:// source becomes skopeo's command line, and skopeo's errors one line (no registry needed)."""

from __future__ import annotations

import pytest

from lxrun.errors import StoreError
from lxrun.store.registry import skopeo_argv, skopeo_error


def test_the_platform_and_insecure_become_skopeo_flags() -> None:
    argv = skopeo_argv("docker://r:5000/a/b:1", "/t/image", "linux/arm64/v8", True, "/t")
    assert argv[:3] == ["skopeo", "--override-os", "linux"] and argv[3:5] == ["--override-arch", "arm64"]
    assert argv[5:9] == ["--tmpdir", "/t", "--override-variant", "v8"]
    assert "--src-tls-verify=false" in argv and argv[-2:] == ["docker://r:5000/a/b:1", "oci:/t/image:import"]
    plain = skopeo_argv("docker://r/a:1", "/t/image", "linux/amd64", False, "/t")
    assert "--override-variant" not in plain and not any("tls-verify" in arg for arg in plain)


def test_a_platform_without_an_architecture_is_refused() -> None:
    with pytest.raises(StoreError, match="is not OS/ARCH"):
        skopeo_argv("docker://r/a:1", "/t/image", "linux", False, "/t")


def test_skopeo_log_lines_become_their_message() -> None:
    line = 'time="2026-01-01T00:00:00Z" level=fatal msg="reading manifest 1: manifest unknown: \\"x\\""\n'
    assert skopeo_error("noise\n" + line) == 'reading manifest 1: manifest unknown: "x"'
    assert skopeo_error("plain failure\n") == "plain failure" and skopeo_error("") == ""
