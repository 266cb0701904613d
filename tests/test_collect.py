"""`mpml collect` on the unix and m0 boards: a replayed recording streamed to a dataset folder.

The recording's sample k, channel c holds (k*3 + c) mod 30000, so any lost,
repeated or shifted sample shows; every check is on equality with it, never
on time. Faults: the link closed or the board stopped mid-collect (what
arrived is kept and the dataset loads), a frame corrupted on the board (its CRC
fails, the gap is reported with its sample indices), the board's ring buffer
overflowing (counted, reported, recordings split at the gap), a rate the
board cannot sustain (refused with its maximum).
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from conftest import runtime_board
from mpml import virtual
from mpml.data import Dataset, load_dataset, save_dataset, windows
from mpml.device import Board, Connection
from mpml.device.collect import CollectError, collect, collect_all, crc16

CHANNELS = 3
RATE = 1000  # the throughput bar: 3 channels x 16 bits x 1 kHz
N_REC = 2500
N_SHORT = 600
M0_RATE = 250  # see test_replay_round_trip_on_the_m0


def recording(n: int = N_REC) -> np.ndarray:
    return (np.arange(n * CHANNELS) % 30000).astype(np.int16).reshape(n, CHANNELS)


def _source(root, n: int):
    ds = Dataset.from_counts("walks", [recording(n)], ["walk"], sample_rate_hz=RATE, channels=["ax", "ay", "az"],
                             units=["g"] * 3, scale=[1 / 4096] * 3, names=[f"take{n}"])
    save_dataset(ds, root)
    return root / "recordings" / f"take{n}.i16"


@pytest.fixture(scope="module")
def rec_file(tmp_path_factory):
    """A dataset holding the recording; its .i16 file is what the boards replay."""
    return _source(tmp_path_factory.mktemp("src") / "walks", N_REC)


@pytest.fixture(scope="module")
def short_file(tmp_path_factory):
    """A shorter one for the m0 board (its UART takes a few KB/s from the host)."""
    return _source(tmp_path_factory.mktemp("src") / "walks", N_SHORT)


def segments(out) -> list[tuple[int, np.ndarray]]:
    """(first sample index on the board, samples) of every recording in the dataset, in manifest order."""
    ds = load_dataset(out)
    m = json.loads((out / "manifest.json").read_text())
    return [(e["metadata"]["first_sample"], r.samples) for e, r in zip(m["recordings"], ds.recordings)]


def usable(board_name: str) -> None:
    """The board's REPL works after a collect, and its stream stopped its sampler (no soft reset to hide it)."""
    with Board.open(board_name, timeout=30, soft_reset=False) as b:
        assert b.conn.eval("__import__('mpml.collect').collect.active()") is False
        assert b.conn.eval("6 * 7") == 42


