"""lxrun's nftables table as text, and published ports as map elements (parsed back from nft's JSON)."""

from __future__ import annotations

import json

from lxrun.net import parse_publish
from lxrun.net.config import NetworkConfig
from lxrun.net.rules import (
    Element,
    add_element,
    delete_element,
    enrol,
    guard_ruleset,
    parse_elements,
    publish_elements,
    table_ruleset,
    withdraw,
)

CONFIG = NetworkConfig("lxrun0", "10.88.0.0/16")


def test_the_table_is_named_after_the_bridge_and_covers_its_subnet() -> None:
    text = table_ruleset(CONFIG)
    assert text.startswith("table ip lxrun0 {")
    assert 'ip saddr 10.88.0.0/16 oifname != "lxrun0" masquerade' in text
    assert 'iifname "lxrun0" drop' in text
    assert "hook forward" not in text


def test_the_forwarding_guard_lets_through_only_lxrun_bridges() -> None:
    text = guard_ruleset()
    assert text.startswith("table ip lxrun_forward {")
    assert "iifname != @bridges oifname != @bridges drop" in text
    assert enrol("lxrun0") == 'add element ip lxrun_forward bridges { "lxrun0" }'
    assert withdraw("lxrun0") == (
        'add element ip lxrun_forward bridges { "lxrun0" }\ndelete element ip lxrun_forward bridges { "lxrun0" }'
    )


def test_published_ports_become_elements_of_the_right_map() -> None:
    mappings = [parse_publish("8080:80"), parse_publish("127.0.0.1:5353:53/udp")]
    elements = publish_elements("10.88.0.5", mappings)
    assert elements == [
        Element("ports", "tcp . 8080", "10.88.0.5 . 80", "10.88.0.5"),
        Element("addr_ports", "127.0.0.1 . udp . 5353", "10.88.0.5 . 53", "10.88.0.5"),
    ]
    assert add_element("lxrun0", elements[0]) == "add element ip lxrun0 ports { tcp . 8080 : 10.88.0.5 . 80 }"
    assert delete_element("lxrun0", elements[1]) == "delete element ip lxrun0 addr_ports { 127.0.0.1 . udp . 5353 }"


def test_elements_parse_back_from_nft_json() -> None:
    listing = {
        "nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "ip", "name": "lxrun0"}},
            {
                "map": {
                    "family": "ip",
                    "name": "ports",
                    "table": "lxrun0",
                    "elem": [[{"concat": ["tcp", 8080]}, {"concat": ["10.88.0.5", 80]}]],
                }
            },
            {
                "map": {
                    "family": "ip",
                    "name": "addr_ports",
                    "table": "lxrun0",
                    "elem": [
                        [{"elem": {"val": {"concat": ["127.0.0.1", "udp", 5353]}}}, {"concat": ["10.88.0.6", 53]}]
                    ],
                }
            },
            {"map": {"family": "ip", "name": "ports_of_someone_else", "table": "lxrun0", "elem": [[1, 2]]}},
            {"chain": {"family": "ip", "table": "lxrun0", "name": "publish"}},
        ]
    }
    assert parse_elements(json.dumps(listing)) == [
        Element("ports", "tcp . 8080", "10.88.0.5 . 80", "10.88.0.5"),
        Element("addr_ports", "127.0.0.1 . udp . 5353", "10.88.0.6 . 53", "10.88.0.6"),
    ]
