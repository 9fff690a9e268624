"""Task networking: `--network none|bridge|host` and `--publish`.

Importing this package is cheap (the exec path parses the options with it). The machinery for bridge
mode lives in submodules that the native backend imports only when a task asks for it:

    spec        NetworkSpec, PortMapping, parse_publish: what a task asks for (pure values)
    config      NetworkConfig: the bridge name and subnet; the subnet-overlap check against host routes
    attach      task_network(), Attachment: one task's network, everything it acquired released on exit
    gc          gc_network(): what dead tasks left, and the bridge and tables once idle
    bridge      the bridge and its nftables table, made on demand under <root>/net/lock
    forwarding  ip_forward, turned on only if off, with a guard so the host forwards nothing else
    leases      addresses held with flock under <root>/net/leases/
    ports       host ports of published mappings, held as bound sockets
    publish     published ports as elements of the table's DNAT maps
    rules       the tables and map elements as nft text
    nft         libnftables, in process
    links       pyroute2 calls: the bridge, veth pairs, addresses and routes inside a task's netns
    netns       a new netns as a descriptor; a function run in a thread that entered one
    etc         the task's own /etc/hosts, /etc/hostname and, with a network, /etc/resolv.conf (Docker's rules)
"""

from __future__ import annotations

from lxrun.net.spec import BRIDGE, HOST, NO_NETWORK, NONE, NetworkSpec, PortMapping, parse_publish

__all__ = ["BRIDGE", "HOST", "NONE", "NO_NETWORK", "NetworkSpec", "PortMapping", "parse_publish"]
