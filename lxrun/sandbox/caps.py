"""Capabilities by name: docker's default set, and --cap-add / --cap-drop applied to it.

Names are docker's (NET_RAW or CAP_NET_RAW, any case; ALL means every one). A task keeps at most
the resulting set, in its bounding set too, so nothing it execs can regain the others.
"""

from __future__ import annotations

from lxrun.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# In the kernel's order (linux/capability.h); a name's position is its number.
NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)  # fmt: skip
NUMBERS = {name: number for number, name in enumerate(NAMES)}

DOCKER_DEFAULT = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP", "SETPCAP",
    "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
})  # fmt: skip


def normalize(option: str, name: str) -> str:
    """NET_RAW, CAP_NET_RAW, net_raw -> NET_RAW; ALL stays ALL."""
    bare = name.strip().upper().removeprefix("CAP_")
    if bare != "ALL" and bare not in NUMBERS:
        raise SpecError(option, "is not a capability", path=name, hint="e.g. NET_ADMIN; see capabilities(7)")
    return bare


def effective_set(add: Iterable[str] = (), drop: Iterable[str] = ()) -> frozenset[str]:
    """docker's rules: start from the default set, drop (ALL drops everything), then add (ALL adds all)."""
    added = {normalize("cap_add", name) for name in add}
    dropped = {normalize("cap_drop", name) for name in drop}
    kept = set() if "ALL" in dropped else set(DOCKER_DEFAULT) - dropped
    kept |= set(NAMES) if "ALL" in added else added
    return frozenset(kept)


def bitmask(names: Iterable[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << NUMBERS[name]
    return mask
