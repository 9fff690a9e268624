"""Address leases: one file per address under <root>/net/leases/, held with flock for the task's life.

The kernel drops a flock when its holder dies, so a crashed runner's address is free again without
anyone cleaning up; its file stays behind (with the dead task's id in it), which is how the next holder
knows to remove what that task may have left (its veth, its published ports). A normal release unlinks
the file while still holding the lock. Taking a lease re-checks, after flock, that the path still names
the file it locked: someone may have released or reclaimed it in between. Safe across threads (each
take opens its own file description) and processes.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os

from lxrun.errors import SetupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import TracebackType

    from lxrun.net.config import NetworkConfig


class Lease:
    """An address this process holds. `stale`: its previous holder died holding it."""

    def __init__(self, address: str, path: str, fd: int, stale: bool) -> None:
        self.address = address
        self.path = path
        self.stale = stale
        self._fd = fd

    def release(self) -> None:
        if self._fd < 0:
            return
        try:
            os.unlink(self.path)
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def held(leases_dir: str, address: str) -> bool:
    """Whether a live task holds the lease on `address` (a look: nothing is written, nothing kept)."""
    try:
        fd = os.open(f"{leases_dir}/{address}", os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def take(leases_dir: str, address: str, holder: str) -> Lease | None:
    """The lease on `address` if nobody holds it, else None. `holder` is written into it (for people)."""
    path = f"{leases_dir}/{address}"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = os.fstat(fd)
            try:
                current = os.stat(path, follow_symlinks=False)
                same = (current.st_dev, current.st_ino) == (locked.st_dev, locked.st_ino)
            except FileNotFoundError:
                same = False
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if not same:  # released or reclaimed between our open and our flock: try the path afresh
            os.close(fd)
            continue
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{holder} {os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        # Holders write before anything else, so content we could lock means its holder died holding it.
        return Lease(address, path, fd, stale=locked.st_size > 0)


def acquire(leases_dir: str, config: NetworkConfig, holder: str) -> Lease:
    """The lowest free address of the subnet (never the bridge's); SetupError when none is left."""
    os.makedirs(leases_dir, mode=0o700, exist_ok=True)
    for address in candidates(config, os.listdir(leases_dir)):
        lease = take(leases_dir, address, holder)
        if lease is not None:
            return lease
    raise SetupError(
        "address",
        f"no free address left in {config.subnet}",
        path=leases_dir,
        hint="wait for tasks to end; for more at once, set LXRUN_SUBNET to a larger range while none runs",
    )


def candidates(config: NetworkConfig, lease_files: Iterable[str]) -> Iterator[str]:
    """Addresses to try, lowest first: those without a lease file, then those with one (maybe stale)."""
    network = config.network
    first = int(network.network_address) + 2  # +1 is the bridge
    last = int(network.broadcast_address) - 1
    listed = sorted(value for value in map(_address_value, lease_files) if value is not None and first <= value <= last)
    taken = set(listed)
    for value in range(first, last + 1):
        if value not in taken:
            yield str(ipaddress.IPv4Address(value))
    for value in listed:
        yield str(ipaddress.IPv4Address(value))


def _address_value(name: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(name))
    except ValueError:
        return None
