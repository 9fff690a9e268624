"""bin/lxrun, the installed `lxrun` command: started with -S (as `make venv` leaves it), it puts the venv's
site-packages and lxrun's editable checkout on sys.path itself, and leaves every other case to site.py."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bin" / "lxrun"
CHECKOUT = SCRIPT.parent.parent
PACKAGES = f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"


def fake_venv(tmp_path: Path, pth: str = f"{CHECKOUT}\n", system_site: str = "false") -> Path:
    """A venv's shape around this interpreter: bin/python3, pyvenv.cfg, site-packages with lxrun's .pth."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    interpreter = os.path.realpath(sys.executable)
    (venv / "bin" / "python3").symlink_to(interpreter)
    (venv / "pyvenv.cfg").write_text(
        f"home = {os.path.dirname(interpreter)}\ninclude-system-site-packages = {system_site}\n"
    )
    (venv / PACKAGES).mkdir(parents=True)
    (venv / PACKAGES / "__editable__.lxrun-0.1.0.pth").write_text(pth)
    (venv / PACKAGES / "distutils-precedence.pth").write_text("import os; raise SystemExit('site ran')\n")
    return venv


def lean_path_in(venv: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[bool, list[str]]:
    lean_path = runpy.run_path(str(SCRIPT), run_name="lxrun_entry")["lean_path"]
    monkeypatch.setattr(sys, "executable", str(venv / "bin" / "python3"))
    monkeypatch.setattr(sys, "path", ["/first"])
    return lean_path(), sys.path


def test_site_packages_and_the_checkout_follow_pythonpath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv = fake_venv(tmp_path)
    assert lean_path_in(venv, monkeypatch) == (True, ["/first", f"{venv}/{PACKAGES}", str(CHECKOUT)])


@pytest.mark.parametrize(
    ("pth", "system_site"),
    [
        (f"{CHECKOUT}\n", "true"),  # the system's packages: only site.py knows where
        ("import __editable___lxrun_finder; __editable___lxrun_finder.install()\n", "false"),  # an import hook
    ],
)
def test_site_py_runs_where_the_script_can_t_tell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pth: str, system_site: str
) -> None:
    assert lean_path_in(fake_venv(tmp_path, pth, system_site), monkeypatch) == (False, ["/first"])


def test_not_a_venv_is_left_to_site_py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv = fake_venv(tmp_path)
    (venv / "pyvenv.cfg").unlink()
    assert lean_path_in(venv, monkeypatch) == (False, ["/first"])


def test_the_command_starts_without_site(tmp_path: Path) -> None:
    """lxrun found through the .pth alone; site.py, which would run the other .pth and exit, never ran."""
    venv = fake_venv(tmp_path)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    ran = subprocess.run(
        [str(venv / "bin" / "python3"), "-S", str(SCRIPT), "--help"], env=env, capture_output=True, text=True
    )
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.startswith("usage: lxrun COMMAND")
