"""An imported layer's tar, kept so it can be written again byte for byte: its digest (the diff_id
that names the layer) comes out the same on export, so docker sees the very layer it had.

What docker's tar-split does: while a layer tar is unpacked, every byte that is not a file's content
(headers, pax records, padding, the end blocks) is recorded as it was read; a file's content is
recorded as a reference to the file it was written to, which the layer's tree keeps unchanged. On
disk, `layers/<digest>/tar-split`: a gzip stream of frames, `R` + length + bytes for raw bytes, `F` +
size + the file's path for content. A layer whose tree lost a file the tar wrote (a later entry
replaced it) keeps no split: its export is written from the tree, with a new digest.
"""

from __future__ import annotations

import gzip
import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

SPLIT_FILE = "tar-split"
RAW, FILE = b"R", b"F"
LENGTH = struct.Struct("<Q")
PATH_LENGTH = struct.Struct("<H")
COPY_CHUNK = 1 << 20


class SplitRecorder:
    """Reads the uncompressed layer tar from `raw` for tarfile, recording it into `path` (a gzip file)."""

    def __init__(self, raw: IO[bytes], path: str) -> None:
        self.raw = raw
        self.path = path
        self.out: gzip.GzipFile | None = gzip.open(path, "wb", compresslevel=1)  # noqa: SIM115 (closed by finish)
        self.pending = bytearray()  # the bytes read from offset `start` on, but a referenced file's content
        self.start = 0
        self.consumed = 0  # bytes read so far
        self.skip_until = 0  # below this offset: content already referenced, not kept

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if self.out is not None:
            skipped = min(max(self.skip_until - self.consumed, 0), len(data))
            self.pending += data[skipped:] if skipped else data
        self.consumed += len(data)
        return data

    def file_content(self, offset: int, size: int, relative: str) -> None:
        """The `size` bytes at `offset` in the tar (tarfile has read its header, so `offset` is
        within what was read) are the content of the file written at `relative`."""
        if self.out is None or size == 0:
            return
        self.frame(RAW, bytes(self.pending[: offset - self.start]))
        name = os.fsencode(relative)
        self.out.write(FILE + LENGTH.pack(size) + PATH_LENGTH.pack(len(name)) + name)
        end = offset + size
        self.pending = self.pending[end - self.start :] if self.consumed > end else bytearray()
        self.start = self.skip_until = end

    def frame(self, kind: bytes, data: bytes) -> None:
        if self.out is not None and data:
            self.out.write(kind + LENGTH.pack(len(data)) + data)

    def broken(self) -> None:
        """The tree no longer holds a file the tar wrote: keep no split."""
        if self.out is not None:
            self.out.close()
            self.out = None
            os.unlink(self.path)

    def drain(self) -> None:
        """Read to the end of the stream (trailing blocks are part of the tar) and write the split."""
        while self.read(COPY_CHUNK):
            pass
        if self.out is not None:
            self.frame(RAW, bytes(self.pending))
            self.out.close()
            self.out = None

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


def replay(layer_dir: str, out: IO[bytes]) -> bool:
    """Write the tar the layer at `layer_dir` was unpacked from to `out`; False if it kept no split."""
    try:
        split = gzip.open(f"{layer_dir}/{SPLIT_FILE}", "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return False
    with split:
        while kind := split.read(1):
            (length,) = LENGTH.unpack(split.read(LENGTH.size))
            if kind == RAW:
                out.write(split.read(length))
                continue
            (name_length,) = PATH_LENGTH.unpack(split.read(PATH_LENGTH.size))
            name = os.fsdecode(split.read(name_length))
            fd = os.open(f"{layer_dir}/rootfs/{name}", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with open(fd, "rb") as content:
                left = length
                while left:
                    chunk = content.read(min(left, COPY_CHUNK))
                    if not chunk:
                        raise EOFError(f"{name} is shorter than its tar entry")
                    out.write(chunk)
                    left -= len(chunk)
    return True
