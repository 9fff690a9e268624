"""The shared part of bridge mode: the bridge, lxrun's nftables table and ip_forward, made on demand and
removed by gc once no task holds a lease.

<root>/net/lock orders the two: a task takes its address lease while holding the lock shared, after
seeing the bridge and table in place (or exclusively, after making them); gc holds it exclusively
while it checks that no lease is held and removes them. So gc never removes a bridge a task is joining.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from lxrun.net import leases, links
from lxrun.net.config import check_subnet
from lxrun.net.nft import nft
from lxrun.net.rules import table_ruleset

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyroute2 import IPRoute

    from lxrun.layout import Layout
    from lxrun.net.config import NetworkConfig

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


@contextlib.contextmanager
def net_lock(layout: Layout, exclusive: bool) -> Iterator[None]:
    os.makedirs(layout.net, mode=0o700, exist_ok=True)
    fd = os.open(layout.net_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def join(layout: Layout, config: NetworkConfig, ipr: IPRoute, holder: str) -> tuple[int, leases.Lease, list[str]]:
    """The bridge's index and an address lease, making the bridge and table first if missing. Also what
    the caller should tell its user (lxrun turned ip_forward on)."""
    with net_lock(layout, exclusive=False):
        index = links.bridge_index(ipr, config)
        if index is not None and table_exists(config):
            return index, leases.acquire(layout.net_leases, config, holder), []
    with net_lock(layout, exclusive=True):
        index = links.bridge_index(ipr, config)  # another runner may have made it meanwhile
        notices: list[str] = []
        if index is None:
            check_subnet(config, links.host_routes(ipr))
            index = links.create_bridge(ipr, config)
            _write(f"/proc/sys/net/ipv4/conf/{config.bridge}/route_localnet", "1")  # DNAT of 127.0.0.1
        if not table_exists(config):
            notices += _create_table(layout, config)
        return index, leases.acquire(layout.net_leases, config, holder), notices


def table_exists(config: NetworkConfig) -> bool:
    return f"table ip {config.table}\n" in nft().run("list tables ip")


def _create_table(layout: Layout, config: NetworkConfig) -> list[str]:
    marker = layout.net_forwarding(config.bridge)
    forwarding_off = _read(IP_FORWARD) == "0"
    nft().run(
        table_ruleset(config, guard_forwarding=forwarding_off or os.path.exists(marker)),
        step="create nftables table",
        path=f"ip {config.table}",
    )
    if not forwarding_off:
        return []
    _write(marker, "0\n")  # first: a crash before the sysctl leaves gc restoring what is already so
    _write(IP_FORWARD, "1")
    return [
        f"turned net.ipv4.ip_forward on (it was off) so bridge {config.bridge} can reach out; "
        f"lxrun's table forwards only its traffic, and lxrun gc turns it off again once no task uses the bridge"
    ]


def remove(layout: Layout, config: NetworkConfig, ipr: IPRoute) -> list[str]:
    """Remove table, bridge and the ip_forward change (call holding net_lock exclusively, with no lease
    held). Returns what it removed."""
    removed = []
    if table_exists(config):
        nft().run(f"delete table ip {config.table}", step="delete nftables table", path=f"ip {config.table}")
        removed.append(f"table ip {config.table}")
    if links.delete_link(ipr, config.bridge):
        removed.append(f"bridge {config.bridge}")
    marker = layout.net_forwarding(config.bridge)
    if os.path.exists(marker):
        _write(IP_FORWARD, "0")
        os.unlink(marker)
        removed.append("ip_forward (back off)")
    return removed


def _read(path: str) -> str:
    with open(path) as file:
        return file.read().strip()


def _write(path: str, value: str) -> None:
    with open(path, "w") as file:
        file.write(value)
