"""`gc_network`: release what dead tasks left on the host, and the bridge, table and ip_forward change
once no task holds a lease. Idempotent; safe while tasks run (it holds the net lock exclusively, and
a lease that someone holds marks a live task).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os

from lxrun.net import bridge, leases, links, publish
from lxrun.net.config import NetworkConfig, veth_address
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.layout import Layout


class NetworkGc(Record):
    """What gc_network removed: veths and leases of dead tasks, published-port elements (count), and the
    shared pieces once idle (`shared`: "table ip lxrun0", "bridge lxrun0", "ip_forward (back off)")."""

    __slots__ = ("elements", "leases", "live", "shared", "veths")
    veths: tuple[str, ...]
    leases: tuple[str, ...]
    elements: int
    shared: tuple[str, ...]
    live: int

    def __init__(
        self, veths: tuple[str, ...], leases: tuple[str, ...], elements: int, shared: tuple[str, ...], live: int
    ) -> None:
        super().__init__(veths=veths, leases=leases, elements=elements, shared=shared, live=live)


def gc_network(layout: Layout, config: NetworkConfig | None = None) -> NetworkGc:
    config = config or NetworkConfig()
    network = config.network
    with bridge.net_lock(layout, exclusive=True), contextlib.ExitStack() as held:
        ipr = held.enter_context(contextlib.closing(links.rtnl()))
        live: set[str] = set()
        dead: list[leases.Lease] = []
        names = os.listdir(layout.net_leases) if os.path.isdir(layout.net_leases) else []
        for name in names:
            lease = leases.take(layout.net_leases, name, "gc")
            if lease is None:
                live.add(name)
            else:
                dead.append(held.enter_context(lease))  # released (unlinked) last, after its leftovers are gone
        veths = [
            name
            for name in links.veth_names(ipr)
            if (address := veth_address(name)) is not None
            and ipaddress.IPv4Address(address) in network
            and address not in live
        ]
        veths = [name for name in veths if links.delete_link(ipr, name)]
        elements = [element for element in publish.listed(config) if element.address not in live]
        publish.remove(config, elements)
        shared = bridge.remove(config, ipr) if not live else []
        return NetworkGc(
            veths=tuple(veths),
            leases=tuple(sorted(lease.address for lease in dead)),
            elements=len(elements),
            shared=tuple(shared),
            live=len(live),
        )
