"""Build glue that pyproject.toml can't express: the cffi module, the sandbox's freestanding pid 1, and the
`lxrun` command as a script of its own (bin/lxrun), not a console-script wrapper: it can start without site;
and the native `lxrun` front that relays `lxrun exec` to `lxrun serve` (native/client.c), which the Makefile
installs as `lxrun`, the script beside it as `lxrun-python`."""

import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

# lxrun-init has no libc: it must not call what the compiler would add behind its back.
INIT_CFLAGS = [
    "-Os",
    "-Wall",
    "-Wextra",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-stack-protector",
    "-fno-tree-loop-distribute-patterns",
    "-fno-asynchronous-unwind-tables",
    "-fno-pie",
]
INIT_LDFLAGS = ["-nostdlib", "-static", "-no-pie", "-s"]
# The client runs on every relayed `lxrun exec`: static, so no dynamic loader runs at its start.
CLIENT_FLAGS = ["-O2", "-Wall", "-Wextra", "-static", "-s"]


class BuildExtAndInit(build_ext):
    """Build the extensions, then lxrun-init and lxrun-client beside them (executables, not extensions)."""

    def run(self) -> None:
        super().run()
        target = Path(self.get_ext_fullpath("lxrun._native")).parent / "_lxrun_init"
        target.parent.mkdir(parents=True, exist_ok=True)
        compiler = os.environ.get("CC", "cc")
        self.spawn([compiler, *INIT_CFLAGS, "-Inative", "native/init.c", *INIT_LDFLAGS, "-o", str(target)])
        client = target.with_name("_lxrun_client")
        self.spawn([compiler, *CLIENT_FLAGS, "native/client.c", "-o", str(client)])


setup(
    cffi_modules=["native/build.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtAndInit},
    scripts=["bin/lxrun", "bin/lxrun-oci"],
)
