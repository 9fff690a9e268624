"""`lxrun stack export NAME[@VERSION] DEST`: a stack version written as an image, a `docker save` tarball
(for `docker load`) or with `--format oci` an OCI image layout (a directory, or a tar if DEST ends in
.tar). Progress on stderr; the final line, on stdout, names the image id, its tag and DEST. Ctrl-C,
SIGTERM or SIGHUP stop it: nothing is left at DEST."""

from __future__ import annotations

import sys
import time

from lxrun.cli.common import Terminated, interrupted_code, terminating

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from lxrun.runtime import Runtime


def add_parser(actions: Any) -> None:
    """`export` among `lxrun stack`'s actions (an argparse subparsers object)."""
    found = actions.add_parser("export", help="write a stack version as an image (docker save tarball, OCI layout)")
    found.add_argument("ref", metavar="NAME[@VERSION]")
    found.add_argument("dest", metavar="DEST", help="a new file (docker), or a new directory or .tar (oci)")
    found.add_argument(
        "--format", choices=("docker", "oci"), default="docker", help="docker: for `docker load` (default); oci"
    )
    found.add_argument("--tag", metavar="REPO[:TAG]", help="the image's name (default NAME:VERSION)")


def main(runtime: Runtime, args: argparse.Namespace) -> int:
    def report(line: str) -> None:
        print(f"lxrun: {line}", file=sys.stderr, flush=True)

    started = time.monotonic()
    try:
        with terminating():
            exported = runtime.export_stack(args.ref, args.dest, format=args.format, tag=args.tag, report=report)
    except (KeyboardInterrupt, Terminated) as exc:
        report("export interrupted: nothing was written")
        return interrupted_code(exc)
    print(
        f"{exported.version.ref} exported in {time.monotonic() - started:.1f}s as {exported.image_id[7:19]}"
        f" tag={exported.tag or '-'} format={exported.format} to {exported.dest}"
    )
    return 0
