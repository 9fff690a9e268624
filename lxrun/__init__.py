"""lxrun: one-shot tasks in fresh sandboxes on layered stacks, started in milliseconds without a daemon."""

from lxrun.errors import LxrunError
from lxrun.result import Result
from lxrun.runtime import run
from lxrun.spec import CAPTURE, TaskSpec, Volume

__all__ = ["CAPTURE", "LxrunError", "Result", "TaskSpec", "Volume", "run"]
