"""`lxrun exec [OPTIONS] --stack NAME [--] [COMMAND [ARGS...]]`: one task, streamed live, docker run's exit codes."""

from __future__ import annotations

import contextlib
import gc
import os
import sys

from lxrun import signals as signal
from lxrun.cli.exec_options import SOCKET_ENV, help_parser, parse
from lxrun.cli.usage import UsageError, root_arg
from lxrun.errors import LxrunError
from lxrun.net.spec import NetworkSpec, parse_publish
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
    from collections.abc import Callable, Iterator, Mapping
    from types import FrameType, SimpleNamespace
    from typing import NoReturn, TextIO, TypeVar

    from lxrun import Result, TaskHandle, TaskSpec
    from lxrun.backends.base import OnStart
    from lxrun.cli.result_file import Place, ResultFile

    T = TypeVar("T")
    # (spec, backend, state root, on_start) -> its Result
    Runner = Callable[[TaskSpec, str, str, OnStart | None], Result]

# Not forwarded, as docker's sig-proxy: SIGKILL and SIGSTOP (can't be caught), SIGCHLD (lxrun's own
# children), SIGPIPE (lxrun's writes to a reader that left end the task's output instead: see
# sandbox/relay.py). Nor the signals the kernel raises for a fault in lxrun itself: a handler that
# returns would rerun the faulting instruction forever.
NOT_FORWARDED = frozenset(
    {
        signal.SIGKILL,
        signal.SIGSTOP,
        signal.SIGCHLD,
        signal.SIGPIPE,
        signal.SIGSEGV,
        signal.SIGBUS,
        signal.SIGFPE,
        signal.SIGILL,
        signal.SIGTRAP,
        signal.SIGSYS,
        # Job control of lxrun itself: caught, a background `lxrun exec -i` reading the terminal would be
        # sent SIGTTIN again at each retry of its read, spinning; left alone, the shell stops it as any job.
        signal.SIGTTIN,
        signal.SIGTTOU,
    }
)


class Forwarder:
    """Every signal lxrun can catch goes to the task, which decides what it means (SIGTSTP stops the
    task, not lxrun); SIGWINCH resizes a task's own terminal. One that comes before
    the task runs waits for it: the task may print before lxrun has its handle."""

    def __init__(self) -> None:
        self.handles: list[TaskHandle] = []
        self.early: list[int] = []

    def started(self, handle: TaskHandle) -> None:
        self.handles.append(handle)
        while self.early:  # a signal from here on goes straight to the handle
            handle.send_signal(self.early.pop(0))

    def forward(self, sig: int, _frame: FrameType | None) -> None:
        if not self.handles:
            self.early.append(sig)
        for handle in self.handles:
            handle.send_signal(sig)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {}
        for sig in signal.valid_signals():
            if sig not in NOT_FORWARDED:
                with contextlib.suppress(OSError, ValueError):  # the C library's own (glibc's 32 and 33)
                    previous[sig] = signal.signal(sig, self.forward)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class Caller:
    """Who asked for the task: the environment its options are read with (LXRUN_ROOT, `-e KEY`), the
    descriptors that are the task's stdio, the streams lxrun's own lines go to, and where a
    --result-json file is made (None: here), and what runs it (None: lxrun.run). `lxrun exec`'s own
    process, or a client of `lxrun serve`."""

    __slots__ = ("environ", "err", "out", "place", "runner", "stderr", "stdin", "stdout")

    def __init__(
        self,
        environ: Mapping[str, str],
        stdio: tuple[int, int, int],
        out: TextIO,
        err: TextIO,
        place: Place | None = None,
    ) -> None:
        self.environ = environ
        self.stdin, self.stdout, self.stderr = stdio
        self.out = out
        self.err = err
        self.place = place
        self.runner: Runner | None = None  # what runs the task: lxrun.run, or `lxrun serve`'s pools


def main(argv: list[str]) -> int:
    args = parse(argv)
    socket = args.socket or os.environ.get(SOCKET_ENV)
    if socket:
        relay(socket, argv)
    return execute(args, Caller(os.environ, (0, 1, 2), sys.stdout, sys.stderr), Forwarder())


