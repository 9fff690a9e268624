"""What a task asks for: immutable, validated values. Invalid input raises SpecError naming the field and the fix.

Nothing here touches the host; checks that need it (does a volume's source exist?) belong to the plan.
"""

from __future__ import annotations

import posixpath
from types import MappingProxyType

from lxrun.errors import SpecError
from lxrun.net.spec import NO_NETWORK, NetworkSpec
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

CAPTURE = "capture"
"""An output target: collect the stream into the Result instead of writing it to a descriptor."""

# Checked by hand, not with re: importing re (and enum with it) costs `lxrun exec` ~3 ms.
ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
NAME_CHARS = ALNUM | frozenset("_.+-")  # [A-Za-z0-9][A-Za-z0-9_.+-]{0,127}
TASK_NAME_CHARS = ALNUM | frozenset("_.-")  # [A-Za-z0-9][A-Za-z0-9_.-]{0,63}
HOSTNAME_LABEL_CHARS = ALNUM | frozenset("-")  # [A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?
HOSTNAME_MAX = 64  # the kernel's __NEW_UTS_LEN
MAX_SECONDS = 2_147_483  # the longest wait poll() takes (2**31 - 1 ms): 24 days
MAX_BYTES = (1 << 63) - (1 << 16)  # above it the kernel reads a memory or tmpfs size as "no limit"
MAX_HOST_ID = (1 << 32) - 2  # (uid_t)-1 means "no change" to the kernel


def spelled(text: str, chars: frozenset[str], longest: int) -> bool:
    """1 to `longest` characters of `chars`, the first a letter or digit."""
    return 0 < len(text) <= longest and text[0] in ALNUM and chars.issuperset(text)


def is_valid_name(name: str) -> bool:
    """Stack, base and version names: no '/', no '..', so they are safe as file names."""
    return spelled(name, NAME_CHARS, 128) and ".." not in name


def check_container_path(what: str, path: str) -> str:
    """An absolute path inside the sandbox without `..`; returned normalized."""
    if "\0" in path:
        raise SpecError(what, "contains a NUL byte", path=repr(path))
    if not path.startswith("/"):
        raise SpecError(what, "must be an absolute path inside the sandbox", path=path, hint=f"use /{path}")
    if ".." in path.split("/"):
        raise SpecError(what, "must not contain '..'", path=path, hint="give the path without '..'")
    return posixpath.normpath(path).replace("//", "/")


def check_stack_ref(ref: str) -> tuple[str, str | None]:
    """`NAME` or `NAME@VERSION` -> (name, version or None)."""
    name, _, version = ref.partition("@")
    if not is_valid_name(name):
        raise SpecError(
            "stack", "is not a valid stack name", path=ref, hint="use letters, digits and . _ + - (e.g. python3.11)"
        )
    if version and not is_valid_name(version):
        raise SpecError("stack", "has an invalid version", path=ref, hint="use NAME@VERSION, e.g. python3.11@1.0")
    return name, version or None


def check_cgroup_path(path: str) -> str:
    """A cgroup path as /proc/self/cgroup shows them: absolute, without `..`."""
    if not path.startswith("/") or ".." in path.split("/") or "\0" in path:
        raise SpecError(
            "cgroup_parent",
            "must be an absolute cgroup path without '..'",
            path=path,
            hint="e.g. /runners/slot1, as in /proc/self/cgroup",
        )
    return posixpath.normpath(path)


def check_hostname(hostname: str) -> None:
    labels = hostname.split(".")
    if len(hostname) > HOSTNAME_MAX or not all(
        spelled(label, HOSTNAME_LABEL_CHARS, 63) and label[-1] in ALNUM for label in labels
    ):
        raise SpecError(
            "hostname",
            "is not a valid hostname",
            path=hostname,
            hint=f"use letters, digits, '-' and '.', at most {HOSTNAME_MAX} characters",
        )


