"""The command line's names for the library's fields: a SpecError names the TaskSpec field (`memory`),
which a Python caller typed; the CLI says which flag the user typed (`--memory`)."""

from __future__ import annotations

from lxrun.errors import LxrunError, SpecError

FLAG_OF_FIELD = {
    "memory": "--memory",
    "cpus": "--cpus",
    "cpu_shares": "--cpu-shares",
    "cpus/cpu_shares": "--cpus/--cpu-shares",
    "pids": "--pids-limit",
    "cpuset_cpus": "--cpuset-cpus",
    "cgroup_parent": "--cgroup-parent",
    "userns": "--userns",
    "user": "--user",
    "cap_add": "--cap-add",
    "cap_drop": "--cap-drop",
    "seccomp": "--security-opt seccomp",
    "timeout": "--timeout",
    "stop_timeout": "--stop-timeout",
    "disk": "--disk",
    "keep": "--keep",
    "output_limit": "--output-limit",
    "network": "--network",
    "publish": "--publish",
    "name": "--name",
    "workdir": "--workdir",
    "hostname": "--hostname",
    "tty": "--tty",
    "entrypoint": "--entrypoint",
}


def as_typed(error: LxrunError) -> LxrunError:
    """`error` naming the flag where it names a field of the spec the command line built."""
    if isinstance(error, SpecError) and error.step in FLAG_OF_FIELD:
        error.step = FLAG_OF_FIELD[error.step]
    return error
