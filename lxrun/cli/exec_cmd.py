"""`lxrun exec [OPTIONS] --stack NAME [--] COMMAND [ARGS...]`: one task, streamed live, docker run's exit codes."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from lxrun.cli.common import Parser, UsageError, add_root_option
from lxrun.errors import LxrunError
from lxrun.net.spec import BRIDGE, HOST, NONE, NetworkSpec, parse_publish
from lxrun.options import (
    collect_env,
    parse_int,
    parse_number,
    parse_security_opts,
    parse_size,
    parse_user,
    parse_volume,
)
from lxrun.runtime import run
from lxrun.spec import USERNS_PRIVATE, Limits, Security, TaskSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType
    from typing import TypeVar

    from lxrun.backends.base import TaskHandle
    from lxrun.result import Result

    T = TypeVar("T")

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def parser() -> Parser:
    p = Parser("lxrun exec", "Run COMMAND in a fresh sandbox on a stack; its output streams live.")
    p.add_argument("--stack", required=True, help="stack to run on: NAME (its current version) or NAME@VERSION")
    p.add_argument("-i", "--interactive", action="store_true", help="connect stdin to the task (default: /dev/null)")
    p.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="KEY[=VAL]",
        help="set a variable; KEY alone takes the host's value (repeatable)",
    )
    p.add_argument(
        "--env-file",
        action="append",
        default=[],
        metavar="FILE",
        help="read KEY=VAL lines, # comments (repeatable; -e wins over files)",
    )
    p.add_argument(
        "-w", "--workdir", metavar="DIR", help="working directory in the sandbox, created if missing (default /)"
    )
    p.add_argument("--name", help="task name; also the default hostname")
    p.add_argument(
        "-v",
        "--volume",
        action="append",
        default=[],
        metavar="HOST:CONTAINER[:ro|rw]",
        help="bind-mount a host path, which must exist (repeatable)",
    )
    p.add_argument("--hostname", help="hostname in the sandbox (default: the name, else the task id)")
    p.add_argument("--result-json", metavar="FILE", help="write the result (id, exit code, signal, times) as JSON")
    p.add_argument("--keep", action="store_true", help="keep the task's upper dir (its writes) and print where")
    p.add_argument(
        "--backend", default="native", metavar="NAME", help="native (default), lxc or docker; see `lxrun backends`"
    )
    limits = p.add_argument_group("limits (default: none)")
    limits.add_argument("-m", "--memory", metavar="SIZE", help="RAM limit, e.g. 256m (swap disabled for the task)")
    limits.add_argument("--cpus", metavar="N", help="CPU time as a number of CPUs, e.g. 0.5")
    limits.add_argument("-c", "--cpu-shares", metavar="N", help="relative CPU weight under contention (1024 = default)")
    limits.add_argument("--pids-limit", metavar="N", help="most processes and threads at once")
    limits.add_argument("--cpuset-cpus", metavar="LIST", help="CPUs the task may run on, e.g. 0-1,3")
    limits.add_argument(
        "--cgroup-parent",
        metavar="PATH",
        help="existing cgroup to create the task's cgroup in (default: lxrun/ below lxrun's own)",
    )
    limits.add_argument(
        "--timeout",
        metavar="SECONDS",
        help="wall-clock limit from the start: then SIGTERM, and SIGKILL after --stop-timeout",
    )
    limits.add_argument(
        "--stop-timeout",
        metavar="SECONDS",
        default="10",
        help="seconds between SIGTERM and SIGKILL of every process (default %(default)s)",
    )
    limits.add_argument(
        "--disk",
        metavar="SIZE",
        help="cap each place the task writes (its root's upper dir, /tmp) at SIZE; beyond it: ENOSPC",
    )
    limits.add_argument(
        "--output-limit",
        metavar="SIZE",
        help="keep at most SIZE bytes per stream: its head and tail, the middle dropped and marked",
    )
    security = p.add_argument_group("security (default: a private user namespace, docker's capabilities and seccomp)")
    security.add_argument("-u", "--user", metavar="UID[:GID]", help="run as this user inside (numeric)")
    security.add_argument("--userns", choices=["host"], help="host: no user namespace, the task's root is the host's")
    security.add_argument(
        "--cap-add",
        action="append",
        default=[],
        metavar="CAP",
        help="add a capability to docker's default set (ALL for all; repeatable)",
    )
    security.add_argument(
        "--cap-drop", action="append", default=[], metavar="CAP", help="drop a capability (ALL for all; repeatable)"
    )
    security.add_argument(
        "--security-opt",
        action="append",
        default=[],
        metavar="OPT",
        help="seccomp=unconfined, seccomp=PROFILE.json (Docker's format), no-new-privileges",
    )
    network = p.add_argument_group("network (default: none, only loopback)")
    network.add_argument(
        "--network",
        "--net",
        choices=[NONE, BRIDGE, HOST],
        default=NONE,
        help="none: loopback only; bridge: lxrun's bridge with NAT out; host: the host's",
    )
    network.add_argument(
        "-p",
        "--publish",
        action="append",
        default=[],
        metavar="[IP:]HOSTPORT:PORT[/udp]",
        help="with --network bridge: forward a host port to the task (repeatable)",
    )
    p.add_argument("--stats", action="store_true", help="print a one-line summary of the result on stderr")
    add_root_option(p)
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments, after --")
    return p


@contextlib.contextmanager
def forwarding_signals(handles: list[TaskHandle]) -> Iterator[None]:
    """While the task runs, SIGTERM/INT/HUP/QUIT to lxrun go to the task; it decides how to end."""

    def forward(sig: int, _frame: FrameType | None) -> None:
        for handle in handles:
            handle.send_signal(sig)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def write_result(path: str, result: Result) -> None:
    import json

    try:
        with open(path, "w") as file:
            file.write(json.dumps(result.to_json(), indent=1) + "\n")
    except OSError as exc:
        raise LxrunError("--result-json", exc.strerror or "cannot be written", path=path) from None


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if command[:1] and command[0].startswith("-") and not args.command[:1] == ["--"]:
        raise UsageError(f"lxrun exec: unknown option {command[0]}", "lxrun exec")
    spec = TaskSpec(
        stack=args.stack,
        limits=parse_limits(args),
        timeout=parse_number("--timeout", args.timeout, "seconds, e.g. 60") if args.timeout is not None else None,
        stop_timeout=parse_number("--stop-timeout", args.stop_timeout, "seconds, e.g. 10"),
        output_limit=parse_size("--output-limit", args.output_limit) if args.output_limit is not None else None,
        cgroup_parent=args.cgroup_parent,
        disk=parse_size("--disk", args.disk) if args.disk is not None else None,
        network=NetworkSpec(args.network, [parse_publish(item) for item in args.publish]),
        security=Security(
            userns=args.userns or USERNS_PRIVATE,
            user=parse_user(args.user) if args.user is not None else None,
            cap_add=args.cap_add,
            cap_drop=args.cap_drop,
            seccomp=parse_security_opts(args.security_opt),
        ),
        argv=command,
        env=collect_env(args.env_file, args.env, os.environ),
        workdir=args.workdir,
        name=args.name,
        hostname=args.hostname,
        volumes=[parse_volume(volume) for volume in args.volume],
        stdin=0 if args.interactive else None,
        stdout=1,
        stderr=2,
        keep=args.keep,
    )
    handles: list[TaskHandle] = []
    sys.stdout.flush()
    with forwarding_signals(handles):
        result = run(spec, backend=args.backend, root=args.root, on_start=handles.append)
    for notice in result.notices:
        print(f"lxrun: {notice}", file=sys.stderr)
    if result.upper_dir:
        print(f"lxrun: task {result.task_id} kept its upper dir at {result.upper_dir}", file=sys.stderr)
    if args.stats:
        print(f"lxrun: {summary(result)}", file=sys.stderr)
    if args.result_json:
        write_result(args.result_json, result)
    return result.exit_code


def parse_limits(args: argparse.Namespace) -> Limits:
    def optional(value: str | None, parse: Callable[[str], T]) -> T | None:
        return parse(value) if value is not None else None

    return Limits(
        memory=optional(args.memory, lambda v: parse_size("--memory", v)),
        cpus=optional(args.cpus, lambda v: parse_number("--cpus", v, "e.g. 0.5")),
        cpu_shares=optional(args.cpu_shares, lambda v: parse_int("--cpu-shares", v, "e.g. 512")),
        pids=optional(args.pids_limit, lambda v: parse_int("--pids-limit", v, "e.g. 100")),
        cpuset_cpus=args.cpuset_cpus,
    )


def summary(result: Result) -> str:
    """One line: how the task ended and what it used."""

    def figure(value: float | None, unit: str, scale: float = 1.0, digits: int = 3) -> str:
        return "?" if value is None else f"{value / scale:.{digits}f}{unit}"

    ended = f"signal {result.signal}" if result.signal else f"exit {result.exit_code}"
    flags = [
        flag
        for flag, on in (
            ("oom-killed", result.oom_killed),
            ("timed-out", result.timed_out),
            ("output-truncated", result.output_truncated),
        )
        if on
    ]
    return (
        f"task {result.task_id} {ended}{' ' + ' '.join(flags) if flags else ''}"
        f" wall {result.wall_time:.3f}s cpu {figure(result.cpu_user, 's')} user {figure(result.cpu_system, 's')} sys"
        f" peak {figure(result.peak_memory, 'MiB', 1 << 20, 1)} pids {figure(result.pids_peak, '', 1, 0)}"
    )
