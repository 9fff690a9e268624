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


def gc_network(layout: Layout, config: NetworkConfig | None = None, dry_run: bool = False) -> NetworkGc:
    """Release what dead tasks left and, with none alive, the shared pieces; `dry_run`: say what it would
    release, changing nothing (a lease's holder is only looked at, not taken)."""
    config = config or NetworkConfig()
    network = config.network
    with bridge.net_lock(layout, exclusive=not dry_run), contextlib.ExitStack() as held:
        ipr = held.enter_context(contextlib.closing(links.rtnl()))
        live: set[str] = set()
        dead_names: set[str] = set()
        names = os.listdir(layout.net_leases) if os.path.isdir(layout.net_leases) else []
        for name in names:
            if dry_run:
                (live if leases.held(layout.net_leases, name) else dead_names).add(name)
                continue
            lease = leases.take(layout.net_leases, name, "gc")
            if lease is None:
                live.add(name)
            else:  # released (unlinked) last, after its leftovers are gone
                dead_names.add(held.enter_context(lease).address)
        veths = [
            name
            for name in links.veth_names(ipr)
            if (address := veth_address(name)) is not None
            and ipaddress.IPv4Address(address) in network
            and address not in live
        ]
        if not dry_run:
            veths = [name for name in veths if links.delete_link(ipr, name)]
        elements = [element for element in publish.listed(config) if element.address not in live]
        if not dry_run:
            publish.remove(config, elements)
        shared = bridge.remove(config, ipr, dry_run) if not live else []
        return NetworkGc(
            veths=tuple(veths),
            leases=tuple(sorted(dead_names)),
            elements=len(elements),
            shared=tuple(shared),
            live=len(live),
        )
