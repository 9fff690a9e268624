"""`lxrun exec`'s options, declared once: parsed here on every start, laid out by argparse for --help.

Importing and setting up argparse (gettext and locale come with it) costs ~3 ms, a fifth of what
the CLI may add to the interpreter's own start, and `lxrun exec` starts once per task; so only
--help pays for it. The parser keeps argparse's rules and messages: no abbreviations, `--opt VAL`
and `--opt=VAL`, `-eKEY=VAL`, bundled flags, the last of a repeated option wins, and everything
from `--` or the first argument that is not an option on is the command.
"""

from __future__ import annotations

from types import SimpleNamespace

from lxrun.cli.usage import UsageError
from lxrun.net.spec import BRIDGE, HOST, NONE
from lxrun.runtime import ROOT_ENV, default_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping
    from typing import Any, NoReturn

PROG = "lxrun exec"
DESCRIPTION = "Run COMMAND in a fresh sandbox on a stack; its output streams live."

FLAG, VALUE, APPEND = "flag", "value", "append"  # store_true, store, append: argparse's actions

LIMITS = "limits (memory, pids, disk and timeout default to the host's, from /etc/lxrun/config.toml)"
SECURITY = "security (default: a private user namespace, docker's capabilities and seccomp)"
NETWORK = "network (default: none, only loopback)"


def negative_number(arg: str) -> bool:
    r"""A value, not an option: argparse's rule `-\d+|-\d*\.\d+`, checked without re (~3 ms to import)."""
    whole, dot, fraction = arg[1:].partition(".")
    if not arg.startswith("-"):
        return False
    return (whole == "" or whole.isdecimal()) and fraction.isdecimal() if dot else whole.isdecimal()


class Option:
    __slots__ = ("choices", "default", "dest", "flags", "group", "help", "kind", "metavar", "required")

    def __init__(
        self,
        *flags: str,
        help: str,
        kind: str = VALUE,
        metavar: str | None = None,
        default: str | None = None,
        choices: tuple[str, ...] | None = None,
        group: str | None = None,
        required: bool = False,
    ) -> None:
        self.flags = flags
        self.dest = next(flag for flag in flags if flag.startswith("--"))[2:].replace("-", "_")
        self.kind = kind
        self.metavar = metavar
        self.help = help
        self.default = default
        self.choices = choices
        self.group = group
        self.required = required

    @property
    def label(self) -> str:
        return "/".join(self.flags)


SOCKET_ENV = "LXRUN_SOCKET"


