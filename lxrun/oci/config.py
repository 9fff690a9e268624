"""An OCI bundle's config.json as a SandboxPlan: what lxrun honours, what it refuses, what it ignores.

Pure mapping, no host changes: `load(bundle, sandbox_id, profiles)` reads the file and returns a Bundle
(the plan, the hooks, the annotations; the plan's seccomp profile is a file in `profiles` named after
its content, which `create` writes when it is not there yet). A field lxrun can't honour is a SpecError naming it
(`linux.uidMappings`); the fields the sandbox provides itself or leaves alone are listed in IGNORED
and docs/oci.md says why. The sandbox's own /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and
/sys/fs/cgroup stand in for the config's mounts of those kinds at those places.
"""

from __future__ import annotations

import hashlib
import os

from lxrun import plainjson as json
from lxrun.errors import SpecError
from lxrun.net.spec import HOST, NONE, NetworkSpec
from lxrun.oci.hooks import Hook
from lxrun.plan import PlannedVolume
from lxrun.record import Record
from lxrun.sandbox import mounts
from lxrun.sandbox.caps import NUMBERS
from lxrun.sandbox.compose import SandboxPlan
from lxrun.spec import SECCOMP_UNCONFINED, Limits, Volume

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any, TypeGuard

# The sandbox mounts these itself (the kinds the config gives them are the same): a config's mount of
# one of them is honoured by the sandbox's own.
OWN_MOUNTS = {
    "/proc": "proc",
    "/dev": "tmpfs",
    "/dev/pts": "devpts",
    "/dev/shm": "tmpfs",
    "/dev/mqueue": "mqueue",
    "/sys": "sysfs",
    "/sys/fs/cgroup": "cgroup",
}
NAMESPACES = frozenset({"pid", "mount", "ipc", "uts", "network", "cgroup"})
# Every sandbox has its own pid, mount, ipc, uts and cgroup namespace; only the network may be the host's.
REQUIRED_NAMESPACES = NAMESPACES - {"network", "cgroup"}
# What a container may join by path instead (a Kubernetes pod's sandbox shares these, docker's
# `--network container:X`, `--ipc container:X`); lxrun's init is always pid 1 of a pid namespace of its own.
JOINABLE = frozenset({"network", "ipc", "uts"})
# The sysctls runc allows with the container's own ipc namespace (lxrun's always is), besides fs.mqueue.*.
IPC_SYSCTLS = frozenset(
    {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
     "kernel.shmmni", "kernel.shm_rmid_forced"}
)  # fmt: skip
RLIM_MAX = 2**64 - 1  # runtime-spec's uint64
RLIM_UNBOUNDED = 2**63  # at or above: the kernel's RLIM_INFINITY
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# Read and left alone (docs/oci.md says why for each).
IGNORED = (
    "process.apparmorProfile",
    "process.selinuxLabel",
    "process.user.umask",
    "process.consoleSize",
    "linux.devices",
    "linux.resources.devices",
    "linux.resources.blockIO",
    "linux.resources.memory.swap",
    "linux.resources.memory.reservation",
    "linux.resources.memory.kernel",
    "linux.resources.memory.kernelTCP",
    "linux.resources.memory.swappiness",
    "linux.resources.memory.disableOOMKiller",
    "linux.resources.hugepageLimits",
    "linux.resources.network",
    "linux.mountLabel",
    "linux.rootfsPropagation",
)


class Bundle(Record):
    """A bundle's container, decided: its sandbox plan, whether it has a terminal, its hooks by kind, its
    annotations, and what `create` sets on pid 1 from the host (lxrun/oci/tuning.py): its oom_score_adj
    (None: left as inherited) and the sysctls written in its namespaces (by /proc/sys path below the
    dots: sysctls()); the rlimits ((name, soft, hard), rlimits()) are the plan's, set by the sandbox.
    `seccomp_profile`: the bundle's linux.seccomp as the text of plan.seccomp's file (None: no filter)."""

    __slots__ = (
        "annotations", "hooks", "oom_score_adj", "path", "plan", "seccomp_profile", "sysctl", "terminal"
    )  # fmt: skip
    path: str
    plan: SandboxPlan
    terminal: bool
    hooks: Mapping[str, tuple[Hook, ...]]
    annotations: Mapping[str, str]
    oom_score_adj: int | None
    sysctl: Mapping[str, str]
    seccomp_profile: bytes | None

    def __init__(
        self,
        path: str,
        plan: SandboxPlan,
        terminal: bool,
        hooks: Mapping[str, tuple[Hook, ...]],
        annotations: Mapping[str, str],
        oom_score_adj: int | None = None,
        sysctl: Mapping[str, str] | None = None,
        seccomp_profile: bytes | None = None,
    ) -> None:
        super().__init__(
            path=path,
            plan=plan,
            terminal=terminal,
            hooks=hooks,
            annotations=annotations,
            oom_score_adj=oom_score_adj,
            sysctl=sysctl or {},
            seccomp_profile=seccomp_profile,
        )


