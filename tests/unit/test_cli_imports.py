"""`lxrun exec` starts for every task, so what it imports is part of its start-up time.

These modules each cost milliseconds to import on the machines we measured; the exec path must not
pull them in (a deterministic guard; the time itself is measured by benchmarks/startup.py).
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "click",
    "dataclasses",
    "typing",
    "pathlib",
    "inspect",
    "hashlib",
    "secrets",
    "shutil",
    "psutil",
    "tomllib",
    "argparse",
    "gettext",
    "locale",
    # The json package brings re and enum: lxrun's own files go through lxrun.plainjson.
    "json",
    "re",
    "shutil",
    "bz2",
    "lzma",
    # signal wraps every constant, handler and mask in enums: the exec path uses lxrun.signals.
    "signal",
    "enum",
)


def test_the_exec_path_stays_lean() -> None:
    probe = (
        "import sys, lxrun.cli, lxrun.cli.exec_cmd, lxrun.runtime, lxrun.backends.native, "
        "lxrun.cgroups.v1, lxrun.cgroups.v2; "
        "args = lxrun.cli.exec_cmd.parse(['--stack', 'busybox', '-e', 'A=1', '-m', '64m', '--', 'true']); "
        "lxrun.cli.exec_cmd.parse_limits(args); "
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
