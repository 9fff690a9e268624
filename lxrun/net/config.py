"""Where bridge-mode tasks live on the host: the bridge's name and the subnet their addresses come from.

The bridge gets the subnet's first host address; tasks get the others. lxrun's nftables table is named
after the bridge, so one config owns exactly one bridge and one table. The subnet must not overlap a
route the host already has (`overlapping_route`), or lxrun would hijack or shadow that traffic.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re

from lxrun.errors import SpecError
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

DEFAULT_BRIDGE = "lxrun0"
DEFAULT_SUBNET = "10.88.0.0/16"
SUBNET_ENV = "LXRUN_SUBNET"
SUGGEST_TRIES = 1024
MAX_PREFIX = 29  # network, bridge, broadcast and at least a few tasks
# A Linux interface name (IFNAMSIZ - 1) that is also a plain nftables table name.
BRIDGE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,14}")
VETH_RE = re.compile(r"lx[0-9a-f]{8}")


class Route(Record):
    """One host route, as far as the overlap check cares: its destination and where it leads."""

    __slots__ = ("destination", "device", "kind")
    destination: str
    device: str | None
    kind: str

    def __init__(self, destination: str, device: str | None = None, kind: str = "unicast") -> None:
        super().__init__(destination=destination, device=device, kind=kind)

    def __str__(self) -> str:
        prefix = "" if self.kind == "unicast" else f"{self.kind} "
        return f"{prefix}{self.destination}{f' dev {self.device}' if self.device else ''}"


class NetworkConfig(Record):
    """`subnet` None takes $LXRUN_SUBNET, else 10.88.0.0/16. Addresses: gateway = first host (the bridge's)."""

    __slots__ = ("bridge", "subnet")
    bridge: str
    subnet: str

    def __init__(self, bridge: str = DEFAULT_BRIDGE, subnet: str | None = None) -> None:
        where = "subnet"
        if subnet is None:
            subnet, where = os.environ.get(SUBNET_ENV) or DEFAULT_SUBNET, SUBNET_ENV
        if not BRIDGE_RE.fullmatch(bridge):
            raise SpecError(
                "bridge", "is not a usable bridge name", path=bridge, hint="use a letter, then letters, digits or _"
            )
        if is_veth_name(bridge):
            raise SpecError("bridge", "looks like one of lxrun's veth names", path=bridge, hint="e.g. lxrun0")
        try:
            network = ipaddress.IPv4Network(subnet)
        except ValueError as exc:
            raise SpecError(where, f"is not an IPv4 subnet ({exc})", path=subnet, hint="e.g. 10.88.0.0/16") from exc
        if network.prefixlen > MAX_PREFIX:
            raise SpecError(where, "is too small for tasks", path=subnet, hint=f"use a /{MAX_PREFIX} or larger")
        if network.is_loopback or network.is_multicast or network.is_link_local or network.is_reserved:
            raise SpecError(
                where, "is not a range for hosts", path=subnet, hint="use a private range, e.g. 10.88.0.0/16"
            )
        super().__init__(bridge=bridge, subnet=str(network))

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def gateway(self) -> str:
        """The bridge's address: the tasks' default route."""
        return str(self.network.network_address + 1)

    @property
    def prefix_len(self) -> int:
        return self.network.prefixlen

    @property
    def table(self) -> str:
        """lxrun's nftables table for this bridge (family ip)."""
        return self.bridge


def veth_name(address: str) -> str:
    """The host end of a task's veth pair, named after its address: a lease of the address owns the name."""
    return "lx" + ipaddress.IPv4Address(address).packed.hex()


def veth_address(name: str) -> str | None:
    """The address a veth name stands for; None if the name is not one of ours."""
    return str(ipaddress.IPv4Address(bytes.fromhex(name[2:]))) if is_veth_name(name) else None


def is_veth_name(name: str) -> bool:
    return VETH_RE.fullmatch(name) is not None


def task_mac(address: str) -> str:
    """A MAC fixed by the address (locally administered), so neighbours' ARP caches stay right when an address
    is reused by the next task."""
    return "02:6c:" + ":".join(f"{byte:02x}" for byte in ipaddress.IPv4Address(address).packed)


def overlapping_route(config: NetworkConfig, routes: Iterable[Route]) -> Route | None:
    """The first route whose destination overlaps the subnet. Default routes (/0) don't count, nor do
    routes through the bridge itself (ours)."""
    return _overlapping(config.network, config.bridge, tuple(routes))


def check_subnet(config: NetworkConfig, routes: Iterable[Route]) -> None:
    """SpecError naming the overlapping route and the fix."""
    routes = tuple(routes)
    route = overlapping_route(config, routes)
    if route is not None:
        raise SpecError(
            "subnet",
            f"overlaps the host route {route}",
            path=config.subnet,
            hint=f"set {SUBNET_ENV} to a range no host route covers, e.g. {suggest_subnet(config, routes)}",
        )


def suggest_subnet(config: NetworkConfig, routes: Iterable[Route]) -> str:
    """A private range of the same size that overlaps no route (for the hint; looks at a bounded number)."""
    routes = tuple(routes)
    for supernet in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
        parent = ipaddress.IPv4Network(supernet)
        if parent.prefixlen > config.prefix_len:
            continue
        for candidate in itertools.islice(parent.subnets(new_prefix=config.prefix_len), SUGGEST_TRIES):
            if _overlapping(candidate, config.bridge, routes) is None:
                return str(candidate)
    return "a free private range"


def _overlapping(network: ipaddress.IPv4Network, bridge: str, routes: tuple[Route, ...]) -> Route | None:
    for route in routes:
        if route.device == bridge:
            continue
        destination = ipaddress.IPv4Network(route.destination, strict=False)
        if destination.prefixlen and destination.overlaps(network):
            return route
    return None
