"""What a task may do to the machine: capabilities, no_new_privs, its user, seccomp, its user namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxrun.sandbox import caps
from lxrun.spec import Security

from .conftest import differs, sh

STATUS = "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status"


def status(backend: str, root: Path, security: Security | None = None) -> dict[str, str]:
    result = sh(backend, root, STATUS, security=security or Security())
    return dict(line.split(":\t") for line in result.stdout.decode().splitlines())


def test_dockers_default_capabilities_at_most(backend: str, state_root: Path) -> None:
    fields = status(backend, state_root)
    expected = f"{caps.bitmask(caps.DOCKER_DEFAULT):016x}"
    assert (fields["CapEff"], fields["CapBnd"]) == (expected, expected)


def test_cap_add_and_drop(backend: str, state_root: Path) -> None:
    fields = status(backend, state_root, Security(cap_add=["NET_ADMIN"], cap_drop=["NET_RAW", "MKNOD"]))
    expected = f"{caps.bitmask((caps.DOCKER_DEFAULT | {'NET_ADMIN'}) - {'NET_RAW', 'MKNOD'}):016x}"
    assert fields["CapEff"] == expected


def test_no_new_privs(backend: str, state_root: Path) -> None:
    assert status(backend, state_root)["NoNewPrivs"] == "1"


def test_seccomp_filter_by_default_and_unconfined_on_request(
    backend: str, state_root: Path, request: pytest.FixtureRequest
) -> None:
    differs(request, backend, {"lxc": "LXC's seccomp profiles are in its own format, not Docker's"})
    assert status(backend, state_root)["Seccomp"] == "2"  # a filter
    assert status(backend, state_root, Security(seccomp="unconfined"))["Seccomp"] == "0"


def test_user(backend: str, state_root: Path) -> None:
    result = sh(backend, state_root, "id -u; id -g", security=Security(user=(1000, None)))
    assert result.stdout.split() == [b"1000", b"0"]  # no passwd entry: group 0, as docker
    result = sh(backend, state_root, "id -u; id -g", security=Security(user=(65534, None)))
    assert result.stdout.split() == [b"65534", b"65534"]  # nobody's passwd group


def test_root_inside_is_not_root_outside(backend: str, state_root: Path, request: pytest.FixtureRequest) -> None:
    differs(request, backend, {
        "lxc": "a user namespace needs idmapped layers LXC's config doesn't set up here",
        "docker": "Docker maps users per daemon (userns-remap), not per container",
    })  # fmt: skip
    result = sh(backend, state_root, "cat /proc/self/uid_map")
    inside, outside, count = (int(field) for field in result.stdout.split())
    assert inside == 0 and outside != 0 and count == 65536
