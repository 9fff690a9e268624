"""lxrun's nftables tables as nft text: one per bridge, with published ports as elements of its maps; and
the forwarding guard shared by all bridges.

The table (family ip, named after the bridge) is made once, whole, in one transaction, and never edited
rule by rule: a task's published ports are elements of two maps, added and deleted by key, so a task
changes nothing but its own elements and nothing else on the host is touched.

    ports       proto . host port            -> task address . port   (every host address)
    addr_ports  host ip . proto . host port  -> task address . port   (IP:HOSTPORT:PORT)
"""

from __future__ import annotations

import json

from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from lxrun.net.config import NetworkConfig
    from lxrun.net.spec import PortMapping

GUARD_TABLE = "lxrun_forward"
GUARD_SET = "bridges"
PORTS = "ports"
ADDR_PORTS = "addr_ports"


def table_ruleset(config: NetworkConfig) -> str:
    """The whole table for one bridge."""
    bridge, subnet = config.bridge, config.subnet
    return f"""table ip {config.table} {{
    comment "lxrun: bridge {bridge}, subnet {subnet}; removed by lxrun gc when no task uses it"
    map {PORTS} {{
        type inet_proto . inet_service : ipv4_addr . inet_service
    }}
    map {ADDR_PORTS} {{
        type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
    }}
    chain publish {{
        dnat ip to ip daddr . meta l4proto . th dport map @{ADDR_PORTS}
        dnat ip to meta l4proto . th dport map @{PORTS}
    }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        fib daddr type local jump publish
    }}
    chain output {{
        type nat hook output priority -100; policy accept;
        fib daddr type local jump publish comment "published ports from the host itself, 127.0.0.1 too"
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {subnet} oifname != "{bridge}" masquerade comment "tasks out through the host"
        oifname "{bridge}" ct status dnat ip saddr {{ 127.0.0.0/8, {subnet} }} masquerade comment "replies come back"
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "{bridge}" ct state established,related accept
        iifname "{bridge}" drop comment "tasks don't reach the host's own services"
    }}
}}
"""


def guard_ruleset() -> str:
    """The table that exists while lxrun has ip_forward on, having found it off: the host then forwards only
    to and from the bridges in its set, as before for everything else."""
    return f"""table ip {GUARD_TABLE} {{
    comment "lxrun turned ip_forward on: forwarding only for lxrun's bridges; removed with the last of them"
    set {GUARD_SET} {{
        type ifname
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname != @{GUARD_SET} oifname != @{GUARD_SET} drop
    }}
}}
"""


def enrol(bridge: str) -> str:
    return f'add element ip {GUARD_TABLE} {GUARD_SET} {{ "{bridge}" }}'


def withdraw(bridge: str) -> str:
    """Take the bridge out of the guard's set, whether or not it is in (add first: one transaction)."""
    return f'{enrol(bridge)}\ndelete element ip {GUARD_TABLE} {GUARD_SET} {{ "{bridge}" }}'


class Element(Record):
    """One published port in a map: `key` as nft text, `address` the task it leads to."""

    __slots__ = ("address", "key", "map", "value")
    map: str
    key: str
    value: str
    address: str

    def __init__(self, map: str, key: str, value: str, address: str) -> None:
        super().__init__(map=map, key=key, value=value, address=address)


def publish_elements(address: str, mappings: Iterable[PortMapping]) -> list[Element]:
    elements = []
    for mapping in mappings:
        key = f"{mapping.protocol} . {mapping.host_port}"
        value = f"{address} . {mapping.port}"
        if mapping.host_ip is None:
            elements.append(Element(PORTS, key, value, address))
        else:
            elements.append(Element(ADDR_PORTS, f"{mapping.host_ip} . {key}", value, address))
    return elements


def add_element(table: str, element: Element) -> str:
    return f"add element ip {table} {element.map} {{ {element.key} : {element.value} }}"


def delete_element(table: str, element: Element) -> str:
    return f"delete element ip {table} {element.map} {{ {element.key} }}"


def parse_elements(listing: str) -> list[Element]:
    """The elements of both maps from `list table` in JSON."""
    elements = []
    for entry in json.loads(listing).get("nftables", ()):
        found = entry.get("map")
        if not found or found.get("name") not in (PORTS, ADDR_PORTS):
            continue
        for key, value in found.get("elem", ()):
            key_parts, value_parts = _concat(key), _concat(value)
            elements.append(Element(found["name"], " . ".join(key_parts), " . ".join(value_parts), value_parts[0]))
    return elements


def _concat(item: object) -> list[str]:
    """A JSON element key or value: {"concat": [...]}, or {"elem": {"val": ...}} when it has extra attributes."""
    if isinstance(item, dict) and "elem" in item:
        item = item["elem"]["val"]
    if isinstance(item, dict) and "concat" in item:
        return [str(part) for part in item["concat"]]
    return [str(item)]
