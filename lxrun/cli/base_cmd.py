"""`lxrun base build NAME`: build a base rootfs and make it the current version of stack NAME."""

from __future__ import annotations

from lxrun.cli.common import Parser, add_root_option
from lxrun.layout import Layout


def parser() -> Parser:
    p = Parser("lxrun base", "Base root filesystems, built from rootfs/NAME.toml.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=Parser)
    build = actions.add_parser("build", help="build base NAME (or a path to its .toml) and make it current")
    build.add_argument("name", metavar="NAME")
    add_root_option(build)
    return p


def main(argv: list[str]) -> int:
    from lxrun.store.bases import build_base
    from lxrun.store.specs import find_spec, load_base_spec

    args = parser().parse_args(argv)
    built = build_base(load_base_spec(find_spec("rootfs", args.name)), Layout(args.root))
    print(f"{built.name}@{built.version} layers={','.join(digest[:12] for digest in built.layers)}")
    return 0
