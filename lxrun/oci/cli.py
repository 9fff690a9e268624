"""`lxrun-oci`: runc's command line over lxrun.oci.container. Parses, calls, prints, exits; nothing else.

Global options as runc's: --root (the state root: containers in <root>/oci/, lxrun's task records,
scratch and cgroup names as for any task, so `lxrun --root ROOT gc` and `ps` see them), --log and
--log-format text|json (errors go there as runc writes them, and to stderr), --debug (debug lines in
the log), --systemd-cgroup (accepted; lxrun's own cgroup code places the container under cgroupsPath's
directory where it exists, a systemd slice:prefix:name path is not one: lxrun's own parent is used).
"""

from __future__ import annotations

import os
import sys
import time

from lxrun.errors import LxrunError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from lxrun.layout import Layout
    from lxrun.oci.args import Args

VERSION = "0.1.0"
DEFAULT_ROOT = "/run/lxrun-oci"
USAGE = """usage: lxrun-oci [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] COMMAND
commands (runc's): create, start, state, kill, delete, run, exec, list, spec, features, pause, resume,
update, ps, events; --version"""


class Log:
    """Where runc's logrus would write: the --log file (text or json lines), else stderr."""

    def __init__(self, path: str | None, fmt: str, debug: bool) -> None:
        self.path, self.fmt, self.debug_on = path, fmt, debug
        self.fd = -1
        if path is not None:  # opened now, as runc does: `exec` leaves the host's mount namespace
            try:
                self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                print(f"log {path}: {exc.strerror}", file=sys.stderr)

    def write(self, level: str, message: str) -> None:
        if self.fd < 0:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.fmt == "json":
            from lxrun import plainjson as json

            line = json.dumps({"level": level, "msg": message, "time": stamp})
        else:
            line = f'time="{stamp}" level={level} msg="{message}"'
        try:
            os.write(self.fd, f"{line}\n".encode())
        except OSError as exc:
            print(f"log {self.path}: {exc.strerror}", file=sys.stderr)

    def debug(self, message: str) -> None:
        if self.debug_on:
            self.write("debug", message)


