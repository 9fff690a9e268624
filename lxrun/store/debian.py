"""Debian bases: mmdebstrap (variant minbase) of a suite from a mirror, with extra packages and a locale.

mmdebstrap runs in its unshare mode: as root that means its own mount and pid namespaces, so the
/proc, /sys and /dev it mounts in the new tree vanish with it, even if it is killed. Its cleanup
stage removes apt's lists and caches and the install logs; our hooks leave an empty resolv.conf
(a build binds the host's over it; tasks have no network) and no hostname.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

from lxrun.errors import HostUnsupported, StoreError
from lxrun.store.layers import LayerInfo, LayerStore
from lxrun.store.specs import BUILTIN_LOCALES, DebianSpec

MMDEBSTRAP_FIX = "apt-get install mmdebstrap"
STOP_GRACE = 20.0  # seconds mmdebstrap gets to clean up after SIGTERM before it is killed
HOOKS = (
    'rm -f "$1/etc/resolv.conf" "$1/etc/hostname" && : > "$1/etc/resolv.conf"',
    'rm -f "$1/var/cache/ldconfig/aux-cache" "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old',
)


def debian_digest(spec: DebianSpec) -> str:
    key = json.dumps(spec.canonical(), sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()


def mmdebstrap_argv(spec: DebianSpec, target: str) -> list[str]:
    packages = list(spec.packages)
    hooks = list(HOOKS)
    if spec.locale not in BUILTIN_LOCALES:
        # The spec's loader checked the locale's shape, so it is safe in a shell line.
        charset = spec.locale.split(".", 1)[1].split("@", 1)[0]
        packages.append("locales")
        hooks.append(
            f'echo "{spec.locale} {charset}" > "$1/etc/locale.gen" && chroot "$1" locale-gen'
            f' && echo "LANG={spec.locale}" > "$1/etc/default/locale"'
        )
    argv = ["mmdebstrap", "--mode=unshare", "--variant=minbase", "--format=directory"]
    if packages:
        argv.append(f"--include={','.join(packages)}")
    argv += [f"--customize-hook={hook}" for hook in hooks]
    return [*argv, spec.suite, target, spec.mirror]


def _run(argv: list[str], log_fd: int, spec: DebianSpec) -> None:
    """Run mmdebstrap with its log on log_fd. Interrupted (Ctrl-C, SIGTERM raised as an exception), it is
    asked to stop and clean up, then killed; the caller then removes the half-made tree."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd)
    try:
        code = process.wait()
    except BaseException:
        process.terminate()
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
    if code != 0:
        raise StoreError("mmdebstrap", f"failed (exit status {code})", path=str(spec.path), hint="see its log above")


def build_debian(spec: DebianSpec, layers: LayerStore, log_fd: int) -> LayerInfo:
    digest = debian_digest(spec)
    if layers.exists(digest):
        return layers.info(digest)
    if shutil.which("mmdebstrap") is None:
        raise HostUnsupported("mmdebstrap", "not installed", path=str(spec.path), hint=MMDEBSTRAP_FIX)
    with layers.building() as work:
        _run(mmdebstrap_argv(spec, f"{work}/rootfs"), log_fd, spec)
        return layers.commit(work, digest, parent=None, kind="base", source=str(spec.path))
