"""One layer tree out as one OCI layer tar: the inverse of lxrun.store.unpack.

A layer directory holds what overlayfs reads (a built stack's upper dir, or an unpacked image
layer): a deletion is a 0/0 character device, an opaque directory carries the
`trusted.overlay.opaque=y` xattr. In the tar these become what docker and OCI write: `.wh.NAME` and
`DIR/.wh..wh..opq`, empty regular files. Entries go in sorted order, parents first, with their
owners, modes, modification times, `user.*` xattrs and file capabilities; a file with several
names in the layer is stored once, later names as hardlinks to the first. The same tree gives the
same bytes, so the same digest.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile

from lxrun.store.unpack import OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX, XATTR_PAX_PREFIX, is_whiteout

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

KEPT_XATTRS = ("user.",)
CAPABILITY_XATTR = "security.capability"


class HashingWriter:
    """A writer that hashes what passes through it to `raw`."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self.raw.write(data)


def kept_xattrs(path: str) -> dict[str, str]:
    """The xattrs an image layer may carry, as pax header values."""
    found = {}
    for name in sorted(os.listxattr(path, follow_symlinks=False)):
        if name.startswith(KEPT_XATTRS) or name == CAPABILITY_XATTR:
            value = os.getxattr(path, name, follow_symlinks=False)
            found[XATTR_PAX_PREFIX + name] = value.decode("utf-8", "surrogateescape")
    return found


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def header(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    return info


def marker(name: str) -> tarfile.TarInfo:
    """An empty regular file standing for a whiteout or an opaque directory: owned by root, mode 0, time
    0 (what it stands for has no times of its own to keep: an import makes it anew)."""
    info = tarfile.TarInfo(name)
    info.mode = 0
    return info


class LayerWriter:
    """Writes the tree at `root` into `tar`, entry by entry."""

    def __init__(self, root: str, tar: tarfile.TarFile) -> None:
        self.root = root
        self.tar = tar
        self.first_name: dict[tuple[int, int], str] = {}

    def add(self, relative: str) -> list[str]:
        """Write the entry at `relative`; a directory's entries, to be written next."""
        path = f"{self.root}/{relative}"
        st = os.lstat(path)
        parent, _, base = relative.rpartition("/")
        if is_whiteout(st):
            self.tar.addfile(marker(f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base))
            return []
        info = header(relative, st)
        if not stat.S_ISLNK(st.st_mode):
            info.pax_headers = kept_xattrs(path)
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            self.tar.addfile(info)
            if is_opaque(path):
                self.tar.addfile(marker(f"{relative}/{OPAQUE_MARKER}"))
            return [f"{relative}/{name}" for name in sorted(os.listdir(path))]
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            first = self.first_name.setdefault((st.st_dev, st.st_ino), relative)
            if first != relative:
                info.type, info.linkname = tarfile.LNKTYPE, first
                self.tar.addfile(info)
                return []
        if stat.S_ISREG(st.st_mode):
            info.size = st.st_size
            with open(path, "rb") as data:
                self.tar.addfile(info, data)
            return []
        if stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            return []  # a socket: tar has no type for it (docker skips them too)
        self.tar.addfile(info)
        return []


def write_layer(root: str, out: IO[bytes]) -> str:
    """The layer tree at `root` as a tar written to `out` (in order, no seeking); its digest (diff_id)."""
    hashing = HashingWriter(out)
    with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        writer = LayerWriter(root, tar)
        pending = sorted(os.listdir(root), reverse=True)  # a stack, not recursion: names may nest 2,000 deep
        while pending:
            pending += reversed(writer.add(pending.pop()))
    return f"sha256:{hashing.sha256.hexdigest()}"
