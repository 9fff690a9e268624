"""lxrun's default seccomp profile makes Docker's decisions, syscall by syscall and argument by argument.

The reference is Docker's own profile (moby's), vendored unchanged as tests/unit/data/docker-seccomp-default.json
(its source in SOURCES.md beside it). The profiles are compared as data and as lxrun resolves them for a
task; a small evaluator then asks the resolved rules what a few calls with given arguments get.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from lxrun.sandbox import caps
from lxrun.sandbox.seccomp import DEFAULT_PROFILE
from lxrun.sandbox.seccomp.profile import ACTIONS, Resolved, load, resolve

MOBY_PROFILE = str(Path(__file__).with_name("data") / "docker-seccomp-default.json")
ALLOW = ACTIONS["SCMP_ACT_ALLOW"]
EPERM = ACTIONS["SCMP_ACT_ERRNO"] | 1
ENOSYS = ACTIONS["SCMP_ACT_ERRNO"] | 38
CAP_SETS = {
    "default caps": caps.DOCKER_DEFAULT,
    "default + SYS_ADMIN": caps.DOCKER_DEFAULT | {"SYS_ADMIN"},
    "none": frozenset(),
    "all": caps.effective_set(add=["ALL"]),
}
CLONE_NEWUSER = 0x10000000
CLONE_THREAD_FLAGS = 0x003D0F00  # what glibc's pthread_create passes


def condition(block: dict[str, Any] | None) -> tuple[Any, ...]:
    block = block or {}
    return (
        tuple(sorted(cap.upper().removeprefix("CAP_") for cap in block.get("caps", []))),
        tuple(sorted(block.get("arches", []))),
        block.get("minKernel"),
    )


def decisions(profile: dict[str, Any]) -> dict[str, set[tuple[Any, ...]]]:
    """Syscall name -> every (action, errno, argument filters, includes, excludes) the profile gives it."""
    out: dict[str, set[tuple[Any, ...]]] = {}
    for entry in profile["syscalls"]:
        args = tuple(
            (arg["index"], arg["op"], arg.get("value", 0), arg.get("valueTwo", 0)) for arg in entry.get("args") or ()
        )
        decision = (
            entry["action"],
            entry.get("errnoRet"),
            args,
            condition(entry.get("includes")),
            condition(entry.get("excludes")),
        )
        for name in entry["names"]:
            out.setdefault(name, set()).add(decision)
    return out


def test_the_default_profile_makes_mobys_decisions_syscall_by_syscall() -> None:
    ours, moby = load(DEFAULT_PROFILE), load(MOBY_PROFILE)
    assert (ours["defaultAction"], ours.get("defaultErrnoRet")) == (moby["defaultAction"], moby["defaultErrnoRet"])
    assert ours["archMap"] == moby["archMap"]
    ours_by_name, moby_by_name = decisions(ours), decisions(moby)
    differ = {
        name: {"lxrun": ours_by_name.get(name), "moby": moby_by_name.get(name)}
        for name in ours_by_name.keys() | moby_by_name.keys()
        if ours_by_name.get(name) != moby_by_name.get(name)
    }
    assert differ == {}


def rules_of(resolved: Resolved) -> list[tuple[str, int, tuple[tuple[int, str, int, int], ...]]]:
    return sorted((rule.name, rule.action, rule.args) for rule in resolved.rules)


@pytest.mark.parametrize("caps_name", CAP_SETS)
def test_resolved_for_a_task_the_rules_are_mobys(caps_name: str) -> None:
    task_caps = CAP_SETS[caps_name]
    ours = resolve(DEFAULT_PROFILE, load(DEFAULT_PROFILE), task_caps)
    moby = resolve(MOBY_PROFILE, load(MOBY_PROFILE), task_caps)
    assert (ours.default_action, ours.arches) == (moby.default_action, moby.arches)
    assert rules_of(ours) == rules_of(moby)


def holds(op: str, arg: int, value: int, value_two: int) -> bool:
    return {
        "SCMP_CMP_NE": arg != value,
        "SCMP_CMP_LT": arg < value,
        "SCMP_CMP_LE": arg <= value,
        "SCMP_CMP_EQ": arg == value,
        "SCMP_CMP_GE": arg >= value,
        "SCMP_CMP_GT": arg > value,
        "SCMP_CMP_MASKED_EQ": arg & value == value_two,
    }[op]


def action_for(resolved: Resolved, name: str, *args: int) -> int:
    """What libseccomp's filter does with the call: the action of a rule whose comparisons all hold
    (rules of one call are alternatives, comparisons of one rule all apply), else the default."""
    for rule in resolved.rules:
        if rule.name == name and all(holds(op, args[index], value, two) for index, op, value, two in rule.args):
            return rule.action
    return resolved.default_action


def default_for(task_caps: frozenset[str]) -> Resolved:
    return resolve(DEFAULT_PROFILE, load(DEFAULT_PROFILE), task_caps)


@pytest.mark.parametrize("caps_name", CAP_SETS)
def test_af_vsock_is_refused_whatever_the_capabilities(caps_name: str) -> None:
    """vsock is not network-namespaced: a task could reach the host's vsock ports and the hypervisor."""
    resolved = default_for(CAP_SETS[caps_name])
    assert action_for(resolved, "socket", socket.AF_VSOCK, socket.SOCK_STREAM, 0) == EPERM
    assert action_for(resolved, "socket", 38, socket.SOCK_SEQPACKET, 0) == EPERM  # AF_ALG, as Docker
    for family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET):
        assert action_for(resolved, "socket", family, socket.SOCK_STREAM, 0) == ALLOW, family


def test_personality_takes_only_the_upstream_values() -> None:
    resolved = default_for(caps.DOCKER_DEFAULT)
    for allowed in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert action_for(resolved, "personality", allowed) == ALLOW, allowed
    assert action_for(resolved, "personality", 0x0040000) == EPERM  # ADDR_NO_RANDOMIZE


def test_clone_makes_no_namespace_without_sys_admin() -> None:
    plain = default_for(caps.DOCKER_DEFAULT)
    assert action_for(plain, "clone", CLONE_THREAD_FLAGS) == ALLOW
    assert action_for(plain, "clone", CLONE_NEWUSER) == EPERM
    assert action_for(plain, "clone3", 0) == ENOSYS  # so libc falls back to clone, whose flags are checked
    admin = default_for(caps.DOCKER_DEFAULT | {"SYS_ADMIN"})
    assert (action_for(admin, "clone", CLONE_NEWUSER), action_for(admin, "clone3", 0)) == (ALLOW, ALLOW)
