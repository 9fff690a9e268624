"""docker-run-style option strings -> spec values: `-e KEY[=VAL]`, `--env-file`, `-v HOST:CONTAINER[:OPTIONS]`, sizes
(`256m`), CPU counts and durations."""

from __future__ import annotations

from lxrun.errors import SpecError
from lxrun.spec import UNLIMITED, Volume

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


ENV_FILE_MAX = 1 << 20  # bytes: far more than an environment execve takes (ARG_MAX), less than a runaway read
WHITESPACE = " \t"  # docker's: a variable name holding either is refused


def parse_env_item(item: str, host_env: Mapping[str, str], where: str = "-e") -> tuple[str, str]:
    """`KEY=VAL`, or `KEY` alone to take the host's value (an error if the host has none). KEY follows
    docker's env-file rule: leading blanks dropped, then neither blanks nor NUL in it; VAL is taken as is."""
    key, sep, value = item.partition("=")
    key = key.lstrip(WHITESPACE)
    if not key:
        raise SpecError(where, "needs KEY=VALUE", path=repr(item))
    if any(char in key for char in WHITESPACE) or "\0" in key:
        raise SpecError(where, "variable name contains whitespace or NUL", path=repr(key), hint="e.g. KEY=VALUE")
    if "\0" in value:
        raise SpecError(where, "value contains a NUL byte", path=key)
    if sep:
        return key, value
    if key not in host_env:
        raise SpecError(where, "is not set on the host", path=key, hint=f"give a value: -e {key}=VALUE")
    return key, host_env[key]


def read_env_file(path: str, host_env: Mapping[str, str]) -> list[tuple[str, str]]:
    """docker's env-file format: KEY=VAL or KEY per line, UTF-8 (a leading BOM dropped); blank lines and
    lines starting with # are skipped. At most ENV_FILE_MAX bytes are read."""
    try:
        with open(path, "rb") as file:
            data = file.read(ENV_FILE_MAX + 1)
    except OSError as exc:
        raise SpecError("--env-file", exc.strerror or "cannot be read", path=path) from exc
    if len(data) > ENV_FILE_MAX:
        raise SpecError("--env-file", f"is larger than {ENV_FILE_MAX >> 20} MiB", path=path, hint="is it an env file?")
    pairs = []
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").splitlines(), start=1):
        try:
            line = raw.decode()
        except UnicodeDecodeError as exc:
            raise SpecError("--env-file", f"line {number} is not UTF-8", path=path) from exc
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        pairs.append(parse_env_item(stripped, host_env, where=f"--env-file {path}:{number}"))
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


VOLUME_FORM = "HOST:CONTAINER[:OPTIONS]"
VOLUME_OPTIONS = {"ro", "rw", "noidmap"}


def parse_volume(text: str) -> Volume:
    """`HOST:CONTAINER[:OPTIONS]`, OPTIONS comma-separated as docker's: ro or rw, and noidmap (a plain bind
    where the task has its own user namespace)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise SpecError("-v", f"expected {VOLUME_FORM}", path=text)
    options = parts[2].split(",") if len(parts) == 3 else []
    unknown = [option for option in options if option not in VOLUME_OPTIONS]
    if unknown:
        raise SpecError("-v", f"unknown option {unknown[0]!r}", path=text, hint="use ro or rw, and noidmap")
    if "ro" in options and "rw" in options:
        raise SpecError("-v", "both ro and rw given", path=text, hint="give one")
    return Volume(source=parts[0], target=parts[1], read_only="ro" in options, idmap="noidmap" not in options)


# docker's units for sizes: binary multiples, an optional "b", any case (256m, 1G, 512kb, 100).
SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def split_size(text: str) -> tuple[str, str] | None:
    r"""(number, unit) of `(\d+(?:\.\d+)?)([kmgt]?)b?` in any case, read without re (~3 ms to import with enum)."""
    lowered = text.lower()
    rest = lowered.removesuffix("b")
    unit = rest[-1:] if rest[-1:] in ("k", "m", "g", "t") else ""
    number = rest[: len(rest) - len(unit)]
    whole, dot, fraction = number.partition(".")
    if len(lowered) != len(text) or not whole.isdecimal() or (dot and not fraction.isdecimal()):
        return None
    return number, unit


def parse_size(option: str, text: str) -> int:
    """`256m` -> bytes; `-1` -> UNLIMITED (no cap where the field takes one)."""
    if text.strip() == str(UNLIMITED):
        return UNLIMITED
    match = split_size(text.strip())
    if not match:
        raise SpecError(
            option, "is not a size", path=text or "''", hint="use a number with an optional unit b, k, m, g or t"
        )
    value = float(match[0]) * SIZE_UNITS[match[1]]
    if value >= 1 << 64:  # so many digits that no limit can hold them
        raise SpecError(
            option, "is too large", path=text[:40], hint="use a number with an optional unit b, k, m, g or t"
        )
    return int(value)


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
    if not uid.isascii() or not uid.isdigit() or (sep and not (gid.isascii() and gid.isdigit())):
        raise SpecError("--user", "must be UID or UID:GID, in numbers", path=text, hint="e.g. --user 1000:1000")
    if len(uid) > 10 or len(gid) > 10:
        raise SpecError("--user", "is not a valid id", path=text[:40], hint="use 0..4294967294")
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
