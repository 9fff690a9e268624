"""What a task asks of the network: `--network none|bridge|host` and docker's `-p/--publish` forms.

Pure values, checked on construction; nothing here touches the host. Imported on every `lxrun exec`, so
it imports `re` only where a -p is checked: no socket, no ipaddress.
"""

from __future__ import annotations

from lxrun.errors import SpecError
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

NONE = "none"
BRIDGE = "bridge"
HOST = "host"
MODES = (NONE, BRIDGE, HOST)
PROTOCOLS = ("tcp", "udp")

PUBLISH_FORMS = "[IP:]HOSTPORT:PORT[/tcp|/udp]"
PUBLISH_EXAMPLE = "e.g. -p 8080:80 or -p 127.0.0.1:5353:53/udp"
# Patterns, not compiled ones: re compiles them on first use, so a task without -p never pays for it.
IPV4_PATTERN = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
PORT_PATTERN = r"[1-9]\d{0,4}"


def ipv4(text: str) -> bool:
    import re  # ~3 ms with enum: only where a -p names an address

    return re.fullmatch(IPV4_PATTERN, text) is not None


class PortMapping(Record):
    """Traffic to `host_port` on the host (on `host_ip` only, if given) goes to the task's `port`."""

    __slots__ = ("host_ip", "host_port", "port", "protocol")
    host_ip: str | None
    host_port: int
    port: int
    protocol: str

    def __init__(self, host_port: int, port: int, protocol: str = "tcp", host_ip: str | None = None) -> None:
        text = f"{host_ip + ':' if host_ip else ''}{host_port}:{port}/{protocol}"
        for value in (host_port, port):
            if not 1 <= value <= 65535:
                raise SpecError("publish", f"port {value} is out of range", path=text, hint="use 1..65535")
        if protocol not in PROTOCOLS:
            raise SpecError("publish", f"unknown protocol {protocol!r}", path=text, hint="use /tcp or /udp")
        if host_ip is not None and not ipv4(host_ip):
            raise SpecError("publish", "the host IP is not an IPv4 address", path=text, hint=PUBLISH_EXAMPLE)
        super().__init__(host_ip=host_ip, host_port=host_port, port=port, protocol=protocol)

    def __str__(self) -> str:
        return f"{self.host_ip + ':' if self.host_ip else ''}{self.host_port}:{self.port}/{self.protocol}"

    def clashes_with(self, other: PortMapping) -> bool:
        """Both would take the same host port: same protocol, and one address covers the other."""
        same_address = self.host_ip is None or other.host_ip is None or self.host_ip == other.host_ip
        return self.protocol == other.protocol and self.host_port == other.host_port and same_address


def parse_publish(text: str) -> PortMapping:
    """docker's `-p` forms: `HOSTPORT:PORT`, `IP:HOSTPORT:PORT`, each with an optional `/tcp` or `/udp`."""
    ports, slash, protocol = text.partition("/")
    if slash and protocol not in PROTOCOLS:
        raise SpecError("publish", f"unknown protocol {protocol!r}", path=text, hint="use /tcp or /udp")
    parts = ports.split(":")
    if len(parts) == 3:
        host_ip: str | None = parts[0]
        host_port, port = parts[1], parts[2]
    elif len(parts) == 2:
        host_ip, (host_port, port) = None, parts
    else:
        hint = "IPv6 is not supported, give an IPv4 address" if len(parts) > 3 else PUBLISH_EXAMPLE
        raise SpecError("publish", f"expected {PUBLISH_FORMS}", path=text or "''", hint=hint)
    import re

    for value in (host_port, port):
        if not re.fullmatch(PORT_PATTERN, value):
            reason = f"{value!r} is not a port number" if value else "a port is missing"
            raise SpecError("publish", reason, path=text, hint="use 1..65535")
    if host_ip is not None and not ipv4(host_ip):
        reason = f"{host_ip!r} is not an IPv4 address" if host_ip else "the IP is empty"
        raise SpecError("publish", reason, path=text, hint=PUBLISH_EXAMPLE)
    return PortMapping(int(host_port), int(port), protocol or "tcp", host_ip)


class NetworkSpec(Record):
    """`none`: loopback only, the sandbox's own netns (the default). `bridge`: a veth into lxrun's bridge with an
    address of its own, NAT out, and `publish` mappings. `host`: the host's network namespace itself."""

    __slots__ = ("mode", "publish")
    mode: str
    publish: tuple[PortMapping, ...]

    def __init__(self, mode: str = NONE, publish: Iterable[PortMapping] = ()) -> None:
        if mode not in MODES:
            raise SpecError("network", f"unknown mode {mode!r}", hint="use none, bridge or host")
        publish = tuple(publish)
        if publish and mode != BRIDGE:
            raise SpecError(
                "publish", f"needs the bridge network, not {mode}", hint="use the bridge network, or publish nothing"
            )
        for index, mapping in enumerate(publish):
            for earlier in publish[:index]:
                if mapping.clashes_with(earlier):
                    raise SpecError(
                        "publish",
                        f"host port {mapping.host_port}/{mapping.protocol} is published twice",
                        path=str(mapping),
                        hint="give each host port once",
                    )
        super().__init__(mode=mode, publish=publish)


NO_NETWORK = NetworkSpec()
