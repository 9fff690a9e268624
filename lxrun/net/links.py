"""The netlink calls bridge mode makes, through pyroute2: the bridge, a task's veth pair, the addresses and
routes inside its netns, and the host's routes for the overlap check.

Every function takes an open IPRoute (the caller owns it) and turns pyroute2's NetlinkError into a
SetupError naming the step and the interface. pyroute2 is imported here, and only here.
"""

from __future__ import annotations

import contextlib
import errno
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from lxrun.errors import SetupError
from lxrun.net.config import Route, is_veth_name, task_mac

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from lxrun.net.config import NetworkConfig

TASK_INTERFACE = "eth0"
ROUTE_KINDS = {1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole", 7: "unreachable"}


@contextlib.contextmanager
def netlink(step: str, path: str | None = None) -> Iterator[None]:
    """NetlinkError (and a socket that can't be made) -> SetupError naming the step and what it touched."""
    try:
        yield
    except NetlinkError as exc:
        raise SetupError.from_errno(step, exc.code, path) from exc
    except OSError as exc:
        raise SetupError.from_errno(step, exc.errno or errno.EIO, path) from exc


def rtnl() -> IPRoute:
    """A netlink route socket in the calling thread's network namespace (close it when done)."""
    with netlink("netlink socket"):
        return IPRoute()


def bridge_index(ipr: IPRoute, config: NetworkConfig) -> int | None:
    """The bridge's index if it exists with the config's address; None if it doesn't exist. An interface of
    that name with anything else is an error: it is not ours, or it was made for another subnet."""
    wanted = (config.gateway, config.prefix_len)
    with netlink("bridge", config.bridge):
        found = [
            (msg["index"], (msg.get("address"), msg["prefixlen"]))
            for msg in ipr.addr("dump", family=socket.AF_INET)
            if msg.get("label") == config.bridge
        ]
        if any(address == wanted for _, address in found):
            return int(found[0][0])
        links = ipr.link("dump", ifname=config.bridge)
    if not links and not found:
        return None
    has = ", ".join(f"{address}/{prefix}" for _, (address, prefix) in found) or "no IPv4 address"
    raise SetupError(
        "bridge",
        f"exists with {has}, not {config.gateway}/{config.prefix_len}",
        path=config.bridge,
        hint="use the subnet it was made for (LXRUN_SUBNET), or let lxrun gc remove it once no task uses it",
    )


def create_bridge(ipr: IPRoute, config: NetworkConfig) -> int:
    """The bridge, down and without an address, with a MAC of its own (else it takes the lowest port's,
    which changes as tasks come and go)."""
    with netlink("create bridge", config.bridge):
        ipr.link("add", ifname=config.bridge, kind="bridge", address=task_mac(config.gateway))
        return int(ipr.link_lookup(ifname=config.bridge)[0])


def add_address(ipr: IPRoute, index: int, name: str, address: str, prefix_len: int) -> None:
    with netlink("add address", name):
        ipr.addr("add", index=index, address=address, prefixlen=prefix_len)


def set_up(ipr: IPRoute, index: int, name: str) -> None:
    with netlink("set interface up", name):
        ipr.link("set", index=index, state="up")


def delete_link(ipr: IPRoute, name: str) -> bool:
    """Delete an interface (a veth takes its peer with it); False if it was already gone."""
    with netlink("delete interface", name):
        try:
            ipr.link("del", ifname=name)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return False
            raise
    return True


def add_veth(ipr: IPRoute, name: str, bridge: int, netns_fd: int, address: str) -> None:
    """A veth pair in one request: `name` on the bridge and up, its peer `eth0` created inside the netns."""
    peer = {"ifname": TASK_INTERFACE, "net_ns_fd": netns_fd, "address": task_mac(address)}
    with netlink("create veth", name):
        ipr.link("add", ifname=name, kind="veth", master=bridge, state="up", peer=peer)


def configure_task_side(address: str, prefix_len: int, gateway: str) -> None:
    """Inside the task's netns (run this in a thread that entered it): lo and eth0 up, the address, and the
    default route via the bridge."""
    with netlink("configure task network", TASK_INTERFACE), IPRoute() as ipr:
        index = {msg.get("ifname"): msg["index"] for msg in ipr.link("dump")}
        ipr.link("set", index=index["lo"], state="up")
        ipr.link("set", index=index[TASK_INTERFACE], state="up")
        ipr.addr("add", index=index[TASK_INTERFACE], address=address, prefixlen=prefix_len)
        ipr.route("add", dst="0.0.0.0/0", gateway=gateway)


def host_routes(ipr: IPRoute) -> list[Route]:
    """Every IPv4 route of every table, as Route values."""
    with netlink("list routes"):
        names = {msg["index"]: msg.get("ifname") for msg in ipr.link("dump")}
        return [
            Route(
                f"{msg.get('dst') or '0.0.0.0'}/{msg['dst_len']}",
                names.get(msg.get("oif")),
                ROUTE_KINDS.get(msg["type"], str(msg["type"])),
            )
            for msg in ipr.route("dump", family=socket.AF_INET)
        ]


def link_exists(ipr: IPRoute, name: str) -> bool:
    with netlink("find interface", name):
        return bool(ipr.link_lookup(ifname=name))


def veth_names(ipr: IPRoute) -> list[str]:
    """The host ends of task veths (named lx + the task's address in hex)."""
    with netlink("list interfaces"):
        return [name for msg in ipr.link("dump") if is_veth_name(name := msg.get("ifname") or "")]
