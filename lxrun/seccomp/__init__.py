"""seccomp for tasks: Docker-format profiles compiled to BPF once per process, loaded by the sandbox.

`filter_for(profile, caps)` takes "default" (lxrun/seccomp/default.json, docker's default profile
as an allowlist), "unconfined" (no filter) or a path to a profile in Docker's JSON format. The
BPF is compiled with libseccomp in this process and cached per (profile, its mtime, capabilities):
the sandbox only loads it, which costs microseconds.
"""

from __future__ import annotations

import contextlib
import os

from lxrun.errors import SpecError
from lxrun.seccomp.profile import SCMP_ARCH, Resolved, load, resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT = "default"
UNCONFINED = "unconfined"
DEFAULT_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default.json")


SOCK_FILTER_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k


class Filter:
    """Compiled BPF: `program` points at `length` struct sock_filter, alive as long as this object."""

    def __init__(self, program: Any, length: int, keep: Any = None) -> None:
        self.program = program
        self.length = length
        self._keep = keep  # the buffer `program` points into, when it is not `program` itself


class Compiler:
    """Compiles and caches filters, in memory and in `cache_dir` (a `lxrun exec` lives for one task, and
    compiling costs ~10 ms): safe to share between threads and processes (files are renamed into place).

    A cached filter is named by the profile's path, size and mtime, the task's capabilities and the
    machine; the name is checked against the file's first line, so a hash collision can't mix them up."""

    def __init__(self, cache_dir: str | None = None) -> None:
        self._cache: dict[str, Filter] = {}
        self._cache_dir = cache_dir

    def filter_for(self, profile: str, caps: frozenset[str]) -> Filter | None:
        if profile == UNCONFINED:
            return None
        path = DEFAULT_PROFILE if profile == DEFAULT else profile
        try:
            st = os.stat(path)
        except OSError as exc:
            raise SpecError("--security-opt seccomp", exc.strerror or "cannot be read", path=path) from None
        key = f"{path}|{st.st_size}|{st.st_mtime_ns}|{','.join(sorted(caps))}|{os.uname().machine}"
        found = self._cache.get(key)
        if found is None:
            found = self._load(key)
            if found is None:
                found = compile_filter(path, resolve(path, load(path), caps))
                self._store(key, found)
            self._cache[key] = found
        return found

    def _file(self, key: str) -> str | None:
        import zlib

        return f"{self._cache_dir}/{zlib.crc32(key.encode()):08x}.bpf" if self._cache_dir else None

    def _load(self, key: str) -> Filter | None:
        path = self._file(key)
        try:
            with open(path or "", "rb") as file:
                header, _, program = file.read().partition(b"\n")
        except OSError:
            return None
        if header != key.encode() or not program or len(program) % SOCK_FILTER_SIZE:
            return None
        from lxrun._native import ffi

        buffer = ffi.new("char[]", program)
        return Filter(ffi.cast("void *", buffer), len(program) // SOCK_FILTER_SIZE, keep=buffer)

    def _store(self, key: str, compiled: Filter) -> None:
        """Best effort: it is only a cache, so a full or read-only disk costs the next start a compile."""
        path = self._file(key)
        if path is None:
            return
        from lxrun._native import ffi

        staged = f"{path}.{os.getpid()}-{os.urandom(4).hex()}"
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(staged, "wb") as file:
                program = bytes(ffi.buffer(compiled.program, compiled.length * SOCK_FILTER_SIZE))
                file.write(key.encode() + b"\n" + program)
            os.rename(staged, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(staged)


def compile_filter(path: str, resolved: Resolved) -> Filter:
    from lxrun._native import ffi, lib

    keep: list[Any] = []
    rules = ffi.new("struct lxrun_seccomp_rule[]", max(1, len(resolved.rules)))
    for c_rule, rule in zip(rules, resolved.rules, strict=False):
        name = ffi.new("char[]", rule.name.encode())
        args = ffi.new("struct lxrun_seccomp_arg[]", max(1, len(rule.args)))
        for c_arg, (index, op, value, value_two) in zip(args, rule.args, strict=False):
            c_arg.index, c_arg.op, c_arg.value, c_arg.value_two = index, getattr(lib, op), value, value_two
        keep += [name, args]
        c_rule.name, c_rule.action, c_rule.args, c_rule.n_args = name, rule.action, args, len(rule.args)
    known_arches = {
        name: getattr(lib, name) for name in (*SCMP_ARCH.values(), "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_ARM")
    }
    arches = ffi.new("uint32_t[]", [known_arches[a] for a in resolved.arches if a in known_arches] or [0])
    profile = ffi.new("struct lxrun_seccomp_profile *")
    profile.default_action = resolved.default_action
    profile.arches = arches
    profile.n_arches = sum(1 for a in resolved.arches if a in known_arches)
    profile.rules = rules
    profile.n_rules = len(resolved.rules)
    program = ffi.new("void **")
    length = ffi.new("int *")
    bad_rule = ffi.new("int *")
    rc = lib.lxrun_seccomp_compile(profile, program, length, bad_rule)
    if rc < 0:
        which = f" at {resolved.rules[bad_rule[0]].name}" if bad_rule[0] >= 0 else ""
        raise SpecError(
            "--security-opt seccomp", f"libseccomp refused the profile{which}: {os.strerror(-rc)}", path=path
        )
    return Filter(ffi.gc(program[0], lib.lxrun_seccomp_free), length[0])
