"""The busybox base: the host's static busybox and a symlink per applet, plus a minimal /etc."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from lxrun.errors import HostUnsupported
from lxrun.store.layers import LayerInfo, LayerStore
from lxrun.store.specs import BaseSpec

BUSYBOX = Path("/bin/busybox")
FIX = "apt-get install busybox-static"
DIRS = (
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "etc",
    "root",
    "home",
    "proc",
    "sys",
    "dev",
    "run",
    "var/log",
    "tmp",
    "var/tmp",
)
ETC = {
    "passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "os-release": 'NAME="lxrun busybox"\nID=busybox\n',
    "resolv.conf": "",  # the mount point a stack build binds the host's over
}


def _static_busybox() -> bytes:
    try:
        data = BUSYBOX.read_bytes()
    except FileNotFoundError as exc:
        raise HostUnsupported("busybox", "not installed", path=str(BUSYBOX), hint=FIX) from exc
    if b"/lib64/ld-linux" in data[:4096] or b"/lib/ld-linux" in data[:4096]:
        raise HostUnsupported("busybox", "is dynamically linked", path=str(BUSYBOX), hint=FIX)
    return data


def busybox_digest(spec: BaseSpec) -> str:
    """Same spec and same host busybox -> same digest, so a rebuild is a no-op."""
    binary = hashlib.sha256(_static_busybox()).hexdigest()
    key = json.dumps({"spec": spec.canonical(), "busybox": binary}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()


def _populate(rootfs: Path) -> None:
    for directory in DIRS:
        (rootfs / directory).mkdir(parents=True, exist_ok=True, mode=0o755)
    (rootfs / "tmp").chmod(0o1777)
    (rootfs / "var/tmp").chmod(0o1777)
    (rootfs / "root").chmod(0o700)
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    applets = subprocess.run([str(BUSYBOX), "--list-full"], check=True, capture_output=True, text=True).stdout.split()
    for applet in applets:
        if applet == "linuxrc":  # an initrd's init, not an applet for a rootfs
            continue
        link = rootfs / applet
        if link.exists() or link.is_symlink():
            continue
        link.symlink_to(Path("/bin/busybox"))
    for name, text in ETC.items():
        (rootfs / "etc" / name).write_text(text)


def build_busybox(spec: BaseSpec, layers: LayerStore) -> LayerInfo:
    digest = busybox_digest(spec)
    if layers.exists(digest):
        return layers.info(digest)
    with layers.building() as work:
        _populate(Path(work) / "rootfs")
        return layers.commit(work, digest, parent=None, kind="base", source=str(spec.path))
