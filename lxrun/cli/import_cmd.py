"""`lxrun stack import NAME SOURCE`: an image (a `docker save` tarball, an OCI layout dir or tar, an image
in a dockerd or a registry) becomes a stack version, one layer per image layer. Progress on stderr;
the final line, on stdout, names the version and how many layers were stored (0: all were there
already). Ctrl-C, SIGTERM or SIGHUP stop it: no layer or version of it is kept."""

from __future__ import annotations

import sys
import time

from lxrun.cli.common import Terminated, interrupted_code, terminating
from lxrun.options import parse_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from lxrun.runtime import Runtime


def add_parser(actions: Any) -> None:
    """`import` among `lxrun stack`'s actions (an argparse subparsers object)."""
    found = actions.add_parser("import", help="import an image (docker save tarball, OCI layout) as stack NAME")
    found.add_argument("name", metavar="NAME")
    found.add_argument(
        "source",
        metavar="SOURCE",
        help="a `docker save` tarball, an OCI image layout (dir or tar), docker-daemon:IMAGE, docker://HOST/REPO:TAG",
    )
    found.add_argument("--platform", metavar="OS/ARCH", help="from a multi-platform image (default: this host's)")
    found.add_argument(
        "--max-size", metavar="SIZE", help="refuse layers that unpack to more than SIZE in all (default 64g)"
    )
    found.add_argument("--no-promote", action="store_true", help="record the new version without making it current")
    found.add_argument(
        "--insecure-registry", action="store_true", help="docker://: reach the registry over HTTP or unverified TLS"
    )


def main(runtime: Runtime, args: argparse.Namespace) -> int:
    def report(line: str) -> None:
        print(f"lxrun: {line}", file=sys.stderr, flush=True)

    max_size = parse_size("--max-size", args.max_size) if args.max_size is not None else None
    started = time.monotonic()
    try:
        with terminating():
            imported = runtime.import_stack(
                args.name,
                args.source,
                platform=args.platform,
                max_size=max_size,
                promote=not args.no_promote,
                insecure=args.insecure_registry,
                report=report,
            )
    except (KeyboardInterrupt, Terminated) as exc:
        report("import interrupted: no layer or version of it was kept")
        return interrupted_code(exc)
    stack = imported.version
    layers = ",".join(digest[:12] for digest in stack.layers)
    print(
        f"{stack.ref} imported in {time.monotonic() - started:.1f}s"
        f" stored={imported.stored}/{len(stack.layers)} layers={layers}"
    )
    return 0
