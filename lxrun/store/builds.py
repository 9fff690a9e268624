"""`lxrun stack build NAME`: a stack spec becomes a diff layer on its parent's chain, and a version of it.

plan: load the spec and every ancestor not built yet (missing parents and cycles are refused before
anything is written) -> per stack: its digest (canonical spec + the parent's top layer); a version
already recorded with that chain makes the build a no-op -> run apt and the run steps in the build
sandbox, one command per step, on the parent's layers with a fresh upper dir -> freeze the upper dir
(whiteouts and opaque dirs included) as the layer with one rename -> record the version (with the
parent's image config, for a stack on an imported image, and the spec's changes to it), promote it.
A build that fails or is interrupted leaves no layer, no version and nothing mounted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable

from lxrun.errors import LxrunError, SpecError, StoreError
from lxrun.layout import Layout
from lxrun.plan import DEFAULT_PATH
from lxrun.record import Record
from lxrun.store.bases import build_base
from lxrun.store.imageconfig import ImageConfig
from lxrun.store.inflight import build_record
from lxrun.store.layers import LayerStore
from lxrun.store.sandbox import BuildSandbox, chain_has
from lxrun.store.specs import BaseSpec, StackSpec, find_spec, load_base_spec, load_stack_spec, lookup_spec, spec_dirs
from lxrun.store.stacks import ResolvedStack, StackStore, StackVersion, version_conflict

Report = Callable[[str], None]

APT_GET = "usr/bin/apt-get"
# What apt says of a name it cannot install (LANG is C or C.UTF-8 in the sandbox: no translations).
UNKNOWN_PACKAGE = re.compile(
    r"^E: (?:Unable to locate package (\S+)|Package '(\S+)' has no installation candidate"
    r"|Couldn't find any package by (?:glob|regex) '(\S+)'|Version '\S+' for '(\S+)' was not found)",
    re.MULTILINE,
)
# Kept out of every layer: apt's lists and caches, install logs, files that only record build time.
CLEAN = (
    "command -v apt-get >/dev/null && apt-get clean; "
    "rm -rf /var/lib/apt/lists/*_* /var/lib/apt/lists/partial/* /var/cache/apt/*.bin /var/log/apt/* "
    "/var/log/dpkg.log /var/log/alternatives.log /var/cache/ldconfig/aux-cache /var/cache/debconf/*-old "
    "/var/lib/dpkg/*-old /root/.cache"
)


class BuildStep(Record):
    """One command in the build sandbox. `checks_packages`: its failure means the spec named a package
    apt does not know, so its output is captured and read rather than streamed."""

    __slots__ = ("argv", "checks_packages", "title")
    title: str
    argv: tuple[str, ...]
    checks_packages: bool

    def __init__(self, title: str, argv: tuple[str, ...], checks_packages: bool = False) -> None:
        super().__init__(title=title, argv=argv, checks_packages=checks_packages)


class Built(Record):
    """What `build_stack` did: the stack's version, and whether it was built now (False: unchanged)."""

    __slots__ = ("built", "version")
    version: StackVersion
    built: bool

    def __init__(self, version: StackVersion, built: bool) -> None:
        super().__init__(version=version, built=built)