def relay(socket: str, argv: list[str]) -> NoReturn:
    """With a socket configured the task is the server's: the native client takes this process over
    (`lxrun` installed as that client relays without starting Python at all)."""
    client = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_lxrun_client")
    sys.stdout.flush()
    try:
        os.execv(client, [client, "--relay", socket, *argv])
    except OSError as exc:
        raise LxrunError.from_os_error("--socket", exc, client, hint="lxrun's native parts are not built") from exc


def execute(args: SimpleNamespace, caller: Caller, forwarder: Forwarder) -> int:
    """`lxrun exec` once its options are read: help, or the task run to its end; its exit code."""
    if args.help:
        help_parser(caller.environ).print_help(caller.out)
        return 0
    root_arg(args.root)
    if args.socket == "":  # not a path (a relay only looks at it when it is one)
        raise UsageError("lxrun exec: argument --socket: is empty", "lxrun exec")
    if args.result_json is None:
        return run_task(args, None, caller, forwarder)
    from lxrun.cli.result_file import result_file

    with result_file(args.result_json, caller.place) as destination:  # checked and cleared before anything runs
        return run_task(args, destination, caller, forwarder)


def run_task(args: SimpleNamespace, destination: ResultFile | None, caller: Caller, forwarder: Forwarder) -> int:
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
        argv=args.command or None,  # None: the image's Cmd, on a stack imported from one
        entrypoint=None if args.entrypoint is None else [args.entrypoint] if args.entrypoint else [],
        env=collect_env(args.env_file, args.env, caller.environ),
        workdir=args.workdir,
        name=args.name,
        hostname=args.hostname,
        volumes=[parse_volume(volume) for volume in args.volume],
        stdin=caller.stdin if args.interactive else None,
        stdout=caller.stdout,
        stderr=caller.stderr,
        keep=args.keep,
        tty=args.tty,
    )

    def started(handle: TaskHandle) -> None:
        if not gc.isenabled():  # bin/lxrun's start without the collector is over; what it made lives on,
            gc.freeze()  # so the collector comes back without ever scanning it
            gc.enable()
        forwarder.started(handle)

    caller.out.flush()
    with forwarder.installed():
        if caller.runner is not None:
            result = caller.runner(spec, args.backend, args.root, started)
        else:
            result = run(spec, backend=args.backend, root=args.root, on_start=started)
    for notice in result.notices:
        print(f"lxrun: {notice}", file=caller.err)
    if result.upper_dir:
        print(f"lxrun: task {result.task_id} kept its upper dir at {result.upper_dir}", file=caller.err)
    if args.stats:
        print(f"lxrun: {summary(result)}", file=caller.err)
    elif result.timed_out or result.oom_killed:  # else a 137 or 143 would not say who ended the task
        print(f"lxrun: {ending(result)}", file=caller.err)
    if destination is not None:
        destination.commit(result)
    return result.exit_code


def parse_limits(args: SimpleNamespace) -> Limits:
    def optional(value: str | None, parse: Callable[[str], T]) -> T | None:
        return parse(value) if value is not None else None

    return Limits(
        memory=optional(args.memory, lambda v: parse_size("--memory", v)),
        cpus=optional(args.cpus, lambda v: parse_number("--cpus", v, "e.g. 0.5")),
        cpu_shares=optional(args.cpu_shares, lambda v: parse_int("--cpu-shares", v, "e.g. 512")),
        pids=optional(args.pids_limit, lambda v: parse_int("--pids-limit", v, "e.g. 100")),
        cpuset_cpus=args.cpuset_cpus,
    )


def ending(result: Result) -> str:
    """Why lxrun ended the task, when it did: its timeout or the kernel's OOM killer."""
    why = "reached its --timeout" if result.timed_out else "ran out of memory (--memory) and the kernel killed it"
    return f"task {result.task_id} {why}: exit {result.exit_code}"


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
