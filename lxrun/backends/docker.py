"""The docker backend: the same task through a running dockerd (the docker SDK), for comparison.

The daemon is found as the docker CLI finds it ($DOCKER_HOST, else /var/run/docker.sock). The stack
is loaded as an image once (docker_image); each task is one container, created with the plan's
hostname, env, workdir, volumes and limits, no network, /tmp on tmpfs and Docker's init (tini) as
pid 1, attached before it starts, and removed afterwards on every path, Ctrl-C included.

Its cgroups nest under one of ours, /lxrun-docker/<task-id>/task (cgroups/tree.py), so usage can still
be read after Docker removed the container's own cgroup. OOM is Docker's own State.OOMKilled
(containerd's reading of the kernel's OOM event): the container's cgroup is gone before we could read
it. Its limits are the v1 values of cgroups/limits.py's table under HostConfig's names: the same
files native and lxc write.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import struct
import time

from lxrun.backends.base import Probe
from lxrun.backends.docker_image import ensure_image
from lxrun.backends.leftovers import release_task_files
from lxrun.cgroups.discover import own_hierarchies
from lxrun.cgroups.limits import v1_files
from lxrun.cgroups.tree import TaskTree
from lxrun.errors import BackendUnavailable, CommandNotExecutable, CommandNotFound, SetupError, Unsupported
from lxrun.net.spec import HOST, NONE
from lxrun.result import Result
from lxrun.sandbox.mounts import TMP_SIZE
from lxrun.sandbox.output import StreamSink
from lxrun.spec import SECCOMP_DEFAULT, SECCOMP_UNCONFINED
from lxrun.state import claimed_name, task_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from lxrun.backends.base import OnStart
    from lxrun.layout import Layout
    from lxrun.plan import TaskPlan
    from lxrun.spec import Limits

TOP = "lxrun-docker"
CHUNK = 65536
FRAME_HEADER = struct.Struct(">BxxxL")  # Docker's multiplexed stream: stream id, 3 pad bytes, length
STREAM_IDS = {1: "stdout", 2: "stderr"}
API_VERSION = "1.41"  # Docker 20.10, Debian 12's docker.io
PING_TIMEOUT = 2
API_TIMEOUT = 120
# tini's own message when it can't exec the command (exit 127 or 126), Docker's only report of it.
TINI_EXEC_FAILED = b"[FATAL tini ("
OPENING = 256
HOW_TO_START = "start one: scripts/dockerd start DIR, then export DOCKER_HOST=unix://DIR/docker.sock"
# HostConfig's name for each v1 file of the limits table. HostConfig speaks v1's units on every host:
# dockerd and runc turn them into v2 files as cgroups/limits.py's v2_files does (memory.swap.max =
# MemorySwap - Memory, cpu.max = CpuQuota CpuPeriod, cpu.weight by runc's mapping of CpuShares).
HOST_CONFIG_LIMITS = {
    "memory.limit_in_bytes": "mem_limit",
    "memory.memsw.limit_in_bytes": "memswap_limit",
    "memory.swappiness": "mem_swappiness",
    "cpu.cfs_period_us": "cpu_period",
    "cpu.cfs_quota_us": "cpu_quota",
    "cpu.shares": "cpu_shares",
    "pids.max": "pids_limit",
    "cpuset.cpus": "cpuset_cpus",
}


def _where() -> str:
    """The daemon's address, as the docker CLI and SDK find it."""
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def _client(timeout: int) -> Any:
    import docker

    # A fixed API version: "auto" would cost a round trip to the daemon on every task.
    return docker.from_env(timeout=timeout, version=API_VERSION)


class _Handle:
    def __init__(self, task_id: str, api: Any, container: str) -> None:
        self.task_id = task_id
        self._api = api
        self._container = container

    def send_signal(self, sig: int) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.APIError):
            self._api.kill(self._container, int(sig))


