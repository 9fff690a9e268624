"""One task's network, acquired step by step in one ExitStack and released on every path.

bridge:  host ports reserved -> join (bridge and table made on demand; an address lease) -> a new netns
         fd -> a veth pair, the host end on the bridge, `eth0` inside -> lo, address, default route inside
         (from a thread that entered the netns) -> DNAT map elements for the published ports.
         Released in reverse: elements, veth (its peer goes with it), netns fd, lease, ports.
host:    nothing to acquire: the task uses the host's network namespace.
none:    nothing to acquire: the sandbox makes its own netns with only `lo`.
"""

from __future__ import annotations

import contextlib
import functools

from lxrun.net.spec import BRIDGE
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from lxrun.layout import Layout
    from lxrun.net.config import NetworkConfig
    from lxrun.net.spec import NetworkSpec, PortMapping


class Attachment(Record):
    """What the sandbox needs to know of its network.

    mode "none": create a new netns (only lo). "host": create none, stay in the host's. "bridge": join
    `netns_fd` (setns before the task's user namespace exists), whose `interface` has `address`/`prefix_len`
    and a default route via `gateway`; `host_interface` is its veth peer on `bridge`. `netns_fd` belongs to
    the task_network context: valid until it exits, closed then (dup it to keep it longer). `notices`: what
    lxrun changed on the host that its user should hear about (print them).
    """

    __slots__ = (
        "address",
        "bridge",
        "gateway",
        "host_interface",
        "interface",
        "mode",
        "netns_fd",
        "notices",
        "prefix_len",
        "publish",
    )
    mode: str
    netns_fd: int | None
    address: str | None
    prefix_len: int | None
    gateway: str | None
    interface: str | None
    host_interface: str | None
    bridge: str | None
    publish: tuple[PortMapping, ...]
    notices: tuple[str, ...]

    def __init__(
        self,
        mode: str,
        netns_fd: int | None = None,
        address: str | None = None,
        prefix_len: int | None = None,
        gateway: str | None = None,
        interface: str | None = None,
        host_interface: str | None = None,
        bridge: str | None = None,
        publish: tuple[PortMapping, ...] = (),
        notices: tuple[str, ...] = (),
    ) -> None:
        super().__init__(
            mode=mode,
            netns_fd=netns_fd,
            address=address,
            prefix_len=prefix_len,
            gateway=gateway,
            interface=interface,
            host_interface=host_interface,
            bridge=bridge,
            publish=publish,
            notices=notices,
        )


@contextlib.contextmanager
def task_network(
    layout: Layout, task_id: str, spec: NetworkSpec, config: NetworkConfig | None = None
) -> Iterator[Attachment]:
    """The task's network for the life of the context. `config` None: NetworkConfig() ($LXRUN_SUBNET)."""
    if spec.mode != BRIDGE:
        yield Attachment(spec.mode)
        return
    # Bridge mode's machinery (pyroute2 alone takes ~100 ms to import) loads only when a task asks for it.
    from lxrun.net import bridge, links, ports, publish
    from lxrun.net.config import NetworkConfig, veth_name
    from lxrun.net.netns import new_netns, run_in_netns

    config = config or NetworkConfig()
    with contextlib.ExitStack() as resources:
        resources.enter_context(ports.reserved(spec.publish))  # first: a port in use fails before any work
        ipr = resources.enter_context(contextlib.closing(links.rtnl()))
        bridge_index, lease, notices = bridge.join(layout, config, ipr, task_id)
        resources.enter_context(lease)
        veth = veth_name(lease.address)
        if lease.stale:  # its last holder died holding it: remove what that task may have left
            links.delete_link(ipr, veth)
            publish.remove(config, [e for e in publish.listed(config) if e.address == lease.address])
        netns_fd = resources.enter_context(new_netns())
        resources.callback(links.delete_link, ipr, veth)  # first: an interrupted create leaves nothing either
        links.add_veth(ipr, veth, bridge_index, netns_fd, lease.address)
        inside = functools.partial(links.configure_task_side, lease.address, config.prefix_len, config.gateway)
        run_in_netns(netns_fd, inside)
        resources.enter_context(publish.published(config, lease.address, spec.publish))
        yield Attachment(
            BRIDGE,
            netns_fd=netns_fd,
            address=lease.address,
            prefix_len=config.prefix_len,
            gateway=config.gateway,
            interface=links.TASK_INTERFACE,
            host_interface=veth,
            bridge=config.bridge,
            publish=spec.publish,
            notices=tuple(notices),
        )
