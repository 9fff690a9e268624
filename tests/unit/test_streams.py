from __future__ import annotations

import os

from lxrun.backends.streams import OutputSink, cut_marker
from lxrun.spec import CAPTURE


def feed(sink: OutputSink, data: bytes, step: int) -> None:
    for start in range(0, len(data), step):
        sink.write(data[start : start + step])


def test_without_a_limit_everything_is_kept() -> None:
    sink = OutputSink(CAPTURE, None)
    feed(sink, b"x" * 10000, 7)
    assert sink.finish() == b"x" * 10000 and not sink.truncated


def test_a_limit_keeps_head_and_tail_and_marks_the_cut() -> None:
    data = bytes(range(256)) * 40
    sink = OutputSink(CAPTURE, 100)
    feed(sink, data, 33)
    assert sink.truncated
    assert sink.finish() == data[:50] + cut_marker(len(data) - 100) + data[-50:]


def test_output_within_the_limit_is_untouched() -> None:
    sink = OutputSink(CAPTURE, 100)
    feed(sink, b"a" * 100, 9)
    assert sink.finish() == b"a" * 100 and not sink.truncated


def test_forwarded_output_is_written_to_the_descriptor() -> None:
    read_end, write_end = os.pipe()
    try:
        sink = OutputSink(write_end, 10)
        feed(sink, b"0123456789abcdefghij", 3)
        assert sink.finish() is None
        os.close(write_end)
        assert os.read(read_end, 1000) == b"01234" + cut_marker(10) + b"fghij"
    finally:
        os.close(read_end)


def test_the_opening_is_kept_even_when_forwarded() -> None:
    read_end, write_end = os.pipe()
    try:
        sink = OutputSink(write_end, None)
        sink.write(b"[FATAL tini (7)] exec x failed")
        assert sink.opening == b"[FATAL tini (7)] exec x failed"
    finally:
        os.close(read_end)
        os.close(write_end)