def load(bundle: str, sandbox_id: str, profiles: str) -> Bundle:
    """The bundle directory's config.json as a Bundle; SpecError naming the field it can't take."""
    bundle = os.path.abspath(bundle)
    path = f"{bundle}/config.json"
    try:
        with open(path) as file:
            config = json.load(file)
    except FileNotFoundError as exc:
        raise SpecError("bundle", "has no config.json", path=path) from exc
    except (OSError, ValueError) as exc:
        raise SpecError("bundle", f"config.json cannot be read: {exc}", path=path) from exc
    return from_config(config, bundle, sandbox_id, profiles)


def _get(config: Mapping[str, Any], field: str, kind: type, default: Any = None) -> Any:
    value: Any = config
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SpecError(field, f"must be of JSON type {kind.__name__}, not {type(value).__name__}")
    return value


def from_config(config: Mapping[str, Any], bundle: str, sandbox_id: str, profiles: str) -> Bundle:
    """The mapping itself (a parsed config.json of the bundle directory `bundle`; seccomp profiles named in
    the directory `profiles`)."""
    args = _get(config, "process.args", list)
    if not args or not all(isinstance(arg, str) for arg in args):
        raise SpecError("process.args", "must be a non-empty list of strings")
    rootfs = _get(config, "root.path", str)
    if rootfs is None:
        raise SpecError("root.path", "is missing")
    rootfs = os.path.normpath(os.path.join(bundle, rootfs))
    if not os.path.isdir(rootfs):
        raise SpecError("root.path", "is not a directory", path=rootfs)
    for field in ("linux.uidMappings", "linux.gidMappings", "linux.intelRdt", "linux.personality"):
        if _get(config, field, list if field.endswith("Mappings") else dict):
            raise SpecError(field, "is not supported by lxrun-oci", hint="leave it out (see docs/oci.md)")
    network, joined = _namespaces(_get(config, "linux.namespaces", list, []))
    hostname = _get(config, "hostname", str, "")
    if hostname and "uts" in joined:
        raise SpecError("hostname", "can't be set in a uts namespace joined by path", hint="leave it out")
    uid = _get(config, "process.user.uid", int, 0)
    gid = _get(config, "process.user.gid", int, 0)
    volumes, binds = _mounts(_get(config, "mounts", list, []))
    oom_score_adj = _get(config, "process.oomScoreAdj", int)
    if oom_score_adj is not None and not -1000 <= oom_score_adj <= 1000:
        raise SpecError("process.oomScoreAdj", "must be from -1000 to 1000", path=str(oom_score_adj))
    profile = seccomp_profile(_get(config, "linux.seccomp", dict))
    return Bundle(
        path=bundle,
        plan=SandboxPlan(
            sandbox_id=sandbox_id,
            layers=(),
            argv=tuple(args),
            env=env_map(_get(config, "process.env", list, [])),
            cwd=_get(config, "process.cwd", str, "/"),
            hostname=hostname or sandbox_id[:12],
            network=NetworkSpec(network),
            caps=capabilities(config),
            seccomp=f"{profiles}/{hashlib.sha256(profile).hexdigest()}.json" if profile else SECCOMP_UNCONFINED,
            user=(uid, gid),
            limits=resource_limits(_get(config, "linux.resources", dict, {})),
            cgroup_parent=_cgroup_parent(_get(config, "linux.cgroupsPath", str)),
            volumes=volumes,
            binds=binds,
            task_files=False,
            rootfs=rootfs,
            read_only=_get(config, "root.readonly", bool, False),
            groups=group_ids(_get(config, "process.user.additionalGids", list, [])),
            joined=joined,
            masked_paths=_paths(config, "linux.maskedPaths"),
            read_only_paths=_paths(config, "linux.readonlyPaths"),
            rlimits=rlimits(_get(config, "process.rlimits", list, [])),
        ),
        terminal=_get(config, "process.terminal", bool, False),
        hooks={kind: _hooks(config, kind) for kind in HOOK_KINDS},
        annotations=_get(config, "annotations", dict, {}),
        seccomp_profile=profile,
        oom_score_adj=oom_score_adj,
        sysctl=sysctls(_get(config, "linux.sysctl", dict, {}), own_network=network == NONE),
    )


