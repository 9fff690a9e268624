"""User namespaces: the pool of host uid/gid ranges tasks run as, and one range held per task.

The pool is the `lxrun` entry of /etc/subuid and /etc/subgid (`lxrun:START:COUNT`, the same
format newuidmap uses), cut into ranges of 65536 ids; without an entry, the default is
1000000000:67108864 (1024 ranges). A task's root is the first id of its range. Range n is taken by
an open-file-description lock on byte n of `uids/leases`, held for the task's life: a runner that
dies releases its ranges with its descriptors, so nothing stays allocated after a crash. One file
rather than a file per range: creating files costs, and a fresh state root would create one per task.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

from lxrun.errors import HostUnsupported, SetupError
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.layout import Layout

RANGE = 65536
DEFAULT_POOL = (1_000_000_000, 1024 * RANGE)
POOL_USER = "lxrun"
# struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for an OFD lock), in the platform's layout.
FLOCK = struct.Struct("@hhqqi4x")


class IdPool(Record):
    """Where task ranges come from: host uids and gids [start, start + count)."""

    __slots__ = ("gid_start", "ranges", "uid_start")
    uid_start: int
    gid_start: int
    ranges: int

    def __init__(self, uid_start: int, gid_start: int, ranges: int) -> None:
        super().__init__(uid_start=uid_start, gid_start=gid_start, ranges=ranges)


class IdRange(Record):
    """One task's ids: host `uid`/`gid` is root inside, RANGE ids in all."""

    __slots__ = ("gid", "index", "uid")
    index: int
    uid: int
    gid: int

    def __init__(self, index: int, uid: int, gid: int) -> None:
        super().__init__(index=index, uid=uid, gid=gid)

    def uid_map(self) -> str:
        return f"0 {self.uid} {RANGE}\n"

    def gid_map(self) -> str:
        return f"0 {self.gid} {RANGE}\n"


def _subid_entry(path: str) -> tuple[int, int] | None:
    try:
        with open(path) as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[0] == POOL_USER and fields[1].isdigit() and fields[2].isdigit():
            return int(fields[1]), int(fields[2])
    return None


def load_pool(subuid: str = "/etc/subuid", subgid: str = "/etc/subgid") -> IdPool:
    uids = _subid_entry(subuid) or DEFAULT_POOL
    gids = _subid_entry(subgid) or DEFAULT_POOL
    ranges = min(uids[1], gids[1]) // RANGE
    if ranges < 1:
        raise HostUnsupported(
            "uid pool",
            f"the {POOL_USER} entries of {subuid}/{subgid} hold less than {RANGE} ids",
            hint=f"give {POOL_USER} a multiple of {RANGE}, e.g. {POOL_USER}:{DEFAULT_POOL[0]}:{DEFAULT_POOL[1]}",
        )
    return IdPool(uids[0], gids[0], ranges)


class RangeLease:
    """A range held by flock; `release` (or the process ending) gives it back."""

    def __init__(self, id_range: IdRange, fd: int) -> None:
        self.range = id_range
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RangeLease:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def take_range(layout: Layout, pool: IdPool, start: int = 0) -> RangeLease:
    """The first free range from `start` on (callers spread their starts to avoid contention)."""
    path = f"{layout.uid_leases}/leases"
    # An open of its own per lease: OFD locks belong to the open file description, so two leases
    # sharing one would not exclude each other.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        for step in range(pool.ranges):
            index = (start + step) % pool.ranges
            try:
                fcntl.fcntl(fd, fcntl.F_OFD_SETLK, FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, index, 1, 0))
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise SetupError.from_errno("uid pool", exc.errno or errno.EIO, path) from exc
                continue
            return RangeLease(IdRange(index, pool.uid_start + index * RANGE, pool.gid_start + index * RANGE), fd)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    raise SetupError(
        "uid pool",
        f"all {pool.ranges} ranges are in use",
        path=path,
        hint=f"wait for tasks to end, or give {POOL_USER} more ids in /etc/subuid and /etc/subgid",
    )
