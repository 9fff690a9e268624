"""`--result-json FILE`: checked before the task runs, written atomically after it, never through a link.

Before the task: the destination must not be a symlink or anything but a regular file, its directory
must take a new file (a temp file is created there now, O_EXCL|O_NOFOLLOW, so a full or read-only
directory fails before the task runs, not after), and a file an earlier run left is removed, so a
reader never mistakes it for this run's. After: the JSON goes into the temp file, which is renamed over
the destination; on any failure the temp file is removed and no result file exists.
The directory is held open from the check to the rename: a task that swaps it for a link while it
runs can't redirect the write.
"""

from __future__ import annotations

import contextlib
import os
import stat

from lxrun.errors import LxrunError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from lxrun import Result

STEP = "--result-json"


class ResultFile:
    """The temp file in the destination's directory, waiting for the result."""

    def __init__(self, path: str, dir_fd: int, name: str, temp_name: str, fd: int) -> None:
        self.path = path
        self._dir_fd = dir_fd
        self._name = name
        self._temp_name = temp_name
        self._fd = fd
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
            os.rename(self._temp_name, self._name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        except OSError as exc:
            raise LxrunError.from_os_error(STEP, exc, self.path) from exc
        self.committed = True


@contextlib.contextmanager
def result_file(path: str) -> Iterator[ResultFile]:
    """Check `path` and clear it; yields the ResultFile to commit. Uncommitted, nothing is left at `path`."""
    directory, name = os.path.split(path)
    if not name or name in (".", ".."):
        raise LxrunError(STEP, "needs a file name", path=path or "''", hint="e.g. --result-json /tmp/result.json")
    try:
        dir_fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise LxrunError.from_os_error(STEP, exc, path, hint="its directory must exist") from exc
    temp_name = f".{name}.{os.urandom(4).hex()}.tmp"[-255:]
    try:
        _clear(path, dir_fd, name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temp_name, flags, 0o644, dir_fd=dir_fd)
    except LxrunError:
        os.close(dir_fd)
        raise
    except OSError as exc:
        os.close(dir_fd)
        raise LxrunError.from_os_error(STEP, exc, path) from exc
    pending = ResultFile(path, dir_fd, name, temp_name, fd)
    try:
        yield pending
    finally:
        os.close(fd)
        if not pending.committed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name, dir_fd=dir_fd)
        os.close(dir_fd)


def _clear(path: str, dir_fd: int, name: str) -> None:
    """Remove what an earlier run left at `name`; refuse a link or anything but a regular file."""
    try:
        found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(found.st_mode):
        raise LxrunError(STEP, "is a symbolic link", path=path, hint="give the path of a regular file")
    if not stat.S_ISREG(found.st_mode):
        raise LxrunError(STEP, "exists and is not a regular file", path=path, hint="give the path of a regular file")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)
