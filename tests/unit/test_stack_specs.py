"""Base and stack specs without root: the shipped specs load, what decides a digest and what doesn't,
the build steps and the mmdebstrap command a spec becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxrun.errors import SpecError
from lxrun.store.builds import build_steps, stack_digest
from lxrun.store.debian import debian_digest, mmdebstrap_argv
from lxrun.store.specs import SOURCE_TREE, DebianSpec, StackSpec, load_base_spec, load_stack_spec

SHIPPED_STACKS = sorted((SOURCE_TREE / "stacks").glob("*.toml"))
PARENT = "a" * 64


def stack(**changes: object) -> StackSpec:
    values: dict[str, object] = {
        "path": Path("stacks/s.toml"),
        "name": "s",
        "version": "1",
        "parent": "debian-bookworm",
        "packages": ["python3", "curl"],
        "run": ["echo one", "echo two"],
        "env": {"A": "1"},
        "labels": {"team": "x"},
    }
    values.update(changes)
    return StackSpec(**values)  # type: ignore[arg-type]


def test_every_shipped_spec_loads() -> None:
    names = {path.stem: load_stack_spec(path) for path in SHIPPED_STACKS}
    assert {"python3.11", "python3.13", "ruby3.1", "ruby3.3", "node18", "php8.2", "java17"} <= set(names)
    assert names["python3.11-media"].parent == "python3.11"
    bases = {path.stem: load_base_spec(path) for path in (SOURCE_TREE / "rootfs").glob("*.toml")}
    assert {spec.parent for spec in names.values()} <= set(bases) | set(names)
    bookworm = bases["debian-bookworm"]
    assert isinstance(bookworm, DebianSpec) and (bookworm.suite, bookworm.env["LANG"]) == ("bookworm", "C.UTF-8")


def test_labels_and_package_order_do_not_change_the_digest() -> None:
    digest = stack_digest(stack(), PARENT)
    assert stack_digest(stack(labels={"team": "y"}), PARENT) == digest
    assert stack_digest(stack(packages=["curl", "python3", "curl"]), PARENT) == digest


@pytest.mark.parametrize(
    "changes",
    [{"version": "2"}, {"packages": ["python3"]}, {"run": ["echo two", "echo one"]}, {"env": {"A": "2"}}],
)
def test_what_the_build_depends_on_changes_the_digest(changes: dict[str, object]) -> None:
    assert stack_digest(stack(**changes), PARENT) != stack_digest(stack(), PARENT)


def test_the_parent_layer_changes_the_digest() -> None:
    assert stack_digest(stack(), "b" * 64) != stack_digest(stack(), PARENT)


def test_build_steps_install_then_run_then_clean() -> None:
    titles = [step.title for step in build_steps(stack())]
    assert titles == [
        "apt-get update",
        "check packages",
        "apt-get install python3 curl",
        "run: echo one",
        "run: echo two",
        "remove apt lists, caches and logs",
    ]
    assert [step.checks_packages for step in build_steps(stack())][:3] == [False, True, False]
    assert build_steps(stack(packages=[]))[0].argv == ("/bin/sh", "-ec", "echo one")


def debian(**changes: object) -> DebianSpec:
    values: dict[str, object] = {
        "path": Path("rootfs/d.toml"),
        "name": "d",
        "version": "1",
        "builder": "mmdebstrap",
        "suite": "bookworm",
    }
    values.update(changes)
    return DebianSpec(**values)  # type: ignore[arg-type]


def test_mmdebstrap_argv_and_generated_locales() -> None:
    plain = mmdebstrap_argv(debian(), "/t")
    assert plain[:4] == ["mmdebstrap", "--mode=unshare", "--variant=minbase", "--format=directory"]
    assert plain[-3:] == ["bookworm", "/t", "http://deb.debian.org/debian"]
    assert not any(arg.startswith("--include") for arg in plain)
    german = mmdebstrap_argv(debian(locale="de_DE.UTF-8", packages=["curl"]), "/t")
    assert "--include=curl,locales" in german
    assert any('echo "de_DE.UTF-8 UTF-8" > "$1/etc/locale.gen"' in arg for arg in german)
    assert debian(locale="de_DE.UTF-8").env["LANG"] == "de_DE.UTF-8"
    assert debian_digest(debian(labels={"a": "b"})) == debian_digest(debian())
    assert debian_digest(debian(suite="trixie")) != debian_digest(debian())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('builder = "debootstrap"', "`builder` 'debootstrap' is unknown"),
        ('builder = "busybox"\nsuite = "bookworm"', "`suite` is not a known key"),
        ('builder = "mmdebstrap"', "`suite` is missing"),
        ('builder = "mmdebstrap"\nsuite = "bookworm"\nlocale = "klingon"', "`locale` 'klingon' is not a locale"),
        ('builder = "mmdebstrap"\nsuite = "bookworm"\nmirror = "ftp://x"', "`mirror` 'ftp://x' is not an http(s) URL"),
        ('builder = "mmdebstrap"\nsuite = "../x"', "`suite` '../x' is not a valid suite"),
        ("builder = [", "is not valid TOML"),
    ],
)
def test_bad_base_specs(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.toml"
    path.write_text(f'name = "b"\nversion = "1"\n{text}\n')
    with pytest.raises(SpecError) as raised:
        load_base_spec(path)
    assert str(raised.value).startswith(f"spec {path}: {message}")


def test_a_stack_spec_says_how_its_image_runs_without_changing_its_digest(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\nversion = "1"\nparent = "img"\nentrypoint = ["/app"]\ncmd = []\nworkdir = "/srv"\n')
    spec = load_stack_spec(path)
    assert dict(spec.image) == {"entrypoint": ("/app",), "cmd": (), "workdir": "/srv"}
    assert stack_digest(spec, PARENT) == stack_digest(spec.replace(image={}), PARENT)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('cmd = "echo hi"', "`cmd` must be a list of strings"),
        ("entrypoint = [1]", "`entrypoint` must be a list of strings"),
        ('workdir = "srv"', "`workdir` 'srv' is not an absolute path"),
        ("user = 0", "`user` must be a string"),
    ],
)
def test_bad_image_keys_in_a_stack_spec(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'name = "s"\nversion = "1"\nparent = "img"\n{text}\n')
    with pytest.raises(SpecError) as raised:
        load_stack_spec(path)
    assert str(raised.value).startswith(f"spec {path}: {message}")
