"""The chart and the docs' tables, from what startup.py, steps.py, scale.py and floor.py wrote in
benchmarks/results/.

    python benchmarks/report.py [--update-docs]

Writes benchmarks/results/bench.png: p50 and p99 start-to-exit bars per runtime (startup.json) and
tasks/s by concurrency (scale.json). With --update-docs, the README's start-up table (the one
current table there, with the chart) and docs/performance.md's tables (steps, concurrency, tasks in
flight, the kernel's floor) are rewritten between their markers from the same run's files, and the chart is copied to
docs/bench.png. A results file that is missing leaves its part out.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import floor
import scale
import startup
import steps
from common import RESULTS

REPO = Path(__file__).resolve().parents[1]
README, PERFORMANCE, IMAGE = REPO / "README.md", REPO / "docs" / "performance.md", REPO / "docs" / "bench.png"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def chart(latency: dict[str, Any] | None, rates: dict[str, Any] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    if latency is not None:
        names = list(latency["cases"])
        positions = list(range(len(names)))
        for offset, key, colour in ((-0.2, "p50_ms", "tab:blue"), (0.2, "p99_ms", "tab:orange")):
            values = [float(latency["cases"][name][key]) for name in names]
            left.barh([p + offset for p in positions], values, height=0.4, color=colour, label=key[:3])
        left.set(xscale="log", xlabel="start-to-exit of `true`, ms (log)", yticks=positions)
        left.set_yticklabels(names)
        left.invert_yaxis()
        left.legend()
        left.set_title(f"start-up, {latency['machine']['date']}")
    if rates is not None:
        levels = [int(level) for level in next(iter(rates["tasks_per_s"].values()))]
        for name, by_level in rates["tasks_per_s"].items():
            right.plot(levels, [by_level[str(level)] for level in levels], marker="o", label=name)
        right.set(xlabel="tasks at once", ylabel="tasks/s of `true`", xscale="log", xticks=levels)
        right.set_xticklabels([str(level) for level in levels])
        right.minorticks_off()
        right.legend()
        right.set_title(f"throughput, {rates['machine']['date']}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def stamp(data: dict[str, Any], command: str) -> str:
    about = data["machine"]
    return (
        f"Measured {about['date']} on {about['host']}: {about['cpus']} CPUs, Linux {about['kernel']}, "
        f"Python {about['python']}, load average {about.get('load_average', '?')} (`{command}`)."
    )


def replace_between(page: Path, name: str, text: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    before, found, rest = page.read_text().partition(start)
    if not found:
        raise SystemExit(f"{page}: no {start} marker")
    _, _, after = rest.partition(end)
    page.write_text(f"{before}{start}\n{text}\n{end}{after}")


def update_docs(results: dict[str, dict[str, Any] | None]) -> None:
    latency, breakdown, rates, limits = results["startup"], results["steps"], results["scale"], results["floor"]
    shutil.copy(RESULTS / "bench.png", IMAGE)
    if latency is not None:
        text = startup.render(latency["cases"])
        image = f"![start-up and throughput]({IMAGE.relative_to(REPO)})"
        replace_between(README, "startup", f"{stamp(latency, 'benchmarks/startup.py')}\n\n{text}\n\n{image}")
    if breakdown is not None:
        text = steps.render(breakdown["cases"])
        replace_between(PERFORMANCE, "steps", f"{stamp(breakdown, 'benchmarks/steps.py')}\n\n{text}")
    if rates is not None:
        levels = [int(level) for level in next(iter(rates["tasks_per_s"].values()))]
        text = f"{scale.render_rates(rates['tasks_per_s'], levels)}\n\n{scale.render_latency(rates['in_flight'])}"
        limit = rates.get("limit") or {}
        if limit.get("error"):
            text += f"\n\nWith {limit['in_flight']} in flight, the next start failed: `{limit['error']}`"
        replace_between(PERFORMANCE, "scale", f"{stamp(rates, 'benchmarks/scale.py')}\n\n{text}")
    if limits is not None:
        text = floor.render(limits["cases"], floor.C_MODES["spawn"])
        replace_between(PERFORMANCE, "floor", f"{stamp(limits, 'benchmarks/floor.py')}\n\n{text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--update-docs", action="store_true", help="rewrite the README's and performance.md's tables")
    args = parser.parse_args()
    results = {name: load(name) for name in ("startup", "steps", "scale", "floor")}
    chart(results["startup"], results["scale"], RESULTS / "bench.png")
    print(f"written {RESULTS / 'bench.png'}")
    if args.update_docs:
        update_docs(results)
        print(f"updated {README}, {PERFORMANCE} and {IMAGE}")


if __name__ == "__main__":
    main()