class _Attached:
    """The container's attached stdio: one socket carrying stdin one way and framed stdout/stderr back."""

    def __init__(self, api: Any, container: str, with_stdin: bool) -> None:
        params = {"stdin": int(with_stdin), "stdout": 1, "stderr": 1, "stream": 1}
        self._response = api.attach_socket(container, params=params)
        self.sock: socket.socket = getattr(self._response, "_sock", self._response)
        self._buffer = bytearray()
        self.stderr_opening = b""  # kept even when stderr is forwarded: it may say why the command failed

    def frames(self, data: bytes) -> list[tuple[str, bytes]]:
        """Feed received bytes; the complete (stream, payload) frames so far."""
        self._buffer += data
        frames = []
        while len(self._buffer) >= FRAME_HEADER.size:
            stream_id, length = FRAME_HEADER.unpack_from(self._buffer)
            end = FRAME_HEADER.size + length
            if len(self._buffer) < end:
                break
            if stream_id in STREAM_IDS:
                frames.append((STREAM_IDS[stream_id], bytes(self._buffer[FRAME_HEADER.size : end])))
            del self._buffer[:end]
        return frames

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(Exception):
            self._response.close()


def _relay(
    attached: _Attached,
    sinks: dict[str, StreamSink],
    stdin_fd: int | None,
    timeout: float | None,
    stop_timeout: float,
    handle: _Handle,
) -> bool:
    """Pump stdin in and output out until Docker closes the stream; enforce the timeout. True if it ran out."""
    sources = [attached.sock] + ([stdin_fd] if stdin_fd is not None else [])
    deadline = time.monotonic() + timeout if timeout is not None else None
    timed_out = killed = False
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        readable, _, _ = select.select(sources, [], [], wait)
        if stdin_fd is not None and stdin_fd in readable:
            data = os.read(stdin_fd, CHUNK)
            if data:
                attached.sock.sendall(data)
            else:
                attached.sock.shutdown(socket.SHUT_WR)  # the task's stdin ends here
                sources.remove(stdin_fd)
                stdin_fd = None
        if attached.sock in readable:
            data = attached.sock.recv(CHUNK)
            if not data:
                return timed_out
            for stream, payload in attached.frames(data):
                sinks[stream].feed(payload)
                if stream == "stderr" and len(attached.stderr_opening) < OPENING:
                    attached.stderr_opening += payload[: OPENING - len(attached.stderr_opening)]
        if deadline is not None and time.monotonic() >= deadline:
            if not timed_out:
                timed_out = True
                handle.send_signal(signal.SIGTERM)  # tini passes it to the task
                deadline = time.monotonic() + stop_timeout
            elif not killed:
                killed = True
                handle.send_signal(signal.SIGKILL)  # pid 1: the whole pid namespace goes with it
                deadline = None


def _sink(target: int | str, limit: int | None) -> StreamSink:
    """Docker relays every stream: captured (CAPTURE) or written on to the caller's descriptor."""
    return StreamSink(target if isinstance(target, int) else None, limit)


def _security_opt(seccomp: str) -> list[str]:
    """no_new_privs always, as native; Docker's default seccomp profile is ours, a file is passed as JSON."""
    options = ["no-new-privileges"]
    if seccomp == SECCOMP_UNCONFINED:
        options.append("seccomp=unconfined")
    elif seccomp != SECCOMP_DEFAULT:
        with open(seccomp) as profile:
            options.append(f"seccomp={profile.read()}")
    return options


def limit_options(limits: Limits, swap_accounting: bool) -> dict[str, int | str]:
    """The task's limits as create_host_config arguments (see HOST_CONFIG_LIMITS)."""
    return {
        HOST_CONFIG_LIMITS[name]: value if name == "cpuset.cpus" else int(value)
        for name, value in v1_files(limits, swap_accounting).items()
    }


