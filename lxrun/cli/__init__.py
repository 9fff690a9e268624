"""The `lxrun` command line: the only place that prints and exits. One module per verb.

Exit codes follow docker run: the task's own, 128+N when signal N killed it, 125 when lxrun failed
(bad input included), 126 when the command can't be executed, 127 when it isn't found.

Verbs are imported only when used, and the CLI is argparse rather than click: `lxrun exec` pays
for every import on every start (click alone costs ~22 ms here, more than the CLI's whole budget).
`lxrun exec` itself reads its options without argparse (exec_options.py): argparse costs ~3 ms.
"""

from __future__ import annotations

import os
import sys

from lxrun.cli.usage import EXIT_LXRUN_FAILED, UsageError
from lxrun.errors import LxrunError

# verb -> (module, summary)
COMMANDS = {
    "exec": ("lxrun.cli.exec_cmd", "Run a command in a fresh sandbox on a stack"),
    "base": ("lxrun.cli.base_cmd", "Build base root filesystems (rootfs/*.toml)"),
    "stack": ("lxrun.cli.stack_cmd", "Build, list, inspect, promote, roll back, remove stacks (stacks/*.toml)"),
    "ps": ("lxrun.cli.ps_cmd", "List the tasks in flight"),
    "inspect": ("lxrun.cli.inspect_cmd", "Show a task in flight as JSON"),
    "kill": ("lxrun.cli.kill_cmd", "Send a signal to a task in flight"),
    "gc": ("lxrun.cli.gc_cmd", "Release what dead runners left; with --layers, layers nothing uses"),
    "df": ("lxrun.cli.df_cmd", "Disk used by stacks: shared layers next to flattened images"),
    "backends": ("lxrun.cli.backends_cmd", "List the backends and whether each can run here"),
}


def usage() -> str:
    lines = [
        "usage: lxrun COMMAND [OPTIONS]",
        "",
        "One-shot tasks in fresh sandboxes on layered stacks.",
        "",
        "commands:",
    ]
    lines += [f"  {verb:<10} {summary}" for verb, (_, summary) in COMMANDS.items()]
    lines += ["", "Run `lxrun COMMAND --help` for a command's options."]
    return "\n".join(lines)


def run_cli(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else EXIT_LXRUN_FAILED
    verb, *rest = argv
    if verb not in COMMANDS:
        raise UsageError(f"lxrun: unknown command {verb!r}", "lxrun")
    module = __import__(COMMANDS[verb][0], fromlist=["main"])  # importlib's import_module costs ~0.4 ms
    code: int = module.main(rest)
    return code


def main() -> None:
    try:
        code = run_cli(sys.argv[1:])
    except UsageError as exc:
        print(exc, file=sys.stderr)
        code = EXIT_LXRUN_FAILED
    except LxrunError as exc:
        from lxrun.cli.flags import as_typed

        print(f"lxrun: {as_typed(exc)}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    # Every resource was released before run_cli returned; skipping the interpreter's teardown
    # (module cleanup, GC) takes ~2 ms off each start. Flush what Python still buffers first.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
