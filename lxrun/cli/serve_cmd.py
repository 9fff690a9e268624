"""`lxrun serve --socket PATH [--group GROUP] [--root DIR] [--pool STACK[=N] ...]`: run `lxrun exec`
tasks for local clients until stopped.

Clients are `lxrun exec --socket PATH` or `lxrun exec` with LXRUN_SOCKET set (native/client.c); each
task runs through the API as `lxrun exec` would run it (lxrun/cli/serve/): warm, handed to a prepared
sandbox, where a --pool of its stack on --root can serve it; else cold.
"""

from __future__ import annotations

import contextlib
import sys

from lxrun.cli.common import Parser, Terminated, terminating
from lxrun.cli.exec_options import SOCKET_ENV
from lxrun.cli.serve.pools import DEFAULT_SIZE, ServerPools, parse_pool
from lxrun.cli.serve.server import Server
from lxrun.errors import LxrunError
from lxrun.runtime import ROOT_ENV, default_root


def main(argv: list[str]) -> int:
    parser = Parser("lxrun serve", "Run `lxrun exec` tasks for local clients, until SIGTERM, SIGINT or SIGHUP.")
    parser.add_argument(
        "--socket", required=True, metavar="PATH", help=f"the unix socket to listen at (clients: {SOCKET_ENV}=PATH)"
    )
    parser.add_argument(
        "--group", metavar="GROUP", help="also let this group's members run tasks (socket mode 0660); a name or gid"
    )
    parser.add_argument(
        "--root", default=default_root(), help=f"the state root the pools are on (env {ROOT_ENV}; default %(default)s)"
    )
    parser.add_argument(
        "--pool",
        action="append",
        default=[],
        metavar="STACK[=N]",
        help=f"keep N sandboxes of STACK prepared (default {DEFAULT_SIZE}) for the clients' tasks on it; repeatable",
    )
    args = parser.parse_args(argv)
    group = group_id(args.group) if args.group is not None else None
    with contextlib.ExitStack() as resources:
        runner = None
        if args.pool:
            pools = ServerPools(args.root, [parse_pool(value) for value in args.pool])
            resources.callback(pools.close)
            runner = pools.run
        return serve(Server(args.socket, group, runner), args.socket)


def serve(server: Server, path: str) -> int:
    with terminating(), server.listening():
        print(f"lxrun serve: listening at {path}", file=sys.stderr, flush=True)
        with contextlib.suppress(Terminated, KeyboardInterrupt):
            server.serve_forever()
    return 0


def group_id(name: str) -> int:
    import grp

    if name.isascii() and name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise LxrunError("--group", "no such group", path=name, hint="give a group name or a numeric gid") from None
