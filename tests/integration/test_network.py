"""Bridge networking for real: netns, veth, bridge and nftables on this host, as root.

Traffic stays inside namespaces and interfaces these tests create (the bridge lxrt0 on 10.213.0.0/24,
and for NAT an "outside" namespace on 10.214.0.0/24 behind a veth of our own); nothing is sent to any
other address. Every test ends with gc and checks that nothing is left: no interface, no nftables
table, no lease, no descriptor, ip_forward as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lxrun.errors import SetupError, SpecError
from lxrun.layout import Layout
from lxrun.net import NetworkSpec, parse_publish
from lxrun.net.attach import Attachment, task_network
from lxrun.net.config import NetworkConfig
from lxrun.net.gc import gc_network
from tests.conftest import require

from .conftest import run_task

BRIDGE = "lxrt0"
SUBNET = "10.213.0.0/24"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


@pytest.fixture(scope="module")
def host_can_network() -> None:
    require(os.geteuid() == 0, "bridge networking needs root")
    try:
        from lxrun.net.nft import nft
        from lxrun.sandbox import helper  # noqa: F401

        nft()
    except Exception as exc:
        require(False, f"bridge networking unavailable: {exc}")


def interfaces() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def nft_tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


class Net:
    def __init__(self, root: Path, config: NetworkConfig) -> None:
        self.layout = Layout(root)
        self.config = config

    def attach(self, task_id: str, *publish: str) -> contextlib.AbstractContextManager[Attachment]:
        spec = NetworkSpec("bridge", [parse_publish(text) for text in publish])
        return task_network(self.layout, task_id, spec, self.config)

    def leases(self) -> list[str]:
        path = Path(self.layout.net_leases)
        return sorted(os.listdir(path)) if path.is_dir() else []


@pytest.fixture
def net(tmp_path: Path, host_can_network: None) -> Iterator[Net]:
    before_links, before_fds, forwarding = interfaces(), open_fds(), IP_FORWARD.read_text()
    assert f"table ip {BRIDGE}" not in nft_tables()
    network = Net(tmp_path, NetworkConfig(BRIDGE, SUBNET))
    yield network
    gc_network(network.layout, network.config)
    assert interfaces() == before_links, "an interface was left behind"
    assert f"table ip {BRIDGE}" not in nft_tables(), "lxrun's nftables table was left behind"
    assert network.leases() == [], "a lease was left behind"
    assert IP_FORWARD.read_text() == forwarding, "ip_forward was not restored"
    assert "lxrun_forward" not in nft_tables(), "the forwarding guard was left behind"
    assert open_fds() == before_fds, "a descriptor was left open"


def in_netns(attachment: Attachment, function: Callable[[], Any]) -> Any:
    from lxrun.net.netns import run_in_netns

    assert attachment.netns_fd is not None
    return run_in_netns(attachment.netns_fd, function)


@contextlib.contextmanager
def tcp_server(address: str, port: int, attachment: Attachment | None = None) -> Iterator[None]:
    """Answers each connection with `<address> sees <peer address>`; in the task's netns if given."""

    def listen() -> socket.socket:
        return socket.create_server((address, port))

    server = in_netns(attachment, listen) if attachment is not None else listen()
    server.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(f"{address} sees {peer[0]}".encode())

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        server.close()


