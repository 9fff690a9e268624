"""StackStore's versions without root: promote, rollback as an undo of promotes, repair after a crash
between the history write and the rename, removed versions skipped, the bounded history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lxrun.errors import StackNotFound, StoreError
from lxrun.layout import Layout
from lxrun.store.stacks import HISTORY_KEPT, StackStore, StackVersion


@pytest.fixture
def stacks(tmp_path: Path) -> StackStore:
    store = StackStore(Layout(tmp_path))
    for version in ("1", "2", "3"):
        store.add_version(StackVersion("s", version, [version * 64]))
    return store


def test_rollback_undoes_promotes_one_at_a_time(stacks: StackStore) -> None:
    for version in ("1", "2", "3", "2"):
        stacks.promote("s", version)
    assert [stacks.rollback("s") for _ in range(3)] == ["3", "2", "1"]
    with pytest.raises(StoreError, match="no version before 1 to go back to"):
        stacks.rollback("s")
    assert stacks.current_version("s") == "1"


def test_promoting_the_current_version_changes_nothing(stacks: StackStore) -> None:
    stacks.promote("s", "1")
    stacks.promote("s", "1")
    with pytest.raises(StoreError):
        stacks.rollback("s")


def test_rollback_repairs_a_history_written_before_a_crash(stacks: StackStore, tmp_path: Path) -> None:
    stacks.promote("s", "1")
    stacks.promote("s", "2")
    # A promote of 3 that wrote the history but died before its rename.
    (tmp_path / "stacks/s/history").write_text(json.dumps(["1", "2", "3"]))
    assert stacks.current_version("s") == "2"
    assert stacks.rollback("s") == "1"


def test_rollback_skips_removed_versions(stacks: StackStore) -> None:
    for version in ("1", "2", "3"):
        stacks.promote("s", version)
    stacks.remove("s", "2", in_use=())
    assert stacks.rollback("s") == "1"


def test_remove_refuses_the_current_version_and_one_in_use(stacks: StackStore) -> None:
    stacks.promote("s", "1")
    with pytest.raises(StoreError, match="is the current version"):
        stacks.remove("s", "1", in_use=())
    with pytest.raises(StoreError, match="a running task uses it"):
        stacks.remove("s", "2", in_use={"s@2"})
    with pytest.raises(StackNotFound):
        stacks.remove("s", "9", in_use=())
    assert [version.version for version in stacks.versions("s")] == ["1", "2", "3"]


def test_a_version_is_never_rewritten(stacks: StackStore) -> None:
    with pytest.raises(StoreError, match="version 1 already exists with other layers"):
        stacks.add_version(StackVersion("s", "1", ["f" * 64]))
    assert stacks.add_version(StackVersion("s", "1", ["1" * 64])).layers == ("1" * 64,)


def test_the_history_is_bounded(stacks: StackStore, tmp_path: Path) -> None:
    for _ in range(HISTORY_KEPT):
        stacks.promote("s", "1")
        stacks.promote("s", "2")
    assert len(json.loads((tmp_path / "stacks/s/history").read_text())) == HISTORY_KEPT


def test_resolve_reads_a_version_once_and_finds_it_gone_after_stack_rm(stacks: StackStore, tmp_path: Path) -> None:
    for version in ("1", "2", "3"):
        (tmp_path / "layers" / (version * 64) / "rootfs").mkdir(parents=True)
    stacks.promote("s", "1")
    assert stacks.resolve("s@2").layers == ("2" * 64,)
    assert stacks.resolve("s@2") == stacks.resolve("s@2")
    stacks.remove("s", "2", in_use=())
    with pytest.raises(StackNotFound, match="has no version 2"):
        stacks.resolve("s@2")
    # The same version written again (a new file): read again, not the one remembered.
    stacks.add_version(StackVersion("s", "2", ["3" * 64]))
    assert stacks.resolve("s@2").layers == ("3" * 64,)