def stack_digest(spec: StackSpec, parent_digest: str) -> str:
    key = json.dumps(spec.canonical(parent_digest), sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()


def build_steps(spec: StackSpec) -> list[BuildStep]:
    steps = []
    if spec.packages:
        packages = spec.packages
        steps += [
            BuildStep("apt-get update", ("apt-get", "update", "-q", "--error-on=any")),
            BuildStep(
                "check packages",
                ("apt-get", "install", "--simulate", "--no-install-recommends", *packages),
                checks_packages=True,
            ),
            BuildStep(
                f"apt-get install {' '.join(packages)}",
                ("apt-get", "install", "-y", "-q", "--no-install-recommends", *packages),
            ),
        ]
    steps += [BuildStep(f"run: {command}", ("/bin/sh", "-ec", command)) for command in spec.run]
    steps.append(BuildStep("remove apt lists, caches and logs", ("/bin/sh", "-c", CLEAN)))
    return steps


def plan_build(name: str, stacks: StackStore) -> tuple[list[BaseSpec | StackSpec], StackSpec]:
    """The spec of stack `name` (a name or a .toml path), and those of its ancestors that are not built
    yet, lowest first. Every spec is loaded and checked here, before anything is built."""
    target = spec = load_stack_spec(find_spec("stacks", name))
    ancestors: list[BaseSpec | StackSpec] = []
    seen = [spec.name]
    while stacks.current_or_none(spec.parent) is None:
        if spec.parent in seen:
            cycle = " -> ".join([*seen, spec.parent])
            raise SpecError("spec", f"`parent` makes a cycle: {cycle}", path=str(spec.path))
        stack_path = lookup_spec("stacks", spec.parent)
        if stack_path is None:
            base_path = lookup_spec("rootfs", spec.parent)
            if base_path is None:
                searched = ", ".join(str(directory) for directory in spec_dirs())
                raise SpecError(
                    "spec",
                    f"`parent` {spec.parent!r} is neither a built stack nor a spec in stacks/ or rootfs/",
                    path=str(spec.path),
                    hint=f"searched {searched}",
                )
            ancestors.append(load_base_spec(base_path))
            break
        seen.append(spec.parent)
        spec = load_stack_spec(stack_path)
        ancestors.append(spec)
    return ancestors[::-1], target


def quiet(_line: str) -> None:
    """A report that shows nothing."""


def build_stack(name: str, layout: Layout, log_fd: int = 2, report: Report = quiet, promote: bool = True) -> Built:
    """Build stack `name` (and any ancestor not built yet). The builds' output goes to `log_fd`, step
    lines to `report`. The new version is made current unless `promote` is False (a first version
    always is); an unchanged spec changes nothing."""
    ancestors, target = plan_build(name, StackStore(layout))
    for spec in ancestors:
        if isinstance(spec, StackSpec):
            _build_one(spec, layout, log_fd, report, promote)
        else:
            report(f"building base {spec.name}@{spec.version} from {spec.path}")
            build_base(spec, layout, log_fd)
    return _build_one(target, layout, log_fd, report, promote)


def _build_one(spec: StackSpec, layout: Layout, log_fd: int, report: Report, promote: bool) -> Built:
    stacks, layers = StackStore(layout), LayerStore(layout)
    parent = stacks.resolve(spec.parent)
    digest = stack_digest(spec, parent.layers[-1])
    chain = (*parent.layers, digest)
    ref = f"{spec.name}@{spec.version}"
    if stacks.has_version(spec.name, spec.version):
        existing = stacks.version(spec.name, spec.version)
        if existing.layers != chain:
            raise version_conflict(spec.name, spec.version)
        report(f"{ref}: up to date (layer {digest[:12]})")
        return Built(existing, False)
    if spec.packages and not chain_has(parent.layer_paths, APT_GET):
        raise SpecError(
            "spec",
            f"`packages` needs apt-get, which parent {parent.ref} lacks",
            path=str(spec.path),
            hint="install with `run` steps, or build on a Debian base",
        )
    with build_record(layout, ref, parent.ref, chain):
        if not layers.exists(digest):
            _build_layer(spec, parent, digest, layout, log_fd, report)
        version = stacks.add_version(
            StackVersion(
                spec.name,
                spec.version,
                chain,
                {**parent.env, **spec.env},
                spec.labels,
                parent=parent.ref,
                image=carried_image(parent.image, spec),
            )
        )
        if promote or stacks.current_or_none(spec.name) is None:
            stacks.promote(spec.name, spec.version)
    return Built(version, True)


def carried_image(parent: ImageConfig | None, spec: StackSpec) -> ImageConfig | None:
    """The image config a stack built on `parent` runs with: the parent's (an imported image's, kept
    with its digest and source), with what the spec gives instead; as in a Dockerfile, an entrypoint
    of its own drops the parent's cmd."""
    if parent is None and not spec.image:
        return None
    changes = dict(spec.image)
    if "entrypoint" in changes and "cmd" not in changes:
        changes["cmd"] = None
    return (parent or ImageConfig("", str(spec.path))).replace(**changes)


def _build_layer(
    spec: StackSpec, parent: ResolvedStack, digest: str, layout: Layout, log_fd: int, report: Report
) -> None:
    layers = LayerStore(layout)
    with layers.building() as work:
        os.mkdir(f"{work}/upper", 0o755)
        os.mkdir(f"{work}/work", 0o700)
        env = {"PATH": DEFAULT_PATH, "HOME": "/root", **parent.env, **spec.env, "DEBIAN_FRONTEND": "noninteractive"}
        sandbox = BuildSandbox(layout, parent.layer_paths, work, env, log_fd)
        steps = build_steps(spec)
        for number, step in enumerate(steps, start=1):
            report(f"[{number}/{len(steps)}] {spec.name}@{spec.version}: {step.title}")
            code, output = sandbox.run(step.argv, capture=step.checks_packages)
            if code != 0 and step.checks_packages:
                raise _package_error(spec, output.decode(errors="replace"))
            if code != 0:
                raise StoreError(
                    "stack build",
                    f"step {number}/{len(steps)} ({step.title}) failed with exit status {code}",
                    path=str(spec.path),
                    hint="see its log above",
                )
        # The upper dir becomes the layer: renamed on the same filesystem, so whiteouts (0/0 character
        # devices) and opaque-dir xattrs stay exactly as overlayfs left them.
        os.rmdir(f"{work}/rootfs")
        os.rename(f"{work}/upper", f"{work}/rootfs")
        shutil.rmtree(f"{work}/work")
        layers.commit(work, digest, parent=parent.layers[-1], kind="diff", source=str(spec.path))


def _package_error(spec: StackSpec, apt_output: str) -> LxrunError:
    unknown = sorted({name for match in UNKNOWN_PACKAGE.finditer(apt_output) for name in match.groups() if name})
    if unknown:
        return SpecError(
            "spec",
            f"`packages` names what apt cannot find: {', '.join(unknown)}",
            path=str(spec.path),
            hint=f"check the names against {spec.parent}'s apt sources, e.g. with apt-cache search",
        )
    errors = [line for line in apt_output.splitlines() if line.startswith("E: ")]
    reason = errors[-1] if errors else apt_output.strip()[-200:]
    return StoreError("stack build", f"apt cannot install the packages: {reason}", path=str(spec.path))
