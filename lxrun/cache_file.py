"""A cache file under the state root, written whole or not at all: readers never see half of one.

What lxrun caches (compiled seccomp filters, a parsed host config) can always be made again, so a
write that fails (a full or read-only disk) costs the next start the work, never the task."""

from __future__ import annotations

import contextlib
import os


def store(path: str, data: bytes) -> None:
    """Write `data` to a private temp file beside `path`, then rename it into place; best effort."""
    staged = f"{path}.{os.getpid()}-{os.urandom(4).hex()}"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(staged, "wb") as file:
            file.write(data)
        os.rename(staged, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(staged)
