"""`lxrun exec` parses its options by hand and shows them through argparse: both read one table, and
for what argparse accepts they must agree on every value."""

from __future__ import annotations

import pytest

from lxrun.cli.exec_options import help_parser, parse
from lxrun.cli.usage import UsageError

ACCEPTED = [
    ["--stack", "b", "--", "true"],
    ["--stack", "b", "true", "-x", "--keep"],  # from the command on, nothing is an option
    ["--stack=b", "-i", "-e", "A=1", "-eB=2", "-e=C", "--env", "D", "--env=E=5", "--", "sh", "-c", "x"],
    ["--stack", "b", "-ie", "A", "--", "true"],
    ["--stack", "b", "-m", "256m", "--cpus", "-1", "--", "true"],  # a negative number is a value
    ["--stack", "b", "--net", "host", "true"],
    ["--stack", "b", "--network=bridge", "-p", "80:80", "-p", "81:81", "true"],
    ["--stack", "b", "--stack", "c", "true"],
    ["--stack", "b", "--keep", "--stats", "-w", "/x", "-v", "/a:/b", "--", "-x"],
    ["--stack", "b"],
    ["--stack", "b", "-5"],
    ["--stack", "b", "-"],
    ["--stack", "b", "--userns", "host", "-u", "1:2", "--cap-add", "ALL", "--security-opt", "seccomp=unconfined", "x"],
    ["--stack", "b", "--timeout", "5", "--stop-timeout=1", "--pids-limit", "9", "-c", "512", "--root", "/r", "x"],
]

REFUSED = [
    (["--stack", "b", "--bogus", "--", "true"], "unrecognized arguments: --bogus"),
    (["--", "true"], "the following arguments are required: --stack"),
    (["--stack", "b", "--network", "x", "true"], "argument --network/--net: invalid choice: 'x'"),
    (["--stack", "b", "--memory"], "argument -m/--memory: expected one argument"),
    (["--stack", "b", "--memory", "--keep", "true"], "argument -m/--memory: expected one argument"),
    (["--stack", "b", "--keep=1", "true"], "argument --keep: ignored explicit argument '1'"),
    (["--stack", "b", "-x", "true"], "unrecognized arguments: -x"),
    (["--stac", "b", "true"], "unrecognized arguments: --stac"),  # no abbreviations
]

APPENDED = ("env", "env_file", "volume", "cap_add", "cap_drop", "security_opt", "publish")


def as_argparse_reads(argv: list[str]) -> dict[str, object]:
    values = vars(help_parser().parse_args(argv))
    command = values["command"]
    values["command"] = command[1:] if command[:1] == ["--"] else command
    return {name: [] if value is None and name in APPENDED else value for name, value in values.items()}


@pytest.mark.parametrize("argv", ACCEPTED, ids=" ".join)
def test_parse_agrees_with_argparse(argv: list[str]) -> None:
    values = vars(parse(argv))
    assert values.pop("help") is False
    assert values == as_argparse_reads(argv)


@pytest.mark.parametrize(("argv", "message"), REFUSED)
def test_bad_options_are_one_line_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse(argv)
    text = str(refused.value)
    assert text.startswith(f"lxrun exec: {message}") and text.endswith(" (see `lxrun exec --help`)")
    assert "\n" not in text


def test_help_wins_over_a_missing_stack() -> None:
    assert parse(["--help"]).help is True
    assert "--stack STACK" in help_parser().format_usage()
