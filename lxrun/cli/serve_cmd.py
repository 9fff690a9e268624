"""`lxrun serve --socket PATH [--group GROUP]`: run `lxrun exec` tasks for local clients until stopped.

Clients are `lxrun exec --socket PATH` or `lxrun exec` with LXRUN_SOCKET set (native/client.c); each
task runs cold through the API, exactly as `lxrun exec` would run it (lxrun/cli/serve/).
"""

from __future__ import annotations

import sys

from lxrun.cli.common import Parser, Terminated, terminating
from lxrun.cli.exec_options import SOCKET_ENV
from lxrun.cli.serve.server import Server
from lxrun.errors import LxrunError


def main(argv: list[str]) -> int:
    parser = Parser("lxrun serve", "Run `lxrun exec` tasks for local clients, until SIGTERM, SIGINT or SIGHUP.")
    parser.add_argument(
        "--socket", required=True, metavar="PATH", help=f"the unix socket to listen at (clients: {SOCKET_ENV}=PATH)"
    )
    parser.add_argument(
        "--group", metavar="GROUP", help="also let this group's members run tasks (socket mode 0660); a name or gid"
    )
    args = parser.parse_args(argv)
    server = Server(args.socket, group_id(args.group) if args.group is not None else None)
    with terminating(), server.listening():
        print(f"lxrun serve: listening at {args.socket}", file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        except (Terminated, KeyboardInterrupt):
            pass
        finally:
            server.stop()
    return 0


def group_id(name: str) -> int:
    import grp

    if name.isascii() and name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise LxrunError("--group", "no such group", path=name, hint="give a group name or a numeric gid") from None
