"""The shared part of bridge mode: the bridge, lxrun's nftables table and ip_forward, made on demand and
removed by gc once no task holds a lease.

<root>/net/lock orders tasks and gc: a task takes its address lease while holding the lock shared, after
seeing the bridge and table in place (or exclusively, after making them); gc holds it exclusively
while it checks that no lease is held and removes them. So gc never removes a bridge a task is joining.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from lxrun.net import forwarding, leases, links
from lxrun.net.config import check_subnet
from lxrun.net.nft import nft
from lxrun.net.rules import table_ruleset

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyroute2 import IPRoute

    from lxrun.layout import Layout
    from lxrun.net.config import NetworkConfig


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
            index = _make_bridge(config, ipr)
        if not table_exists(config):
            notices += _create_table(config)
        return index, leases.acquire(layout.net_leases, config, holder), notices


def _make_bridge(config: NetworkConfig, ipr: IPRoute) -> int:
    """Up with its address, or not there at all: a half-made bridge would stop every later task."""
    check_subnet(config, links.host_routes(ipr))
    index = links.create_bridge(ipr, config)
    try:
        links.add_address(ipr, index, config.bridge, config.gateway, config.prefix_len)
        _write(f"/proc/sys/net/ipv4/conf/{config.bridge}/route_localnet", "1")  # DNAT of 127.0.0.1
        # No IPv6 on the bridge: the input chain is IPv4 only, and a link-local address would let tasks
        # reach the host's services listening on [::].
        if os.path.isdir(f"/proc/sys/net/ipv6/conf/{config.bridge}"):
            _write(f"/proc/sys/net/ipv6/conf/{config.bridge}/disable_ipv6", "1")
        links.set_up(ipr, index, config.bridge)
    except BaseException:
        links.delete_link(ipr, config.bridge)
        raise
    return index


def table_exists(config: NetworkConfig) -> bool:
    return f"table ip {config.table}\n" in nft().run("list tables ip")


def _create_table(config: NetworkConfig) -> list[str]:
    path = f"ip {config.table}"
    nft().run(table_ruleset(config), step="create nftables table", path=path)
    try:
        return forwarding.ensure(config.bridge)
    except BaseException:  # no table without forwarding: the next task's join tries both again
        nft().run(f"delete table ip {config.table}", step="delete nftables table", path=path)
        raise


def remove(config: NetworkConfig, ipr: IPRoute, dry_run: bool = False) -> list[str]:
    """Remove table and bridge, and leave the forwarding guard (call holding net_lock exclusively, with no
    lease held). Returns what it removed (or, `dry_run`, what it would remove, changing nothing)."""
    removed = []
    if table_exists(config):
        if not dry_run:
            nft().run(f"delete table ip {config.table}", step="delete nftables table", path=f"ip {config.table}")
        removed.append(f"table ip {config.table}")
    if links.link_exists(ipr, config.bridge) if dry_run else links.delete_link(ipr, config.bridge):
        removed.append(f"bridge {config.bridge}")
    return removed + forwarding.release(config.bridge, dry_run)


def _write(path: str, value: str) -> None:
    with open(path, "w") as file:
        file.write(value)
