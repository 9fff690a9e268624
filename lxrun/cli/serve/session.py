"""One client of `lxrun serve`, one task: the request read and checked, exec's options parsed as
`lxrun exec` parses them (its own option table and code, exec_cmd.execute) with the client's
environment, working directory and umask, the task run on the client's own descriptors, and the exit
code and any failure line sent back. While it runs, the client's signals go to the task as
`lxrun exec`'s own handlers send them; a client that goes away takes its task with it (SIGKILL). What
the client sends after its request is read by the server's watcher (watcher.py), not by a thread of
the session's own.

A session runs on one of the server's worker threads, whose working directory and umask are its own
(unshare(CLONE_FS), once per thread: own_filesystem_view); the session takes the client's for its
run, so every relative path (--env-file, -v, --result-json, a seccomp profile, --root) means what it
means to the client, and leaves them at its end (the client's directory is not held on to).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import struct
import sys
import threading
import traceback

from lxrun.cli import failure
from lxrun.cli.exec_cmd import Caller, Forwarder, execute
from lxrun.cli.exec_options import parse
from lxrun.cli.serve import wire
from lxrun.cli.usage import EXIT_LXRUN_FAILED, UsageError
from lxrun.errors import LxrunError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator
    from types import FrameType

    from lxrun import TaskHandle
    from lxrun.cli.exec_cmd import Runner
    from lxrun.cli.serve.watcher import Watcher

CLONE_FS = 0x200  # <linux/sched.h>, the same on every architecture (os.CLONE_FS arrives in Python 3.12)


class ClientGone(Exception):
    """The client closed its end, or sent what a client never sends."""


class ClientSignals(Forwarder):
    """exec's Forwarder fed by the client's signal frames (from the server's watcher thread) instead
    of this process's handlers; nothing is forwarded once the task's run is over, when its handle
    may no longer be used."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._over = False

    def started(self, handle: TaskHandle) -> None:
        with self._lock:
            super().started(handle)

    def forward(self, sig: int, _frame: FrameType | None = None) -> None:
        with self._lock:
            if not self._over:
                super().forward(sig, _frame)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        try:
            yield
        finally:
            with self._lock:
                self._over = True
                self.handles.clear()


class ClientPlace:
    """--result-json's file, made and renamed by the client itself (result_file's Place)."""

    def __init__(self, sock: socket.socket, answers: queue.Queue[tuple[int, bytes, int] | None]) -> None:
        self._sock = sock
        self._answers = answers

    def _ask(self, kind: int, strings: tuple[str, ...], expected: int) -> tuple[int, int, int]:
        try:
            wire.send(self._sock, kind, b"".join(os.fsencode(item) + b"\0" for item in strings))
            answer = self._answers.get(timeout=wire.REQUEST_TIMEOUT)
        except (OSError, queue.Empty) as exc:
            raise ClientGone from exc
        if answer is None or answer[0] != expected:
            raise ClientGone
        status, error = wire.PAIR.unpack(answer[1])
        return status, error, answer[2]

    def prepare(self, directory: str, name: str, temp_name: str) -> tuple[int, int, int]:
        return self._ask(wire.PREPARE, (directory, name, temp_name), wire.PREPARED)

    def rename(self, name: str) -> int:
        status, error, _ = self._ask(wire.RENAME, (name,), wire.RENAMED)
        return error if status else 0

    def close(self) -> None:
        """Nothing here: the client removes a temp file it never renamed."""


class Session:
    """One connection, already let in (server.py checked the peer), served on a worker thread."""

    def __init__(self, sock: socket.socket, watcher: Watcher, runner: Runner | None = None) -> None:
        self.sock = sock
        self.runner = runner
        self.signals = ClientSignals()
        self._watcher = watcher
        self._incoming = wire.Answers(sock)
        self._answers: queue.Queue[tuple[int, bytes, int] | None] = queue.Queue()

    def serve(self) -> None:
        """The whole session; the socket is closed at its end, whatever happened."""
        with contextlib.ExitStack() as stack:
            stack.callback(self.sock.close)
            try:
                request = wire.read_request(self.sock)
            except wire.BadRequest as exc:
                wire.send_exit(self.sock, EXIT_LXRUN_FAILED, f"lxrun serve: request: {exc}")
                return
            stack.callback(request.close)
            self._watcher.watch(self)
            stack.callback(self._stop_reading)
            try:
                code, line = self._run(request)
            except ClientGone:
                return
            wire.send_exit(self.sock, code, line)

    def _run(self, request: wire.Request) -> tuple[int, str]:
        """`lxrun exec` with the client's options, as its own process would run them."""
        try:
            os.fchdir(request.cwd)
        except OSError as exc:
            return EXIT_LXRUN_FAILED, f"lxrun: {LxrunError.from_os_error('serve', exc, hint='the working directory')}"
        try:
            os.umask(request.umask)
            return self._execute(request)
        finally:
            os.chdir("/")  # the worker waits for its next client without holding this one's directory

    def _execute(self, request: wire.Request) -> tuple[int, str]:
        # Text streams over the client's descriptors, as the command line's sys.stdout and sys.stderr.
        out = open(request.stdout, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
        err = open(request.stderr, "w", 1, "utf-8", "backslashreplace", closefd=False)  # noqa: SIM115
        caller = Caller(request.environ, (request.stdin, request.stdout, request.stderr), out, err)
        caller.place = ClientPlace(self.sock, self._answers)
        caller.runner = self.runner
        try:
            try:
                code, line = execute(parse(request.argv, request.environ), caller, self.signals), ""
            finally:
                for stream in (out, err):
                    stream.close()  # flushed before the exit frame: the client prints its line after them
        except (UsageError, LxrunError) as exc:
            line, code = failure(exc)
        except OSError as exc:  # the client's stdout or stderr could not take lxrun's own lines
            hint = "its reader went away" if isinstance(exc, BrokenPipeError) else None
            line, code = f"lxrun: {LxrunError.from_os_error('output', exc, hint=hint)}", EXIT_LXRUN_FAILED
        except ClientGone:
            raise
        except Exception as exc:  # a bug: this client gets one line, the server goes on, its log has the rest
            traceback.print_exc(file=sys.stderr)
            line, code = f"lxrun serve: internal error: {exc!r}", EXIT_LXRUN_FAILED
        return code, line

    def take_answers(self) -> bool:
        """What the client sent since, acted on (on the watcher's thread): signals go to the task, answers
        about --result-json to whoever asked. False at the client's end (or anything malformed): the task
        is killed, no one waits for it any more."""
        while True:
            answer = self._incoming.next()
            if answer is wire.WAITING:
                return True
            if answer is not None and answer[0] == wire.SIGNAL and len(answer[1]) == 4:
                (sig,) = struct.unpack("=i", answer[1])
                if 0 < sig < signal.NSIG and sig not in (signal.SIGKILL, signal.SIGSTOP):
                    self.signals.forward(sig)
                continue
            if answer is not None and answer[0] in (wire.PREPARED, wire.RENAMED) and len(answer[1]) == wire.PAIR.size:
                self._answers.put(answer)
                continue
            if answer is not None and answer[2] >= 0:
                os.close(answer[2])
            self.signals.forward(signal.SIGKILL)
            self._answers.put(None)
            return False

    def _stop_reading(self) -> None:
        self._watcher.forget(self)
        self._incoming.close()
        while not self._answers.empty():  # a temp file's descriptor no one asked for
            answer = self._answers.get_nowait()
            if answer is not None and answer[2] >= 0:
                os.close(answer[2])

    def kill(self) -> None:
        """The server is stopping: the task ends now (the client gets its 137)."""
        self.signals.forward(signal.SIGKILL)


_libc = ctypes.CDLL(None, use_errno=True)


def own_filesystem_view() -> None:
    """This thread's working directory and umask become its own, a session's change no other thread sees;
    it starts at / (a copy of its maker's, who may be in a client's directory by now)."""
    if _libc.unshare(CLONE_FS) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
    os.chdir("/")
