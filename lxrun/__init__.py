"""lxrun: one-shot tasks in fresh sandboxes on layered stacks, started in milliseconds without a daemon.

import lxrun
result = lxrun.run(lxrun.TaskSpec(stack="python3.11", argv=["python3", "-c", "print(1)"],
                                  limits=lxrun.Limits(memory=256 << 20), timeout=60))
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.backends.base import TaskHandle
    from lxrun.errors import LxrunError, Unsupported
    from lxrun.net.spec import NetworkSpec, PortMapping
    from lxrun.pool import Pool
    from lxrun.recovery import Released
    from lxrun.result import Result
    from lxrun.runtime import Runtime, run
    from lxrun.spec import CAPTURE, Limits, Security, TaskSpec, Volume
    from lxrun.stacks_api import Built, DiskUsage, LayerInfo, StackCost, StackDetails, StackSwitch, StackVersion
    from lxrun.store.gc import Collected
    from lxrun.tasks import GcReport, TaskInfo

# Every public name is imported when first named (PEP 562): each of lxrun's commands imports this package
# on every start (`lxrun exec`, and lxrun-oci several times per container) and most need few of them.
LAZY = {
    "LxrunError": "lxrun.errors",
    "Unsupported": "lxrun.errors",
    "NetworkSpec": "lxrun.net.spec",
    "PortMapping": "lxrun.net.spec",
    "Result": "lxrun.result",
    "Runtime": "lxrun.runtime",
    "run": "lxrun.runtime",
    "CAPTURE": "lxrun.spec",
    "Limits": "lxrun.spec",
    "Security": "lxrun.spec",
    "TaskSpec": "lxrun.spec",
    "Volume": "lxrun.spec",
    "TaskHandle": "lxrun.backends.base",
    "Pool": "lxrun.pool",
    "GcReport": "lxrun.tasks",
    "Released": "lxrun.recovery",
    "Collected": "lxrun.store.gc",
    "TaskInfo": "lxrun.tasks",
    "Built": "lxrun.stacks_api",
    "DiskUsage": "lxrun.stacks_api",
    "LayerInfo": "lxrun.stacks_api",
    "StackCost": "lxrun.stacks_api",
    "StackDetails": "lxrun.stacks_api",
    "StackSwitch": "lxrun.stacks_api",
    "StackVersion": "lxrun.stacks_api",
}


def __getattr__(name: str) -> object:
    if name not in LAZY:
        raise AttributeError(f"module 'lxrun' has no attribute {name!r}")
    return getattr(__import__(LAZY[name], fromlist=[name]), name)


__all__ = [
    "CAPTURE",
    "Built",
    "Collected",
    "DiskUsage",
    "GcReport",
    "LayerInfo",
    "Limits",
    "LxrunError",
    "NetworkSpec",
    "Pool",
    "PortMapping",
    "Released",
    "Result",
    "Runtime",
    "Security",
    "StackCost",
    "StackDetails",
    "StackSwitch",
    "StackVersion",
    "TaskHandle",
    "TaskInfo",
    "TaskSpec",
    "Unsupported",
    "Volume",
    "run",
]
