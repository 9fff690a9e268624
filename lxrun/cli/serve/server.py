"""The listening socket of `lxrun serve` and who may use it.

The socket is made with mode 0600 (0660, group GROUP's, with a group), so the kernel already keeps
others from connecting; each connection's peer is checked again with SO_PEERCRED: root, or with a
group a process whose group or supplementary groups hold it. A group's members can run any task
(`--userns host -v /:/host`): the group is as good as root, as docker's is. A socket a dead server
left is replaced; a live server's is refused. Each client is served by a thread of its own
(session.py). Stopping closes the socket, ends the tasks in flight (SIGKILL: each client gets its
137) and waits for their sessions to tell their clients.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct
import threading

from lxrun.cli.serve import wire
from lxrun.cli.serve.session import Session
from lxrun.cli.usage import EXIT_LXRUN_FAILED
from lxrun.errors import LxrunError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from lxrun.cli.exec_cmd import Runner

SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # <asm-generic/socket.h>; Python 3.11 lacks the name
UCRED = struct.Struct("=iII")  # pid, uid, gid
GROUPS_BUFFER = 1024  # bytes: the most Python's getsockopt takes
BACKLOG = 128


class Server:
    def __init__(self, path: str, group: int | None, runner: Runner | None = None) -> None:
        self.path = path
        self.group = group
        self.runner = runner  # what sessions run tasks with (the pools' run), None: lxrun.run
        self._sessions: dict[threading.Thread, Session] = {}
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        """The socket bound and listening; closed and removed at the end (unless another took its path)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self._replace_stale()
            mask = os.umask(0o177)
            try:
                sock.bind(self.path)
            finally:
                os.umask(mask)
            bound = os.stat(self.path)
            if self.group is not None:
                os.chown(self.path, 0, self.group)
                os.chmod(self.path, 0o660)
            sock.listen(BACKLOG)
        except OSError as exc:
            sock.close()
            raise LxrunError.from_os_error("serve", exc, self.path) from exc
        self._sock = sock
        try:
            yield
        finally:
            sock.close()
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == bound.st_ino:
                    os.unlink(self.path)

    def _replace_stale(self) -> None:
        try:
            found = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(found.st_mode):
            raise LxrunError("serve", "exists and is not a socket", path=self.path, hint="give a new path")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
            try:
                probe.connect(self.path)
            except ConnectionRefusedError:
                os.unlink(self.path)  # no one listens: a server that died left it
                return
        raise LxrunError(
            "serve", "another server is listening there", path=self.path, hint="stop it or give a new path"
        )

    def serve_forever(self) -> None:
        """Accept clients until a signal's exception (Terminated, KeyboardInterrupt) ends the loop."""
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    continue  # the next accept may succeed once a session has ended
                raise LxrunError.from_os_error("serve", exc, self.path) from exc
            refusal = self.refusal(conn)
            if refusal:
                wire.send_exit(conn, EXIT_LXRUN_FAILED, refusal)
                conn.close()
                continue
            session = Session(conn, self.runner)
            thread = threading.Thread(target=self._serve, args=(session,), name="lxrun-serve-session")
            with self._lock:
                self._sessions[thread] = session
            thread.start()

    def _serve(self, session: Session) -> None:
        try:
            session.serve()
        finally:
            with self._lock:
                del self._sessions[threading.current_thread()]

    def refusal(self, conn: socket.socket) -> str | None:
        """Why this peer may not run tasks here, or None: root may, and a member of the group."""
        try:
            _, uid, gid = UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size))
        except OSError as exc:  # a peer already gone
            return f"lxrun: serve {self.path}: {exc.strerror}"
        if uid == 0 or (self.group is not None and self.group in (gid, *peer_groups(conn))):
            return None
        allowed = "root" if self.group is None else f"root and group {self.group}"
        return f"lxrun: serve {self.path}: uid {uid} may not run tasks here (only {allowed})"

    def stop(self) -> None:
        """End every task in flight and wait for its session to report to its client."""
        with self._lock:
            sessions = dict(self._sessions)
        for session in sessions.values():
            session.kill()
        for thread in sessions:
            thread.join()


def peer_groups(conn: socket.socket) -> tuple[int, ...]:
    """The peer's supplementary groups, as the kernel recorded them at connect(); none are counted
    for a peer with more than Python's getsockopt can read (256): it is let in by its own group only."""
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, GROUPS_BUFFER)
    except OSError:
        return ()
    return struct.unpack(f"={len(raw) // 4}I", raw[: len(raw) // 4 * 4])