def frozen_env(env: Mapping[str, str] | Iterable[tuple[str, str]]) -> Mapping[str, str]:
    pairs = dict(env)
    for key, value in pairs.items():
        if not key or "=" in key or "\0" in key:
            raise SpecError("env", "variable names must be non-empty without '=' or NUL", path=repr(key))
        if "\0" in value:
            raise SpecError("env", "value contains a NUL byte", path=key)
    return MappingProxyType(pairs)


# Filesystems the sandbox mounts itself: a volume over them hides what the task relies on (runc refuses
# them too). Below /proc only the files lxcfs stands in for may be covered, as runc allows.
RESERVED_TARGETS = ("/proc", "/dev", "/sys")
PROC_FILES_ALLOWED = frozenset(
    f"/proc/{name}"
    for name in (
        "cpuinfo",
        "diskstats",
        "meminfo",
        "stat",
        "swaps",
        "uptime",
        "loadavg",
        "slabinfo",
        "net/dev",
        "sys/kernel/ns_last_pid",
    )
)


def check_volume_target(target: str) -> str:
    target = check_container_path("volume", target)
    if target == "/":
        raise SpecError("volume", "cannot be mounted over the sandbox's root", path=target)
    if target in RESERVED_TARGETS or (target.startswith("/proc/") and target not in PROC_FILES_ALLOWED):
        where = next(reserved for reserved in RESERVED_TARGETS if f"{target}/".startswith(f"{reserved}/"))
        raise SpecError(
            "volume", f"the sandbox mounts its own {where} there", path=target, hint="mount the volume elsewhere"
        )
    return target


class Volume(Record):
    """A host path bind-mounted into the sandbox. The source must have no symlink in its path (a task
    may have planted one where it could write). With the task's own user namespace (the default) it is
    idmapped into it, as the layers are: on disk, uid and gid 0 are the task's root, whichever uid range
    the task has; `idmap=False` binds it plainly (the task's root is then an unprivileged host uid there)."""

    __slots__ = ("idmap", "read_only", "source", "target")
    source: str
    target: str
    read_only: bool
    idmap: bool

    def __init__(self, source: str, target: str, read_only: bool = False, idmap: bool = True) -> None:
        if not source.startswith("/") or "\0" in source:
            raise SpecError(
                "volume", "host path must be absolute", path=source, hint="give the full path, e.g. $PWD/dir"
            )
        super().__init__(source=source, target=check_volume_target(target), read_only=read_only, idmap=idmap)


UNLIMITED = -1
"""Asks explicitly for no bound on memory, pids, disk or timeout (as `docker run --pids-limit -1`);
None instead takes the host's default from lxrun's config (lxrun.config), which may be unlimited."""


class Limits(Record):
    """Resource limits with docker run's meaning. memory and pids left None take the host's default
    (lxrun.config), UNLIMITED asks for none; the others left None are unlimited.

    memory: bytes of RAM (swap disabled for the task: it gets no more RAM+swap than RAM);
    cpus: CPU time as a number of CPUs (0.5 = half of one); cpu_shares: relative weight under
    contention (docker's --cpu-shares, 2..262144, 1024 is the default weight); pids: most processes
    and threads at once; cpuset_cpus: which CPUs, e.g. "0-1,3".
    """

    __slots__ = ("cpu_shares", "cpus", "cpuset_cpus", "memory", "pids")
    memory: int | None
    cpus: float | None
    cpu_shares: int | None
    pids: int | None
    cpuset_cpus: str | None

    MIN_MEMORY = 6 * 1024 * 1024  # docker's floor: below this a task can't even start its runtime
    MIN_PIDS = 3  # the command, lxrun's pid 1 and the moment pid 1 forks it all count

    def __init__(
        self,
        memory: int | None = None,
        cpus: float | None = None,
        cpu_shares: int | None = None,
        pids: int | None = None,
        cpuset_cpus: str | None = None,
    ) -> None:
        if memory is not None and memory != UNLIMITED and memory < self.MIN_MEMORY:
            raise SpecError(
                "memory", f"{memory} bytes is below the minimum of 6m", hint="give at least 6m, or -1 for none"
            )
        if memory is not None and memory > MAX_BYTES:
            raise SpecError(
                "memory", f"{memory} bytes is more than the kernel can limit", hint="leave it out for no limit"
            )
        if cpus is not None and not cpus > 0:
            raise SpecError("cpus", f"{cpus} is not a positive number of CPUs", hint="e.g. 0.5")
        if cpu_shares is not None and not 2 <= cpu_shares <= 262144:
            raise SpecError("cpu_shares", f"{cpu_shares} is out of range", hint="use 2..262144 (default 1024)")
        if pids is not None and pids != UNLIMITED and pids < 1:
            raise SpecError(
                "pids", f"{pids} allows no process", hint=f"give at least {self.MIN_PIDS}, or -1 for no limit"
            )
        if pids is not None and pids != UNLIMITED and pids < self.MIN_PIDS:
            raise SpecError(
                "pids",
                f"{pids} is too few: lxrun's own pid 1 in the sandbox counts too",
                hint=f"give at least {self.MIN_PIDS}",
            )
        if cpuset_cpus is not None:
            cpuset_cpus = ",".join(str(cpu) for cpu in parse_cpu_list(cpuset_cpus))
        super().__init__(memory=memory, cpus=cpus, cpu_shares=cpu_shares, pids=pids, cpuset_cpus=cpuset_cpus)

    @property
    def any(self) -> bool:
        return any(value is not None for value in self.as_dict().values())