def fetch(address: str, port: int, timeout: float = 3) -> str:
    with socket.create_connection((address, port), timeout=timeout) as conn:
        return conn.recv(200).decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_task_gets_eth0_with_its_address_and_a_default_route(net: Net) -> None:
    with net.attach("t1") as attachment:
        assert (attachment.mode, attachment.address, attachment.gateway) == ("bridge", "10.213.0.2", "10.213.0.1")
        assert (attachment.interface, attachment.host_interface, attachment.bridge) == ("eth0", "lx0ad50002", BRIDGE)
        assert attachment.prefix_len == 24 and attachment.netns_fd is not None
        assert {BRIDGE, "lx0ad50002"} <= interfaces()
        inside = subprocess.run(
            ["nsenter", f"--net=/proc/{os.getpid()}/fd/{attachment.netns_fd}", "ip", "-o", "-4", "addr"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "lo    inet 127.0.0.1/8" in inside and "eth0    inet 10.213.0.2/24" in inside
        routes = subprocess.run(
            ["nsenter", f"--net=/proc/{os.getpid()}/fd/{attachment.netns_fd}", "ip", "route"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "default via 10.213.0.1 dev eth0" in routes
        assert net.leases() == ["10.213.0.2"]
    assert "lx0ad50002" not in interfaces() and net.leases() == []
    assert BRIDGE in interfaces(), "the bridge stays for the next task until gc"


def test_two_tasks_on_the_bridge_reach_each_other(net: Net) -> None:
    with net.attach("a") as a, net.attach("b") as b:
        assert a.address is not None and b.address is not None
        with tcp_server(a.address, 8000, a):
            assert in_netns(b, lambda: fetch(a.address, 8000)) == f"{a.address} sees {b.address}"


def test_a_published_port_is_reachable_from_the_host_and_other_tasks(net: Net) -> None:
    port = free_port()
    with net.attach("server", f"{port}:80") as server, net.attach("client") as client:
        assert server.address is not None
        with tcp_server(server.address, 80, server):
            assert fetch("127.0.0.1", port) == f"{server.address} sees 10.213.0.1"  # masqueraded to the bridge
            assert fetch(net.config.gateway, port) == f"{server.address} sees 10.213.0.1"
            # another task, through the host's port (routed out and back into the bridge)
            assert in_netns(client, lambda: fetch(net.config.gateway, port)).startswith(f"{server.address} sees ")
    with pytest.raises(OSError):
        fetch("127.0.0.1", port, timeout=0.5)


def test_a_port_published_on_one_address_only(net: Net) -> None:
    port = free_port()
    with net.attach("server", f"127.0.0.1:{port}:80") as server:
        assert server.address is not None
        with tcp_server(server.address, 80, server):
            assert fetch("127.0.0.1", port).startswith(f"{server.address} sees")
            with pytest.raises(OSError):  # nothing listens on the bridge address's port
                fetch(net.config.gateway, port, timeout=0.5)


def test_a_published_udp_port(net: Net) -> None:
    port = free_port()
    with net.attach("dns", f"{port}:53/udp") as task:
        assert task.address is not None
        address = task.address

        def bind() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((address, 53))
            return sock

        server = in_netns(task, bind)
        with server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(3)
            client.sendto(b"ping", ("127.0.0.1", port))
            server.settimeout(3)
            data, peer = server.recvfrom(100)
            server.sendto(data.upper(), peer)
            assert client.recvfrom(100)[0] == b"PING"


@contextlib.contextmanager
def outside_network() -> Iterator[Attachment]:
    """A stand-in for the world beyond the host: a netns behind a veth of its own (host end 10.214.0.1/24,
    10.214.0.2/24 inside), with no route back to the tasks' subnet."""
    from pyroute2 import IPRoute

    from lxrun.net import links
    from lxrun.net.netns import new_netns, run_in_netns

    with new_netns() as fd, IPRoute() as ipr:
        ipr.link("add", ifname="lxrtout", kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd})
        try:
            index = ipr.link_lookup(ifname="lxrtout")[0]
            ipr.addr("add", index=index, address="10.214.0.1", prefixlen=24)
            ipr.link("set", index=index, state="up")

            def inside() -> None:
                with IPRoute() as ns:
                    eth0 = ns.link_lookup(ifname="eth0")[0]
                    ns.link("set", index=eth0, state="up")
                    ns.addr("add", index=eth0, address="10.214.0.2", prefixlen=24)

            run_in_netns(fd, inside)
            yield Attachment("bridge", netns_fd=fd, address="10.214.0.2")
        finally:
            links.delete_link(ipr, "lxrtout")


def test_tasks_reach_out_through_the_host_with_nat(net: Net) -> None:
    with outside_network() as outside, net.attach("t") as task:
        assert task.notices == () or "ip_forward" in task.notices[0]
        assert IP_FORWARD.read_text().strip() == "1"
        with tcp_server("10.214.0.2", 8000, outside):
            # the outside sees the host's address, not the task's: it has no route back to 10.213.0.0/24
            assert in_netns(task, lambda: fetch("10.214.0.2", 8000)) == "10.214.0.2 sees 10.214.0.1"


def test_tasks_do_not_reach_the_hosts_own_services(net: Net) -> None:
    with net.attach("t") as task, tcp_server(net.config.gateway, 8001):
        assert fetch(net.config.gateway, 8001).startswith(f"{net.config.gateway} sees")  # it runs
        with pytest.raises(OSError):
            in_netns(task, lambda: fetch(net.config.gateway, 8001, timeout=0.5))


def test_the_bridge_has_no_ipv6_for_tasks_to_reach_the_host_by(net: Net) -> None:
    with net.attach("t") as task:
        assert Path(f"/proc/sys/net/ipv6/conf/{BRIDGE}/disable_ipv6").read_text() == "1\n"
        assert not any(line.split()[-1] == BRIDGE for line in Path("/proc/net/if_inet6").read_text().splitlines())

        def link_local_to_the_bridge() -> None:  # the address the bridge's MAC would give it
            with socket.socket(socket.AF_INET6) as conn:
                conn.settimeout(0.5)
                conn.connect(("fe80::6c:aff:fed5:1", 22, 0, socket.if_nametoindex("eth0")))

        with pytest.raises(OSError):
            in_netns(task, link_local_to_the_bridge)


def test_concurrent_attachments_from_threads_get_distinct_addresses(net: Net) -> None:
    count = 8
    addresses: list[str] = []
    failures: list[BaseException] = []
    together = threading.Barrier(count)

    def one(n: int) -> None:
        try:
            with net.attach(f"t{n}") as attachment:
                assert attachment.address is not None
                addresses.append(attachment.address)
                together.wait(timeout=30)
        except BaseException as exc:
            failures.append(exc)
            together.abort()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(addresses) == [f"10.213.0.{n}" for n in range(2, 2 + count)]
    assert net.leases() == [] and not any(name.startswith("lx0ad5") for name in interfaces())


def test_none_and_host_need_nothing(net: Net) -> None:
    for mode in ("none", "host"):
        with task_network(net.layout, "t", NetworkSpec(mode), net.config) as attachment:
            assert attachment == Attachment(mode)
            assert BRIDGE not in interfaces() and net.leases() == []


def test_network_none_has_only_loopback(state_root: Path) -> None:
    result = run_task(state_root, "cat", "/proc/net/dev")
    names = [line.split(":")[0].strip() for line in result.stdout.decode().splitlines()[2:]]
    assert (result.exit_code, names) == (0, ["lo"])


def test_after_the_context_nothing_is_left(net: Net) -> None:
    port = free_port()
    fds = open_fds()
    with net.attach("t", f"{port}:80", f"{port}:80/udp") as attachment:
        assert open_fds() > fds
        assert f"tcp . {port} : {attachment.address} . 80" in nft_elements()
    assert open_fds() == fds, "a descriptor (netns, port, netlink) was left open"
    assert str(port) not in nft_elements() and net.leases() == []
    assert not any(name.startswith("lx0ad5") for name in interfaces())
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as again:
            again.bind(("0.0.0.0", port))  # the host port is free again


def nft_elements() -> str:
    return subprocess.run(
        ["nft", "list", "map", "ip", BRIDGE, "ports"], capture_output=True, text=True, check=False
    ).stdout


def test_gc_removes_an_idle_bridge_and_table_and_is_idempotent(net: Net) -> None:
    forwarding = IP_FORWARD.read_text()
    with net.attach("t"):
        assert gc_network(net.layout, net.config).shared == ()  # a task holds a lease: nothing shared goes
        assert BRIDGE in interfaces()
    assert BRIDGE in interfaces() and f"table ip {BRIDGE}" in nft_tables()
    result = gc_network(net.layout, net.config)
    assert {f"table ip {BRIDGE}", f"bridge {BRIDGE}"} <= set(result.shared) and result.live == 0
    assert BRIDGE not in interfaces() and f"table ip {BRIDGE}" not in nft_tables()
    assert IP_FORWARD.read_text() == forwarding and "lxrun_forward" not in nft_tables()
    again = gc_network(net.layout, net.config)
    assert (again.veths, again.leases, again.elements, again.shared) == ((), (), 0, ())


def test_two_bridges_share_the_forwarding_guard(net: Net, tmp_path: Path) -> None:
    """A second bridge (another config, another state root) must get out too, and keep forwarding on while
    the first goes away."""
    forwarding = IP_FORWARD.read_text()
    other = Net(tmp_path / "other", NetworkConfig("lxrt1", "10.218.0.0/24"))
    try:
        with outside_network() as outside, tcp_server("10.214.0.2", 8000, outside):
            with net.attach("first") as first:
                assert in_netns(first, lambda: fetch("10.214.0.2", 8000)) == "10.214.0.2 sees 10.214.0.1"
            with other.attach("second") as second:
                assert in_netns(second, lambda: fetch("10.214.0.2", 8000)) == "10.214.0.2 sees 10.214.0.1"
                gc_network(net.layout, net.config)
                assert IP_FORWARD.read_text().strip() == "1"
                assert in_netns(second, lambda: fetch("10.214.0.2", 8000)) == "10.214.0.2 sees 10.214.0.1"
    finally:
        gc_network(other.layout, other.config)
    assert "lxrt1" not in interfaces() and IP_FORWARD.read_text() == forwarding
    assert "lxrun_forward" not in nft_tables()


CRASHING_RUNNER = """
import os, signal, sys
from lxrun.layout import Layout
from lxrun.net import NetworkSpec, parse_publish
from lxrun.net.attach import task_network
from lxrun.net.config import NetworkConfig

spec = NetworkSpec("bridge", [parse_publish(sys.argv[2])])
with task_network(Layout(sys.argv[1]), "crashed", spec, NetworkConfig(sys.argv[3], sys.argv[4])) as attachment:
    print(attachment.address, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def crash_a_runner(net: Net, publish: str) -> str:
    """Attach in another process, which then dies by SIGKILL holding everything; returns its address."""
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_RUNNER, net.layout.root, publish, BRIDGE, net.config.subnet],
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    return child.stdout.strip()


def test_gc_releases_what_a_crashed_runner_left(net: Net) -> None:
    port = free_port()
    address = crash_a_runner(net, f"{port}:80")
    assert net.leases() == [address]
    assert f"tcp . {port} : {address} . 80" in nft_elements()
    result = gc_network(net.layout, net.config)
    assert (result.leases, result.elements, result.live) == ((address,), 1, 0)
    assert BRIDGE not in interfaces()


def test_a_crashed_tasks_port_goes_to_the_next_task_that_publishes_it(net: Net) -> None:
    port = free_port()
    crashed = crash_a_runner(net, f"{port}:80")
    with net.attach("next", f"{port}:80") as task:
        assert task.address != crashed
        assert task.address is not None
        with tcp_server(task.address, 80, task):
            assert fetch("127.0.0.1", port).startswith(f"{task.address} sees")
    assert net.leases() == [crashed]  # its address stays leased (stale) until reused or gc
    assert gc_network(net.layout, net.config).leases == (crashed,)


def test_a_stale_lease_is_cleaned_when_its_address_is_reused(net: Net) -> None:
    net.config = NetworkConfig(BRIDGE, "10.213.0.0/29")
    port = free_port()
    crashed = crash_a_runner(net, f"{port}:80")
    assert f"tcp . {port} : {crashed} . 80" in nft_elements()
    with contextlib.ExitStack() as held:
        others = [held.enter_context(net.attach(f"t{n}")) for n in range(4)]  # every address without a file
        assert crashed not in [attachment.address for attachment in others]
        with net.attach("reuses") as task:
            assert task.address == crashed
            assert str(port) not in nft_elements(), "the dead task's published port still leads to the address"
    assert net.leases() == []


def test_an_overlapping_subnet_is_refused_and_creates_nothing(net: Net) -> None:
    from pyroute2 import IPRoute

    from lxrun.net import links

    with IPRoute() as ipr:
        ipr.link("add", ifname="lxrtdummy", kind="veth", peer="lxrtdummy1")  # no dummy driver on every kernel
        try:
            index = ipr.link_lookup(ifname="lxrtdummy")[0]
            ipr.addr("add", index=index, address="10.215.5.1", prefixlen=24)
            ipr.link("set", index=index, state="up")
            before = interfaces()
            net.config = NetworkConfig(BRIDGE, "10.215.0.0/16")
            with pytest.raises(SpecError) as info, net.attach("t"):
                pass
            message = str(info.value)
            assert message.startswith("subnet 10.215.0.0/16: overlaps the host route ")
            assert "10.215.5." in message and "dev lxrtdummy" in message and "LXRUN_SUBNET" in message
            assert "\n" not in message
            assert interfaces() == before and f"table ip {BRIDGE}" not in nft_tables() and net.leases() == []
        finally:
            links.delete_link(ipr, "lxrtdummy")


def test_a_port_in_use_is_refused_before_anything_is_made(net: Net) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        port = taken.getsockname()[1]
        before, fds = interfaces(), open_fds()
        with pytest.raises(SetupError) as info, net.attach("t", f"{port}:80"):
            pass
        assert str(info.value) == (
            f"publish {port}:80/tcp: host port {port}/tcp is in use (by another task or a host service) "
            "(choose another HOSTPORT)"
        )
        assert info.value.errno == errno.EADDRINUSE
        assert interfaces() == before and open_fds() == fds and net.leases() == []
        assert f"table ip {BRIDGE}" not in nft_tables()


def test_a_host_address_that_is_not_ours_is_refused(net: Net) -> None:
    message = r"^publish 10.213.0.77:8080:80/tcp: 10.213.0.77 is not an address of this host"
    with pytest.raises(SetupError, match=message), net.attach("t", "10.213.0.77:8080:80"):
        pass
    assert net.leases() == []


@pytest.mark.parametrize("where", ["lxrun.net.links.configure_task_side", "lxrun.net.publish._add"])
def test_a_failure_in_the_middle_of_setup_leaves_nothing(net: Net, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    def broken(*args: object) -> None:
        raise SetupError("injected", "failure", path=where)

    port = free_port()
    with net.attach("first"):  # the bridge exists now; the failing task must leave only it
        before, fds = interfaces(), open_fds()
        monkeypatch.setattr(where, broken)
        with pytest.raises(SetupError, match="injected"), net.attach("t", f"{port}:80"):
            pass
        assert interfaces() == before and open_fds() == fds and net.leases() == ["10.213.0.2"]
        assert str(port) not in nft_elements()
    with socket.socket() as again:
        again.bind(("0.0.0.0", port))


def test_a_failure_while_making_the_bridge_leaves_no_half_made_bridge(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise SetupError("injected", "failure")

    monkeypatch.setattr("lxrun.net.links.set_up", broken)
    with pytest.raises(SetupError, match="injected"), net.attach("t"):
        pass
    assert BRIDGE not in interfaces() and f"table ip {BRIDGE}" not in nft_tables() and net.leases() == []


def test_keyboard_interrupt_tears_everything_down(net: Net) -> None:
    port = free_port()
    fds = open_fds()
    with pytest.raises(KeyboardInterrupt), net.attach("t", f"{port}:80"):
        raise KeyboardInterrupt
    assert open_fds() == fds and net.leases() == [] and str(port) not in nft_elements()


def test_an_exhausted_subnet_is_one_line_and_creates_nothing(net: Net) -> None:
    net.config = NetworkConfig(BRIDGE, "10.213.0.0/29")
    with contextlib.ExitStack() as held:
        for n in range(5):
            held.enter_context(net.attach(f"t{n}"))
        before, fds = interfaces(), open_fds()
        with pytest.raises(SetupError) as info, net.attach("one-too-many"):
            pass
        assert str(info.value).startswith(f"address {net.layout.net_leases}: no free address left in 10.213.0.0/29")
        assert interfaces() == before and open_fds() == fds and len(net.leases()) == 5