def options(environ: Mapping[str, str] | None = None) -> tuple[Option, ...]:
    """The table; `environ` (this process's by default) gives --root its default."""
    return (
        Option("--stack", required=True, help="stack to run on: NAME (its current version) or NAME@VERSION"),
        Option("-i", "--interactive", kind=FLAG, help="connect stdin to the task (default: /dev/null)"),
        Option(
            "-t",
            "--tty",
            kind=FLAG,
            help="give the task a terminal of its own (stderr joins stdout); -it for an interactive shell",
        ),
        Option(
            "-e",
            "--env",
            kind=APPEND,
            metavar="KEY[=VAL]",
            help="set a variable; KEY alone takes the host's value (repeatable)",
        ),
        Option(
            "--env-file",
            kind=APPEND,
            metavar="FILE",
            help="read KEY=VAL lines, # comments (repeatable; -e wins over files)",
        ),
        Option(
            "-w", "--workdir", metavar="DIR", help="working directory in the sandbox, created if missing (default /)"
        ),
        Option("--name", help="task name; also the default hostname"),
        Option(
            "--entrypoint",
            metavar="CMD",
            help="replace the image's Entrypoint (and drop its Cmd); '' for none (stacks imported from images)",
        ),
        Option(
            "-v",
            "--volume",
            kind=APPEND,
            metavar="HOST:CONTAINER[:ro|rw][,noidmap]",
            help="bind-mount a host path, which must exist (repeatable); idmapped unless noidmap",
        ),
        Option("--hostname", help="hostname in the sandbox (default: the name, else the task id)"),
        Option("--result-json", metavar="FILE", help="write the result (id, exit code, signal, times) as JSON"),
        Option("--keep", kind=FLAG, help="keep the task's upper dir (its writes) and print where"),
        Option(
            "--backend", default="native", metavar="NAME", help="native (default), lxc or docker; see `lxrun backends`"
        ),
        Option("--stats", kind=FLAG, help="print a one-line summary of the result on stderr"),
        Option(
            "--socket",
            metavar="PATH",
            help=f"run the task through `lxrun serve` listening at PATH (env {SOCKET_ENV}); it behaves the same",
        ),
        Option(
            "--root",
            default=default_root(environ),
            metavar="DIR",
            help=f"state root: layers, stacks, tasks in flight (env {ROOT_ENV}; default %(default)s)",
        ),
        Option(
            "-m",
            "--memory",
            metavar="SIZE",
            group=LIMITS,
            help="RAM limit, e.g. 256m (swap disabled for the task); -1: none",
        ),
        Option("--cpus", metavar="N", group=LIMITS, help="CPU time as a number of CPUs, e.g. 0.5"),
        Option(
            "-c",
            "--cpu-shares",
            metavar="N",
            group=LIMITS,
            help="relative CPU weight under contention (1024 = default)",
        ),
        Option("--pids-limit", metavar="N", group=LIMITS, help="most processes and threads at once; -1: no limit"),
        Option("--cpuset-cpus", metavar="LIST", group=LIMITS, help="CPUs the task may run on, e.g. 0-1,3"),
        Option(
            "--cgroup-parent",
            metavar="PATH",
            group=LIMITS,
            help="existing cgroup to create the task's cgroup in (default: lxrun/ below lxrun's own)",
        ),
        Option(
            "--timeout",
            metavar="SECONDS",
            group=LIMITS,
            help="wall-clock limit from the start: then SIGTERM, and SIGKILL after --stop-timeout; -1: none",
        ),
        Option(
            "--stop-timeout",
            metavar="SECONDS",
            default="10",
            group=LIMITS,
            help="seconds between SIGTERM and SIGKILL of every process (default %(default)s)",
        ),
        Option(
            "--disk",
            metavar="SIZE",
            group=LIMITS,
            help="cap each place the task writes (its root's upper dir, /tmp) at SIZE; beyond it: ENOSPC; -1: no cap",
        ),
        Option(
            "--output-limit",
            metavar="SIZE",
            group=LIMITS,
            help="keep at most SIZE bytes per stream: its head and tail, the middle dropped and marked",
        ),
        Option("-u", "--user", metavar="UID[:GID]", group=SECURITY, help="run as this user inside (numeric)"),
        Option(
            "--userns",
            choices=("host",),
            group=SECURITY,
            help="host: no user namespace, the task's root is the host's",
        ),
        Option(
            "--cap-add",
            kind=APPEND,
            metavar="CAP",
            group=SECURITY,
            help="add a capability to docker's default set (ALL for all; repeatable)",
        ),
        Option(
            "--cap-drop", kind=APPEND, metavar="CAP", group=SECURITY, help="drop a capability (ALL for all; repeatable)"
        ),
        Option(
            "--security-opt",
            kind=APPEND,
            metavar="OPT",
            group=SECURITY,
            help="seccomp=unconfined, seccomp=PROFILE.json (Docker's format), no-new-privileges",
        ),
        Option(
            "--network",
            "--net",
            choices=(NONE, BRIDGE, HOST),
            default=NONE,
            group=NETWORK,
            help="none: loopback only; bridge: lxrun's bridge with NAT out; host: the host's",
        ),
        Option(
            "-p",
            "--publish",
            kind=APPEND,
            metavar="[IP:]HOSTPORT:PORT[/udp]",
            group=NETWORK,
            help="with --network bridge: forward a host port to the task (repeatable)",
        ),
    )


