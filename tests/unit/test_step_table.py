"""StepTable: mount steps every sandbox of a kind shares, put in C form once and copied into each
spawn's request, byte for byte what building them again gives."""

from __future__ import annotations

from lxrun.sandbox import mounts
from lxrun.sandbox.helper import StepTable, _Builder, ffi


def test_shared_steps_are_copied_as_built() -> None:
    table = StepTable(mounts.sandbox_steps("/scratch", 1 << 20))
    own = [mounts.workdir_step("/work"), mounts.PIVOT]
    steps = [*table.steps, *own]
    shared_build, fresh_build = _Builder(), _Builder()
    shared = shared_build.steps(steps, table)
    fresh = fresh_build.steps(steps)
    assert table in shared_build.keep  # its strings stay alive while the request does
    # Equal strings at different addresses: compare each field, the pointers' targets included.
    for index in range(len(steps)):
        ours, theirs = shared[index], fresh[index]
        for field in ("source", "target", "fstype", "data"):
            one, other = getattr(ours, field), getattr(theirs, field)
            assert (one == ffi.NULL) == (other == ffi.NULL)
            if one != ffi.NULL:
                assert ffi.string(one) == ffi.string(other), (index, field)
        for field in ("op", "flags", "attr", "create", "mode", "owner", "device"):
            assert getattr(ours, field) == getattr(theirs, field), (index, field)


def test_steps_that_dont_begin_with_the_table_are_built_in_full() -> None:
    table = StepTable(mounts.sandbox_steps("/scratch"))
    other = mounts.sandbox_steps("/scratch")  # equal steps, but not the table's own objects
    assert not table.starts(other)
    build = _Builder()
    build.steps(other, table)
    assert table not in build.keep
