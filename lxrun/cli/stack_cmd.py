"""`lxrun stack ACTION`: build stacks from stacks/NAME.toml, list and inspect their versions, promote,
roll back, remove.

A build streams its log to stderr with a step counter; the final line, on stdout, names the version
and its layers. Ctrl-C, SIGTERM or SIGHUP stop a build: nothing of it is kept, nothing stays mounted.
"""

from __future__ import annotations

import json
import sys
import time

from lxrun.cli.common import Parser, Terminated, add_root_option, interrupted_code, terminating
from lxrun.cli.tables import human, render
from lxrun.errors import SpecError
from lxrun.layout import Layout
from lxrun.spec import check_stack_ref
from lxrun.store.stacks import StackStore


def parser() -> Parser:
    p = Parser("lxrun stack", "Stacks: a base plus copy-on-write diffs, built from stacks/NAME.toml, versioned.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=Parser)
    build = actions.add_parser("build", help="build stack NAME (or a path to its .toml) and its unbuilt parents")
    build.add_argument("name", metavar="NAME")
    build.add_argument("--no-promote", action="store_true", help="record the new version without making it current")
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


def pinned(ref: str) -> tuple[str, str]:
    name, version = check_stack_ref(ref)
    if version is None:
        raise SpecError("stack", "needs a version", path=ref, hint=f"give NAME@VERSION, e.g. {name}@1")
    return name, version


def build(name: str, layout: Layout, promote: bool) -> int:
    from lxrun.store.builds import build_stack

    def report(line: str) -> None:
        print(f"lxrun: {line}", file=sys.stderr, flush=True)

    started = time.monotonic()
    try:
        with terminating():
            outcome = build_stack(name, layout, log_fd=2, report=report, promote=promote)
    except (KeyboardInterrupt, Terminated) as exc:
        report("build interrupted: no layer or version of it was kept")
        return interrupted_code(exc)
    stack = outcome.version
    what = "built" if outcome.built else "unchanged"
    layers = ",".join(digest[:12] for digest in stack.layers)
    print(f"{stack.ref} {what} in {time.monotonic() - started:.1f}s layers={layers}")
    return 0


def list_versions(layout: Layout) -> int:
    from lxrun.store.usage import Accountant

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
        for cost in Accountant(layout).every_version()
    ]
    print(render(("NAME", "VERSION", "CURRENT", "LAYERS", "DIFF", "TOTAL", "PARENT"), rows, right=(3, 4, 5)))
    return 0


def inspect(ref: str, layout: Layout, as_json: bool) -> int:
    from lxrun.store.layers import LayerStore
    from lxrun.store.usage import Accountant

    stacks = StackStore(layout)
    name, version = check_stack_ref(ref)
    stack = stacks.version(name, version or stacks.current_version(name))
    layers = LayerStore(layout)
    infos = [layers.info(digest) for digest in stack.layers]
    total = Accountant(layout).cost(stack).flattened
    data = {
        "name": stack.name,
        "version": stack.version,
        "current": stacks.current_or_none(name) == stack.version,
        "parent": stack.parent,
        "created": stack.created,
        "env": dict(stack.env),
        "labels": dict(stack.labels),
        "layers": [info.as_dict() for info in infos],
        "total": total,
    }
    if as_json:
        print(json.dumps(data, indent=1))
        return 0
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stack.created))
    built_on = f"on {stack.parent}" if stack.parent else "as a base"
    print(f"{stack.ref}{' (current)' if data['current'] else ''}, built {created} {built_on}")
    for key, value in stack.env.items():
        print(f"  env    {key}={value}")
    for key, value in stack.labels.items():
        print(f"  label  {key}={value}")
    rows = [(info.digest[:12], info.kind, human(info.size), info.source) for info in infos]
    print(render(("LAYER (lowest first)", "KIND", "SIZE", "SOURCE"), rows, right=(2,)))
    print(f"total {human(total)}")
    return 0


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    layout = Layout(args.root)
    stacks = StackStore(layout)
    if args.action == "build":
        return build(args.name, layout, promote=not args.no_promote)
    if args.action == "ls":
        return list_versions(layout)
    if args.action == "inspect":
        return inspect(args.ref, layout, args.json)
    if args.action == "promote":
        name, version = pinned(args.ref)
        before = stacks.current_or_none(name)
        stacks.promote(name, version)
        print(f"{name}: current is {version} (was {before})")
    elif args.action == "rollback":
        before = stacks.current_version(args.name)
        print(f"{args.name}: current is {stacks.rollback(args.name)} (was {before})")
    else:
        from lxrun.store.inflight import refs_in_use

        name, version = pinned(args.ref)
        stacks.remove(name, version, refs_in_use(layout))
        print(f"removed {name}@{version}; its layers stay until `lxrun gc --layers`")
    return 0
