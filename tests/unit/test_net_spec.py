"""--network and --publish values: docker's forms, and one-line errors that name the option and the fix."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lxrun.errors import SpecError
from lxrun.net import NetworkSpec, PortMapping, parse_publish

FORMS = "[IP:]HOSTPORT:PORT[/tcp|/udp]"
EXAMPLE = "(e.g. -p 8080:80 or -p 127.0.0.1:5353:53/udp)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8080:80", PortMapping(8080, 80)),
        ("8080:80/tcp", PortMapping(8080, 80, "tcp")),
        ("5353:53/udp", PortMapping(5353, 53, "udp")),
        ("127.0.0.1:8080:80", PortMapping(8080, 80, host_ip="127.0.0.1")),
        ("192.0.2.7:5353:53/udp", PortMapping(5353, 53, "udp", "192.0.2.7")),
        ("65535:1", PortMapping(65535, 1)),
    ],
)
def test_publish_forms(text: str, expected: PortMapping) -> None:
    assert parse_publish(text) == expected
    assert parse_publish(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("80", f"publish 80: expected {FORMS} {EXAMPLE}"),
        ("", f"publish '': expected {FORMS} {EXAMPLE}"),
        ("8080:80/sctp", "publish 8080:80/sctp: unknown protocol 'sctp' (use /tcp or /udp)"),
        ("8080:80/", "publish 8080:80/: unknown protocol '' (use /tcp or /udp)"),
        ("http:80", "publish http:80: 'http' is not a port number (use 1..65535)"),
        ("8080:", "publish 8080:: a port is missing (use 1..65535)"),
        ("0:80", "publish 0:80: '0' is not a port number (use 1..65535)"),
        ("08080:80", "publish 08080:80: '08080' is not a port number (use 1..65535)"),
        ("70000:80", "publish 70000:80/tcp: port 70000 is out of range (use 1..65535)"),
        (
            "1.2.3:8080:80",
            f"publish 1.2.3:8080:80: '1.2.3' is not an IPv4 address {EXAMPLE}",
        ),
        (
            "256.0.0.1:8080:80",
            f"publish 256.0.0.1:8080:80: '256.0.0.1' is not an IPv4 address {EXAMPLE}",
        ),
        (":8080:80", f"publish :8080:80: the IP is empty {EXAMPLE}"),
        (
            "[::1]:8080:80",
            f"publish [::1]:8080:80: expected {FORMS} (IPv6 is not supported, give an IPv4 address)",
        ),
    ],
)
def test_publish_errors_are_one_line_naming_the_fix(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_publish(text)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_network_modes() -> None:
    assert NetworkSpec() == NetworkSpec("none")
    assert NetworkSpec("host").publish == ()
    mapping = parse_publish("8080:80")
    assert NetworkSpec("bridge", [mapping]).publish == (mapping,)
    with pytest.raises(SpecError, match=r"^network: unknown mode 'nat' \(use none, bridge or host\)$"):
        NetworkSpec("nat")


@pytest.mark.parametrize("mode", ["none", "host"])
def test_publish_needs_bridge_mode(mode: str) -> None:
    with pytest.raises(SpecError) as info:
        NetworkSpec(mode, [parse_publish("8080:80")])
    expected = f"publish: needs the bridge network, not {mode} (use the bridge network, or publish nothing)"
    assert str(info.value) == expected


@pytest.mark.parametrize(
    ("first", "second"),
    [("8080:80", "8080:81"), ("8080:80", "127.0.0.1:8080:81"), ("127.0.0.1:53:53/udp", "127.0.0.1:53:54/udp")],
)
def test_a_host_port_taken_twice_is_refused(first: str, second: str) -> None:
    with pytest.raises(SpecError, match="is published twice"):
        NetworkSpec("bridge", [parse_publish(first), parse_publish(second)])


def test_different_protocols_or_addresses_may_share_a_port() -> None:
    mappings = ["8080:80", "8080:80/udp", "127.0.0.1:9090:80", "127.0.0.2:9090:80"]
    assert len(NetworkSpec("bridge", [parse_publish(text) for text in mappings]).publish) == 4


def test_importing_lxrun_net_stays_light() -> None:
    """`lxrun exec` imports lxrun.net to parse its options: no pyroute2, sockets or ctypes on that path."""
    heavy = ("pyroute2", "socket", "ipaddress", "ctypes", "threading", "asyncio", "typing")
    probe = f"import sys, lxrun.net; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