def main(argv: Sequence[str] | None = None) -> None:
    from lxrun.oci.args import UsageError, parse

    try:
        args = parse(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"lxrun-oci: {exc}", file=sys.stderr)
        sys.exit(1)
    if args.globals.get("--version"):
        print(f"lxrun-oci version {VERSION}\nspec: 1.0.2")
        sys.exit(0)
    if args.verb is None or args.globals.get("--help"):
        print(USAGE, file=sys.stderr)
        sys.exit(0 if args.globals.get("--help") else 1)
    log = Log(_text(args.globals.get("--log")), _text(args.globals.get("--log-format")) or "text",
              bool(args.globals.get("--debug")))  # fmt: skip
    log.debug(f"{args.verb} {' '.join(args.positionals)}")
    try:
        code = _run(args)
        sys.stdout.flush()
    except LxrunError as exc:
        from lxrun.oci.container import OciError

        message = exc.reason if isinstance(exc, OciError) else str(exc)
        log.write("error", message)
        print(message, file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:
        # The reader of our output went away (`lxrun-oci list | head`): one line, not a traceback; what
        # is still buffered goes nowhere, so the final flush can't fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        log.write("error", "write to stdout: the reader went away")
        print("lxrun-oci: write to stdout: the reader went away", file=sys.stderr)
        sys.exit(1)
    sys.exit(code)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _run(args: Args) -> int:
    from lxrun.layout import Layout

    layout = Layout(os.path.abspath(_text(args.globals.get("--root")) or DEFAULT_ROOT))
    verb, ids = args.verb, args.positionals
    if verb == "spec":
        return _spec(args.option("--bundle", ".") or ".")
    if verb == "features":
        return _features()
    if verb == "list":
        _list(layout, args.option("--format", "table") or "table", args.switch("--quiet"))
        return 0
    from lxrun.oci import container

    if verb == "create":
        created = container.create(
            layout, ids[0], args.option("--bundle", ".") or ".", pid_file=args.option("--pid-file"),
            console_socket=args.option("--console-socket"), runner_pid=os.getppid(),
        )  # fmt: skip
        created.detach()
    elif verb == "start":
        container.start(layout, ids[0])
    elif verb == "state":
        _print_json(container.oci_state(layout, container.load_state(layout, ids[0])))
    elif verb == "kill":
        signal_name = ids[1] if len(ids) > 1 else "SIGTERM"
        container.kill(layout, ids[0], container.parse_signal(signal_name), args.switch("--all"))
    elif verb == "delete":
        container.delete(layout, ids[0], args.switch("--force"))
    elif verb == "run":
        return _foreground(layout, args)
    elif verb == "exec":
        return _exec(layout, args)
    elif verb in ("pause", "resume", "update", "ps", "events"):
        _control(layout, args)
    return 0


def _control(layout: Layout, args: Args) -> None:
    """The verbs on a running container's cgroup (lxrun/oci/control.py)."""
    import json

    from lxrun.errors import SpecError
    from lxrun.oci import control

    container_id = args.positionals[0]
    if args.verb == "pause":
        control.pause(layout, container_id)
    elif args.verb == "resume":
        control.resume(layout, container_id)
    elif args.verb == "update":
        control.update(layout, container_id, _resources(args) if args.option("--resources") else
                       control.resources_from_options(args.options))  # fmt: skip
    elif args.verb == "ps":
        pids = control.processes(layout, container_id)
        fmt = args.option("--format", "table")
        if fmt == "json":
            print(json.dumps(pids))
        elif fmt == "table":
            print(control.ps_table(pids, args.positionals[1:]), end="")
        else:
            raise SpecError("--format", "invalid format option", hint="table or json")
    elif args.verb == "events":
        interval = None if args.switch("--stats") else control.parse_interval(args.option("--interval", "5s") or "5s")

        def emit(event: dict[str, Any]) -> None:
            print(json.dumps(event, separators=(",", ":")), flush=True)

        control.events(layout, container_id, interval, emit)


def _resources(args: Args) -> Any:
    """update's --resources FILE ("-": stdin, as docker sends it), parsed; runc then ignores the flags."""
    import json

    from lxrun.errors import SpecError

    path = args.option("--resources") or "-"
    try:
        if path == "-":
            return json.load(sys.stdin)
        with open(path) as file:
            return json.load(file)
    except OSError as exc:
        raise SpecError("--resources", exc.strerror or str(exc), path=path) from exc
    except ValueError as exc:
        raise SpecError("--resources", f"is not JSON: {exc}", path=path) from exc


def _foreground(layout: Layout, args: Args) -> int:
    """create + start; without --detach, wait for the command and delete the container: its exit code."""
    from lxrun.oci import container

    container_id = args.positionals[0]
    created = container.create(
        layout,
        container_id,
        args.option("--bundle", ".") or ".",
        pid_file=args.option("--pid-file"),
        console_socket=args.option("--console-socket"),
    )
    if args.switch("--detach"):
        created.detach()
        container.start(layout, container_id)
        return 0
    with created.resources:  # releases the container on every path
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, lambda number, _: created.process.send_signal(number))  # as runc run passes them on
        container.start(layout, container_id)
        code = container.wait_status_code(created.process.reap())
        from lxrun.oci.hooks import run_hooks, saved_hooks

        hooks = saved_hooks(created.state, "poststop")
        run_hooks(hooks, container.oci_state(layout, created.state), "poststop", fatal=False)
    return code


def _exec(layout: Layout, args: Args) -> int:
    import contextlib

    from lxrun.oci.exec import exec_process, process_from

    env = args.options.get("--env")
    process = process_from(args.option("--process"), args.positionals[1:], env if isinstance(env, list) else [],
                           args.option("--cwd"), args.option("--user"))  # fmt: skip
    if args.switch("--tty"):
        process["terminal"] = True
    with contextlib.ExitStack() as resources:
        return exec_process(
            layout,
            args.positionals[0],
            process,
            resources,
            args.switch("--detach"),
            pid_file=args.option("--pid-file"),
            console_socket=args.option("--console-socket"),
        )


def _list(layout: Layout, fmt: str, quiet: bool) -> None:
    from lxrun.oci import container

    states = container.list_states(layout)
    if quiet:
        for state in states:
            print(state["id"])
    elif fmt == "json":
        _print_json(states)
    else:
        print(f"{'ID':<20}{'PID':<10}{'STATUS':<10}{'BUNDLE':<40}CREATED")
        for state in states:
            print(f"{state['id']:<20}{state['pid']:<10}{state['status']:<10}{state['bundle']:<40}{state['created']}")


def _print_json(value: Any) -> None:
    from lxrun import plainjson as json  # the json package's import is ~4 ms of each `state` an engine calls

    print(json.dumps(value, indent="  "))


def _spec(bundle: str) -> int:
    from lxrun.oci.defaults import default_config

    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        print(f"File {path} exists. Remove it first", file=sys.stderr)
        return 1
    from lxrun import plainjson as json

    with open(path, "w") as file:
        file.write(json.dumps(default_config(), indent="\t"))
    return 0


def _features() -> int:
    from lxrun.oci.defaults import features

    _print_json(features())
    return 0
