"""The listening socket of `lxrun serve` and who may use it.

The socket is made with mode 0600 (0660, group GROUP's, with a group), so the kernel already keeps
others from connecting; each connection's peer is checked again with SO_PEERCRED: root, or with a
group a process whose group or supplementary groups hold it. A group's members can run any task
(`--userns host -v /:/host`): the group is as good as root, as docker's is. A socket a dead server
left is replaced; a live server's is refused.

Clients are served by worker threads that live on between sessions (a thread made, and its working
directory unshared, per client would cost each of them): every idle worker waits in accept() and the
kernel wakes one, which serves the client it took; as it takes one, it starts another worker if none
is left waiting, and after its session it ends if enough others wait. What clients send after their
requests, one thread reads for all (watcher.py). Stopping shuts the socket, ends the tasks in flight
(SIGKILL: each client gets its 137) and waits for their sessions to tell their clients.
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
from lxrun.cli.serve.session import Session, own_filesystem_view
from lxrun.cli.serve.watcher import Watcher
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
SPARE_WORKERS = 4  # idle workers kept waiting for clients; one more ends after its session
TRANSIENT = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)  # accept() may succeed once a session ends


class Server:
    def __init__(self, path: str, group: int | None, runner: Runner | None = None) -> None:
        self.path = path
        self.group = group
        self.runner = runner  # what sessions run tasks with (the pools' run), None: lxrun.run
        self._sessions: set[Session] = set()
        self._workers: set[threading.Thread] = set()
        self._idle = 0  # workers waiting in accept()
        self._closing = False
        self._lock = threading.Lock()
        self._failed = threading.Event()
        self._failure: LxrunError | None = None
        self._sock: socket.socket | None = None
        self._watcher: Watcher | None = None

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
        """Serve clients until a signal's exception (Terminated, KeyboardInterrupt) or a failure to accept
        ends it; either way every task in flight is ended and every worker has finished when it returns."""
        with Watcher() as watcher:
            self._watcher = watcher
            try:
                self._add_worker()
                self._failed.wait()  # signal handlers run here, in the main thread
                assert self._failure is not None
                raise self._failure
            finally:
                self._stop()

    def _add_worker(self) -> None:
        thread = threading.Thread(target=self._work, name="lxrun-serve-worker")
        with self._lock:
            if self._closing:
                return
            self._workers.add(thread)
            self._idle += 1
            thread.start()  # under the lock: _stop joins only started threads

    def _work(self) -> None:
        try:
            own_filesystem_view()
        except OSError as exc:
            self._fail(LxrunError.from_os_error("serve", exc, hint="unshare(CLONE_FS) for a worker thread"))
            conn = None
        else:
            conn = self._accept()
        while conn is not None:
            with self._lock:
                self._idle -= 1
                none_left = self._idle == 0
            if none_left:
                self._add_worker()
            self._serve(conn)
            with self._lock:
                if self._idle >= SPARE_WORKERS:
                    self._workers.discard(threading.current_thread())
                    return
                self._idle += 1
            conn = self._accept()

    def _accept(self) -> socket.socket | None:
        """The next client; None once the server stops (or fails)."""
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError as exc:
                if self._closing:  # _stop shut the socket: every waiting accept() returns EINVAL
                    return None
                if exc.errno in TRANSIENT:
                    continue
                self._fail(LxrunError.from_os_error("serve", exc, self.path))
                return None
            return conn

    def _serve(self, conn: socket.socket) -> None:
        refusal = self.refusal(conn)
        if refusal:
            wire.send_exit(conn, EXIT_LXRUN_FAILED, refusal)
            conn.close()
            return
        assert self._watcher is not None
        session = Session(conn, self._watcher, self.runner)
        with self._lock:
            if self._closing:  # too late for _stop to see it: its task is ended as it starts
                session.kill()
            self._sessions.add(session)
        try:
            session.serve()
        finally:
            with self._lock:
                self._sessions.discard(session)

    def _fail(self, failure: LxrunError) -> None:
        with self._lock:
            self._failure = self._failure or failure
        self._failed.set()

    def _stop(self) -> None:
        """End every task in flight and wait for its session to report to its client."""
        with self._lock:
            self._closing = True
            sessions = list(self._sessions)
            workers = list(self._workers)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        for session in sessions:
            session.kill()
        for thread in workers:
            thread.join()

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


def peer_groups(conn: socket.socket) -> tuple[int, ...]:
    """The peer's supplementary groups, as the kernel recorded them at connect(); none are counted
    for a peer with more than Python's getsockopt can read (256): it is let in by its own group only."""
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, GROUPS_BUFFER)
    except OSError:
        return ()
    return struct.unpack(f"={len(raw) // 4}I", raw[: len(raw) // 4 * 4])
