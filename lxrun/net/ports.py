"""Host ports of published mappings, held as bound (never listening) sockets for the task's life.

The kernel then settles who owns a host port, across threads and processes: a second task, or a host
service, that wants the same port fails to bind, and a crashed runner's ports are free with it. So the
owner of a port may replace whatever map element a crashed task left under that port's key.
"""

from __future__ import annotations

import contextlib
import errno
import socket

from lxrun.errors import SetupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from lxrun.net.spec import PortMapping

SOCKET_TYPES = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}


@contextlib.contextmanager
def reserved(mappings: Iterable[PortMapping]) -> Iterator[None]:
    with contextlib.ExitStack() as sockets:
        for mapping in mappings:
            sock = sockets.enter_context(socket.socket(socket.AF_INET, SOCKET_TYPES[mapping.protocol]))
            try:
                sock.bind((mapping.host_ip or "0.0.0.0", mapping.host_port))
            except OSError as exc:
                raise _bind_error(mapping, exc) from exc
        yield


def _bind_error(mapping: PortMapping, exc: OSError) -> SetupError:
    port = f"{mapping.host_port}/{mapping.protocol}"
    if exc.errno == errno.EADDRINUSE:
        return SetupError(
            "publish",
            f"host port {port} is in use (by another task or a host service)",
            path=str(mapping),
            errno=exc.errno,
            hint="choose another HOSTPORT",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return SetupError(
            "publish",
            f"{mapping.host_ip} is not an address of this host",
            path=str(mapping),
            errno=exc.errno,
            hint="give one of the host's addresses, or none for all",
        )
    return SetupError("publish", exc.strerror or str(exc), path=str(mapping), errno=exc.errno)