def parse_cpu_list(text: str) -> list[int]:
    """The kernel's cpu-list format ("0-2,5") -> sorted CPU numbers; SpecError if malformed."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()) or len(low) > 9 or len(high) > 9:
            raise SpecError("cpuset_cpus", "is not a CPU list", path=text, hint="e.g. 0-1,3")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise SpecError("cpuset_cpus", f"range {part} runs backwards", path=text)
        cpus.update(range(first, last + 1))
    return sorted(cpus)


NO_LIMITS = Limits()

MIN_DISK = 1 << 20
USERNS_PRIVATE = "private"
USERNS_HOST = "host"
SECCOMP_DEFAULT = "default"
SECCOMP_UNCONFINED = "unconfined"


class Security(Record):
    """What the task may do to the machine. Defaults are the safe ones.

    userns: "private" (the task's root is an unprivileged host uid from lxrun's pool) or "host"
    (root is the host's root, confined by the rest); user: (uid, gid) inside the sandbox, gid None
    for the user's primary group (0 if unknown); cap_add/cap_drop: docker's rules on its default
    set (ALL allowed); seccomp: "default", "unconfined" or a path to a Docker-format profile.
    no_new_privs is always on.
    """

    __slots__ = ("cap_add", "cap_drop", "seccomp", "user", "userns")
    userns: str
    user: tuple[int, int | None] | None
    cap_add: tuple[str, ...]
    cap_drop: tuple[str, ...]
    seccomp: str

    def __init__(
        self,
        userns: str = USERNS_PRIVATE,
        user: tuple[int, int | None] | None = None,
        cap_add: Iterable[str] = (),
        cap_drop: Iterable[str] = (),
        seccomp: str = SECCOMP_DEFAULT,
    ) -> None:
        from lxrun.sandbox import caps

        if userns not in (USERNS_PRIVATE, USERNS_HOST):
            raise SpecError("userns", f"unknown mode {userns!r}", hint="use host, or leave it out for a private one")
        if user is not None:
            check_user(user, userns)
        cap_add, cap_drop = tuple(cap_add), tuple(cap_drop)
        caps.effective_set(cap_add, cap_drop)  # validates the names
        if not seccomp:
            raise SpecError(
                "seccomp", "needs a value", hint="unconfined, default or the path of a profile in Docker's JSON format"
            )
        super().__init__(userns=userns, user=user, cap_add=cap_add, cap_drop=cap_drop, seccomp=seccomp)

    @property
    def caps(self) -> frozenset[str]:
        from lxrun.sandbox import caps

        return caps.effective_set(self.cap_add, self.cap_drop)


DEFAULT_SECURITY = Security()


def check_user(user: tuple[int, int | None], userns: str) -> None:
    """Ids a task can run as: those its user namespace maps (a private one maps 0..65535)."""
    shown = f"{user[0]}:{user[1]}" if user[1] is not None else str(user[0])
    if any(value is not None and value < 0 for value in user):
        raise SpecError("user", "ids must be >= 0", path=shown)
    highest = max(value for value in user if value is not None)
    if userns == USERNS_PRIVATE:
        from lxrun.sandbox.userns import RANGE

        if highest >= RANGE:
            raise SpecError(
                "user",
                f"{highest} is outside the task's user namespace, which maps ids 0..{RANGE - 1}",
                path=shown,
                hint=f"use an id below {RANGE}, or --userns host for the host's ids",
            )
    elif highest > MAX_HOST_ID:
        raise SpecError("user", f"{highest} is not a valid id", path=shown, hint=f"use 0..{MAX_HOST_ID}")


def check_command(field: str, argv: Iterable[str]) -> tuple[str, ...]:
    argv = tuple(argv)
    if not argv or not argv[0]:
        raise SpecError(field, "no command given", hint="put the command after --, e.g. -- echo hello")
    if any("\0" in arg for arg in argv):
        raise SpecError(field, "an argument contains a NUL byte")
    return argv


class TaskSpec(Record):
    """One task: run `argv` on `stack` in a fresh sandbox.

    stdin is a descriptor the task reads (None: /dev/null); stdout and stderr are descriptors the task
    writes to directly, or CAPTURE to collect them into the Result. `env` is laid over the stack's
    defaults. `workdir` is created if the stack lacks it, as docker does. `keep` keeps the upper dir.
    `timeout` (seconds of wall clock from the start) ends the task: SIGTERM, then after `stop_timeout`
    seconds SIGKILL to every process it started. `output_limit` caps each captured or forwarded
    stream in bytes, keeping its head and tail (the task keeps running). `cgroup_parent` is an
    existing cgroup (a path as in /proc/self/cgroup) to put the task's cgroup in. `security` holds
    the user namespace, user, capabilities and seccomp profile. `disk` caps, in bytes, each place the
    task can write: its root's upper dir and /tmp (UNLIMITED: tmpfs's own size, /tmp 256m).
    `timeout`, `disk` and `limits`' memory and pids left None take the host's defaults (lxrun.config,
    applied by the Runtime); UNLIMITED (-1) asks for no bound.
    `network` is none (a namespace of its own with only loopback), bridge (lxrun's bridge, NAT out,
    published ports) or host. `tty` gives the task a pty of its own (stdin, stdout and stderr, its
    controlling terminal; its output, stderr included, arrives as stdout; with stdin a terminal,
    that terminal is raw while the task runs). Without it, a terminal given as stdin, stdout or
    stderr reaches the task only through a pipe lxrun relays.
    On a stack imported from an image, as `docker run`: `argv` None runs the image's Entrypoint and
    Cmd, an `argv` replaces its Cmd, `entrypoint` (docker's --entrypoint; () for none) replaces its
    Entrypoint and drops its Cmd; its WorkingDir and User apply unless `workdir`, `security.user` do.
    """

    __slots__ = (
        "argv",
        "cgroup_parent",
        "disk",
        "entrypoint",
        "env",
        "hostname",
        "keep",
        "limits",
        "name",
        "network",
        "output_limit",
        "security",
        "stack",
        "stderr",
        "stdin",
        "stdout",
        "stop_timeout",
        "timeout",
        "tty",
        "volumes",
        "workdir",
    )
    stack: str
    argv: tuple[str, ...] | None
    env: Mapping[str, str]
    workdir: str | None
    name: str | None
    hostname: str | None
    volumes: tuple[Volume, ...]
    stdin: int | None
    stdout: int | str
    stderr: int | str
    keep: bool
    limits: Limits
    timeout: float | None
    stop_timeout: float
    output_limit: int | None
    cgroup_parent: str | None
    security: Security
    disk: int | None
    network: NetworkSpec
    tty: bool
    entrypoint: tuple[str, ...] | None

    def __init__(
        self,
        stack: str,
        argv: Iterable[str] | None,
        env: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        workdir: str | None = None,
        name: str | None = None,
        hostname: str | None = None,
        volumes: Iterable[Volume] = (),
        stdin: int | None = None,
        stdout: int | str = CAPTURE,
        stderr: int | str = CAPTURE,
        keep: bool = False,
        limits: Limits = NO_LIMITS,
        timeout: float | None = None,
        stop_timeout: float = 10.0,
        output_limit: int | None = None,
        cgroup_parent: str | None = None,
        security: Security = DEFAULT_SECURITY,
        disk: int | None = None,
        network: NetworkSpec = NO_NETWORK,
        tty: bool = False,
        entrypoint: Iterable[str] | None = None,
    ) -> None:
        check_stack_ref(stack)
        if argv is not None:
            argv = check_command("command", argv)
        if entrypoint is not None:
            entrypoint = tuple(entrypoint)
            if entrypoint:
                check_command("entrypoint", entrypoint)
        if workdir is not None:
            workdir = check_container_path("workdir", workdir)
        if name is not None and not spelled(name, TASK_NAME_CHARS, 64):
            raise SpecError(
                "name", "is not a valid task name", path=name, hint="use letters, digits and _ . -, at most 64"
            )
        if hostname is not None:
            check_hostname(hostname)
        volumes = tuple(volumes)
        targets = [volume.target for volume in volumes]
        for target in targets:
            if targets.count(target) > 1:
                raise SpecError("volume", "is given twice", path=target, hint="mount one source per sandbox path")
        if stdin is not None and stdin < 0:
            raise SpecError("stdin", f"{stdin} is not a file descriptor")
        for stream, value in (("stdout", stdout), ("stderr", stderr)):
            if value != CAPTURE and (not isinstance(value, int) or value < 0):
                raise SpecError(stream, f"{value!r} is neither a file descriptor nor {CAPTURE!r}")
        if timeout is not None and timeout != UNLIMITED and not timeout > 0:
            raise SpecError("timeout", f"{timeout} is not a positive number of seconds", hint="e.g. 60, or -1 for none")
        if timeout is not None and timeout > MAX_SECONDS:
            raise SpecError(
                "timeout", f"{timeout} is more than lxrun can wait", hint=f"at most {MAX_SECONDS} (24 days)"
            )
        if not 0 <= stop_timeout <= MAX_SECONDS:
            raise SpecError(
                "stop_timeout", f"{stop_timeout} is not a number of seconds in 0..{MAX_SECONDS}", hint="e.g. 10"
            )
        if disk is not None and disk != UNLIMITED and disk < MIN_DISK:
            raise SpecError("disk", f"{disk} bytes is below the minimum of 1m", hint="e.g. 512m, or -1 for no cap")
        if disk is not None and disk > MAX_BYTES:
            raise SpecError("disk", f"{disk} bytes is more than the kernel can limit", hint="leave it out")
        if disk is not None and disk != UNLIMITED and keep:
            raise SpecError("disk", "can't cap an upper dir kept on disk (keep)", hint="use one or the other")
        if output_limit is not None and output_limit < 2:
            raise SpecError("output_limit", f"{output_limit} bytes can't hold a head and a tail", hint="e.g. 1m")
        super().__init__(
            stack=stack,
            argv=argv,
            env=frozen_env(env),
            workdir=workdir,
            name=name,
            hostname=hostname,
            volumes=volumes,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            keep=keep,
            limits=limits,
            timeout=timeout,
            stop_timeout=stop_timeout,
            output_limit=output_limit,
            cgroup_parent=check_cgroup_path(cgroup_parent) if cgroup_parent is not None else None,
            security=security,
            disk=disk,
            network=network,
            tty=tty,
            entrypoint=entrypoint,
        )
