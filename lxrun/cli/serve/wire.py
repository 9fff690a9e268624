"""The relay's wire format, spoken by native/client.c: frames over a unix stream socket, each an 8-byte
header (type, payload length: two native-endian u32) and its payload.

client -> server
  Q request   u32 argc, u32 envc, u32 umask, then argc + envc NUL-terminated strings (exec's options
              as typed, the environment); with exactly four descriptors: stdin, stdout, stderr and
              the working directory (O_PATH). At most MAX_REQUEST bytes, sent within REQUEST_TIMEOUT.
  S signal    i32 signal number, to pass on to the task
  P prepared  i32 status, i32 errno (result_file's statuses), the temp file's descriptor on success
  N renamed   i32 status, i32 errno
server -> client
  p prepare   directory, name, temp name (NUL-terminated): make --result-json's temp file
  n rename    name (NUL-terminated): rename the temp file over it
  x exit      i32 exit code, then a line for the client's stderr (may be empty); the last frame
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
import struct
import time

HEADER = struct.Struct("=II")
PAIR = struct.Struct("=ii")
REQUEST, SIGNAL, PREPARED, RENAMED = (ord(char) for char in "QSPN")
PREPARE, RENAME, EXIT = (ord(char) for char in "pnx")

MAX_REQUEST = 4 << 20  # bytes: more than execve takes for arguments and environment (ARG_MAX)
MAX_ANSWER = PAIR.size  # every frame after the request is a signal or a pair
MAX_LINE = 60000  # bytes of an exit line (native/client.c reads frames of up to 64 KiB)
REQUEST_FDS = 4
WRONG_FDS = f"must pass exactly {REQUEST_FDS} descriptors (stdin, stdout, stderr, working directory)"
REQUEST_TIMEOUT = 5.0  # seconds for a whole request: a client that stalls can't hold a session


class BadRequest(Exception):
    """A request that can't be served, as one line saying why."""


class Request:
    """What a client asked: exec's options, its environment and umask, and the descriptors it passed
    (closed by close())."""

    def __init__(self, argv: list[str], environ: dict[str, str], umask: int, fds: list[int]) -> None:
        self.argv = argv
        self.environ = environ
        self.umask = umask
        self.stdin, self.stdout, self.stderr, self.cwd = fds

    def close(self) -> None:
        for fd in (self.stdin, self.stdout, self.stderr, self.cwd):
            os.close(fd)


def read_request(sock: socket.socket) -> Request:
    """The client's request, checked; BadRequest with the reason otherwise (nothing is kept open)."""
    deadline = time.monotonic() + REQUEST_TIMEOUT
    fds: list[int] = []
    try:
        header = _first_bytes(sock, deadline, fds)
        header += _read(sock, HEADER.size - len(header), deadline)
        kind, length = HEADER.unpack(header)
        if kind != REQUEST:
            raise BadRequest("is not an lxrun exec relay request")
        if length > MAX_REQUEST:
            raise BadRequest(f"is larger than {MAX_REQUEST >> 20} MiB")
        if len(fds) != REQUEST_FDS:
            raise BadRequest(WRONG_FDS)
        request = _decode(_read(sock, length, deadline), fds)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return request


def _first_bytes(sock: socket.socket, deadline: float, fds: list[int]) -> bytes:
    """The header's first bytes and the descriptors that came with them (one more than allowed is room
    enough to see too many: the kernel drops what does not fit and says so)."""
    room = socket.CMSG_SPACE((REQUEST_FDS + 1) * array.array("i").itemsize)
    _wait(sock, deadline)
    try:
        data, ancillary, flags, _ = sock.recvmsg(HEADER.size, room, socket.MSG_CMSG_CLOEXEC)
    except TimeoutError as exc:
        raise BadRequest(f"was not sent within {REQUEST_TIMEOUT:g} s") from exc
    except OSError as exc:
        raise BadRequest(f"could not be read: {exc.strerror}") from exc
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % array.array("i").itemsize
            fds.extend(array.array("i", payload[:usable]))
    if flags & socket.MSG_CTRUNC:
        raise BadRequest(WRONG_FDS)
    if not data:
        raise BadRequest("ended before its header")
    return data


