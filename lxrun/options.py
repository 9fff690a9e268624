"""docker-run-style option strings -> spec values: `-e KEY[=VAL]`, `--env-file`, `-v HOST:CONTAINER[:ro|rw]`,
sizes (`256m`), CPU counts and durations."""

from __future__ import annotations

import re

from lxrun.errors import SpecError
from lxrun.spec import UNLIMITED, Volume

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


def parse_env_item(item: str, host_env: Mapping[str, str], where: str = "-e") -> tuple[str, str]:
    """`KEY=VAL`, or `KEY` alone to take the host's value (an error if the host has none)."""
    key, sep, value = item.partition("=")
    if not key:
        raise SpecError(where, "needs KEY=VALUE", path=repr(item))
    if sep:
        return key, value
    if key not in host_env:
        raise SpecError(where, "is not set on the host", path=key, hint=f"give a value: -e {key}=VALUE")
    return key, host_env[key]


def read_env_file(path: str, host_env: Mapping[str, str]) -> list[tuple[str, str]]:
    """docker's env-file format: KEY=VAL or KEY per line; blank lines and lines starting with # are skipped."""
    try:
        with open(path) as file:
            lines = file.read().splitlines()
    except OSError as exc:
        raise SpecError("--env-file", exc.strerror or "cannot be read", path=path) from exc
    pairs = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pairs.append(parse_env_item(line.lstrip(), host_env, where=f"--env-file {path}:{number}"))
    return pairs


def collect_env(env_files: Iterable[str], items: Iterable[str], host_env: Mapping[str, str]) -> dict[str, str]:
    """Env files first, then -e items, so -e wins, as in docker run."""
    env: dict[str, str] = {}
    for path in env_files:
        env.update(read_env_file(path, host_env))
    for item in items:
        key, value = parse_env_item(item, host_env)
        env[key] = value
    return env


def parse_volume(text: str) -> Volume:
    parts = text.split(":")
    if len(parts) == 2:
        source, target, mode = parts[0], parts[1], "rw"
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise SpecError("-v", "expected HOST:CONTAINER[:ro|rw]", path=text)
    if mode not in ("ro", "rw"):
        raise SpecError("-v", f"unknown mode {mode!r}", path=text, hint="use ro or rw")
    if not source or not target:
        raise SpecError("-v", "expected HOST:CONTAINER[:ro|rw]", path=text)
    return Volume(source=source, target=target, read_only=mode == "ro")


# docker's units for sizes: binary multiples, an optional "b", any case (256m, 1G, 512kb, 100).
SIZE_PATTERN = r"(\d+(?:\.\d+)?)([kmgt]?)b?"  # compiled by re on first use: only tasks with a size pay
SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(option: str, text: str) -> int:
    """`256m` -> bytes; `-1` -> UNLIMITED (no cap where the field takes one)."""
    if text.strip() == str(UNLIMITED):
        return UNLIMITED
    match = re.fullmatch(SIZE_PATTERN, text.strip(), re.IGNORECASE)
    if not match:
        raise SpecError(
            option, "is not a size", path=text or "''", hint="use a number with an optional unit b, k, m, g or t"
        )
    return int(float(match[1]) * SIZE_UNITS[match[2].lower()])


def parse_number(option: str, text: str, hint: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise SpecError(option, "is not a number", path=text, hint=hint) from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise SpecError(option, "is not a finite number", path=text, hint=hint)
    return value


def parse_int(option: str, text: str, hint: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise SpecError(option, "is not a whole number", path=text, hint=hint) from exc


def parse_user(text: str) -> tuple[int, int | None]:
    """`UID[:GID]`, numeric: names would need the stack's /etc/passwd at parse time."""
    uid, sep, gid = text.partition(":")
    if not uid.isdigit() or (sep and not gid.isdigit()):
        raise SpecError("--user", "must be UID or UID:GID, in numbers", path=text, hint="e.g. --user 1000:1000")
    return int(uid), int(gid) if sep else None


def parse_security_opts(items: Iterable[str]) -> str:
    """docker's --security-opt: seccomp=unconfined|PROFILE.json and no-new-privileges (always on here).
    Returns the seccomp setting ("default" when not given)."""
    seccomp = "default"
    for item in items:
        key, sep, value = item.partition("=") if "=" in item else item.partition(":")
        if key == "seccomp" and sep and value:
            seccomp = value
        elif key == "no-new-privileges" and value in ("", "true"):
            continue
        elif key == "no-new-privileges":
            raise SpecError("--security-opt", "lxrun always sets no_new_privs", path=item, hint="leave it out")
        else:
            raise SpecError(
                "--security-opt",
                "is not supported",
                path=item,
                hint="use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges",
            )
    return seccomp