def _host_config(api: Any, plan: TaskPlan, cgroup_parent: str, swap_accounting: bool) -> Any:
    options: dict[str, Any] = {
        "network_mode": plan.spec.network.mode,  # none or host: refuse() let no other through
        "cgroupns": "private",  # v1 hosts default to the host's
        "init": True,
        # /tmp is RAM: capped at --disk or native's default, so filling it is ENOSPC, not the host's memory.
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,mode=1777,size={plan.spec.disk or TMP_SIZE}"},
        "binds": {
            v.volume.source: {"bind": v.volume.target, "mode": "ro" if v.volume.read_only else "rw"}
            for v in plan.volumes
        },
        "cgroup_parent": cgroup_parent,
        # Exactly the task's capabilities (docker's default set with --cap-add/--cap-drop applied).
        "cap_drop": ["ALL"],
        "cap_add": sorted(plan.spec.security.caps),
        "security_opt": _security_opt(plan.spec.security.seccomp),
    }
    # cpu shares weigh only against siblings: the tree sets them on the task's dir too.
    options.update(limit_options(plan.spec.limits, swap_accounting))
    return api.create_host_config(**options)


def _exec_failure(exit_code: int, stderr: bytes, plan: TaskPlan) -> None:
    """tini reports a command it could not exec on stderr with 127/126: raise what native raises."""
    if exit_code not in (126, 127) or not stderr.startswith(TINI_EXEC_FAILED):
        return
    command = plan.argv[0]
    if exit_code == 127:
        raise CommandNotFound(
            "exec",
            "command not found in the sandbox",
            path=command,
            hint=f"is it installed in the stack? PATH={plan.env.get('PATH', '')}",
        )
    raise CommandNotExecutable("exec", "Permission denied", path=command)


def _remove(api: Any, container: str) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        api.remove_container(container, force=True, v=True)


