"""nftables in process: libnftables (Debian's nftables package) through ctypes, nft's own command language.

In process because an `nft` run costs ~2.5 ms of fork and exec here and a libnftables command ~70 us.
One context per process, used under a lock (a context is not thread-safe); each command checks the
kernel's ruleset generation itself, so changes made by others are seen.
"""

from __future__ import annotations

import ctypes
import errno as errno_codes
import os
import threading

from lxrun.errors import HostUnsupported, SetupError

LIBRARY = "libnftables.so.1"
OUTPUT_JSON = 1 << 4  # NFT_CTX_OUTPUT_JSON in nftables/libnftables.h
# libnftables reports a failure only as text; these are the kernel errors callers act on.
KNOWN_ERRORS = (errno_codes.EEXIST, errno_codes.ENOENT, errno_codes.EBUSY, errno_codes.EPERM)


class NftError(SetupError):
    """An nft command failed; `errno` is set when the message names one of KNOWN_ERRORS."""


class Nft:
    """One libnftables context: `run(commands)` applies them as one transaction and returns the output."""

    def __init__(self) -> None:
        try:
            lib = ctypes.CDLL(LIBRARY)
        except OSError as exc:
            raise HostUnsupported(
                "nftables", f"{LIBRARY} cannot be loaded ({exc})", hint="apt-get install nftables"
            ) from exc
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, name).restype = ctypes.c_char_p
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self._lib = lib
        self._lock = threading.Lock()
        self._ctx = lib.nft_ctx_new(0)
        if not self._ctx:
            raise HostUnsupported("nftables", "nft_ctx_new failed", hint="apt-get install nftables")
        lib.nft_ctx_buffer_output(self._ctx)
        lib.nft_ctx_buffer_error(self._ctx)

    def run(self, commands: str, *, json: bool = False, step: str = "nftables", path: str | None = None) -> str:
        with self._lock:
            self._lib.nft_ctx_output_set_flags(self._ctx, OUTPUT_JSON if json else 0)
            status = self._lib.nft_run_cmd_from_buffer(self._ctx, commands.encode())
            output = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode()
            error = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode()
        if status != 0:
            first = error.strip().splitlines()[0] if error.strip() else "failed"
            code = next((code for code in KNOWN_ERRORS if os.strerror(code) in first), None)
            raise NftError(step, first.removeprefix("Error: "), path=path, errno=code)
        return output


_shared: Nft | None = None
_shared_lock = threading.Lock()


def nft() -> Nft:
    """The process's libnftables context, made on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Nft()
        return _shared
