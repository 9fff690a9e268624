"""net.ipv4.ip_forward for bridge mode: tasks reach out through the host only if the host forwards.

Turned on only when it is off, and then guarded: lxrun's table `ip lxrun_forward` drops every forwarded
packet that neither comes from nor goes to a bridge in its set, so the host routes nothing else than
before. Each bridge joins the set when its table is made and leaves it when gc removes it; the last to
leave removes the guard and turns ip_forward off again. The guard table is the record that lxrun turned
forwarding on, so it is right whatever state root gc runs with. Call these holding the net lock
exclusively.
"""

from __future__ import annotations

from lxrun.net.nft import nft
from lxrun.net.rules import GUARD_SET, GUARD_TABLE, enrol, guard_ruleset, withdraw

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def ensure(bridge: str) -> list[str]:
    """ip_forward on for `bridge`; returns what its user should hear (that lxrun turned it on)."""
    turn_on = _read() == "0"
    guarded = guard_exists()
    commands = [guard_ruleset()] if turn_on and not guarded else []
    if turn_on or guarded:
        commands.append(enrol(bridge))
        nft().run("\n".join(commands), step="guard forwarding", path=f"ip {GUARD_TABLE}")
    if not turn_on:
        return []
    _write("1")
    return [
        f"turned net.ipv4.ip_forward on (it was off) so tasks on {bridge} can reach out; the host forwards "
        f"only for lxrun's bridges, and lxrun gc turns it off again once none is left"
    ]


def release(bridge: str, dry_run: bool = False) -> list[str]:
    """`bridge` is gone: leave the guard; the last one out turns ip_forward off. Returns what it removed
    (or, `dry_run`, what it would remove, changing nothing)."""
    if not guard_exists():
        return []
    path = f"ip {GUARD_TABLE}"
    if not dry_run:
        nft().run(withdraw(bridge), step="guard forwarding", path=path)
    members = nft().run(f"list set ip {GUARD_TABLE} {GUARD_SET}", step="guard forwarding", path=path)
    if "elements" in members and (not dry_run or _others_than(bridge, members)):
        return []
    if not dry_run:
        nft().run(f"delete table ip {GUARD_TABLE}", step="guard forwarding", path=path)
        _write("0")
    return [f"table ip {GUARD_TABLE}", "ip_forward (back off)"]


def _others_than(bridge: str, members: str) -> bool:
    """Whether the guard set's listing names a bridge other than `bridge`."""
    _, _, elements = members.partition("elements = {")
    names = [name.strip().strip('"') for name in elements.partition("}")[0].split(",")]
    return any(name and name != bridge for name in names)


def guard_exists() -> bool:
    return f"table ip {GUARD_TABLE}\n" in nft().run("list tables ip")


def _read() -> str:
    with open(IP_FORWARD) as file:
        return file.read().strip()


def _write(value: str) -> None:
    with open(IP_FORWARD, "w") as file:
        file.write(value)
