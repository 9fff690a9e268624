"""runc's command line as data: global options, a verb, its options and positionals (no argparse: engines
call the runtime several times per container, and argparse's import and parser build cost ~10 ms of each).

Options take `--name value` or `--name=value`; a verb's short aliases map to the long names. What runc
accepts and lxrun ignores is accepted here too (docs/oci.md says which)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# option -> takes a value (True) or is a switch (False); a str is an alias of that option.
OptionTable = dict[str, "bool | str"]

GLOBAL: OptionTable = {
    "--root": True, "--log": True, "--log-format": True, "--debug": False, "--systemd-cgroup": False,
    "--criu": True, "--rootless": True, "--version": False, "-v": "--version", "--help": False, "-h": "--help",
}  # fmt: skip
CREATE: OptionTable = {
    "--bundle": True, "-b": "--bundle", "--pid-file": True, "--console-socket": True, "--no-pivot": False,
    "--no-new-keyring": False, "--preserve-fds": True, "--pidfd-socket": True,
}  # fmt: skip
VERBS: dict[str, tuple[OptionTable, int]] = {  # verb -> (options, positionals it takes: -1 for id + command)
    "create": (CREATE, 1),
    "run": ({**CREATE, "--detach": False, "-d": "--detach", "--keep": False}, 1),
    "start": ({}, 1),
    "state": ({}, 1),
    "kill": ({"--all": False, "-a": "--all"}, 2),
    "delete": ({"--force": False, "-f": "--force"}, 1),
    "list": ({"--format": True, "-f": "--format", "--quiet": False, "-q": "--quiet"}, 0),
    "spec": ({"--bundle": True, "-b": "--bundle", "--rootless": False}, 0),
    "features": ({}, 0),
    "pause": ({}, 1),
    "resume": ({}, 1),
    "ps": ({"--format": True, "-f": "--format"}, -1),  # id, then ps's own options
    "events": ({"--stats": False, "--interval": True}, 1),
    "update": (
        {"--resources": True, "-r": "--resources", "--memory": True, "--memory-swap": True,
         "--memory-reservation": True, "--cpu-period": True, "--cpu-quota": True, "--cpu-share": True,
         "--cpu-shares": "--cpu-share", "--cpu-rt-period": True, "--cpu-rt-runtime": True, "--cpu-burst": True,
         "--cpuset-cpus": True, "--cpuset-mems": True, "--pids-limit": True, "--blkio-weight": True},
        1,
    ),
    "exec": (
        {"--process": True, "-p": "--process", "--tty": False, "-t": "--tty", "--detach": False, "-d": "--detach",
         "--console-socket": True, "--pid-file": True, "--env": True, "-e": "--env", "--cwd": True, "--user": True,
         "-u": "--user", "--preserve-fds": True, "--no-new-privs": False, "--cap": True, "-c": "--cap",
         "--process-label": True, "--apparmor": True, "--additional-gids": True, "-g": "--additional-gids",
         "--ignore-paused": False, "--pidfd-socket": True},
        -1,
    ),
}  # fmt: skip
REPEATED = frozenset({"--env", "--cap", "--additional-gids"})


class UsageError(Exception):
    """The command line itself is wrong (runc's words where it has them)."""


class Args:
    """`options` by long name (a switch: True; a repeated one: a list), `positionals` in order."""

    def __init__(self) -> None:
        self.globals: dict[str, object] = {}
        self.verb: str | None = None
        self.options: dict[str, object] = {}
        self.positionals: list[str] = []

    def option(self, name: str, default: str | None = None) -> str | None:
        value = self.options.get(name, default)
        return value if isinstance(value, str) or value is None else default

    def switch(self, name: str) -> bool:
        return bool(self.options.get(name))


def _take(table: OptionTable, argv: Sequence[str], at: int, into: dict[str, object]) -> int:
    """Parse the option at argv[at] into `into`; returns the index after it."""
    name, has_value, value = argv[at].partition("=")
    spec = table.get(name)
    if isinstance(spec, str):
        name, spec = spec, table[spec]
    if spec is None:
        raise UsageError(f"flag provided but not defined: {name}")
    if not spec:
        into[name] = True
        return at + 1
    if not has_value:
        if at + 1 >= len(argv):
            raise UsageError(f"flag needs an argument: {name}")
        value, at = argv[at + 1], at + 1
    if name in REPEATED:
        values = into.setdefault(name, [])
        assert isinstance(values, list)
        values.append(value)
    else:
        into[name] = value
    return at + 1


def parse(argv: Sequence[str]) -> Args:
    args = Args()
    at = 0
    while at < len(argv) and argv[at].startswith("-"):
        at = _take(GLOBAL, argv, at, args.globals)
    if at == len(argv):
        return args
    args.verb = argv[at]
    if args.verb not in VERBS:
        raise UsageError(f"No help topic for '{args.verb}'")
    table, wanted = VERBS[args.verb]
    at += 1
    while at < len(argv):
        if argv[at] == "--":
            args.positionals += argv[at + 1 :]
            break
        if argv[at].startswith("-") and len(argv[at]) > 1 and not (wanted == -1 and args.positionals):
            at = _take(table, argv, at, args.options)
            continue
        args.positionals.append(argv[at])
        at += 1
    required = 1 if wanted == -1 else wanted
    if args.verb == "kill":
        required = 1
    if len(args.positionals) < required or (wanted >= 0 and len(args.positionals) > wanted):
        raise UsageError(f'"{args.verb}" requires {"exactly " if wanted >= 0 else "at least "}{required} argument(s)')
    return args