def rlimits(entries: Sequence[Any]) -> tuple[tuple[str, int, int], ...]:
    """process.rlimits as (RLIMIT_NAME, soft, hard), the kernel's infinity as resource.RLIM_INFINITY; a type
    this kernel's Python does not know, or a soft limit above the hard one: a SpecError naming it."""
    if not entries:
        return ()
    import resource  # only bundles that set limits pay for it

    limits = []
    for entry in entries:
        kind = entry.get("type") if isinstance(entry, dict) else None
        soft, hard = (entry.get(name) if isinstance(entry, dict) else None for name in ("soft", "hard"))
        if not isinstance(kind, str) or not _uint64(soft) or not _uint64(hard):
            raise SpecError("process.rlimits", "each needs a type and soft and hard limits", path=str(entry))
        if not kind.startswith("RLIMIT_") or not hasattr(resource, kind):
            raise SpecError("process.rlimits", "is not a resource limit lxrun can set", path=kind)
        if min(soft, RLIM_UNBOUNDED) > min(hard, RLIM_UNBOUNDED):
            raise SpecError("process.rlimits", f"{kind}'s soft limit is above its hard limit", path=kind)
        limits.append((kind, _rlim(soft, resource.RLIM_INFINITY), _rlim(hard, resource.RLIM_INFINITY)))
    return tuple(limits)


def _uint64(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= RLIM_MAX


def _rlim(value: int, infinity: int) -> int:
    return infinity if value >= RLIM_UNBOUNDED else value


def sysctls(entries: Mapping[str, Any], own_network: bool) -> dict[str, str]:
    """linux.sysctl as {/proc/sys path below the dots: value}: only what runc allows, the settings of the
    container's own namespaces (ipc's, uts's domain name, the network's when it has its own)."""
    values = {}
    for key, value in entries.items():
        if not isinstance(value, str):
            raise SpecError("linux.sysctl", "values must be strings", path=str(key))
        name = _dotted(key)
        if name == "kernel.hostname":
            raise SpecError("linux.sysctl", 'conflicts with the OCI "hostname" field', path=name)
        if name.startswith("net.") and not own_network:
            raise SpecError("linux.sysctl", "is not allowed in the host's network namespace", path=name)
        if not (name in IPC_SYSCTLS or name.startswith(("fs.mqueue.", "net.")) or name == "kernel.domainname"):
            raise SpecError("linux.sysctl", "is not in a separate kernel namespace", path=name)
        path = _swapped(name)
        if any(part in ("", ".", "..") or "\0" in part for part in path.split("/")):
            raise SpecError("linux.sysctl", "is not a sysctl name", path=name)
        values[path] = value
    return values


def _dotted(key: str) -> str:
    """net/ipv4/ip_forward -> net.ipv4.ip_forward, as runc reads either form (a dot inside a part, as in
    a VLAN's interface name, is a slash in the dotted form)."""
    first = next((char for char in key if char in "./"), ".")
    return key if first == "." else _swapped(key)


def _swapped(key: str) -> str:
    return key.translate(str.maketrans("./", "/."))


def _paths(config: Mapping[str, Any], field: str) -> tuple[str, ...]:
    paths = _get(config, field, list, [])
    if not all(isinstance(path, str) and path.startswith("/") for path in paths):
        raise SpecError(field, "must be a list of absolute paths")
    return tuple(os.path.normpath(path) for path in paths)


def group_ids(values: Sequence[Any]) -> tuple[int, ...]:
    if not all(isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in values):
        raise SpecError("process.user.additionalGids", "must be a list of group ids")
    return tuple(values)


def _cgroup_parent(path: str | None) -> str | None:
    """The directory of an absolute cgroupsPath (docker's /docker/<id>), where the container's cgroup
    (lxrun-<sandbox id>) goes; a systemd slice:prefix:name path says nothing lxrun uses (--systemd-cgroup)."""
    if path is None or not path.startswith("/"):
        return None
    parent = os.path.dirname(os.path.normpath(path))
    return parent if parent != "/" else None


def env_map(entries: Sequence[Any]) -> dict[str, str]:
    env = {}
    for entry in entries:
        if not isinstance(entry, str) or "=" not in entry:
            raise SpecError("process.env", "entries must be KEY=VALUE strings", path=str(entry))
        key, _, value = entry.partition("=")
        env[key] = value
    return env


def _namespaces(namespaces: Sequence[Any]) -> tuple[str, dict[str, str]]:
    """The network the sandbox gets (its own namespace: NONE, loopback, then what hooks add; or the
    host's), and the namespaces it joins by path, by kind."""
    kinds = set()
    joined: dict[str, str] = {}
    for namespace in namespaces:
        kind = namespace.get("type") if isinstance(namespace, dict) else None
        if kind == "user":
            raise SpecError("linux.namespaces", "a user namespace is not supported by lxrun-oci", path=kind)
        if kind not in NAMESPACES:
            raise SpecError("linux.namespaces", "unknown namespace type", path=str(kind))
        path = namespace.get("path")
        if path and kind not in JOINABLE:
            raise SpecError(
                "linux.namespaces", f"joining a {kind} namespace by path is not supported by lxrun-oci", path=path
            )
        if path:
            joined[kind] = str(path)
        kinds.add(kind)
    missing = REQUIRED_NAMESPACES - kinds
    if missing:
        raise SpecError(
            "linux.namespaces", f"lxrun always gives a container its own {', '.join(sorted(missing))} namespace"
        )
    return (NONE if "network" in kinds else HOST), joined


def capabilities(config: Mapping[str, Any]) -> frozenset[str]:
    """What the process keeps: the bounding set (lxrun keeps one set for all: docker gives them alike)."""
    names = _get(config, "process.capabilities.bounding", list, [])
    caps = set()
    for name in names:
        bare = str(name).upper().removeprefix("CAP_")
        if bare not in NUMBERS:
            raise SpecError("process.capabilities.bounding", "is not a capability this kernel has", path=str(name))
        caps.add(bare)
    return frozenset(caps)


def resource_limits(resources: Mapping[str, Any]) -> Limits:
    """linux.resources as Limits (create's, and update's: a limit left None there is left as it is)."""
    memory = _get(resources, "memory.limit", int)
    quota, period = _get(resources, "cpu.quota", int), _get(resources, "cpu.period", int)
    cpus = quota / (period or 100_000) if quota is not None and quota > 0 else None
    pids = _get(resources, "pids.limit", int)
    return Limits(
        memory=memory if memory is not None and memory > 0 else None,
        cpus=cpus,
        cpu_shares=_get(resources, "cpu.shares", int) or None,
        pids=pids if pids is not None and pids > 0 else None,
        cpuset_cpus=_get(resources, "cpu.cpus", str) or None,
    )


def _mounts(entries: Sequence[Any]) -> tuple[tuple[PlannedVolume, ...], tuple[mounts.MountStep, ...]]:
    """Bind mounts as volumes (their sources opened with no symlink followed), tmpfs as filesystems of
    their own; the sandbox's own kinds at their places (OWN_MOUNTS) are the sandbox's."""
    volumes, binds = [], []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("destination"), str):
            raise SpecError("mounts", "each needs a destination", path=str(entry))
        target = os.path.normpath(entry["destination"])
        kind = entry.get("type") or "bind"
        options = [str(option) for option in entry.get("options") or ()]
        if target in OWN_MOUNTS:
            continue
        if kind == "bind" or "bind" in options or "rbind" in options:
            source = entry.get("source")
            if not isinstance(source, str) or not os.path.exists(source):
                raise SpecError("mounts", "bind source does not exist", path=str(source))
            real = os.path.realpath(source)
            volume = Volume(real, target, read_only="ro" in options, idmap=False)
            volumes.append(PlannedVolume(volume, os.path.isdir(real)))
        elif kind == "tmpfs":
            attrs = frozenset(option for option in options if option in ("ro", "nosuid", "nodev", "noexec"))
            data = ",".join(option for option in options if option.startswith(("size=", "mode=")))
            binds.append(
                mounts.MountStep(
                    mounts.FS,
                    target,
                    f"mount {target}",
                    fstype="tmpfs",
                    source="tmpfs",
                    data=data or None,
                    attrs=attrs,
                    create=mounts.CREATE_DIR,
                )
            )
        else:
            raise SpecError("mounts", f"a {kind} mount is not supported by lxrun-oci here", path=target)
    return tuple(volumes), tuple(binds)


