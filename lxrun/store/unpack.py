"""The safe unpacker of untrusted image layer tars: one layer tar in, one overlayfs diff tree out.

Image layers come from anywhere, and Debian's Python 3.11.2 has no `tarfile.data_filter`, so every
entry is checked here before anything is written, and nothing is ever written through a path we
did not make ourselves:
- a name must be relative, without `..`, at most PATH_MAX bytes (NAME_MAX per component);
- every directory on the way must be a real directory of this layer (lstat, never followed): a
  symlink in the layer can't redirect a later entry's write;
- a hardlink must name an entry already in this layer (not a directory, not a whiteout);
- symlinks are kept as they are, whatever they point at: they are only ever followed inside a task;
- device nodes are refused (a node in a layer would open the host's device from any task);
- setuid/setgid bits are kept as docker keeps them: tasks run with no_new_privs, which makes them inert;
- xattrs: only `user.*` and `security.capability` (file capabilities) are applied; `trusted.*` ones
  (overlayfs's own metadata) and the rest are dropped, so a layer can't forge overlay metadata.
OCI markers become what overlayfs reads: `.wh.NAME` a 0/0 character device NAME, `.wh..wh..opq` the
`trusted.overlay.opaque=y` xattr on its directory (what a build's upper dir holds after a deletion).
The bytes read are capped by the caller's `Budget`: a layer that expands past it is refused.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile

from lxrun.errors import StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

    from lxrun.store.tarsplit import SplitRecorder

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
XATTR_PAX_PREFIX = "SCHILY.xattr."
PATH_MAX = 4095  # bytes of a name, the terminating NUL left out
NAME_MAX = 255
COPY_CHUNK = 1 << 20


class Refused(Exception):
    """An entry the unpacker won't write; the caller turns it into a StoreError naming the source."""