def _wait(sock: socket.socket, deadline: float) -> None:
    sock.settimeout(max(deadline - time.monotonic(), 0.001))


def _read(sock: socket.socket, length: int, deadline: float) -> bytes:
    chunks = bytearray()
    while len(chunks) < length:
        _wait(sock, deadline)
        try:
            chunk = sock.recv(min(length - len(chunks), 1 << 20))
        except TimeoutError as exc:
            raise BadRequest(f"was not sent within {REQUEST_TIMEOUT:g} s") from exc
        except OSError as exc:
            raise BadRequest(f"could not be read: {exc.strerror}") from exc
        if not chunk:
            raise BadRequest("ended before its length")
        chunks += chunk
    sock.settimeout(None)
    return bytes(chunks)


def _decode(payload: bytes, fds: list[int]) -> Request:
    counts = struct.Struct("=III")
    if len(payload) < counts.size:
        raise BadRequest("is too short")
    argc, envc, umask = counts.unpack_from(payload)
    strings = payload[counts.size :].split(b"\0")
    if strings[-1] != b"" or len(strings) - 1 != argc + envc:
        raise BadRequest("has a malformed argument list")
    if umask > 0o777:
        raise BadRequest("has an invalid umask")
    environ = {}
    for item in strings[argc:-1]:
        key, sep, value = item.partition(b"=")
        if sep and key:  # as os.environ reads a process's environment
            environ[os.fsdecode(key)] = os.fsdecode(value)
    return Request([os.fsdecode(arg) for arg in strings[:argc]], environ, umask, fds)


def send(sock: socket.socket, kind: int, payload: bytes = b"") -> None:
    sock.sendall(HEADER.pack(kind, len(payload)) + payload)


def send_exit(sock: socket.socket, code: int, line: str = "") -> None:
    """The last frame: the exit code and a line for the client's stderr. A client gone is no error."""
    with contextlib.suppress(OSError):
        send(sock, EXIT, struct.pack("=i", code) + os.fsencode(line)[:MAX_LINE])


class Answers:
    """The client's frames after its request, as they arrive: never waits (the watcher reads every
    session's socket from one thread, so a client that sends half a frame holds no one up). Read with
    recvmsg throughout: a descriptor travels with the frame's first bytes, and a plain recv would drop it."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._frame = bytearray()
        self._length = -1  # the payload's, once the header is in
        self._fds: list[int] = []

    def next(self) -> tuple[int, bytes, int] | None:
        """The next whole frame: (type, payload, descriptor or -1); WAITING until it has all arrived;
        None at the client's end or on anything malformed (the client is then treated as gone)."""
        while True:
            wanted = HEADER.size + max(self._length, 0)
            if len(self._frame) == wanted and self._length < 0:
                self._length = HEADER.unpack(self._frame)[1]
                if self._length > MAX_ANSWER:
                    self.close()
                    return None
                continue
            if len(self._frame) == wanted:
                return self._take()
            try:
                data, ancillary, _, _ = self._sock.recvmsg(
                    wanted - len(self._frame), socket.CMSG_SPACE(8), socket.MSG_CMSG_CLOEXEC | socket.MSG_DONTWAIT
                )
            except BlockingIOError:
                return WAITING
            except OSError:
                self.close()
                return None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    self._fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
            if not data:
                self.close()
                return None
            self._frame += data

    def _take(self) -> tuple[int, bytes, int] | None:
        kind = HEADER.unpack_from(self._frame)[0]
        if len(self._fds) > 1 or (self._fds and kind != PREPARED):
            self.close()
            return None
        frame = kind, bytes(self._frame[HEADER.size :]), self._fds[0] if self._fds else -1
        self._frame.clear()
        self._length = -1
        self._fds = []
        return frame

    def close(self) -> None:
        """The descriptors of a frame that never arrived whole, or a malformed one's, closed."""
        for fd in self._fds:
            os.close(fd)
        self._fds = []


WAITING = (-1, b"", -1)  # Answers.next: no whole frame yet
