"""NetworkConfig: defaults, $LXRUN_SUBNET, validation; the subnet-overlap check against a given route list."""

from __future__ import annotations

import pytest

from lxrun.errors import SpecError
from lxrun.net.config import (
    NetworkConfig,
    Route,
    check_subnet,
    overlapping_route,
    suggest_subnet,
    task_mac,
    veth_address,
    veth_name,
)

HOST_ROUTES = [
    Route("0.0.0.0/0", "eth0"),
    Route("192.0.2.0/24", "eth0"),
    Route("172.17.0.0/16", "docker0"),
    Route("127.0.0.0/8", "lo", "local"),
    Route("192.0.2.2/32", "eth0", "local"),
]


def test_defaults_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LXRUN_SUBNET", raising=False)
    config = NetworkConfig()
    assert (config.bridge, config.subnet, config.gateway, config.prefix_len) == (
        "lxrun0",
        "10.88.0.0/16",
        "10.88.0.1",
        16,
    )
    assert config.table == "lxrun0"
    monkeypatch.setenv("LXRUN_SUBNET", "10.99.0.0/24")
    assert NetworkConfig().subnet == "10.99.0.0/24"
    assert NetworkConfig(subnet="10.77.0.0/16").subnet == "10.77.0.0/16"  # the keyword wins
    assert NetworkConfig().replace(bridge="lxr1") == NetworkConfig("lxr1", "10.99.0.0/24")


@pytest.mark.parametrize(
    ("subnet", "message"),
    [
        (
            "10.88.0.1/16",
            "subnet 10.88.0.1/16: is not an IPv4 subnet (10.88.0.1/16 has host bits set) (e.g. 10.88.0.0/16)",
        ),
        ("fd00::/64", "subnet fd00::/64: is not an IPv4 subnet"),
        ("10.88.0.0/30", "subnet 10.88.0.0/30: is too small for tasks (use a /29 or larger)"),
        ("127.0.0.0/8", "subnet 127.0.0.0/8: is not a range for hosts (use a private range, e.g. 10.88.0.0/16)"),
        ("224.0.0.0/8", "subnet 224.0.0.0/8: is not a range for hosts"),
    ],
)
def test_bad_subnets_name_the_fix(subnet: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        NetworkConfig(subnet=subnet)
    assert str(info.value).startswith(message)


def test_a_bad_subnet_from_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXRUN_SUBNET", "10.88.0.0/33")
    with pytest.raises(SpecError, match=r"^LXRUN_SUBNET 10.88.0.0/33: is not an IPv4 subnet"):
        NetworkConfig()


@pytest.mark.parametrize("bridge", ["", "0abc", "a-b", "much-too-long-name", "br/x", "lx0a580002"])
def test_bad_bridge_names(bridge: str) -> None:
    with pytest.raises(SpecError, match="bridge"):
        NetworkConfig(bridge=bridge, subnet="10.88.0.0/16")


def test_overlap_check_finds_the_first_overlapping_route() -> None:
    assert overlapping_route(NetworkConfig(subnet="10.88.0.0/16"), HOST_ROUTES) is None
    assert overlapping_route(NetworkConfig(subnet="192.0.2.128/25"), HOST_ROUTES) == Route("192.0.2.0/24", "eth0")
    assert overlapping_route(NetworkConfig(subnet="172.0.0.0/8"), HOST_ROUTES) == Route("172.17.0.0/16", "docker0")
    # a route inside the subnet overlaps as much as one around it
    assert overlapping_route(NetworkConfig(subnet="10.0.0.0/8"), [Route("10.1.2.3/32", "tun0", "local")]) is not None


def test_the_default_route_and_the_bridge_own_route_do_not_count() -> None:
    config = NetworkConfig("lxrun0", "10.88.0.0/16")
    assert overlapping_route(config, [Route("0.0.0.0/0", "eth0"), Route("10.88.0.0/16", "lxrun0")]) is None
    assert overlapping_route(config, [Route("10.88.0.0/16", "lxrun1")]) == Route("10.88.0.0/16", "lxrun1")


def test_overlap_error_is_one_line_with_route_and_fix() -> None:
    with pytest.raises(SpecError) as info:
        check_subnet(NetworkConfig(subnet="192.0.2.0/24"), HOST_ROUTES)
    assert str(info.value) == (
        "subnet 192.0.2.0/24: overlaps the host route 192.0.2.0/24 dev eth0 "
        "(set LXRUN_SUBNET to a range no host route covers, e.g. 10.0.0.0/24)"
    )
    with pytest.raises(SpecError, match=r"overlaps the host route local 10.0.0.1/32 dev eth1 \(.* e.g. 10.0.1.0/24\)"):
        check_subnet(NetworkConfig(subnet="10.0.0.0/24"), [Route("10.0.0.1/32", "eth1", "local")])


def test_suggestion_skips_taken_ranges() -> None:
    routes = [Route("10.0.0.0/8", "vpn0"), Route("172.16.0.0/16", "eth1")]
    assert suggest_subnet(NetworkConfig(subnet="10.88.0.0/16"), routes) == "172.17.0.0/16"


def test_names_and_macs_follow_the_address() -> None:
    assert veth_name("10.88.0.2") == "lx0a580002"
    assert veth_address("lx0a580002") == "10.88.0.2"
    assert veth_address("lxrun0") is None and veth_address("eth0") is None
    assert task_mac("10.88.0.2") == "02:6c:0a:58:00:02"