class Budget:
    """Bytes of uncompressed layer data an import may still read (across all its layers)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, count: int) -> None:
        self.left -= count
        if self.left < 0:
            raise Refused(f"expands past the size limit of {self.limit} bytes (a decompression bomb?)")


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def clean_name(name: str) -> str:
    """An entry's name as a path relative to the layer ("" for the layer's root); refused if unsafe."""
    if "\0" in name:
        raise Refused("has a NUL byte in its name")
    if name.startswith("/"):
        raise Refused("is an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise Refused("climbs out of the layer with ..")
    relative = "/".join(parts)
    if len(os.fsencode(relative)) > PATH_MAX:
        raise Refused(f"has a name of {len(os.fsencode(relative))} bytes, more than PATH_MAX ({PATH_MAX})")
    if any(len(os.fsencode(part)) > NAME_MAX for part in parts):
        raise Refused(f"has a path component longer than NAME_MAX ({NAME_MAX} bytes)")
    return relative


class Unpacker:
    """Writes the entries of one layer tar under `root` (an empty directory of our own)."""

    def __init__(self, root: str, split: SplitRecorder | None = None) -> None:
        self.root = root
        self.split = split  # told where each file's content is, and when the tree loses one
        self.dirs: set[str] = {""}  # relative paths known to be real directories of this layer
        self.dir_times: list[tuple[str, float]] = []

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}" if relative else self.root

    def ensure_dir(self, relative: str) -> None:
        """`relative` and every directory above it are real directories (made 0755 where missing)."""
        if relative in self.dirs:
            return
        parent = relative.rpartition("/")[0]
        self.ensure_dir(parent)
        try:
            st = os.lstat(self.path(relative))
        except FileNotFoundError:
            os.mkdir(self.path(relative), 0o755)
        else:
            if stat.S_ISLNK(st.st_mode):
                raise Refused(f"would write through the symlink {relative}")
            if not stat.S_ISDIR(st.st_mode):
                raise Refused(f"would write below {relative}, which is not a directory")
        self.dirs.add(relative)

    def clear(self, relative: str, keep_dir: bool = False) -> bool:
        """Remove what is at `relative` (a later entry replaces an earlier one); True if a directory
        stays because `keep_dir`."""
        try:
            st = os.lstat(self.path(relative))
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode) and keep_dir:
            return True
        if self.split is not None:
            self.split.broken()
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(self.path(relative))
            self.dirs = {known for known in self.dirs if known != relative and not known.startswith(f"{relative}/")}
        else:
            os.unlink(self.path(relative))
        return False

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        relative = clean_name(member.name)
        parent, _, base = relative.rpartition("/")
        if base == OPAQUE_MARKER:
            self.ensure_dir(parent)
            os.setxattr(self.path(parent), OPAQUE_XATTR, b"y", follow_symlinks=False)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):  # aufs's own metadata (.wh..wh.plnk): not content
            return
        if base.startswith(WHITEOUT_PREFIX):
            hidden = base.removeprefix(WHITEOUT_PREFIX)
            if hidden in ("", ".", ".."):
                raise Refused("is a whiteout of nothing")
            self.ensure_dir(parent)
            target = f"{parent}/{hidden}" if parent else hidden
            self.clear(target)
            os.mknod(self.path(target), stat.S_IFCHR | 0o000, os.makedev(0, 0))
            return
        if member.ischr() or member.isblk():
            kind = "c" if member.ischr() else "b"
            raise Refused(f"is a device node ({kind} {member.devmajor}:{member.devminor}); layers may not carry any")
        if member.issparse():
            raise Refused("is a sparse file, which lxrun does not unpack")
        if relative == "":
            if not member.isdir():
                raise Refused("replaces the layer's root with a non-directory")
            self.metadata(relative, member)
            self.dir_times.append((relative, member.mtime))
            return
        self.ensure_dir(parent)
        if member.isdir():
            if not self.clear(relative, keep_dir=True):
                os.mkdir(self.path(relative), 0o700)
            self.dirs.add(relative)
            self.metadata(relative, member)
            self.dir_times.append((relative, member.mtime))
            return
        if member.islnk():
            self.hardlink(relative, member)
            return
        self.clear(relative)
        full = self.path(relative)
        if member.isreg():
            source = tar.extractfile(member)
            if source is None:
                raise Refused("has no data")
            if self.split is not None:
                self.split.file_content(member.offset_data, member.size, relative)
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with open(fd, "wb", closefd=True) as out:
                shutil.copyfileobj(source, out, COPY_CHUNK)
        elif member.issym():
            os.symlink(member.linkname, full)
        elif member.isfifo():
            os.mkfifo(full, 0o600)
        else:
            raise Refused(f"has an entry type lxrun does not unpack ({member.type!r})")
        self.metadata(relative, member)

    def hardlink(self, relative: str, member: tarfile.TarInfo) -> None:
        target = clean_name(member.linkname)
        if not target or target == relative:
            raise Refused(f"is a hardlink to {member.linkname!r}")
        self.ensure_dir(target.rpartition("/")[0])  # the target's directories are this layer's own
        try:
            st = os.lstat(self.path(target))
        except FileNotFoundError as exc:
            raise Refused(f"is a hardlink to {target}, which is not in this layer") from exc
        if stat.S_ISDIR(st.st_mode) or is_whiteout(st):
            raise Refused(f"is a hardlink to {target}, which is a directory or a whiteout")
        self.clear(relative)
        os.link(self.path(target), self.path(relative), follow_symlinks=False)

    def metadata(self, relative: str, member: tarfile.TarInfo) -> None:
        """Owner, mode (setuid kept: see the module's docstring), file capabilities and user xattrs,
        and (but for directories, done at the end) the modification time."""
        full = self.path(relative)
        os.chown(full, member.uid, member.gid, follow_symlinks=False)
        if member.issym():
            os.utime(full, (member.mtime, member.mtime), follow_symlinks=False)
            return
        os.chmod(full, member.mode & 0o7777)
        for key, value in member.pax_headers.items():
            name = key.removeprefix(XATTR_PAX_PREFIX)
            if key.startswith(XATTR_PAX_PREFIX) and (name.startswith("user.") or name == "security.capability"):
                os.setxattr(full, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
        if not member.isdir():
            os.utime(full, (member.mtime, member.mtime), follow_symlinks=False)

    def finish(self) -> None:
        """Directories' times last: writing their entries changed them."""
        for relative, mtime in self.dir_times:
            if relative in self.dirs:
                os.utime(self.path(relative), (mtime, mtime), follow_symlinks=False)


def unpack(stream: IO[bytes], root: str, split: SplitRecorder | None = None) -> None:
    """Unpack the layer tar read from `stream` (uncompressed, read in order) into the empty `root`,
    telling `split` where files' contents are. Raises Refused for an unsafe entry, StoreError for a
    tar that is not one (truncated, garbage)."""
    unpacker = Unpacker(root, split)
    try:
        with tarfile.open(fileobj=stream, mode="r|", errorlevel=2) as tar:
            for member in tar:
                try:
                    unpacker.add(tar, member)
                except Refused as exc:
                    raise Refused(f"entry {member.name[:100]!r} {exc}") from exc
                except OSError as exc:
                    raise Refused(f"entry {member.name[:100]!r} can't be written: {exc.strerror}") from exc
                tar.members.clear()  # type: ignore[attr-defined]  # a streamed tar keeps every header otherwise
    except tarfile.TarError as exc:
        raise StoreError("stack import", f"the layer is not a valid tar: {exc}") from exc
    except EOFError as exc:
        raise StoreError("stack import", f"the layer is truncated: {exc}") from exc
    unpacker.finish()
