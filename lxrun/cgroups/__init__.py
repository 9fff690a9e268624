"""Task cgroups: one small manager interface with v1, v2 and null implementations, chosen by detect().

A manager creates a task's cgroup (under the cgroup lxrun runs in, or a given parent), sets its
limits, says which files the child writes to join it before exec, reads usage, kills every
process in it and removes it. Mount points and our own cgroup paths are passed in, so the
controller logic runs unchanged on a fake tree in tests.

The package owns every cgroup lxrun touches: limits.py is the one table from Limits to cgroup
files (for every backend), tree.py the trees the lxc and docker backends' runtimes nest in.
"""

from __future__ import annotations

from lxrun.cgroups.base import CgroupManager, TaskCgroup, Usage
from lxrun.cgroups.discover import detect

__all__ = ["CgroupManager", "TaskCgroup", "Usage", "detect"]
