"""What WorkerProcess does without the engine: the copy of the command's output into pipes."""

from __future__ import annotations

import os

from twin.drive.workerexec import _copy


class Frames:
    """The engine's demultiplexed stream as exec_start(stream=True, demux=True) yields it."""

    def __init__(self, frames):
        self.frames = frames
        self.closed = False

    def __iter__(self):
        return iter(self.frames)

    def close(self) -> None:
        self.closed = True


def read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as f:
        return f.read()


def test_each_stream_lands_in_its_pipe_in_order_and_both_end():
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    frames = Frames([(b"one\n", None), (None, b"probe: listening on 7000\n"), (b"two", None),
                     (b"\n", None), (None, b"\xc3"), (None, b"\xa9\n")])
    _copy(frames, out_w, err_w)
    assert read_all(out_r) == b"one\ntwo\n"
    assert read_all(err_r).decode() == "probe: listening on 7000\né\n"
    assert frames.closed


def test_a_reader_that_went_away_does_not_stop_the_other_stream():
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.close(err_r)
    _copy(Frames([(None, b"lost\n"), (b"kept\n", None), (None, b"lost too\n")]), out_w, err_w)
    assert read_all(out_r) == b"kept\n"
