"""config.json's process.rlimits, oomScoreAdj, linux.sysctl, maskedPaths and readonlyPaths as lxrun-oci reads
them, without root: what is taken, what is refused naming the field, and the mask steps beyond lxrun's own."""

from __future__ import annotations

import re
import resource
from pathlib import Path
from typing import Any

import pytest

from lxrun.errors import SpecError
from lxrun.oci.config import IGNORED, from_config, rlimits, sysctls
from lxrun.oci.defaults import features
from lxrun.sandbox import mounts


def bundle_config(tmp_path: Path, **linux: Any) -> dict[str, Any]:
    (tmp_path / "rootfs" / "etc").mkdir(parents=True)
    namespaces = [{"type": kind} for kind in ("pid", "network", "ipc", "uts", "mount")]
    process = {"args": ["true"], "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}],
               "oomScoreAdj": 500}  # fmt: skip
    return {"process": process, "root": {"path": "rootfs"}, "linux": {"namespaces": namespaces, **linux}}


def test_the_fields_are_read_not_ignored(tmp_path: Path) -> None:
    config = bundle_config(tmp_path, sysctl={"kernel.shmmax": "1"}, maskedPaths=["/proc/interrupts/"],
                           readonlyPaths=["/etc"])  # fmt: skip
    bundle = from_config(config, str(tmp_path), "abc", str(tmp_path))
    assert bundle.plan.rlimits == (("RLIMIT_NOFILE", 512, 1024),)
    assert bundle.oom_score_adj == 500
    assert bundle.sysctl == {"kernel/shmmax": "1"}
    assert (bundle.plan.masked_paths, bundle.plan.read_only_paths) == (("/proc/interrupts",), ("/etc",))
    for field in ("process.rlimits", "process.oomScoreAdj", "linux.sysctl", "linux.maskedPaths"):
        assert field not in IGNORED
    assert "linux.readonlyPaths" not in features()["annotations"]["io.github.lxrun.ignored"]


def test_rlimits_infinity_and_refusals() -> None:
    unlimited = 2**64 - 1
    assert rlimits([{"type": "RLIMIT_CORE", "soft": 0, "hard": unlimited}]) == (
        ("RLIMIT_CORE", 0, resource.RLIM_INFINITY),
    )
    with pytest.raises(SpecError, match=re.escape("process.rlimits RLIMIT_BOGUS: is not a resource limit")):
        rlimits([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}])
    with pytest.raises(SpecError, match="soft limit is above its hard limit"):
        rlimits([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}])
    with pytest.raises(SpecError, match=re.escape("process.rlimits")):
        rlimits([{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 1024}])


def test_oom_score_adj_out_of_range(tmp_path: Path) -> None:
    config = bundle_config(tmp_path)
    config["process"]["oomScoreAdj"] = 1001
    with pytest.raises(SpecError, match=re.escape("process.oomScoreAdj")):
        from_config(config, str(tmp_path), "abc", str(tmp_path))


def test_sysctls_of_the_containers_own_namespaces_only() -> None:
    taken = {"kernel.msgmax": "1", "fs.mqueue.msg_max": "2", "net/ipv4/conf/eth0.1/rp_filter": "0",
             "kernel.domainname": "d"}  # fmt: skip
    assert sysctls(taken, own_network=True) == {
        "kernel/msgmax": "1",
        "fs/mqueue/msg_max": "2",
        "net/ipv4/conf/eth0.1/rp_filter": "0",
        "kernel/domainname": "d",
    }
    with pytest.raises(SpecError, match=re.escape("kernel.core_pattern: is not in a separate")):
        sysctls({"kernel.core_pattern": "x"}, own_network=True)
    with pytest.raises(SpecError, match=re.escape("net.ipv4.ip_forward: is not allowed in the host's")):
        sysctls({"net.ipv4.ip_forward": "1"}, own_network=False)
    with pytest.raises(SpecError, match='conflicts with the OCI "hostname" field'):
        sysctls({"kernel.hostname": "h"}, own_network=True)
    with pytest.raises(SpecError, match="is not a sysctl name"):
        sysctls({"net/../../kernel/core_pattern": "x"}, own_network=True)


def test_extra_masks_keep_lxruns_own_and_add_the_bundles(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "secret").write_text("x")
    masked = ["/proc/kcore", "/proc/interrupts", "/data", "/secret", "/data"]
    steps = mounts.extra_mask_steps("/s", masked, ["/proc/sys", "/etc"], str(tmp_path))
    assert [(step.op, step.target) for step in steps] == [
        (mounts.REBIND, "/etc"),  # read-only first, as runc; /proc/sys is lxrun's own already
        (mounts.BIND, "/proc/interrupts"),
        (mounts.BIND, "/secret"),
        (mounts.FS, "/data"),
    ]
    assert steps[1].source == "/s/dev/null" and steps[3].fstype == "tmpfs" and "ro" in steps[3].attrs
    assert all(step.create == mounts.CREATE_SKIP for step in steps)
