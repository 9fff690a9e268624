"""The host's defaults for tasks (lxrun.config): parsing, which file wins, the cache, how a spec takes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxrun import config
from lxrun.config import SHIPPED, Defaults, apply, load_defaults
from lxrun.errors import LxrunError
from lxrun.spec import UNLIMITED, Limits, TaskSpec


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def load(tmp_path: Path, *files: str) -> Defaults:
    return load_defaults(files, str(tmp_path / "cache" / "config.json"))


def test_values_as_sizes_numbers_and_unlimited(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[defaults]\nmemory = "512m"\npids = -1\ndisk = 1073741824\ntimeout = 90.5\n')
    assert load(tmp_path, path) == Defaults(memory=512 << 20, pids=None, disk=1 << 30, timeout=90.5)


def test_a_key_left_out_keeps_the_shipped_value(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "# only the timeout\n[defaults]\ntimeout = -1\n")
    assert load(tmp_path, path) == SHIPPED.replace(timeout=None)
    assert load(tmp_path, write(tmp_path / "empty.toml", "")) == SHIPPED


def test_the_shipped_values_bound_every_resource() -> None:
    assert Defaults(memory=2 << 30, pids=4096, disk=1 << 30, timeout=3600.0) == SHIPPED


def test_the_state_roots_file_wins_then_the_hosts_then_the_shipped_values(tmp_path: Path) -> None:
    root_file, host_file = str(tmp_path / "root.toml"), write(tmp_path / "host.toml", "[defaults]\npids = 100\n")
    assert load(tmp_path, root_file, host_file).pids == 100
    write(tmp_path / "root.toml", '[defaults]\nmemory = "1g"\n')
    # The first file found is the whole config: the host's pids don't leak into it.
    assert load(tmp_path, root_file, host_file) == SHIPPED.replace(memory=1 << 30)
    assert load(tmp_path, str(tmp_path / "a.toml"), str(tmp_path / "b.toml")) == SHIPPED


def test_an_unchanged_file_is_not_parsed_again_and_a_changed_one_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "c.toml", "[defaults]\npids = 100\n")
    assert load(tmp_path, path).pids == 100
    parsed: list[str] = []
    read_toml = config._read_toml
    monkeypatch.setattr(config, "_read_toml", lambda p: parsed.append(p) or read_toml(p))
    assert load(tmp_path, path).pids == 100 and parsed == []
    write(tmp_path / "c.toml", "[defaults]\npids = 2000\n")
    assert load(tmp_path, path).pids == 2000 and parsed == [path]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[defaults]\nmemory = "2x"\n', "defaults.memory: 2x is not a size"),
        ('[defaults]\nmemory = "1m"\n', "defaults.memory: 1048576 bytes is below the minimum of 6m"),
        ("[defaults]\ndisk = 10\n", "defaults.disk: 10 bytes is below the minimum of 1m"),
        ("[defaults]\npids = 0\n", "defaults.pids: 0 allows no process"),
        ("[defaults]\npids = 1.5\n", "defaults.pids: 1.5 is not a whole number"),
        ("[defaults]\ntimeout = 0\n", "defaults.timeout: 0 is not a positive number of seconds"),
        ("[defaults]\ntimeout = true\n", "defaults.timeout: True is neither a number nor a size"),
        ('[defaults]\nmemroy = "1g"\n', "defaults.memroy: unknown key"),
        ('memory = "1g"\n', "memory: unknown table or key"),
        ("[defaults\n", "is not valid TOML"),
    ],
)
def test_a_bad_file_names_itself_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "c.toml", text)
    with pytest.raises(LxrunError) as info:
        load(tmp_path, path)
    assert str(info.value).startswith(f"config {path}: {message}"), str(info.value)
    assert not (tmp_path / "cache" / "config.json").exists()  # a bad file is never cached


def spec(**kwargs: object) -> TaskSpec:
    return TaskSpec(stack="busybox", argv=["true"], **kwargs)  # type: ignore[arg-type]


def test_a_spec_takes_the_defaults_for_what_it_left_unset() -> None:
    applied = apply(spec(limits=Limits(cpus=0.5)), SHIPPED)
    assert (applied.limits.memory, applied.limits.pids, applied.limits.cpus) == (2 << 30, 4096, 0.5)
    assert (applied.disk, applied.timeout) == (1 << 30, 3600.0)


def test_a_value_given_wins_and_unlimited_means_no_bound() -> None:
    given = apply(spec(limits=Limits(memory=64 << 20, pids=UNLIMITED), disk=UNLIMITED, timeout=5), SHIPPED)
    assert (given.limits.memory, given.limits.pids, given.disk, given.timeout) == (64 << 20, None, None, 5)


def test_a_kept_upper_dir_gets_no_disk_cap() -> None:
    assert apply(spec(keep=True), SHIPPED).disk is None


def test_no_defaults_leave_a_spec_unbounded() -> None:
    applied = apply(spec(), Defaults())
    assert (applied.limits, applied.disk, applied.timeout) == (Limits(), None, None)
