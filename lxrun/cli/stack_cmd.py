"""`lxrun stack ACTION`: build stacks from stacks/NAME.toml, import and export images, list and inspect
their versions, promote, roll back, remove.

A build streams its log to stderr with a step counter; the final line, on stdout, names the version
and its layers. Ctrl-C, SIGTERM or SIGHUP stop a build: nothing of it is kept, nothing stays mounted.
"""

from __future__ import annotations

import json
import sys
import time

from lxrun.cli import export_cmd, import_cmd
from lxrun.cli.common import Parser, Terminated, add_root_option, interrupted_code, terminating
from lxrun.cli.tables import human, render
from lxrun.runtime import Runtime


def parser() -> Parser:
    p = Parser("lxrun stack", "Stacks: a base plus copy-on-write diffs, built from stacks/NAME.toml, versioned.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=Parser)
    build = actions.add_parser("build", help="build stack NAME (or a path to its .toml) and its unbuilt parents")
    build.add_argument("name", metavar="NAME")
    build.add_argument("--no-promote", action="store_true", help="record the new version without making it current")
    import_cmd.add_parser(actions)
    export_cmd.add_parser(actions)
    actions.add_parser("ls", help="list every version: current, layers, diff size, total")
    inspect = actions.add_parser("inspect", help="show a version: parent, env, labels, layers")
    inspect.add_argument("ref", metavar="NAME[@VERSION]")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    promote = actions.add_parser("promote", help="make VERSION current (atomic)")
    promote.add_argument("ref", metavar="NAME@VERSION")
    rollback = actions.add_parser("rollback", help="make the version current before the last promote current again")
    rollback.add_argument("name", metavar="NAME")
    rm = actions.add_parser("rm", help="remove a version (refused if current or in use); see gc --layers")
    rm.add_argument("ref", metavar="NAME@VERSION")
    for action in actions.choices.values():
        add_root_option(action)
    return p


def build(runtime: Runtime, name: str, promote: bool) -> int:
    def report(line: str) -> None:
        print(f"lxrun: {line}", file=sys.stderr, flush=True)

    started = time.monotonic()
    try:
        with terminating():
            outcome = runtime.build_stack(name, log_fd=2, report=report, promote=promote)
    except (KeyboardInterrupt, Terminated) as exc:
        report("build interrupted: no layer or version of it was kept")
        return interrupted_code(exc)
    stack = outcome.version
    what = "built" if outcome.built else "unchanged"
    layers = ",".join(digest[:12] for digest in stack.layers)
    print(f"{stack.ref} {what} in {time.monotonic() - started:.1f}s layers={layers}")
    return 0


def list_versions(runtime: Runtime) -> int:
    rows = [
        (
            cost.version.name,
            cost.version.version,
            "*" if cost.current else "",
            str(len(cost.layers)),
            human(cost.own),
            human(cost.flattened),
            cost.version.parent or "-",
        )
        for cost in runtime.stack_versions()
    ]
    print(render(("NAME", "VERSION", "CURRENT", "LAYERS", "DIFF", "TOTAL", "PARENT"), rows, right=(3, 4, 5)))
    return 0


def inspect(runtime: Runtime, ref: str, as_json: bool) -> int:
    details = runtime.inspect_stack(ref)
    if as_json:
        print(json.dumps(details.to_json(), indent=1))
        return 0
    stack = details.stack
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stack.created))
    built_on = f"on {stack.parent}" if stack.parent else "as a base"
    made = f"imported {created}" if stack.image is not None and not stack.parent else f"built {created} {built_on}"
    print(f"{stack.ref}{' (current)' if details.current else ''}, {made}")
    for key, value in stack.env.items():
        print(f"  env    {key}={value}")
    for key, value in stack.labels.items():
        print(f"  label  {key}={value}")
    if stack.image is not None:
        image = stack.image
        if image.digest:  # not a stack that only says how it runs, with no image below it
            print(f"  image  {image.digest} from {image.source}")
        for field in ("entrypoint", "cmd", "workdir", "user"):
            value = getattr(image, field)
            if value:
                print(f"  {field:6} {json.dumps(list(value)) if isinstance(value, tuple) else value}")
    rows = [(info.digest[:12], info.kind, human(info.size), info.source) for info in details.layers]
    print(render(("LAYER (lowest first)", "KIND", "SIZE", "SOURCE"), rows, right=(2,)))
    print(f"total {human(details.total)}")
    return 0


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    runtime = Runtime(args.root)
    if args.action == "build":
        return build(runtime, args.name, promote=not args.no_promote)
    if args.action == "import":
        return import_cmd.main(runtime, args)
    if args.action == "export":
        return export_cmd.main(runtime, args)
    if args.action == "ls":
        return list_versions(runtime)
    if args.action == "inspect":
        return inspect(runtime, args.ref, args.json)
    if args.action in ("promote", "rollback"):
        switch = runtime.promote(args.ref) if args.action == "promote" else runtime.rollback(args.name)
        print(f"{switch.name}: current is {switch.current} (was {switch.previous})")
    else:
        print(f"removed {runtime.remove_stack(args.ref)}; its layers stay until `lxrun gc --layers`")
    return 0
