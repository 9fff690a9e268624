"""What a task's /proc/self/mountinfo tells of the host: no host device (nor its size, which shows the
host's RAM for devtmpfs) and no path of the state root, except in the overlay root's own options."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxrun.spec import Limits, Security
from tests.integration.conftest import sh

pytestmark = pytest.mark.v2


def host_devices() -> set[str]:
    """The sources and size options of the host's device-backed mounts (block devices, devtmpfs)."""
    found = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype, source, options = fields[fields.index("-") + 1 :][:3]
        if fstype == "devtmpfs" or source.startswith("/dev/"):
            found.add(source)
            found.update(option for option in options.split(",") if option.startswith("size="))
    return found


@pytest.mark.parametrize("userns", ["private", "host"])
def test_mountinfo_names_no_host_device_and_no_state_root_path(state_root: Path, userns: str) -> None:
    security = Security(userns="host") if userns == "host" else Security()
    result = sh(state_root, "cat /proc/self/mountinfo", limits=Limits(memory=64 << 20), security=security)
    devices, state = host_devices(), str(state_root)
    leaks = []
    for line in result.stdout.decode().splitlines():
        fields = line.split()
        separator = fields.index("-")
        root, mount_point = fields[3], fields[4]
        fstype, source, options = fields[separator + 1 : separator + 4]
        shows_device = fstype == "devtmpfs" or source in devices or bool(set(options.split(",")) & devices)
        overlay_root = mount_point == "/" and fstype == "overlay"  # its lowerdir/upperdir options name the root
        shows_state = state in root or state in source or (state in options and not overlay_root)
        if shows_device or shows_state:
            leaks.append(line)
    assert leaks == [], "\n".join(leaks)
