"""The one thread that reads what every client sends after its request (signals, --result-json answers):
an epoll over the sessions' sockets, so a session costs no thread of its own for its client's frames.

A session is watched from its request on until it forgets itself, or until its client ends, which the
watcher then acts on (Session.take_answers kills the task) and stops watching. Reads never wait
(wire.Answers), so one client can't hold up another's signals.
"""

from __future__ import annotations

import os
import select
import sys
import threading
import traceback

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

    from lxrun.cli.serve.session import Session


class Watcher:
    """Started when made; `close` (or the end of a with block) stops the thread and closes its epoll."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._wake = os.eventfd(0, os.EFD_CLOEXEC)
        self._epoll.register(self._wake, select.EPOLLIN)
        self._watched: dict[int, Session] = {}
        self._lock = threading.Lock()  # held while a session is read: forget() returns only once it is not
        self._thread = threading.Thread(target=self._loop, name="lxrun-serve-watcher")
        try:
            self._thread.start()
        except BaseException:
            self._close_fds()
            raise

    def __enter__(self) -> Watcher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def watch(self, session: Session) -> None:
        with self._lock:
            self._watched[session.sock.fileno()] = session
            self._epoll.register(session.sock.fileno(), select.EPOLLIN)

    def forget(self, session: Session) -> None:
        """No more reads of the session's socket (it may be closed once this returns)."""
        with self._lock:
            if self._watched.get(session.sock.fileno()) is session:
                self._stop_watching(session.sock.fileno())

    def close(self) -> None:
        os.eventfd_write(self._wake, 1)
        self._thread.join()
        self._close_fds()

    def _loop(self) -> None:
        while True:
            for fd, _ in self._epoll.poll():
                if fd == self._wake:
                    return
                with self._lock:  # a stale event (its session forgotten, its number reused) reads nothing amiss
                    session = self._watched.get(fd)
                    if session is not None and not self._read(session):
                        self._stop_watching(fd)

    @staticmethod
    def _read(session: Session) -> bool:
        try:
            return session.take_answers()
        except Exception:  # a bug: this client is read no more, the others still are; the log has the rest
            traceback.print_exc(file=sys.stderr)
            return False

    def _stop_watching(self, fd: int) -> None:
        del self._watched[fd]
        self._epoll.unregister(fd)

    def _close_fds(self) -> None:
        self._epoll.close()
        os.close(self._wake)
