"""Every error lxrun raises. Imports nothing of lxrun; everything may import it.

A message reads `<step> <path>: <reason>`, followed by how to fix it where lxrun knows. The CLI prints
it on one line and exits with `exit_code` (125 unless the task's command itself could not run).
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import functools
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")


class LxrunError(Exception):
    """Something lxrun itself could not do. `step` names what it was doing, `path` what it touched."""

    exit_code = 125

    def __init__(
        self,
        step: str,
        reason: str,
        *,
        path: str | None = None,
        errno: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.step = step
        self.reason = reason
        self.path = path
        self.errno = errno
        self.hint = hint
        super().__init__(str(self))

    @classmethod
    def from_errno(cls, step: str, errno: int, path: str | None = None, hint: str | None = None) -> LxrunError:
        return cls(step, os.strerror(errno), path=path, errno=errno, hint=hint)

    @classmethod
    def from_os_error(cls, step: str, exc: OSError, path: str | None = None, hint: str | None = None) -> LxrunError:
        """An OSError as this error: its errno and reason, the path it names unless `path` is given.
        Raise it `from exc`, so the cause stays chained."""
        where = path if path is not None else exc.filename if isinstance(exc.filename, str) else None
        reason = exc.strerror or str(exc)
        return cls(step, reason, path=where, errno=exc.errno, hint=hint or _HINTS.get(exc.errno or 0))

    def __str__(self) -> str:
        where = f"{self.step} {self.path}" if self.path else self.step
        text = f"{where}: {self.reason}"
        return f"{text} ({self.hint})" if self.hint else text


class SpecError(LxrunError):
    """The task, stack or option given is invalid; nothing was created."""


class Unsupported(SpecError):
    """The chosen backend can't honour this task (a backend's `refuse`); nothing was created."""


class HostUnsupported(LxrunError):
    """This host lacks something lxrun needs; the hint says how to fix the host."""


class StackNotFound(LxrunError):
    """No such stack, or no such version of it."""


class StoreError(LxrunError):
    """Building, storing or changing layers and stacks failed."""


class SetupError(LxrunError):
    """Acquiring a resource for the sandbox (a directory, a cgroup, a pipe) failed on the host."""


class ChildSetupError(LxrunError):
    """A step inside the new sandbox failed before the task's command started."""


class CommandNotFound(ChildSetupError):
    """The task's command does not exist in the sandbox (docker run: 127)."""

    exit_code = 127


class CommandNotExecutable(ChildSetupError):
    """The task's command exists but cannot be executed (docker run: 126)."""

    exit_code = 126


class BackendUnavailable(LxrunError):
    """The chosen backend cannot run on this host; the reason says why."""


# What an operator can do about the host errors lxrun meets most (a message without a hint says what failed).
_HINTS = {
    errno_codes.EACCES: "run lxrun as root",
    errno_codes.EPERM: "run lxrun as root",
    errno_codes.ENOSPC: "free space on that filesystem",
    errno_codes.EDQUOT: "free space on that filesystem",
    errno_codes.EROFS: "that filesystem is read-only: give lxrun a writable state root (--root or LXRUN_ROOT)",
}


@contextlib.contextmanager
def host_errors(
    step: str, error: type[LxrunError] = SetupError, path: str | None = None, hint: str | None = None
) -> Iterator[None]:
    """Inside: an OSError becomes `error` naming `step`, with its errno and path, the cause chained."""
    try:
        yield
    except OSError as exc:
        raise error.from_os_error(step, exc, path, hint) from exc


def api_edge(step: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorates a public entry point: its OSErrors become SetupErrors naming `step` (host_errors as a
    plain try, without a generator per call: `run` pays for it on every task)."""

    def wrap(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except OSError as exc:
                raise SetupError.from_os_error(step, exc) from exc

        return guarded

    return wrap
