"""Network namespaces without forking Python: a new one as a descriptor (the helper's lxrun_new_netns, a
vfork'd child on its own stack), and a function run in a fresh thread that entered one.

setns affects only the calling thread, so the thread is thrown away afterwards: nothing else in the
process ever runs in the task's namespace. A socket keeps the namespace it was created in, so a
netlink socket opened in that thread talks to the task's netns.
"""

from __future__ import annotations

import contextlib
import os
import threading

from lxrun.sandbox.helper import enter_netns, new_netns_fd

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import TypeVar

    T = TypeVar("T")


@contextlib.contextmanager
def new_netns() -> Iterator[int]:
    """A new network namespace (only a down `lo` in it) as an O_CLOEXEC descriptor, closed on exit; the
    namespace ends once nothing (this descriptor, a process in it) holds it."""
    fd = new_netns_fd()
    try:
        yield fd
    finally:
        os.close(fd)


def run_in_netns(netns_fd: int, function: Callable[[], T]) -> T:
    """`function()` in a new thread that entered `netns_fd`; its result, or its exception re-raised here."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def enter_and_run() -> None:
        try:
            enter_netns(netns_fd)
            outcome.append(function())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=enter_and_run, name="lxrun-netns", daemon=True)
    thread.start()
    try:
        thread.join()
    finally:
        # Even when interrupted: the caller may close netns_fd next, and the thread must not see it reused.
        while thread.is_alive():
            thread.join()
    if failure:
        raise failure[0]
    return outcome[0]
