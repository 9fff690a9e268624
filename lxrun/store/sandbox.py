"""The build sandbox: one command on a chain of read-only layers, its writes kept in an upper dir on disk.

A task's sandbox with these build-time differences: the host's network (apt needs it; builds are the
only place that has it), the host's resolv.conf bound read-only over the layers' empty one, the
overlay's upper and work dirs in the build directory (`kept_dir`) rather than on the sandbox's tmpfs,
so what the command wrote is there afterwards to become the diff layer, and no user namespace: what
dpkg writes must belong to the real root, as in a base. It runs as `docker build` runs a step: root
with docker's default capabilities and seccomp profile, no_new_privs.
Each command gets a fresh sandbox from the composer (lxrun/sandbox/compose.py) on the same upper dir;
when its pid 1 ends, the kernel tears the mount namespace down with it, so nothing stays mounted,
whatever happened to the command or to us.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time

from lxrun.net.spec import HOST, NetworkSpec
from lxrun.sandbox import mounts
from lxrun.sandbox.caps import DOCKER_DEFAULT
from lxrun.sandbox.compose import Composer, SandboxPlan
from lxrun.sandbox.output import StreamSink
from lxrun.sandbox.relay import Relay
from lxrun.sandbox.seccomp import DEFAULT
from lxrun.sandbox.supervise import wait

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from lxrun.layout import Layout

RESOLV_CONF = "/etc/resolv.conf"
HOSTNAME = "lxrun-build"


def chain_has(layer_paths: Sequence[str], relative: str) -> bool:
    """Whether the merged view of the layers (lowest first) has `relative`: the top-most layer with an
    entry decides, and an overlayfs whiteout (a 0/0 character device) there means it was deleted."""
    for layer in reversed(layer_paths):
        try:
            st = os.lstat(f"{layer}/{relative}")
        except FileNotFoundError:
            continue
        return not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0)
    return False


class BuildSandbox:
    """Runs commands on `layer_paths` with the upper and work dirs in `build_dir`; output goes to `log_fd`."""

    def __init__(
        self, layout: Layout, layer_paths: Sequence[str], build_dir: str, env: Mapping[str, str], log_fd: int
    ) -> None:
        self.composer = Composer(layout)
        self.layer_paths = tuple(layer_paths)
        self.build_dir = build_dir
        # Bound over the chain's own file, so nothing is created in the upper dir (a base without one
        # simply gets no DNS at build time).
        self.binds = (
            [
                mounts.MountStep(
                    mounts.BIND, RESOLV_CONF, "bind the host's resolv.conf", source=RESOLV_CONF, attrs=frozenset({"ro"})
                )
            ]
            if chain_has(layer_paths, RESOLV_CONF.lstrip("/"))
            else []
        )
        self.env = dict(env)
        self.log_fd = log_fd

    def run(self, argv: Sequence[str], capture: bool = False) -> tuple[int, bytes]:
        """Run argv to its end: its exit code (128+N if signal N ended it) and, with `capture`, its
        stdout and stderr together (else both go to the log)."""
        plan = SandboxPlan(
            sandbox_id=f"build-{os.urandom(6).hex()}",
            layers=self.layer_paths,
            argv=argv,
            env=self.env,
            cwd="/",
            hostname=HOSTNAME,
            network=NetworkSpec(HOST),
            caps=DOCKER_DEFAULT,
            seccomp=DEFAULT,
            upper_dir=self.build_dir,
            binds=self.binds,
            task_files=False,
        )
        with contextlib.ExitStack() as resources:
            # The child's ends: closed on our side once it started (else the capture pipe never ends).
            child_ends = resources.enter_context(contextlib.ExitStack())
            stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            child_ends.callback(os.close, stdin)
            output, relay = self.log_fd, resources.enter_context(contextlib.closing(Relay()))
            if capture:
                read_end, output = os.pipe2(os.O_CLOEXEC)
                relay.add_output(read_end, StreamSink(None, None))
                child_ends.callback(os.close, output)
            sinks = list(relay.outputs.values())
            try:
                sandbox = self.composer.start(plan, (stdin, output, output), resources)
            finally:
                child_ends.close()
            status, _ = wait(sandbox.process, relay, time.monotonic())
        code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        return code, b"".join(sink.finish() or b"" for sink in sinks)