def test_replay_round_trip_3ch_1khz_no_loss(rec_file, tmp_path):
    """The throughput bar: 3 channels x 16 bit x 1 kHz, every sample once (the unix board)."""
    board = runtime_board("unix")
    out = tmp_path / "ds"
    r = collect(board.name, "walk", out=out, source=f"replay:{rec_file}", subject="s1")
    assert r.ok, r.line()
    assert (r.end, r.samples, r.gaps, r.crc_errors, r.dropped, r.repeats) == ("ended", N_REC, [], 0, 0, 0)
    assert r.rate_hz == RATE and r.recordings == ["walk-0001"]
    ds = load_dataset(out)
    assert (ds.channels, ds.units, ds.scale, ds.sample_rate_hz) == (["ax", "ay", "az"], ["g"] * 3, [1 / 4096] * 3,
                                                                    RATE)
    (rec,) = ds.recordings
    assert (rec.label, rec.subject, rec.metadata["board"]) == ("walk", "s1", board.name)
    np.testing.assert_array_equal(rec.samples, recording())
    w = windows(ds, length=128, hop=64)
    assert w.x.shape == ((N_REC - 128) // 64 + 1, 128, 3) and w.x.dtype == np.int16
    np.testing.assert_array_equal(w.x[3], recording()[192:320])
    # Again with --seconds, into the same folder: appended, exactly that many samples.
    r2 = collect(board.name, "walk", out=out, source=f"replay:{rec_file}", seconds=1.5)
    assert r2.ok and r2.end == "seconds" and r2.samples == 1500 and r2.recordings == ["walk-0002"]
    ds = load_dataset(out)
    assert [x.n_samples for x in ds.recordings] == [N_REC, 1500]
    np.testing.assert_array_equal(ds.recordings[1].samples, recording()[:1500])
    usable(board.name)


def test_replay_round_trip_on_the_m0(short_file, tmp_path):
    """The same on the Cortex-M0 board (its stdout turns LF into CR LF: the host undoes it), at 250 Hz: a
    qemu board on a host shared by several keeps real time only on average, and its sampler drops what
    a stall longer than its ring loses (counted: the 1 kHz figure is tools/bench/collect.py's)."""
    board = runtime_board("m0")
    out = tmp_path / "ds"
    r = collect(board.name, "walk", out=out, source=f"replay:{short_file}", rate=M0_RATE, ring=1024)
    assert r.ok, r.line()
    assert (r.end, r.samples, r.gaps, r.crc_errors) == ("ended", N_SHORT, [], 0)
    r2 = collect(board.name, "run", out=out, source=f"replay:{short_file}", rate=M0_RATE, seconds=1, ring=1024)
    assert r2.ok, r2.line()
    ds = load_dataset(out)
    assert [(x.name, x.label, x.n_samples) for x in ds.recordings] == [("walk-0001", "walk", N_SHORT),
                                                                       ("run-0001", "run", M0_RATE)]
    for x in ds.recordings:
        np.testing.assert_array_equal(x.samples, recording()[:x.n_samples])
    assert windows(ds, length=100, hop=50).x.shape == (11 + 4, 100, 3)
    usable(board.name)


@pytest.mark.parametrize("kind", ["unix", "m0"])
def test_frames_allocate_nothing_and_carry_the_hosts_crc(kind):
    board = runtime_board(kind)
    with Connection(board.port, timeout=30) as c:
        out = c.exec("""
import micropython, struct
import mpml.collect as C
class _Null:
    def write(self, b, n):
        self.n = n
w = C._Writer(3, 50)
w.out = _Null()
for i in range(150):
    w.payload[i] = i * 219 - 16000
w.data(7, 50)
micropython.heap_lock()
try:
    w.data(123456, 50)
    w.data(123506, 20)
finally:
    micropython.heap_unlock()
print(repr((w.out.n, bytes(w.frame)[:16 + 40 * 3 + 2], C.crc16(b'123456789'))))
""")
    n, frame, check = eval(out)
    assert check == 0x29B1  # CRC-16/CCITT-FALSE's check value
    assert n == 16 + 20 * 6 + 2
    assert frame[:16] == b"\xa5\x5aD\x03" + (2).to_bytes(4, "little") + (123506).to_bytes(4, "little") + \
        (20).to_bytes(2, "little") + (120).to_bytes(2, "little")
    body = frame[2:16 + 120]
    assert int.from_bytes(frame[16 + 120:16 + 122], "little") == crc16(body)


# A stand-in sampler whose samples are ready two calls in three (the stream waits on the third), and which
# locks the heap from its second read to stop(): the stream's loop must run without allocating.
LOCKED = """
import micropython
import mpml.collect as _C
class _Locked:
    def __init__(self):
        self.channels = 3
        self.rate_hz = 1000
        self.dropped = 0
        self.nxt = 0
        self.k = 0
        self.reads = 0
        self.ret = [0, 0]  # Sampler.read returns a new tuple (one small allocation per frame): not ours
    @property
    def count(self):
        self.k += 1
        return self.nxt + (0 if self.k % 3 == 0 else 64)
    def start(self):
        pass
    def stop(self):
        micropython.heap_unlock()
    def stats(self):
        return {'count': self.nxt}
    def read(self, buf):
        self.reads += 1
        if self.reads == 2:
            micropython.heap_lock()
        n = len(buf) // 3
        self.ret[0] = n
        self.ret[1] = self.nxt
        self.nxt += n
        return self.ret
_C.stream(_Locked(), 2, status_s=1000)
"""


@pytest.mark.parametrize("kind", ["unix", "m0"])
def test_the_stream_loop_allocates_nothing(kind, tmp_path):
    board = runtime_board(kind)
    r = collect(board.name, "x", out=tmp_path / "ds", _code=LOCKED)
    assert r.error is None and r.end == "seconds" and r.samples == 2000 and r.ok, r.line()


def test_corrupted_frame_is_caught_by_its_crc_and_the_gap_reported(rec_file, tmp_path):
    board = runtime_board("unix")
    out = tmp_path / "ds"
    # Data frames carry 50 samples at 1 kHz; the header is frame 0, so frame 4 is samples 150..199.
    r = collect(board.name, "walk", out=out, source=f"replay:{rec_file}", seconds=1, _hooks=", _corrupt=4")
    assert not r.ok and r.crc_errors == 1 and r.end == "seconds"
    assert [(g.start, g.count, g.cause) for g in r.gaps] == [(150, 50, "link")]
    assert r.samples == 950 and r.recordings == ["walk-0001", "walk-0002"]
    assert "1 CRC error" in r.line() and "samples 150..199 (50, lost on the link)" in r.line()
    segs = segments(out)
    assert [(first, len(x)) for first, x in segs] == [(0, 150), (200, 800)]
    for first, x in segs:
        np.testing.assert_array_equal(x, recording()[first:first + len(x)])


def test_ring_overflow_is_counted_reported_and_split(rec_file, tmp_path):
    board = runtime_board("unix")
    out = tmp_path / "ds"
    # A 32-sample ring and a stream that stops reading for ~200 ms after 5 frames.
    r = collect(board.name, "walk", out=out, source=f"replay:{rec_file}", seconds=1.5, ring=32,
                _hooks=", frame_samples=20, _stall=(5, 40)")
    assert not r.ok and r.end == "seconds" and r.crc_errors == 0
    assert r.dropped > 0 and r.gaps and all(g.cause == "board" for g in r.gaps)
    assert r.lost == r.dropped  # every sample the board dropped is a reported gap, and nothing else is
    assert r.samples + r.lost == 1500  # --seconds is a span of sample indices
    assert "ring overflow" in r.line()
    segs = segments(out)
    assert len(segs) == len(r.gaps) + 1
    for first, x in segs:
        np.testing.assert_array_equal(x, recording()[first:first + len(x)])


@pytest.mark.parametrize("kind", ["unix", "m0"])
def test_link_closed_mid_collect_keeps_a_valid_dataset(kind, rec_file, short_file, tmp_path):
    board = runtime_board(kind)
    rate, fs = (RATE, 50) if kind == "unix" else (M0_RATE, 12)  # samples per frame: 50 ms of them
    out = tmp_path / "ds"
    b = Board.open(board.name, timeout=30)
    try:
        def cut(frames):
            if frames == 12:
                b.conn.transport.serial.close()  # the cable is pulled

        r = collect(b, "walk", out=out, source=f"replay:{rec_file if kind == 'unix' else short_file}", rate=rate,
                    ring=1024, _after_frame=cut)
    finally:
        b.close()
    assert r.end == "link lost" and not r.ok and "link lost" in r.line()
    assert r.samples == 11 * fs and r.gaps == []  # the header, then 11 data frames
    (rec,) = load_dataset(out).recordings
    np.testing.assert_array_equal(rec.samples, recording()[:11 * fs])
    usable(board.name)  # the board was still streaming: the next connection's Ctrl-C stops it cleanly


def test_board_stopped_mid_collect_keeps_a_valid_dataset(rec_file, tmp_path):
    board = virtual.start("unix", name="collect-pulled", fresh=True, watch_pid=os.getpid())
    try:
        from mpml.device.package import install

        with Connection(board.port, timeout=60) as c:
            install(c, board.arch)
        out = tmp_path / "ds"
        got = threading.Event()

        def on_frame(result, state):
            if result.samples >= 400:
                got.set()

        res = {}
        t = threading.Thread(target=lambda: res.update(r=collect(board.name, "walk", out=out, on_frame=on_frame,
                                                                 source=f"replay:{rec_file},loop")))
        t.start()
        assert got.wait(30)
        virtual.stop(board.name)  # the board is gone: its port with it
        t.join(30)
    finally:
        virtual.stop(board.name)
    r = res["r"]
    assert r.end == "link lost" and r.samples >= 400 and r.gaps == []
    (rec,) = load_dataset(out).recordings
    assert rec.n_samples == r.samples
    np.testing.assert_array_equal(rec.samples, np.concatenate([recording()] * 4)[:r.samples])


def test_stop_on_request_and_collect_all_from_two_boards(short_file, tmp_path):
    boards = [runtime_board("unix"), runtime_board("m0")]
    out = tmp_path / "ds"
    stop = threading.Event()
    seen = {}

    def on_frame(result, state):
        seen[result.board] = result.samples
        if len(seen) == 2 and min(seen.values()) >= 100:
            stop.set()  # as the first Ctrl-C of `mpml collect` does

    results = collect_all([b.name for b in boards], "walk", out=out, source=f"replay:{short_file},loop",
                          rate=M0_RATE, ring=1024, stop=stop, on_frame=on_frame)
    assert all(not isinstance(r, Exception) for r in results), results
    assert [r.end for r in results] == ["interrupted"] * 2 and all(r.ok for r in results), \
        [r.line() for r in results]
    ds = load_dataset(out)
    assert sorted(x.metadata["board"] for x in ds.recordings) == sorted(b.name for b in boards)
    assert sorted(x.name for x in ds.recordings) == ["walk-0001", "walk-0002"]
    looped = np.concatenate([recording(N_SHORT)] * 10)
    for r in results:
        (x,) = [x for x in ds.recordings if x.metadata["board"] == r.board]
        assert x.n_samples == r.samples >= 100
        np.testing.assert_array_equal(x.samples, looped[:r.samples])
    for b in boards:
        usable(b.name)


def test_refusals(rec_file, tmp_path):
    board = runtime_board("unix")
    with pytest.raises(CollectError, match=r"900000(\.0)? Hz is more than this board can sustain.*at most \d+ Hz"):
        collect(board.name, "walk", out=tmp_path / "a", source=f"replay:{rec_file}", rate=900000)
    assert not (tmp_path / "a" / "manifest.json").exists()
    # A dataset with other channels: refused before anything is written to it.
    other = tmp_path / "other"
    save_dataset(Dataset.from_counts("o", [np.zeros((10, 2), np.int16)], ["x"], sample_rate_hz=RATE), other)
    before = (other / "manifest.json").read_text()
    with pytest.raises(CollectError, match=r"this dataset has .*channels \['c0', 'c1'\], not \['ax', 'ay', 'az'\]"):
        collect(board.name, "walk", out=other, source=f"replay:{rec_file}")
    assert (other / "manifest.json").read_text() == before
    assert sorted(p.name for p in (other / "recordings").iterdir()) == ["r0000.i16"]
    with pytest.raises(CollectError, match="no such local file"):
        collect(board.name, "walk", out=tmp_path / "b", source="replay:nothere.i16")
    usable(board.name)


def test_the_cli(rec_file, tmp_path, capsys):
    from mpml.cli import main

    board = runtime_board("unix")
    out = tmp_path / "ds"
    assert main(["collect", "--label", "walk", "--seconds", "0.5", "--source", f"replay:{rec_file}",
                 "--port", board.name, "--out", str(out), "--subject", "ann"]) == 0
    line = capsys.readouterr().out
    assert f"{board.name}: walk -> {out}/walk-0001 (500 samples, 0.5 s at 1000 Hz" in line and "no loss" in line
    assert main(["collect", "--label", "idle", "--seconds", "0.2", "--source", f"replay:{rec_file}",
                 "--port", board.name, "--out", str(out), "--rate", "500"]) == 1
    assert "this dataset has sample rate 1000 Hz, not 500 Hz" in capsys.readouterr().err
    ds = load_dataset(out)
    assert ds.labels == ["walk"] and ds.recordings[0].subject == "ann"
