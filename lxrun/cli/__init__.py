"""The `lxrun` command line: the only place that prints and exits. One module per verb.

Exit codes follow docker run: the task's own, 128+N when signal N killed it, 125 when lxrun failed
(bad input included), 126 when the command can't be executed, 127 when it isn't found.

Verbs are imported only when used, and the CLI is argparse rather than click: `lxrun exec` pays
for every import on every start (click alone costs ~22 ms here, more than the CLI's whole budget).
`lxrun exec` itself reads its options without argparse (exec_options.py): argparse costs ~3 ms.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys

from lxrun.cli.usage import EXIT_LXRUN_FAILED, UsageError
from lxrun.errors import HostUnsupported, LxrunError

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
    "kept": ("lxrun.cli.kept_cmd", "List or remove the upper dirs tasks kept with --keep"),
    "serve": ("lxrun.cli.serve_cmd", "Run tasks for local `lxrun exec --socket` clients"),
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
    lines += ["", "Run `lxrun COMMAND --help` for a command's options; `lxrun --version` for the version."]
    return "\n".join(lines)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return f"lxrun {installed('lxrun')}"
    except PackageNotFoundError:
        return "lxrun (not installed: no version recorded)"


def asks_for_help(args: list[str]) -> bool:
    """-h/--help among a verb's options (a command after `--` may take its own)."""
    options = args[: args.index("--")] if "--" in args else args
    return "-h" in options or "--help" in options


def run_cli(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else EXIT_LXRUN_FAILED
    if argv[0] == "--version":
        print(version())
        return 0
    verb, *rest = argv
    if verb not in COMMANDS:
        raise UsageError(f"lxrun: unknown command {verb!r}", "lxrun")
    if verb != "exec":
        gc.enable()  # bin/lxrun starts with it off: only exec's start is short enough to gain (exec_cmd)
    if os.geteuid() != 0 and not asks_for_help(rest):
        raise HostUnsupported(
            "user",
            f"uid {os.geteuid()} is not root: lxrun needs root for namespaces, mounts and cgroups",
            hint="run it as root, e.g. with sudo",
        )
    module = __import__(COMMANDS[verb][0], fromlist=["main"])  # importlib's import_module costs ~0.4 ms
    code: int = module.main(rest)
    return code


def open_closed_stdio() -> None:
    """Started with fd 0, 1 or 2 closed (Python then sets sys.stdin/out/err to None): put /dev/null
    there, so neither lxrun's prints nor a descriptor it opens later (which would take the free
    number) can be mistaken for the task's stdio."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is None:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115 (lives as long as the process)


def main() -> None:
    if sys.stdin is None or sys.stdout is None or sys.stderr is None:
        open_closed_stdio()
    try:
        code = run_cli(sys.argv[1:])
        sys.stdout.flush()
    except (UsageError, LxrunError) as exc:
        line, code = failure(exc)
        print(line, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except OSError as exc:  # the library turns its own into LxrunError: this is the CLI's output failing
        code = output_failed(exc)
    # Every resource was released before run_cli returned; skipping the interpreter's teardown
    # (module cleanup, GC) takes ~2 ms off each start. Flush what Python still buffers first.
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(code)


def failure(exc: UsageError | LxrunError) -> tuple[str, int]:
    """The one line a failure prints (flags named as typed) and the exit code it gives."""
    if isinstance(exc, UsageError):
        return str(exc), EXIT_LXRUN_FAILED
    from lxrun.cli.flags import as_typed

    return f"lxrun: {as_typed(exc)}", exc.exit_code


def output_failed(exc: OSError) -> int:
    """stdout could not be written (a reader that went away: `lxrun ps | head`; a full disk): say so once.
    What is still buffered for it goes nowhere, so the final flush can't fail again."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)
    hint = "its reader went away" if isinstance(exc, BrokenPipeError) else None
    with contextlib.suppress(OSError):
        print(f"lxrun: {LxrunError.from_os_error('output', exc, hint=hint)}", file=sys.stderr)
    return EXIT_LXRUN_FAILED
