"""Fixed-rate sampling (firmware/mpml/sampler.py) and its sources (sources.py, mpu6050.py, adxl345.py).

On the unix board (the 'thread' driver, and 'poll' forced) and on the m0/m3
qemu boards (vboard.Timer, the hardware timer of each machine): a replay of a
known recording comes out at its rate, every window holding exactly the
recording's consecutive samples; a consumer too slow for the ring loses
samples that are all counted (delivered + dropped = produced, gaps where the
counts say); a rate beyond the board is refused with the maximum it measured;
the sampling path allocates nothing (micropython.heap_lock).

Rates are checked against the sampler's own schedule with a loose tolerance:
the figures themselves (max rate, jitter) are a benchmark (tools/bench/sampler.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import runtime_board
from mpml.device import Connection
from mpml.device.package import write_file

CHANNELS = 3
N_REC = 3000
# Sample k, channel c of the recording holds (k*3 + c) mod 30000: any lost,
# repeated or shifted sample shows.
RECORDING = (np.arange(N_REC * CHANNELS) % 30000).astype("<i2").tobytes()

HELPERS = """
import time, micropython
from mpml.sampler import Sampler
from mpml.sources import Replay
def _expect(w, start, C=3):
    for i in range(len(w)):
        if w[i] != (start * C + i) % 30000:
            return 'sample %d of the window at %d is %d' % (i // C, start, w[i])
    return None
def _windows(s, limit=1000000, slow_ms=0):
    # every window's start and whether its samples are the recording's
    starts = []
    while len(starts) < limit:
        w = s.next_window(timeout_ms=3000)
        if w is None:
            break
        e = _expect(w, s.window_start)
        if e:
            return starts, e
        starts.append(s.window_start)
        if slow_ms:
            time.sleep_ms(slow_ms)
    return starts, None
"""


def board_with_recording(kind: str):
    board = runtime_board(kind)
    c = Connection(board.port, timeout=60)
    write_file(c, "/rec.i16", RECORDING)
    c.exec(HELPERS)
    return board, c


@pytest.fixture(scope="module")
def unix():
    board, c = board_with_recording("unix")
    yield c
    c.close()


@pytest.mark.parametrize("mode", ["thread", "poll"])
def test_replay_windows_are_the_recording_at_its_rate(unix, mode):
    out = unix.exec(f"""
s = Sampler(Replay('/rec.i16', 3, 1000), None, window=100, hop=50, mode={mode!r})
s.start()
starts, err = _windows(s)
st = s.stats()
print(repr((starts[:3], len(starts), err, s.ended, st['mode'], st['rate_hz'], st['dropped'], st['count'])))
""", timeout=30)
    starts, n, err, ended, used, rate, dropped, count = eval(out)
    assert err is None
    assert used == mode
    # 3000 samples, windows of 100 every 50: 59 of them, on the hop grid, no sample lost.
    assert (starts, n, ended, dropped, count) == ([0, 50, 100], 59, True, 0, N_REC)
    assert rate == pytest.approx(1000, rel=0.05)


def test_stream_read_gets_every_sample_once(unix):
    out = unix.exec("""
from array import array
s = Sampler(Replay('/rec.i16', 3, 2000), None, window=64, hop=64, mode='thread')
buf = array('h', bytes(2 * 3 * 50))
s.start()
nxt = 0; bad = None
while not (s.ended and s.count == nxt):
    n, first = s.read(buf)
    if first != nxt and bad is None:
        bad = ('gap', nxt, first)
    e = _expect(buf[:n * 3], first)
    if e and bad is None:
        bad = e
    nxt = first + n
    if n == 0:
        time.sleep(0.002)
print(repr((nxt, s.dropped, bad)))
""", timeout=30)
    assert eval(out) == (N_REC, 0, None)


@pytest.mark.parametrize("mode", ["thread", "poll"])
def test_a_slow_consumer_loses_samples_and_every_one_is_counted(unix, mode):
    # Ring of 2 windows, a consumer that takes 60 ms per 64-sample window at
    # 2 kHz (32 ms of samples): about half the recording is lost.
    out = unix.exec(f"""
from array import array
s = Sampler(Replay('/rec.i16', 3, 2000), None, window=64, hop=64, ring=128, mode={mode!r})
s.start()
starts, err = _windows(s, slow_ms=60)
gaps = sum(b - a - 64 for a, b in zip(starts, starts[1:]))
print(repr((err, len(starts), starts[0], gaps, s.dropped, s.count, s.stats()['dropped'])))
""", timeout=30)
    err, n, first, gaps, dropped, count, stats_dropped = eval(out)
    assert err is None, err
    assert count == N_REC and dropped > 0 and stats_dropped == dropped
    # Windows do not overlap (hop = window): every sample was delivered in one,
    # counted as dropped, or is still in the ring after the last window (less
    # than a window: a whole one would have been delivered).
    last_end = first + gaps + n * 64
    tail = count - max(last_end, count - 128 + 1)
    assert 0 <= tail < 64
    assert n * 64 + dropped + tail == count
    assert dropped >= first + gaps


def test_an_impossible_rate_is_refused_with_the_maximum(unix):
    out = unix.exec("""
s = Sampler(Replay('/rec.i16', 3, 1000), 900000)
try:
    s.start()
    print('started')
except ValueError as e:
    print(e, '|', s.max_rate_hz)
""")
    msg, top = out.rsplit("|", 1)
    assert "900000 Hz is more than this board can sustain" in msg
    assert f"at most {int(top)} Hz" in msg and 0 < int(top) < 900000


def test_sampling_allocates_nothing(unix):
    # The poll driver takes its samples in this thread, so heap_lock covers them
    # (it is per thread: the 'thread' driver's own loop runs the same code).
    out = unix.exec("""
from array import array
s = Sampler(Replay('/rec.i16', 3, 1000, loop=True), None, window=64, hop=32, mode='poll')
buf = array('h', bytes(2 * 3 * 16))
s.start()
t = time.ticks_ms()
micropython.heap_lock()
try:
    while time.ticks_diff(time.ticks_ms(), t) < 200:
        s.poll()
        s.next_window(timeout_ms=0)
finally:
    micropython.heap_unlock()
print(s.count)
""")
    assert int(out) > 100
