"""seccomp for tasks: Docker-format profiles compiled to BPF once per process, loaded by the sandbox.

`filter_for(profile, caps)` takes "default" (lxrun/sandbox/seccomp/default.json, docker's default profile
as an allowlist), "unconfined" (no filter) or a path to a profile in Docker's JSON format. The
BPF is compiled with libseccomp in this process and cached per (profile, its mtime, capabilities):
the sandbox only loads it, which costs microseconds.
"""

from __future__ import annotations

import os

from lxrun import cache_file
from lxrun.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.sandbox.helper import Filter
    from lxrun.sandbox.seccomp.profile import Resolved

DEFAULT = "default"
UNCONFINED = "unconfined"
MACHINE = os.uname().machine
DEFAULT_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default.json")


class Compiler:
    """Compiles and caches filters, in memory and in `cache_dir` (a `lxrun exec` lives for one task, and
    compiling costs ~10 ms): safe to share between threads and processes (files are renamed into place).

    A cached filter is named by the profile's path, size and mtime, the task's capabilities and the
    machine; the name is checked against the file's first line, so a hash collision can't mix them up."""

    def __init__(self, cache_dir: str | None = None) -> None:
        self._cache: dict[str, Filter] = {}
        self._cache_dir = cache_dir
        # The default profile ships with lxrun, unchanged while it runs: its filters by capabilities,
        # found without a stat of the profile.
        self._defaults: dict[frozenset[str], Filter] = {}

    def filter_for(self, profile: str, caps: frozenset[str]) -> Filter | None:
        if profile == UNCONFINED:
            return None
        if profile == DEFAULT:
            found = self._defaults.get(caps)
            if found is None:
                found = self._defaults[caps] = self._filter(DEFAULT_PROFILE, caps)
            return found
        return self._filter(profile, caps)

    def _filter(self, path: str, caps: frozenset[str]) -> Filter:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise SpecError("seccomp", exc.strerror or "cannot be read", path=path) from exc
        key = f"{path}|{st.st_size}|{st.st_mtime_ns}|{','.join(sorted(caps))}|{MACHINE}"
        found = self._cache.get(key)
        if found is None:
            found = self._load(key)
            if found is None:
                # The profile's parser (and the json package) only where no cached filter fits.
                from lxrun.sandbox.seccomp.profile import load, resolve

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
        from lxrun.sandbox.helper import SOCK_FILTER_SIZE, Filter

        if header != key.encode() or not program or len(program) % SOCK_FILTER_SIZE:
            return None
        return Filter.from_bytes(program)

    def _store(self, key: str, compiled: Filter) -> None:
        """Best effort: it is only a cache, so a full or read-only disk costs the next start a compile."""
        path = self._file(key)
        if path is not None:
            cache_file.store(path, key.encode() + b"\n" + compiled.to_bytes())


def compile_filter(path: str, resolved: Resolved) -> Filter:
    from lxrun.sandbox.helper import compile_seccomp  # loads the native module only when a filter is compiled
    from lxrun.sandbox.seccomp.profile import SCMP_ARCH

    return compile_seccomp(resolved, tuple(SCMP_ARCH.values()), path)
