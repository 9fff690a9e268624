"""Images in a registry (`docker://HOST/REPO:TAG` or `...@sha256:DIGEST`), fetched for import with skopeo.

skopeo (Debian's, 1.9) speaks the registry v2 API and its auth; it verifies every blob against its
digest as it copies, and the copy lands as an OCI image layout in a private directory under the
store's tmp/, which lxrun.store.imagesource then reads like any other layout (verifying the digests
again, as it trusts nothing it reads). Of a multi-platform image only the platform asked for (or the
host's) is copied. Plain HTTP or unverified TLS only when the caller says `insecure`.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile

from lxrun.errors import HostUnsupported, StoreError
from lxrun.store.imagesource import STEP, host_platform_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from lxrun.layout import Layout

PREFIX = "docker://"
SKOPEO = "skopeo"
LAYOUT_TAG = "import"
MESSAGE = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


def skopeo_argv(source: str, layout_dir: str, platform: str | None, insecure: bool, tmpdir: str) -> list[str]:
    """skopeo's command line copying `source` (docker://...) into the OCI layout `layout_dir`."""
    os_name, _, rest = (platform or host_platform_name()).partition("/")
    architecture, _, variant = rest.partition("/")
    if not os_name or not architecture:
        raise StoreError(STEP, f"--platform {platform!r} is not OS/ARCH[/VARIANT]", path=source)
    argv = [SKOPEO, "--override-os", os_name, "--override-arch", architecture, "--tmpdir", tmpdir]
    if variant:
        argv += ["--override-variant", variant]
    argv += ["copy", "--quiet", "--retry-times", "2"]
    if insecure:
        argv.append("--src-tls-verify=false")
    return [*argv, source, f"oci:{layout_dir}:{LAYOUT_TAG}"]


def skopeo_error(stderr: str) -> str:
    """The message of skopeo's last log line (`time=... level=fatal msg="..."`), or that line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if not lines:
        return ""
    found = MESSAGE.search(lines[-1])
    return found.group(1).replace('\\"', '"') if found else lines[-1]


@contextlib.contextmanager
def fetched(source: str, layout: Layout, platform: str | None, insecure: bool) -> Iterator[str]:
    """The image at `source` copied into an OCI layout under tmp/ (removed afterwards); its path."""
    if shutil.which(SKOPEO) is None:
        raise HostUnsupported(
            STEP,
            "skopeo is not installed: it fetches images from registries",
            path=source,
            hint="apt-get install skopeo",
        )
    layout.ensure()
    with tempfile.TemporaryDirectory(dir=layout.tmp, prefix="import-") as work:
        argv = skopeo_argv(source, f"{work}/image", platform, insecure, work)
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            reason = skopeo_error(done.stderr) or f"skopeo exited with status {done.returncode}"
            hint = "a registry over plain HTTP needs --insecure-registry" if "server gave HTTP" in reason else None
            raise StoreError(STEP, f"skopeo copy failed: {reason[:400]}", path=source, hint=hint)
        yield f"{work}/image"
