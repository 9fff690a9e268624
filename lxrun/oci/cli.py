"""`lxrun-oci`: runc's command line over lxrun.oci.container. Parses, calls, prints, exits; nothing else.

Global options as runc's: --root (the state root: containers in <root>/oci/, lxrun's task records,
scratch and cgroup names as for any task, so `lxrun --root ROOT gc` and `ps` see them), --log and
--log-format text|json (errors go there as runc writes them, and to stderr), --debug (debug lines in
the log), --systemd-cgroup (accepted; lxrun's own cgroup code places the container under cgroupsPath's
directory where it exists, a systemd slice:prefix:name path is not one: lxrun's own parent is used).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from lxrun.errors import LxrunError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from lxrun.layout import Layout

VERSION = "0.1.0"
DEFAULT_ROOT = "/run/lxrun-oci"


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lxrun-oci", description="lxrun as an OCI runtime (runc's command line)")
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--log")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--systemd-cgroup", action="store_true")
    parser.add_argument("-v", "--version", action="store_true")
    verbs = parser.add_subparsers(dest="verb")
    for name in ("create", "run"):
        verb = verbs.add_parser(name)
        verb.add_argument("--bundle", "-b", default=".")
        verb.add_argument("--pid-file")
        verb.add_argument("--console-socket")
        verb.add_argument("--no-pivot", action="store_true")
        verb.add_argument("--no-new-keyring", action="store_true")
        verb.add_argument("--preserve-fds", type=int, default=0)
        if name == "run":
            verb.add_argument("--detach", "-d", action="store_true")
        verb.add_argument("id")
    execute = verbs.add_parser("exec")
    execute.add_argument("--process", "-p")
    execute.add_argument("--tty", "-t", action="store_true")
    execute.add_argument("--detach", "-d", action="store_true")
    execute.add_argument("--console-socket")
    execute.add_argument("--pid-file")
    execute.add_argument("--env", "-e", action="append", default=[])
    execute.add_argument("--cwd")
    execute.add_argument("--user", "-u")
    execute.add_argument("id")
    execute.add_argument("args", nargs=argparse.REMAINDER)
    for name in ("start", "state"):
        verbs.add_parser(name).add_argument("id")
    kill = verbs.add_parser("kill")
    kill.add_argument("--all", "-a", action="store_true")
    kill.add_argument("id")
    kill.add_argument("signal", nargs="?", default="SIGTERM")
    delete = verbs.add_parser("delete")
    delete.add_argument("--force", "-f", action="store_true")
    delete.add_argument("id")
    listing = verbs.add_parser("list")
    listing.add_argument("--format", "-f", choices=("table", "json"), default="table")
    listing.add_argument("--quiet", "-q", action="store_true")
    spec = verbs.add_parser("spec")
    spec.add_argument("--bundle", "-b", default=".")
    spec.add_argument("--rootless", action="store_true")
    verbs.add_parser("features")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.version:
        print(f"lxrun-oci version {VERSION}\nspec: 1.0.2")
        sys.exit(0)
    if args.verb is None:
        _parser().print_usage(sys.stderr)
        sys.exit(1)
    log = Log(args.log, args.log_format, args.debug)
    log.debug(f"{args.verb} {getattr(args, 'id', '')}")
    try:
        code = _run(args)
    except LxrunError as exc:
        from lxrun.oci.container import OciError

        message = exc.reason if isinstance(exc, OciError) else str(exc)
        log.write("error", message)
        print(message, file=sys.stderr)
        sys.exit(1)
    sys.exit(code)


def _run(args: argparse.Namespace) -> int:
    from lxrun.layout import Layout

    layout = Layout(os.path.abspath(args.root))
    verb = args.verb
    if verb == "spec":
        return _spec(args.bundle)
    if verb == "features":
        return _features()
    from lxrun.oci import container

    if verb == "create":
        created = container.create(
            layout, args.id, args.bundle, pid_file=args.pid_file, console_socket=args.console_socket,
            runner_pid=os.getppid(),
        )  # fmt: skip
        created.detach()
    elif verb == "start":
        container.start(layout, args.id)
    elif verb == "state":
        _print_json(container.oci_state(layout, container.load_state(layout, args.id)))
    elif verb == "kill":
        container.kill(layout, args.id, container.parse_signal(args.signal), args.all)
    elif verb == "delete":
        container.delete(layout, args.id, args.force)
    elif verb == "list":
        _list(layout, args.format, args.quiet)
    elif verb == "run":
        return _foreground(layout, args)
    elif verb == "exec":
        return _exec(layout, args)
    return 0


def _foreground(layout: Layout, args: argparse.Namespace) -> int:
    """create + start; without --detach, wait for the command and delete the container: its exit code."""
    from lxrun.oci import container

    created = container.create(layout, args.id, args.bundle, pid_file=args.pid_file, console_socket=args.console_socket)
    if args.detach:
        created.detach()
        container.start(layout, args.id)
        return 0
    with created.resources:  # releases the container on every path
        container.start(layout, args.id)
        code = container.wait_status_code(created.process.reap())
        hooks = container.saved_hooks(created.state, "poststop")
        container.run_hooks(hooks, container.oci_state(layout, created.state), "poststop", fatal=False)
    return code


def _exec(layout: Layout, args: argparse.Namespace) -> int:
    import contextlib

    from lxrun.oci.exec import exec_process, process_from

    process = process_from(args.process, args.args, args.env, args.cwd, args.user)
    if args.tty:
        process["terminal"] = True
    with contextlib.ExitStack() as resources:
        return exec_process(
            layout, args.id, process, resources, args.detach, pid_file=args.pid_file, console_socket=args.console_socket
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
    import json

    print(json.dumps(value, indent="  "))


def _spec(bundle: str) -> int:
    from lxrun.oci.defaults import default_config

    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        print(f"File {path} exists. Remove it first", file=sys.stderr)
        return 1
    import json

    with open(path, "w") as file:
        json.dump(default_config(), file, indent="\t")
    return 0


def _features() -> int:
    from lxrun.oci.defaults import features

    _print_json(features())
    return 0