def _hooks(config: Mapping[str, Any], kind: str) -> tuple[Hook, ...]:
    hooks = []
    for entry in _get(config, f"hooks.{kind}", list, []):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise SpecError(f"hooks.{kind}", "each needs a path", path=str(entry))
        timeout = entry.get("timeout")
        hooks.append(
            Hook(
                path=entry["path"],
                args=tuple(entry.get("args") or (entry["path"],)),
                env=tuple(entry.get("env") or ()),
                timeout=float(timeout) if isinstance(timeout, int) and timeout > 0 else None,
            )
        )
    return tuple(hooks)


def seccomp_profile(profile: Mapping[str, Any] | None) -> bytes | None:
    """linux.seccomp as the profile file lxrun compiles (Docker's format takes OCI's: no includes, all
    apply); what lxrun's loader has no way to do is refused naming the field."""
    if not profile:
        return None
    if profile.get("listenerPath") or any(
        isinstance(rule, dict) and rule.get("action") == "SCMP_ACT_NOTIFY" for rule in profile.get("syscalls") or ()
    ):
        raise SpecError("linux.seccomp", "a seccomp notify listener is not supported by lxrun-oci")
    if profile.get("flags"):
        raise SpecError("linux.seccomp.flags", "are not supported by lxrun-oci", hint="leave them out")
    return json.dumps(profile).encode()
