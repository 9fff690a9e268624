"""Build glue that pyproject.toml can't express: the cffi module, the sandbox's freestanding pid 1, and the
`lxrun` command as a script of its own (bin/lxrun), not a console-script wrapper: it can start without site."""

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


class BuildExtAndInit(build_ext):
    """Build the extensions, then lxrun-init beside them (a static executable, not an extension)."""

    def run(self) -> None:
        super().run()
        target = Path(self.get_ext_fullpath("lxrun._native")).parent / "_lxrun_init"
        target.parent.mkdir(parents=True, exist_ok=True)
        compiler = os.environ.get("CC", "cc")
        self.spawn([compiler, *INIT_CFLAGS, "-Inative", "native/init.c", *INIT_LDFLAGS, "-o", str(target)])


setup(cffi_modules=["native/build.py:ffibuilder"], cmdclass={"build_ext": BuildExtAndInit}, scripts=["bin/lxrun"])
