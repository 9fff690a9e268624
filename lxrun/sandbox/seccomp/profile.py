"""Docker's seccomp JSON profile format, read and resolved for one task into plain rules.

Resolving applies what depends on the task and the host: `includes`/`excludes` on the task's
capabilities, the architecture and the kernel version; which architectures the filter covers
(`archMap` for the native one, or the older `architectures` list); errno values folded into the
action. Bad profiles raise SpecError naming the file and the key.
"""

from __future__ import annotations

import json
import os

from lxrun.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# libseccomp's action encodings (seccomp.h): the low 16 bits carry an errno or a trace message.
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
WITH_VALUE = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
# Go's architecture names (used by `includes.arches`) for what uname reports.
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm"}
SCMP_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}


class Rule:
    __slots__ = ("action", "args", "name")

    def __init__(self, name: str, action: int, args: tuple[tuple[int, str, int, int], ...]) -> None:
        self.name = name
        self.action = action
        self.args = args  # (index, op name e.g. "SCMP_CMP_EQ", value, value_two)


class Resolved:
    """A profile resolved for one task: default action, extra architectures, rules in order."""

    __slots__ = ("arches", "default_action", "rules")

    def __init__(self, default_action: int, arches: list[str], rules: list[Rule]) -> None:
        self.default_action = default_action
        self.arches = arches
        self.rules = rules


def load(path: str) -> dict[str, Any]:
    try:
        with open(path) as file:
            data = json.load(file)
    except OSError as exc:
        raise SpecError("seccomp", exc.strerror or "cannot be read", path=path) from exc
    except json.JSONDecodeError as exc:
        raise SpecError("seccomp", f"is not valid JSON: {exc}", path=path) from exc
    if not isinstance(data, dict):
        raise SpecError("seccomp", "must be a JSON object", path=path)
    return data


def _action(path: str, where: str, name: object, value: object) -> int:
    if name not in ACTIONS:
        raise SpecError(
            "seccomp",
            f"{where}: unknown action {name!r}",
            path=path,
            hint=f"use one of {', '.join(ACTIONS)}",
        )
    assert isinstance(name, str)
    if name in WITH_VALUE:
        number = value if isinstance(value, int) else 1  # EPERM, docker's default
        return ACTIONS[name] | (number & 0xFFFF)
    return ACTIONS[name]


def _applies(condition: dict[str, Any], caps: frozenset[str], machine: str, kernel: tuple[int, ...]) -> bool:
    """Whether an includes/excludes block matches this task and host (an empty block matches)."""
    wanted_caps = {c.upper().removeprefix("CAP_") for c in condition.get("caps", [])}
    arches = condition.get("arches", [])
    min_kernel = condition.get("minKernel")
    return (
        wanted_caps <= caps
        and (not arches or GO_ARCH.get(machine, machine) in arches)
        and (min_kernel is None or kernel >= tuple(int(p) for p in str(min_kernel).split(".")))
    )


def _args(path: str, where: str, args: object) -> tuple[tuple[int, str, int, int], ...]:
    if args is None:
        return ()
    if not isinstance(args, list):
        raise SpecError("seccomp", f"{where}.args must be a list", path=path)
    out = []
    for number, arg in enumerate(args):
        if not isinstance(arg, dict) or arg.get("op") not in OPS or not isinstance(arg.get("index"), int):
            raise SpecError(
                "seccomp",
                f"{where}.args[{number}] needs an index and an op in {', '.join(OPS)}",
                path=path,
            )
        out.append((arg["index"], arg["op"], int(arg.get("value", 0)), int(arg.get("valueTwo", 0))))
    return tuple(out)


def _kernel() -> tuple[int, ...]:
    parts = []
    for part in os.uname().release.split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def resolve(path: str, data: dict[str, Any], caps: frozenset[str]) -> Resolved:
    machine = os.uname().machine
    kernel = _kernel()
    default = _action(path, "defaultAction", data.get("defaultAction"), data.get("defaultErrnoRet"))
    native = SCMP_ARCH.get(machine)
    arches: list[str] = []
    for entry in data.get("archMap") or []:
        if isinstance(entry, dict) and entry.get("architecture") == native:
            arches += [a for a in entry.get("subArchitectures", []) if isinstance(a, str)]
    arches += [a for a in data.get("architectures") or [] if isinstance(a, str) and a != native]
    rules: list[Rule] = []
    entries = data.get("syscalls") or []
    if not isinstance(entries, list):
        raise SpecError("seccomp", "syscalls must be a list", path=path)
    for number, entry in enumerate(entries):
        where = f"syscalls[{number}]"
        if not isinstance(entry, dict):
            raise SpecError("seccomp", f"{where} must be an object", path=path)
        names = entry.get("names") or ([entry["name"]] if isinstance(entry.get("name"), str) else [])
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise SpecError("seccomp", f"{where} has no syscall names", path=path)
        if not _applies(entry.get("includes") or {}, caps, machine, kernel):
            continue
        excludes = entry.get("excludes") or {}
        if excludes and _applies(excludes, caps, machine, kernel):
            continue
        action = _action(path, where, entry.get("action"), entry.get("errnoRet"))
        if action == default:
            continue  # libseccomp refuses a rule that repeats the default
        args = _args(path, where, entry.get("args"))
        rules += [Rule(name, action, args) for name in names]
    return Resolved(default, arches, rules)
