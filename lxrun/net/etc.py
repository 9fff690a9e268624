"""The files under /etc that name a task on its network, as Docker makes them: hosts, hostname and,
with a network, resolv.conf. Each task gets its own copies (bound over the stack's; the task may
edit them), written by the backend where the task's scratch files live.

/etc/hosts: localhost and the IPv6 names, then the task's hostname at its bridge address, or at
127.0.1.1 (Debian's convention) without one; with --network host, the host's entries come first.
/etc/resolv.conf: with --network host the host's. On the bridge, nameservers on the host's loopback
(127.0.0.0/8, ::1, e.g. systemd-resolved's stub) can't be reached from the task's namespace, so they
are dropped; where none is left, the upstream servers systemd-resolved itself uses take their place,
else Google's public resolvers (Docker's fallback). search and options lines are kept.
Without a network (--network none) the stack's resolv.conf stays: there is nothing to ask.
"""

from __future__ import annotations

from lxrun.net.spec import BRIDGE, HOST, NONE

HOST_HOSTS = "/etc/hosts"
HOST_RESOLV_CONF = "/etc/resolv.conf"
RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf"  # systemd-resolved's list of its upstream servers
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
OWN_ADDRESS = "127.0.1.1"  # the hostname's address without a bridge address

LOCAL_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def etc_files(hostname: str, mode: str, address: str | None = None) -> dict[str, str]:
    """/etc path -> content, for a task named `hostname` on network `mode` (`address` on the bridge)."""
    files = {"/etc/hostname": f"{hostname}\n", "/etc/hosts": hosts(hostname, mode, address)}
    if mode != NONE:
        host_text = _read(HOST_RESOLV_CONF) or ""
        files["/etc/resolv.conf"] = for_bridge(host_text, _read(RESOLVED_UPSTREAM)) if mode == BRIDGE else host_text
    return files


def hosts(hostname: str, mode: str, address: str | None) -> str:
    head = (_read(HOST_HOSTS) or LOCAL_HOSTS) if mode == HOST else LOCAL_HOSTS
    return head.rstrip("\n") + f"\n{address or OWN_ADDRESS}\t{hostname}\n"


def for_bridge(host_text: str, upstream_text: str | None) -> str:
    """`host_text` without loopback nameservers; then `upstream_text`'s, else the fallback ones."""
    kept = [line for line in host_text.splitlines() if not _is_loopback_nameserver(line)]
    if not any(_nameserver(line) for line in kept):
        upstream = [line for line in (upstream_text or "").splitlines() if _nameserver(line)]
        upstream = [line for line in upstream if not _is_loopback_nameserver(line)]
        kept += upstream or [f"nameserver {address}" for address in FALLBACK_NAMESERVERS]
    return "\n".join(kept) + "\n"


def _nameserver(line: str) -> str | None:
    fields = line.split()
    return fields[1] if len(fields) >= 2 and fields[0] == "nameserver" else None


def _is_loopback_nameserver(line: str) -> bool:
    address = _nameserver(line)
    return address is not None and (address.startswith("127.") or address == "::1")


def _read(path: str) -> str | None:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return None