class DockerBackend:
    name = "docker"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def probe(self) -> Probe:
        try:
            client = _client(PING_TIMEOUT)
        except ImportError:
            return Probe(False, "the docker SDK is not installed (pip install 'lxrun[backends]')")
        except Exception as exc:  # DockerException: a malformed DOCKER_HOST, say
            return Probe(False, f"docker client: {exc} ({HOW_TO_START})")
        try:
            version = client.version()
        except Exception as exc:  # connection refused, missing socket, timeout: all mean no daemon
            return Probe(False, f"no dockerd at {_where()}: {type(exc).__name__} ({HOW_TO_START})")
        finally:
            client.close()
        return Probe(True, f"dockerd {version.get('Version', '?')} at {_where()}")

    def refuse(self, plan: TaskPlan) -> None:
        """none and host are Docker's own networks; lxrun's bridge (its leases, NAT and --publish) is
        native's only. The upper dir is Docker's own: it can't be kept. A pty would change the attached
        stream's framing and need its resizes relayed: not done here."""
        mode = plan.spec.network.mode
        if mode not in (NONE, HOST):
            raise Unsupported(
                "network", f"{mode} is native's only; the docker backend runs none or host", hint="use native"
            )
        if plan.spec.keep:
            raise Unsupported("keep", "the docker backend can't keep a task's upper dir", hint="use native or lxc")
        if plan.spec.tty:
            raise Unsupported("tty", "the docker backend relays no pty (its stream is framed)", hint="use native")

    def run(self, plan: TaskPlan, on_start: OnStart | None = None) -> Result:
        import docker.errors
        import requests.exceptions

        spec = plan.spec
        self.layout.ensure()
        # Docker's cgroup parent is one absolute path in every hierarchy: the given one, else the root.
        parent = spec.cgroup_parent or "/"
        hierarchies = [h.replace(own=parent) for h in own_hierarchies()]
        with contextlib.ExitStack() as resources:
            client = _client(API_TIMEOUT)
            resources.callback(client.close)
            api = client.api
            record = resources.enter_context(task_record(self.layout, plan, self.name))
            resources.enter_context(claimed_name(self.layout, spec.name, plan.task_id))
            try:
                image = ensure_image(api, plan.stack, self.layout.tmp)
            except requests.exceptions.ConnectionError as exc:
                raise BackendUnavailable(
                    "backend docker", f"no dockerd at {_where()}: {type(exc).__name__}", hint=HOW_TO_START
                ) from exc
            cgroups = resources.enter_context(TaskTree(plan.task_id, hierarchies, TOP).created(spec.limits))
            try:
                container = api.create_container(
                    image,
                    command=list(plan.argv),
                    hostname=plan.hostname,
                    environment=[f"{key}={value}" for key, value in plan.env.items()],
                    working_dir=plan.workdir,
                    stdin_open=spec.stdin is not None,
                    user=f"{plan.user[0]}:{plan.user[1]}",
                    labels={"lxrun.task": plan.task_id},
                    host_config=_host_config(
                        api, plan, f"{parent.rstrip('/')}/{cgroups.task}", cgroups.swap_accounting()
                    ),
                )["Id"]
            except docker.errors.APIError as exc:
                raise SetupError("docker create", str(exc.explanation or exc), path=plan.task_id) from exc
            resources.callback(_remove, api, container)
            attached = _Attached(api, container, spec.stdin is not None)
            resources.callback(attached.close)
            sinks = {stream: _sink(getattr(spec, stream), spec.output_limit) for stream in ("stdout", "stderr")}
            started = time.monotonic()
            try:
                api.start(container)
            except docker.errors.APIError as exc:
                raise SetupError("docker start", str(exc.explanation or exc), path=plan.task_id) from exc
            handle = _Handle(plan.task_id, api, container)
            if on_start is not None:
                on_start(handle)
            init_pid = api.inspect_container(container)["State"].get("Pid") or 0
            if init_pid > 0:  # 0 once the task already ended
                record.running_as(init_pid)
            timed_out = _relay(attached, sinks, spec.stdin, spec.timeout, spec.stop_timeout, handle)
            exit_code = api.wait(container)["StatusCode"]
            wall_time = time.monotonic() - started
            state = api.inspect_container(container)["State"]
            outputs = {stream: sink.finish() for stream, sink in sinks.items()}
            _exec_failure(exit_code, attached.stderr_opening, plan)
            _remove(api, container)  # now, so Docker's own cgroup is gone before ours are read and removed
            usage = cgroups.usage(None)
        # Docker reports an exit code only: tini's 128+N is read as signal N (`exit 137` looks the same).
        signal_number = exit_code - 128 if 128 < exit_code < 128 + signal.NSIG else None
        return Result(
            task_id=plan.task_id,
            name=spec.name,
            stack=plan.stack.ref,
            backend=self.name,
            exit_code=exit_code,
            signal=signal_number,
            wall_time=wall_time,
            stdout=outputs["stdout"],
            stderr=outputs["stderr"],
            oom_killed=bool(state.get("OOMKilled")),
            timed_out=timed_out,
            cpu_user=usage.cpu_user,
            cpu_system=usage.cpu_system,
            peak_memory=usage.peak_memory,
            pids_peak=usage.pids_peak,
            output_truncated=any(sink.truncated for sink in sinks.values()),
        )

    def release_leftovers(self, task_id: str, record_data: Mapping[str, Any] | None, dry_run: bool) -> list[str]:
        parent = record_data.get("cgroup_parent") if record_data else None
        return release_leftovers(task_id, parent, dry_run) + release_task_files(
            self.layout, task_id, record_data, dry_run
        )


def release_leftovers(task_id: str, cgroup_parent: str | None, dry_run: bool) -> list[str]:
    """For `lxrun gc`: what a docker task whose runner died left: its container (labelled with the task
    id, if dockerd is reachable) and its cgroup tree."""
    released = []
    with contextlib.closing(_client(API_TIMEOUT)) as client:
        try:
            containers = client.api.containers(all=True, filters={"label": f"lxrun.task={task_id}"})
        except Exception:  # no dockerd: nothing of the task can be running there either
            containers = []
        for container in containers:
            released.append(f"docker container {container['Id'][:12]}")
            if not dry_run:
                _remove(client.api, container["Id"])
    parent = cgroup_parent or "/"
    tree = TaskTree(task_id, [h.replace(own=parent) for h in own_hierarchies()], TOP)
    if tree.exists():
        released.append(f"docker cgroup tree {tree.relative}")
        if not dry_run:
            tree.kill_all()
            tree.remove()
    return released
