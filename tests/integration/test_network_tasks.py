"""Networking as tasks see it: `--network none|bridge|host` and `--publish`, end to end through the sandbox.
Traffic stays inside namespaces and interfaces the tests make; nothing goes to an outside address."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import pytest

from lxrun import Runtime, TaskSpec, Volume, run
from lxrun.net.etc import RESOLVED_UPSTREAM, for_bridge
from lxrun.net.spec import NetworkSpec, parse_publish

from .conftest import lxrun_cli, sh


def serve_script(name: str, reply: str) -> str:
    """Write the task's address to /shared/NAME, answer one HTTP request on port 80, stay up 2 s."""
    address = "ip -4 -o addr show eth0 | awk '{print $4}'"
    http = f"echo -e 'HTTP/1.0 200 OK\\r\\n\\r\\n{reply}'"
    return f"{address} > /shared/{name}; ({http} | nc -l -p 80 &); sleep 2"


@pytest.fixture
def shared(volume_dir: Path) -> Path:
    volume_dir.chmod(0o777)
    return volume_dir


@pytest.fixture(autouse=True)
def bridge_removed_afterwards(state_root: Path) -> object:
    yield
    Runtime(state_root).gc()  # the bridge, its tables and ip_forward go once idle


def serve(root: Path, shared: Path, name: str, reply: str, **kwargs: object) -> threading.Thread:
    script = serve_script(name, reply)
    spec = TaskSpec(
        stack="busybox",
        argv=["sh", "-c", script],
        volumes=[Volume(str(shared), "/shared")],
        network=NetworkSpec("bridge", kwargs.pop("publish", ())),
        **kwargs,
    )  # type: ignore[arg-type]
    thread = threading.Thread(target=run, args=(spec,), kwargs={"root": root})
    thread.start()
    deadline = time.monotonic() + 10
    while not (shared / name).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    return thread


def test_a_task_serves_another_task_on_the_bridge(state_root: Path, shared: Path) -> None:
    server = serve(state_root, shared, "a", "hello from a")
    address = (shared / "a").read_text().split("/")[0]
    client = sh(state_root, f"wget -qO- http://{address}/", network=NetworkSpec("bridge"))
    server.join()
    assert client.stdout == b"hello from a\n"


def test_a_published_port_is_reachable_from_the_host(state_root: Path, shared: Path) -> None:
    server = serve(state_root, shared, "p", "published", publish=(parse_publish("127.0.0.1:18081:80"),))
    with urllib.request.urlopen("http://127.0.0.1:18081/", timeout=5) as reply:
        body = reply.read()
    server.join()
    assert body == b"published\n"


def test_none_has_only_loopback_and_host_sees_the_hosts(state_root: Path) -> None:
    assert sh(state_root, "ls /sys/class/net").stdout == b"lo\n"
    host = sh(state_root, "ls /sys/class/net", network=NetworkSpec("host")).stdout or b""
    assert set(host.split()) == {p.name.encode() for p in Path("/sys/class/net").iterdir()}


def test_the_etc_files_follow_the_network(state_root: Path) -> None:
    """On the bridge: the host's resolvers less its loopback ones, the hostname at the task's address.
    Without a network: the stack's resolv.conf, the hostname at 127.0.1.1. The task may edit its own."""
    upstream = Path(RESOLVED_UPSTREAM).read_text() if Path(RESOLVED_UPSTREAM).exists() else None
    expected = for_bridge(Path("/etc/resolv.conf").read_text(), upstream)
    script = "cat /etc/resolv.conf; ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1; tail -1 /etc/hosts"
    bridged = sh(state_root, script, network=NetworkSpec("bridge"), name="on-bridge").stdout.decode()
    *resolv_conf, address, hosts_line = bridged.splitlines()
    assert resolv_conf == expected.splitlines() and "nameserver 127." not in expected
    assert hosts_line == f"{address}\ton-bridge"
    alone = sh(
        state_root,
        "cat /etc/resolv.conf /etc/hostname; echo 10.1.1.1 x >> /etc/hosts; tail -2 /etc/hosts",
        name="alone",
    )
    assert alone.stdout == b"alone\n127.0.1.1\talone\n10.1.1.1 x\n"  # the busybox base's resolv.conf is empty


def test_low_ports_work_without_privileges(state_root: Path) -> None:
    # The listener may take a while to start on a loaded host: the client tries until it is there. It sends
    # from a file (a pipe races the listener's EOF, see test_only_loopback_and_it_is_up); the listener is
    # waited for, so its output comes before `bound`.
    client = "for i in $(seq 200); do nc 127.0.0.1 80 </tmp/message 2>/dev/null && break; sleep 0.05; done"
    result = sh(state_root, f"echo ok > /tmp/message; nc -l -p 80 & {client}; wait; echo bound")
    assert result.stdout == b"ok\nbound\n"


def test_publish_needs_bridge(state_root: Path) -> None:
    done = lxrun_cli(state_root, "exec", "--stack", "busybox", "-p", "8080:80", "--", "true")
    assert (done.returncode, done.stderr) == (
        125,
        "lxrun: --publish: needs the bridge network, not none (use the bridge network, or publish nothing)\n",
    )


def test_gc_dry_run_names_the_network_parts_gc_then_removes(state_root: Path) -> None:
    assert sh(state_root, "true", network=NetworkSpec("bridge")).exit_code == 0
    runtime = Runtime(state_root)
    dry = runtime.gc(dry_run=True).released.other
    assert {"table ip lxrun0", "bridge lxrun0"} <= set(dry), dry  # idle now that its task is gone
    assert runtime.gc(dry_run=True).released.other == dry  # the dry run changed nothing
    wet = runtime.gc().released.other
    assert [item for item in wet if not item.startswith("idle cgroup")] == [
        item for item in dry if not item.startswith("idle cgroup")
    ], (dry, wet)
    assert runtime.gc(dry_run=True).released.nothing
