"""Task networking: `--network none|bridge|host` and `--publish`.

Importing this package is cheap (the exec path parses the options with it). The machinery for bridge
mode lives in submodules that the native backend imports only when a task asks for it:

    spec      NetworkSpec, PortMapping, parse_publish: what a task asks for (pure values)
    config    NetworkConfig: the bridge name and subnet; the subnet-overlap check against host routes
    attach    task_network(): one task's attachment, everything it acquired released on exit
    gc        gc_network(): what crashed runners left, and the bridge and rules once idle
    leases    addresses held with flock under <root>/net/leases/
    bridge    the bridge, lxrun's nftables table and ip_forward, made on demand
    links     pyroute2 calls: bridge, veth pair, addresses and routes inside a task's netns
    netns     a new netns as a descriptor; running a function in a thread that entered it
    nft       libnftables, in process; rules the ruleset and map elements as nft text
    ports     host ports held as bound sockets for a task's published ports
"""

from __future__ import annotations

from lxrun.net.spec import BRIDGE, HOST, NO_NETWORK, NONE, NetworkSpec, PortMapping, parse_publish

__all__ = ["BRIDGE", "HOST", "NONE", "NO_NETWORK", "NetworkSpec", "PortMapping", "parse_publish"]
