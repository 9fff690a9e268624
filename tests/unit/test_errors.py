from __future__ import annotations

import errno

from lxrun.errors import CommandNotExecutable, CommandNotFound, LxrunError, SetupError, SpecError


def test_message_format() -> None:
    error = LxrunError("mount", "Permission denied", path="/proc", hint="run as root")
    assert str(error) == "mount /proc: Permission denied (run as root)"
    assert str(SpecError("command", "no command given")) == "command: no command given"


def test_from_errno() -> None:
    error = SetupError.from_errno("spawn", errno.EAGAIN)
    assert error.errno == errno.EAGAIN
    assert str(error) == "spawn: Resource temporarily unavailable"


def test_exit_codes_follow_docker_run() -> None:
    assert LxrunError("x", "y").exit_code == 125
    assert SpecError("x", "y").exit_code == 125
    assert CommandNotFound("exec", "not found").exit_code == 127
    assert CommandNotExecutable("exec", "denied").exit_code == 126
