"""`lxrun base build NAME`: build a base rootfs and make it the current version of stack NAME.

The builder's log (mmdebstrap's) streams to stderr. Ctrl-C, SIGTERM or SIGHUP stop it: nothing of
it is kept.
"""

from __future__ import annotations

import sys

from lxrun.cli.common import Parser, Terminated, add_root_option, interrupted_code, terminating
from lxrun.runtime import Runtime


def parser() -> Parser:
    p = Parser("lxrun base", "Base root filesystems, built from rootfs/NAME.toml.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=Parser)
    build = actions.add_parser("build", help="build base NAME (or a path to its .toml) and make it current")
    build.add_argument("name", metavar="NAME")
    add_root_option(build)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        with terminating():
            built = Runtime(args.root).build_base(args.name, log_fd=2)
    except (KeyboardInterrupt, Terminated) as exc:
        print("lxrun: base build interrupted: nothing of it was kept", file=sys.stderr)
        return interrupted_code(exc)
    print(f"{built.name}@{built.version} layers={','.join(digest[:12] for digest in built.layers)}")
    return 0
