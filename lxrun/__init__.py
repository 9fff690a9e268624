"""lxrun: one-shot tasks in fresh sandboxes on layered stacks, started in milliseconds without a daemon.

import lxrun
result = lxrun.run(lxrun.TaskSpec(stack="python3.11", argv=["python3", "-c", "print(1)"],
                                  limits=lxrun.Limits(memory=256 << 20), timeout=60))
"""

from lxrun.errors import LxrunError
from lxrun.net.spec import NetworkSpec, PortMapping
from lxrun.result import Result
from lxrun.runtime import Runtime, run
from lxrun.spec import CAPTURE, Limits, Security, TaskSpec, Volume

__all__ = [
    "CAPTURE",
    "Limits",
    "LxrunError",
    "NetworkSpec",
    "PortMapping",
    "Result",
    "Runtime",
    "Security",
    "TaskSpec",
    "Volume",
    "run",
]
