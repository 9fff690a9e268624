"""`--result-json FILE`: checked before the task runs, written atomically after it, never through a link.

Before the task: the destination must not be a symlink or anything but a regular file, its directory
must take a new file (a temp file is created there now, O_EXCL|O_NOFOLLOW, so a full or read-only
directory fails before the task runs, not after), and a file an earlier run left is removed, so a
reader never mistakes it for this run's. After: the JSON goes into the temp file, which is renamed over
the destination; on any failure the temp file is removed and no result file exists.
The directory is held open from the check to the rename: a task that swaps it for a link while it
runs can't redirect the write.

Those file operations are a Place's: this process's own (LocalPlace), or, for a client of `lxrun serve`,
the client's, which makes and renames the file with its own credentials (native/client.c does what
LocalPlace does) while the server only writes the JSON into the descriptor it is handed.
"""

from __future__ import annotations

import contextlib
import os
import stat

from lxrun.errors import LxrunError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Protocol

    from lxrun import Result

    class Place(Protocol):
        def prepare(self, directory: str, name: str, temp_name: str) -> tuple[int, int, int]:
            """Check and clear `name` in `directory`, create `temp_name` there: (status, errno, fd)."""

        def rename(self, name: str) -> int:
            """The temp file renamed to `name`: 0, or the errno it failed with."""

        def close(self) -> None:
            """Done: the temp file, unless renamed, is removed."""


STEP = "--result-json"

# What preparing the destination came to (native/client.c answers with the same numbers).
PREPARED, NO_DIRECTORY, IS_LINK, NOT_A_FILE, FAILED = range(5)


class ResultFile:
    """The temp file in the destination's directory, waiting for the result."""

    def __init__(self, path: str, name: str, fd: int, place: Place) -> None:
        self.path = path
        self._name = name
        self._fd = fd
        self._place = place
        self.committed = False

    def commit(self, result: Result) -> None:
        """Write the result and rename it into place (fsync first: a crash leaves no empty file behind)."""
        import json

        payload = (json.dumps(result.to_json(), indent=1) + "\n").encode()
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
            error = self._place.rename(self._name)
            if error:
                raise OSError(error, os.strerror(error))
        except OSError as exc:
            raise LxrunError.from_os_error(STEP, exc, self.path) from exc
        self.committed = True


class LocalPlace:
    """The destination's directory, opened by this process."""

    def __init__(self) -> None:
        self._dir_fd = -1
        self._temp_name: str | None = None

    def prepare(self, directory: str, name: str, temp_name: str) -> tuple[int, int, int]:
        try:
            self._dir_fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            return NO_DIRECTORY, exc.errno or 0, -1
        try:
            found = os.stat(name, dir_fd=self._dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        except OSError as exc:
            return FAILED, exc.errno or 0, -1
        else:
            if stat.S_ISLNK(found.st_mode):
                return IS_LINK, 0, -1
            if not stat.S_ISREG(found.st_mode):
                return NOT_A_FILE, 0, -1
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=self._dir_fd)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(temp_name, flags, 0o644, dir_fd=self._dir_fd)
        except OSError as exc:
            return FAILED, exc.errno or 0, -1
        self._temp_name = temp_name
        return PREPARED, 0, fd

    def rename(self, name: str) -> int:
        assert self._temp_name is not None
        try:
            os.rename(self._temp_name, name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        except OSError as exc:
            return exc.errno or 0
        self._temp_name = None
        return 0

    def close(self) -> None:
        if self._temp_name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp_name, dir_fd=self._dir_fd)
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1


def refused(status: int, error: int, path: str) -> LxrunError:
    """Why the destination can't take the result (a status other than PREPARED)."""
    if status == IS_LINK:
        return LxrunError(STEP, "is a symbolic link", path=path, hint="give the path of a regular file")
    if status == NOT_A_FILE:
        return LxrunError(STEP, "exists and is not a regular file", path=path, hint="give the path of a regular file")
    hint = "its directory must exist" if status == NO_DIRECTORY else None
    return LxrunError.from_os_error(STEP, OSError(error, os.strerror(error)), path, hint=hint)


@contextlib.contextmanager
def result_file(path: str, place: Place | None = None) -> Iterator[ResultFile]:
    """Check `path` and clear it; yields the ResultFile to commit. Uncommitted, nothing is left at `path`."""
    directory, name = os.path.split(path)
    if not name or name in (".", ".."):
        raise LxrunError(STEP, "needs a file name", path=path or "''", hint="e.g. --result-json /tmp/result.json")
    where = place if place is not None else LocalPlace()
    temp_name = f".{name}.{os.urandom(4).hex()}.tmp"[-255:]
    try:
        status, error, fd = where.prepare(directory, name, temp_name)
        if status != PREPARED:
            raise refused(status, error, path) from (OSError(error, os.strerror(error)) if error else None)
        pending = ResultFile(path, name, fd, where)
        try:
            yield pending
        finally:
            os.close(fd)
    finally:
        where.close()
