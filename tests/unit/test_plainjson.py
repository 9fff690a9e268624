"""lxrun.plainjson writes the text json.dumps writes and reads what json.loads reads, with json's errors."""

from __future__ import annotations

import io
import json

import pytest

from lxrun import plainjson

VALUES = [
    {"id": "t1", "pid": 42, "limits": {"memory": 1 << 30, "cpus": 0.5}, "argv": ["sh", "-c", 'echo "é\n\\"']},
    [None, True, False, -3, 1e300, "\u2028\x00"],
    {},
    [],
    "text",
    0,
]


@pytest.mark.parametrize("value", VALUES)
def test_the_same_text_and_values_as_json(value: object) -> None:
    text = plainjson.dumps(value)
    assert text == json.dumps(value)
    assert plainjson.loads(text) == json.loads(text)
    assert plainjson.loads(f" \n{text}\t\r\n".encode()) == value
    assert plainjson.load(io.StringIO(text)) == value


NESTED = [
    {},
    [],
    {"a": 1, "b": [1, 2, {"c": None, "d": 'é"x'}], "e": {}, "f": [], "g": (1, 2.5, True)},
    [[], [{}], {"k": [[]]}],
    {"ociVersion": "1.0.2", "id": "x", "pid": 7, "annotations": {"a": "b"}},
    {1: "a key json turns into a string"},
    "plain",
]


@pytest.mark.parametrize("value", NESTED)
@pytest.mark.parametrize("indent", [1, "  ", "\t"])
def test_indent_is_json_s(value: object, indent: int | str) -> None:
    assert plainjson.dumps(value, indent=indent) == json.dumps(value, indent=indent)


@pytest.mark.parametrize("bad", ["", "  ", "{", "[1,]", "1 2", '{"a": 1}x', "\ufeff{}", "nul", '"\x01"'])
def test_what_json_refuses_fails_with_json_s_error(bad: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(bad)
    with pytest.raises(json.JSONDecodeError) as got:
        plainjson.loads(bad)
    assert str(got.value) == str(expected.value)


def test_an_object_json_can_t_write_is_refused() -> None:
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        plainjson.dumps({"a": object()})
