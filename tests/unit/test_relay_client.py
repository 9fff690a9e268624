"""native/client.c reads exec's options and forwards signals without Python: what it knows of both
must be what lxrun exec's own tables say."""

from __future__ import annotations

import re
import signal
from pathlib import Path

from lxrun.cli.exec_cmd import NOT_FORWARDED
from lxrun.cli.exec_options import FLAG, options

SOURCE = (Path(__file__).parents[2] / "native" / "client.c").read_text()


def c_array(name: str) -> str:
    found = re.search(rf"{name}\[\] = (.*?);", SOURCE, re.S)
    assert found, name
    return found[1]


def test_the_client_knows_which_options_take_no_value() -> None:
    flags = {flag for option in options() if option.kind == FLAG for flag in option.flags} | {"-h", "--help"}
    long_in_c = set(re.findall(r'"(--[a-z-]+)"', c_array("FLAG_OPTIONS")))
    short_in_c = {f"-{char}" for char in re.findall(r'"(\w+)"', c_array("SHORT_FLAGS"))[0]}
    assert long_in_c | short_in_c == flags


def test_the_client_forwards_what_lxrun_exec_forwards() -> None:
    in_c = set(re.findall(r"SIG[A-Z]+", c_array("NOT_FORWARDED")))
    assert in_c == {signal.Signals(sig).name for sig in NOT_FORWARDED}
