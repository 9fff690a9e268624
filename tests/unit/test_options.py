from __future__ import annotations

from pathlib import Path

import pytest

from lxrun.errors import SpecError
from lxrun.options import collect_env, parse_env_item, parse_volume, read_env_file


def test_env_item_forms() -> None:
    assert parse_env_item("A=1", {}) == ("A", "1")
    assert parse_env_item("A=", {}) == ("A", "")
    assert parse_env_item("A=b=c", {}) == ("A", "b=c")
    assert parse_env_item("HOME", {"HOME": "/root"}) == ("HOME", "/root")


def test_env_item_unset_on_host_names_the_fix() -> None:
    with pytest.raises(SpecError) as info:
        parse_env_item("NOPE", {})
    assert str(info.value) == "-e NOPE: is not set on the host (give a value: -e NOPE=VALUE)"


def test_env_file_and_precedence(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\n\nA=file\nB=file\nFROMHOST\n")
    assert read_env_file(str(env_file), {"FROMHOST": "h"}) == [("A", "file"), ("B", "file"), ("FROMHOST", "h")]
    assert collect_env([str(env_file)], ["B=flag"], {"FROMHOST": "h"}) == {"A": "file", "B": "flag", "FROMHOST": "h"}


def test_env_file_errors_name_the_line(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("A=1\nMISSING\n")
    with pytest.raises(SpecError, match=r"--env-file .*env:2 MISSING"):
        read_env_file(str(env_file), {})
    with pytest.raises(SpecError, match="No such file"):
        read_env_file(str(tmp_path / "absent"), {})


def test_volume_forms() -> None:
    volume = parse_volume("/src:/dst")
    assert (volume.source, volume.target, volume.read_only) == ("/src", "/dst", False)
    assert parse_volume("/src:/dst:ro").read_only
    assert not parse_volume("/src:/dst:rw").read_only
    assert volume.idmap and not parse_volume("/src:/dst:noidmap").idmap
    plain = parse_volume("/src:/dst:ro,noidmap")
    assert (plain.read_only, plain.idmap) == (True, False)


@pytest.mark.parametrize("text", ["/src", "/a:/b:ro:x", "/a:/b:z", ":/b", "/a:", "/a:/b:ro,rw", "/a:/b:ro,"])
def test_bad_volume_forms(text: str) -> None:
    with pytest.raises(SpecError, match="-v"):
        parse_volume(text)