def parse(argv: list[str], environ: Mapping[str, str] | None = None) -> SimpleNamespace:
    """The options as attributes (argparse's dest names), `command`, and `help` when -h/--help came.
    `environ` is the caller's environment (this process's by default)."""
    return Scan(argv, environ).result()


class Scan:
    """One pass over the arguments, left to right, as argparse makes it."""

    def __init__(self, argv: list[str], environ: Mapping[str, str] | None = None) -> None:
        self.rest = list(argv)
        self.table = options(environ)
        self.by_flag = {flag: option for option in self.table for flag in option.flags}
        self.values: dict[str, Any] = {option.dest: initial(option) for option in self.table}
        self.values.update(help=False, command=[])
        self.given: set[str] = set()

    def result(self) -> SimpleNamespace:
        while self.rest:
            arg = self.rest.pop(0)
            if arg == "--":
                self.values["command"] = self.rest
                break
            if arg in ("-h", "--help"):
                self.values["help"] = True
            elif arg.startswith("--"):
                flag, has_value, value = arg.partition("=")
                if flag not in self.by_flag:
                    fail(f"unrecognized arguments: {arg}")
                self.take(self.by_flag[flag], value if has_value else None)
            elif arg.startswith("-") and arg != "-" and not negative_number(arg):
                self.take_bundle(arg)
            else:
                self.values["command"] = [arg, *self.rest]
                break
        missing = [option.flags[0] for option in self.table if option.required and option.dest not in self.given]
        if missing and not self.values["help"]:
            fail(f"the following arguments are required: {', '.join(missing)}")
        return SimpleNamespace(**self.values)

    def take_bundle(self, arg: str) -> None:
        """-ik (flags bundled), -eKEY=VAL or -e=KEY=VAL (a value attached)."""
        for position in range(1, len(arg)):
            option = self.by_flag.get(f"-{arg[position]}")
            if option is None:
                fail(f"unrecognized arguments: {arg}")
            if option.kind != FLAG:
                self.take(option, arg[position + 1 :].removeprefix("=") or None)
                return
            self.take(option, None)

    def take(self, option: Option, attached: str | None) -> None:
        """Store `option`; its value is `attached` (--opt=VAL, -oVAL) or else the next argument."""
        self.given.add(option.dest)
        if option.kind == FLAG:
            if attached is not None:
                fail(f"argument {option.label}: ignored explicit argument {attached!r}")
            self.values[option.dest] = True
            return
        value = attached
        if value is None:
            if not self.rest or (self.rest[0].startswith("-") and not negative_number(self.rest[0])):
                fail(f"argument {option.label}: expected one argument")
            value = self.rest.pop(0)
        if option.choices and value not in option.choices:
            choices = ", ".join(repr(choice) for choice in option.choices)
            fail(f"argument {option.label}: invalid choice: {value!r} (choose from {choices})")
        if option.kind == APPEND:
            self.values[option.dest].append(value)
        else:
            self.values[option.dest] = value


def initial(option: Option) -> Any:
    if option.kind == APPEND:
        return []
    return False if option.kind == FLAG else option.default


def fail(message: str) -> NoReturn:
    raise UsageError(f"{PROG}: {message}", PROG)


def help_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The same options as an argparse parser, for its --help layout."""
    import argparse

    from lxrun.cli.common import Parser

    parser = Parser(PROG, DESCRIPTION)
    groups: dict[str | None, Any] = {None: parser}
    for option in options(environ):
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        container = groups[option.group]
        if option.kind == FLAG:
            container.add_argument(*option.flags, action="store_true", help=option.help)
        else:
            container.add_argument(
                *option.flags,
                action="append" if option.kind == APPEND else "store",
                metavar=option.metavar,
                default=option.default,
                choices=option.choices,
                required=option.required,
                help=option.help,
            )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments, after --")
    return parser
