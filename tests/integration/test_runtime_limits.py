"""Runtimes size themselves from the task's own cgroup at /sys/fs/cgroup, as under docker: the JVM's heap
(and node's) follows `--memory`, not the host's RAM. Builds java17 and node18 on debian-bookworm (the
mirror and a few minutes, as test_debian_stacks.py)."""

from __future__ import annotations

from pathlib import Path

from .conftest import volume_dir
from .test_debian_stacks import cli_ok, debian_ready, shipped_specs, state_root

__all__ = ["debian_ready", "shipped_specs", "state_root", "volume_dir"]

# Not in the v2 guest (no network to build the stacks): test_cgroup_view.py checks the v2 view there.
LIMIT = 256 << 20
# Far more than the limit in short-lived 1 MB arrays: fine with a heap sized from the limit, an OOM kill
# (exit 137) with one sized from the host's RAM.
CHURN = """
public class Churn {
    public static void main(String[] args) {
        long total = 0;
        byte[] last = null;
        for (int i = 0; i < 3072; i++) {
            last = new byte[1 << 20];
            last[i % last.length] = 1;
            total += last.length;
        }
        System.out.println("churned " + (total >> 20) + " MB");
    }
}
"""


def test_the_jvm_sizes_its_heap_from_the_task_memory_limit(state_root: Path, volume_dir: Path) -> None:
    cli_ok(state_root, "stack", "build", "java17")
    flags = cli_ok(
        state_root, "exec", "--memory", "256m", "--stack", "java17", "--", "java", "-XX:+PrintFlagsFinal", "-version"
    )
    heap = next(int(line.split()[3]) for line in flags.splitlines() if " MaxHeapSize " in line)
    assert LIMIT // 8 <= heap <= LIMIT // 2, heap  # a quarter of the limit (the JVM rounds), not of the host
    (volume_dir / "Churn.java").write_text(CHURN)
    (volume_dir / "Churn.java").chmod(0o644)
    out = cli_ok(
        state_root,
        "exec",
        "--memory",
        "256m",
        "-v",
        f"{volume_dir}:/src:ro",
        "--stack",
        "java17",
        "--",
        "java",
        "/src/Churn.java",
    )
    assert out.strip() == "churned 3072 MB"


def test_node_sizes_its_heap_from_the_task_memory_limit(state_root: Path) -> None:
    cli_ok(state_root, "stack", "build", "node18")
    script = "console.log(require('v8').getHeapStatistics().heap_size_limit)"
    limit = int(cli_ok(state_root, "exec", "--memory", "256m", "--stack", "node18", "--", "node", "-e", script))
    # V8 takes a quarter of the memory it is given for its old generation, raised to its 256 MB floor:
    # ~259 MB in all from the cgroup's 256m; from the host's RAM (24 GB here) it is 2 GB or more.
    assert limit < 2 * LIMIT, limit
