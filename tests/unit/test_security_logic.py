"""Capabilities, the uid pool and its leases, and Docker-format seccomp profiles (no task is started)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lxrun.errors import SpecError
from lxrun.layout import Layout
from lxrun.options import parse_security_opts, parse_user
from lxrun.sandbox import caps
from lxrun.sandbox.seccomp import DEFAULT_PROFILE
from lxrun.sandbox.seccomp.profile import ACTIONS, load, resolve
from lxrun.sandbox.userns import DEFAULT_POOL, RANGE, IdPool, load_pool, take_range


def test_default_caps_are_dockers() -> None:
    assert caps.effective_set() == caps.DOCKER_DEFAULT
    assert caps.bitmask(caps.DOCKER_DEFAULT) == 0xA80425FB


def test_cap_add_and_drop_follow_docker() -> None:
    assert caps.effective_set(drop=["ALL"]) == frozenset()
    assert caps.effective_set(add=["cap_net_admin"], drop=["ALL"]) == {"NET_ADMIN"}
    assert caps.effective_set(add=["ALL"]) == frozenset(caps.NAMES)
    assert "NET_RAW" not in caps.effective_set(drop=["net_raw"])
    with pytest.raises(SpecError, match=r"^cap_add FLY: is not a capability"):
        caps.effective_set(add=["FLY"])


def test_user_and_security_opts() -> None:
    assert parse_user("1000") == (1000, None)
    assert parse_user("1000:50") == (1000, 50)
    with pytest.raises(SpecError, match="--user"):
        parse_user("alice")
    assert parse_security_opts([]) == "default"
    assert parse_security_opts(["seccomp=unconfined", "no-new-privileges"]) == "unconfined"
    assert parse_security_opts(["seccomp:/p.json"]) == "/p.json"
    for bad in (["apparmor=x"], ["no-new-privileges=false"], ["seccomp="]):
        with pytest.raises(SpecError, match="--security-opt"):
            parse_security_opts(bad)


def test_uid_pool_from_subuid_files(tmp_path: Path) -> None:
    (tmp_path / "subuid").write_text("alice:100000:65536\nlxrun:200000:196608\n")
    (tmp_path / "subgid").write_text("lxrun:300000:131072\n")
    pool = load_pool(str(tmp_path / "subuid"), str(tmp_path / "subgid"))
    assert (pool.uid_start, pool.gid_start, pool.ranges) == (200000, 300000, 2)
    default = load_pool(str(tmp_path / "none"), str(tmp_path / "none"))
    assert (default.uid_start, default.ranges) == (DEFAULT_POOL[0], DEFAULT_POOL[1] // RANGE)


def test_a_pool_smaller_than_one_range_is_refused(tmp_path: Path) -> None:
    (tmp_path / "subuid").write_text("lxrun:200000:1000\n")
    with pytest.raises(Exception, match="less than 65536 ids"):
        load_pool(str(tmp_path / "subuid"), str(tmp_path / "subuid"))


def test_the_default_profile_is_an_allowlist_that_keeps_out_the_dangerous_calls() -> None:
    resolved = resolve(DEFAULT_PROFILE, load(DEFAULT_PROFILE), caps.DOCKER_DEFAULT)
    allowed = {rule.name for rule in resolved.rules if rule.action == ACTIONS["SCMP_ACT_ALLOW"] and not rule.args}
    assert resolved.default_action == ACTIONS["SCMP_ACT_ERRNO"] | 1
    assert {"read", "write", "execve", "clone3"} - allowed == {"clone3"}
    for name in (
        "mount",
        "unshare",
        "setns",
        "keyctl",
        "bpf",
        "perf_event_open",
        "init_module",
        "reboot",
        "pivot_root",
        "open_by_handle_at",
        "kexec_load",
        "userfaultfd",
    ):
        assert name not in allowed, name
    assert "chroot" in allowed  # CAP_SYS_CHROOT is in docker's default set


def test_capabilities_unlock_their_calls() -> None:
    with_admin = resolve(DEFAULT_PROFILE, load(DEFAULT_PROFILE), caps.DOCKER_DEFAULT | {"SYS_ADMIN"})
    names = {rule.name for rule in with_admin.rules if not rule.args}
    assert {"mount", "unshare", "setns", "clone"} <= names


def write_profile(tmp_path: Path, profile: object) -> str:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile))
    return str(path)


def test_includes_excludes_and_errno(tmp_path: Path) -> None:
    path = write_profile(tmp_path, {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["chown"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_CHOWN"]}},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "99.0"}},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
        ],
    })  # fmt: skip
    rules = resolve(path, load(path), frozenset({"CHOWN"})).rules
    assert [(rule.name, rule.action) for rule in rules] == [("mkdir", ACTIONS["SCMP_ACT_ERRNO"] | 13)]


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"defaultAction": "SCMP_ACT_NOPE"}, "defaultAction: unknown action"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}, "syscalls[0] has no syscall"),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0}]}],
            },
            "syscalls[0].args[0] needs",
        ),
        ([], "must be a JSON object"),
    ],
)
def test_bad_profiles_name_the_file_and_the_key(tmp_path: Path, profile: object, message: str) -> None:
    path = write_profile(tmp_path, profile)
    with pytest.raises(SpecError) as info:
        resolve(path, load(path), frozenset())
    assert message in str(info.value) and path in str(info.value)


def test_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("{nope")
    with pytest.raises(SpecError, match="is not valid JSON"):
        load(str(path))


def test_uid_leases_exclude_each_other_and_die_with_their_holder(tmp_path: Path) -> None:
    layout = Layout(str(tmp_path))
    layout.ensure()
    pool = IdPool(uid_start=200000, gid_start=300000, ranges=3)
    with take_range(layout, pool) as first, take_range(layout, pool) as second:
        assert (first.range.index, second.range.index) == (0, 1)  # same process: still one range each
        assert (second.range.uid, second.range.gid) == (200000 + RANGE, 300000 + RANGE)
    # A holder that dies without releasing (a crashed runner) frees its range with its descriptors.
    holder = subprocess.Popen(
        [sys.executable, "-c", TAKE_AND_WAIT, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdout is not None and holder.stdout.readline() == b"0\n"
    with take_range(layout, pool) as other:
        assert other.range.index == 1
    holder.kill()
    holder.wait()
    with take_range(layout, pool) as again:
        assert again.range.index == 0


TAKE_AND_WAIT = """
import sys
from lxrun.layout import Layout
from lxrun.sandbox.userns import IdPool, take_range
lease = take_range(Layout(sys.argv[1]), IdPool(200000, 300000, 3))
print(lease.range.index, flush=True)
sys.stdin.read()
"""
