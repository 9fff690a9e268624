"""The /etc files that name a task on its network: Docker's rules, per network mode."""

from __future__ import annotations

from lxrun.net.etc import FALLBACK_NAMESERVERS, LOCAL_HOSTS, etc_files, for_bridge, hosts

STUB = "# systemd-resolved\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.internal\n"


def test_the_bridge_drops_loopback_resolvers_and_keeps_the_rest() -> None:
    text = "nameserver 127.0.0.1\nnameserver 10.0.0.2\nnameserver ::1\nsearch a.b\n"
    assert for_bridge(text, None) == "nameserver 10.0.0.2\nsearch a.b\n"


def test_without_a_reachable_resolver_the_bridge_takes_resolveds_upstream_ones() -> None:
    upstream = "nameserver 192.0.2.1\nnameserver 127.0.0.1\nsearch elsewhere\n"
    assert for_bridge(STUB, upstream) == (
        "# systemd-resolved\noptions edns0 trust-ad\nsearch example.internal\nnameserver 192.0.2.1\n"
    )


def test_else_dockers_fallback() -> None:
    nameservers = [line.split()[1] for line in for_bridge(STUB, None).splitlines() if line.startswith("nameserver")]
    assert nameservers == list(FALLBACK_NAMESERVERS)


def test_hosts_name_the_task_at_its_address_or_at_debians_own() -> None:
    assert hosts("web", "bridge", "10.88.0.7") == f"{LOCAL_HOSTS}10.88.0.7\tweb\n"
    assert hosts("web", "none", None) == f"{LOCAL_HOSTS}127.0.1.1\tweb\n"
    assert hosts("web", "host", None).endswith("\n127.0.1.1\tweb\n")


def test_resolv_conf_only_with_a_network() -> None:
    assert set(etc_files("t", "none")) == {"/etc/hosts", "/etc/hostname"}
    assert set(etc_files("t", "host")) == {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}
    assert etc_files("t", "none")["/etc/hostname"] == "t\n"
