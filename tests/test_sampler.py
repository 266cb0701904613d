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

The IMU drivers (mpu6050.py, adxl345.py) are tested on the unix board against
register-level simulated parts (SIM_PARTS: WHO_AM_I/DEVID, configuration
registers, FIFO count/status, the FIFO read register, overflow flags, as the
datasheets describe them) behind a machine.I2C stand-in that raises
OSError(ENODEV) for an address nobody answers. No I2C hardware exists here:
that is the closest stand-in, not the real part. The board config tests run
the host's boards/*.toml parsing and /lib/mpml/board.json end to end.
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
s2 = Sampler(Replay('/rec.i16', 3, 1000, loop=True), None, mode='poll')
s2.start()
t = time.ticks_ms()
got = 0
micropython.heap_lock()
try:
    while time.ticks_diff(time.ticks_ms(), t) < 100:
        got += s2.readinto(buf)  # the stream without read()'s tuple
finally:
    micropython.heap_unlock()
print(s.count, got)
""")
    count, got = map(int, out.split())
    assert count > 100 and got > 50


# -- sensor drivers against simulated parts ------------------------------------------------------

SIM_PARTS = '''
# Register-level stand-ins for parts that cannot be attached here: the closest
# thing to an MPU6050/MPU6886 or an ADXL345 on an I2C bus. They follow the
# datasheets' registers (WHO_AM_I/DEVID, FIFO count/status, FIFO read
# register, overflow flags) and allocate nothing on reads, so the drivers can
# run under heap_lock. produce(n) is the part sampling n times.
def _val(k, c):
    return (k * 37 + c * 5000) % 60000 - 30000
class SimI2C:
    # machine.I2C's memory API; an address nobody answers raises OSError(ENODEV)
    # as esp32/stm32 do for a NACK.
    def __init__(self, *parts):
        self.parts = {}
        for p in parts:
            self.parts[p.address] = p
    def _part(self, addr):
        p = self.parts.get(addr)
        if p is None:
            raise OSError(19)
        return p
    def readfrom_mem_into(self, addr, reg, buf):
        self._part(addr).read(reg, buf)
    def readfrom_mem(self, addr, reg, n):
        b = bytearray(n)
        self._part(addr).read(reg, b)
        return b
    def writeto_mem(self, addr, reg, buf):
        self._part(addr).write(reg, buf)
    def __repr__(self):
        return 'I2C(0, scl=22, sda=21, freq=400000)'
class SimMPU:
    def __init__(self, who=0x68, address=0x68):
        self.address = address
        self.who = who
        self.regs = bytearray(128)
        self.ring = bytearray(1024)
        self.head = self.tail = self.count = 0
        self.k = 0
        self.bursts = 0
        self.reset()
    def reset(self):
        for i in range(128):
            self.regs[i] = 0
        self.regs[0x75] = self.who
        self.regs[0x6B] = 0x40
        self.head = self.tail = self.count = 0
    def _push(self, b):
        if self.count == 1024:  # FIFO_MODE 0: the oldest byte goes
            self.tail = (self.tail + 1) % 1024
            self.count -= 1
            self.regs[0x3A] |= 0x10
        self.ring[self.head] = b & 0xFF
        self.head = (self.head + 1) % 1024
        self.count += 1
    def produce(self, n):
        for _ in range(n):
            k = self.k
            self.k += 1
            vals = [_val(k, c) for c in range(6)]
            r = self.regs
            for c in range(3):  # output registers: accel, temp, gyro
                r[0x3B + 2 * c] = (vals[c] >> 8) & 0xFF
                r[0x3C + 2 * c] = vals[c] & 0xFF
                r[0x43 + 2 * c] = (vals[3 + c] >> 8) & 0xFF
                r[0x44 + 2 * c] = vals[3 + c] & 0xFF
            if not (r[0x6A] & 0x40):
                continue
            en = r[0x23]
            if en & 0x08:
                for c in range(3):
                    self._push(vals[c] >> 8)
                    self._push(vals[c])
            if en & 0x80 or (self.who == 0x19 and en & 0x18):
                self._push(0x12)
                self._push(0x34)
            for c in range(3):
                if en & (0x40 >> c):
                    self._push(vals[3 + c] >> 8)
                    self._push(vals[3 + c])
    def read(self, reg, buf):
        n = len(buf)
        if reg == 0x74:
            self.bursts += 1
            for i in range(n):
                if self.count:
                    buf[i] = self.ring[self.tail]
                    self.tail = (self.tail + 1) % 1024
                    self.count -= 1
                else:
                    buf[i] = 0
        elif reg == 0x72:
            buf[0] = self.count >> 8
            buf[1] = self.count & 0xFF
        else:
            for i in range(n):
                buf[i] = self.regs[reg + i]
            if reg <= 0x3A < reg + n:
                self.regs[0x3A] &= ~0x10  # INT_STATUS clears on read
    def write(self, reg, buf):
        for i in range(len(buf)):
            r = reg + i
            b = buf[i]
            if r == 0x6B and b & 0x80:
                self.reset()
                continue
            if r == 0x6A and b & 0x04:
                self.head = self.tail = self.count = 0
                b &= ~0x04
            self.regs[r] = b
class SimADXL:
    # 32 FIFO entries plus the output registers: up to 33 samples waiting;
    # stream mode keeps the newest.
    def __init__(self, address=0x53):
        self.address = address
        self.regs = bytearray(128)
        self.regs[0] = 0xE5
        self.q = bytearray(33 * 6)
        self.head = self.n = 0
        self.k = 0
        self.reads = 0
    def produce(self, n):
        for _ in range(n):
            k = self.k
            self.k += 1
            if not (self.regs[0x2D] & 0x08):
                continue
            if self.regs[0x38] >> 6 == 0:  # bypass: output registers only
                self.head = self.n = 0
            if self.n == 33:
                self.head = (self.head + 1) % 33
                self.n -= 1
            at = (self.head + self.n) % 33 * 6
            for c in range(3):
                v = _val(k, c)
                self.q[at + 2 * c] = v & 0xFF
                self.q[at + 2 * c + 1] = (v >> 8) & 0xFF
            self.n += 1
    def read(self, reg, buf):
        if reg == 0x32:
            self.reads += 1
            at = self.head * 6
            for i in range(len(buf)):
                buf[i] = self.q[at + i]
            if self.n:
                self.head = (self.head + 1) % 33
                self.n -= 1
        elif reg == 0x39:
            buf[0] = self.n
        else:
            for i in range(len(buf)):
                buf[i] = self.regs[reg + i]
    def write(self, reg, buf):
        for i in range(len(buf)):
            self.regs[reg + i] = buf[i]
from array import array
from mpml.mpu6050 import MPU6050
from mpml.adxl345 import ADXL345
def _locked(src, b, n):
    # n samples with the heap locked (in a function: a new global would allocate)
    micropython.heap_lock()
    try:
        for _ in range(n):
            src.read_into(b, 0)
    finally:
        micropython.heap_unlock()
def _rows(src, n):
    b = array('h', bytes(2 * src.channels))
    out = []
    for _ in range(n):
        src.read_into(b, 0)
        out.append(list(b))
    return out
def _want(first, n, C):
    return [[_val(k, c) for c in range(C)] for k in range(first, first + n)]
'''


@pytest.fixture(scope="module")
def sim(unix):
    unix.exec(SIM_PARTS)
    return unix


def test_mpu6050_reads_its_fifo_in_bursts(sim):
    out = sim.exec("""
from mpml.mpu6050 import MPU6050
p = SimMPU()
imu = MPU6050(SimI2C(p), rate_hz=100, accel_range_g=8, gyro_range_dps=1000, block=16)
regs = (p.regs[0x19], p.regs[0x1A], p.regs[0x1B], p.regs[0x1C], p.regs[0x23], p.regs[0x6A], p.regs[0x6B])
p.produce(40)
got = _rows(imu, 40)
bursts = p.bursts
again = _rows(imu, 1)
print(repr((regs, imu.rate_hz, imu.names, imu.scale[0], imu.scale[3], got == _want(0, 40, 6), bursts,
            again == _want(39, 1, 6), imu.repeats)))
""")
    regs, rate, names, ascale, gscale, same, bursts, again, repeats = eval(out)
    # SMPLRT_DIV 9 (1 kHz / 10), DLPF on, +-1000 dps, +-8 g, FIFO: accel + 3 gyros, FIFO on, awake on PLL
    assert regs == (9, 1, 2 << 3, 2 << 3, 0x78, 0x40, 0x01)
    assert rate == 100 and names == ["ax", "ay", "az", "gx", "gy", "gz"]
    assert ascale == 8 / 32768 and gscale == 1000 / 32768
    assert same, "the samples are the part's, in order"
    assert bursts == 3, "40 samples in blocks of 16: three FIFO bursts"
    assert again and repeats == 1, "no new sample: the last one again, counted"


def test_mpu6886_packets_carry_the_temperature(sim):
    out = sim.exec("""
p = SimMPU(who=0x19)
imu = MPU6050(SimI2C(p), rate_hz=200)
p.produce(20)
a = _rows(imu, 20) == _want(0, 20, 6)
p2 = SimMPU(who=0x19)
acc = MPU6050(SimI2C(p2), rate_hz=200, gyro=False)
p2.produce(10)
print(repr((imu.part, imu.rate_hz, a, acc.channels, _rows(acc, 10) == _want(0, 10, 3))))
""")
    assert eval(out) == ("MPU6886", 200, True, 3, True)


def test_mpu6050_fifo_overflow_is_counted_and_recovered(sim):
    out = sim.exec("""
p = SimMPU()
imu = MPU6050(SimI2C(p), rate_hz=1000)
p.produce(200)          # 2400 bytes into a 1024-byte FIFO
first = _rows(imu, 1)   # sees the overflow, resets the FIFO
p.produce(5)
print(repr((imu.overflows, _rows(imu, 5) == _want(200, 5, 6))))
""")
    assert eval(out) == (1, True)


def test_mpu6050_allocates_nothing_per_sample(sim):
    out = sim.exec("""
p = SimMPU()
imu = MPU6050(SimI2C(p), rate_hz=1000, block=16)
b = array('h', bytes(12))
p.produce(60)
_locked(imu, b, 60)
print(list(b) == _want(59, 1, 6)[0])
""")
    assert out.strip() == "True"


def test_adxl345_fifo_bursts_and_overflow(sim):
    out = sim.exec("""
from mpml.adxl345 import ADXL345
p = SimADXL()
acc = ADXL345(SimI2C(p), rate_hz=400, range_g=4)
regs = (p.regs[0x2C], p.regs[0x2D], p.regs[0x31], p.regs[0x38])
p.produce(10)
a = _rows(acc, 10) == _want(0, 10, 3)
reads = p.reads
p.produce(50)           # more than the FIFO holds: stream mode keeps the newest 33
b = _rows(acc, 33) == _want(27, 33, 3)
b1 = array('h', bytes(6))
p.produce(8)
_locked(acc, b1, 8)
print(repr((regs, a, reads, b, acc.overflows, list(b1) == _want(67, 1, 3)[0], acc.scale[0])))
""")
    regs, a, reads, b, overflows, last, scale = eval(out)
    assert regs == (0xC, 0x08, 0x08 | 1, 0x80)  # 400 Hz, measuring, full-res +-4 g, stream FIFO
    assert a and reads == 10, "one burst: a 6-byte read per waiting entry"
    assert b and overflows == 1
    assert last and scale == 1 / 256


def test_a_part_not_answering_names_bus_address_and_pins(sim):
    out = sim.exec("""
from mpml.adxl345 import ADXL345
from mpml import sources
for make in (lambda: MPU6050(SimI2C()),
             lambda: sources.imu('adxl345', SimI2C(), bus='0 (sda=4, scl=5, 400000 Hz)'),
             lambda: MPU6050(SimI2C(SimADXL(address=0x68)))):
    try:
        make()
        print('no error')
    except OSError as e:
        print(e.args[0], e.args[1])
""")
    lines = out.strip().splitlines()
    assert lines[0].startswith("19 MPU6050 not answering on I2C I2C(0, scl=22, sda=21, freq=400000) "
                               "at address 0x68 (ENODEV): check its wiring")
    assert lines[1].startswith("19 ADXL345 not answering on I2C 0 (sda=4, scl=5, 400000 Hz) at address 0x53 (ENODEV)")
    assert "address 0x68 answered WHO_AM_I=0x00: not an MPU6050" in lines[2]


def test_from_config_opens_the_named_sensor(sim):
    out = sim.exec("""
import json
from mpml import sources
cfg = {'board': 'test', 'sensors': [
    {'name': 'imu', 'type': 'mpu6050', 'i2c': 0, 'sda': 21, 'scl': 22},
    {'name': 'walk', 'type': 'replay', 'path': '/rec.i16', 'channels': 3, 'rate_hz': 50, 'loop': True}]}
with open('/board-test.json', 'w') as f:
    json.dump(cfg, f)
r = sources.from_config('walk', path='/board-test.json')
row = _rows(r, 2)
try:
    sources.from_config('mic', path='/board-test.json')
except ValueError as e:
    print(e)
try:
    sources.from_config(path='/nothing.json')
except OSError as e:
    print(e.args[1])
print(repr((r.channels, r.rate_hz, r.loop, row)))
""")
    lines = out.strip().splitlines()
    assert lines[0] == "no sensor 'mic' in /board-test.json; it has: imu, walk"
    assert lines[1].startswith("/nothing.json missing: write it with `mpml install --board <board>`")
    assert eval(lines[2]) == (3, 50, True, [[0, 1, 2], [3, 4, 5]])


# -- the qemu boards: vboard's clock and Timer, and the sampler on them ---------------------------

@pytest.fixture(scope="module", params=["m0", "m3"])
def qemu(request):
    board, c = board_with_recording(request.param)
    yield c
    c.close()


def test_vboard_time_runs_at_real_speed_and_timers_fire(qemu):
    import time

    # The board's clock against the host's: each board reading lies between the
    # host's clock just before and just after the round trip that fetched it.
    h1a = time.monotonic()
    b1 = qemu.eval("__import__('time').ticks_ms()")
    h1b = time.monotonic()
    time.sleep(1.5)
    h2a = time.monotonic()
    b2 = qemu.eval("__import__('time').ticks_ms()")
    h2b = time.monotonic()
    board_s = (b2 - b1) / 1000
    assert (h2a - h1b) - 0.002 <= board_s <= (h2b - h1a) + 0.002

    out = qemu.exec("""
import time, vboard
n = [0, 0]
def tick(t):
    n[0] += 1
def once(t):
    n[1] += 1
t = vboard.Timer(-1, freq=100, mode=vboard.Timer.PERIODIC, callback=tick)
o = vboard.Timer(mode=vboard.Timer.ONE_SHOT, period=50, callback=once)
time.sleep_ms(500)
t.deinit()
k = n[0]
time.sleep_ms(100)
a = time.ticks_add(time.ticks_ms(), 1000)
print(repr((k, n[0], n[1], time.ticks_diff(a, time.ticks_add(a, -7)), time.ticks_diff(time.ticks_add(2**30 - 5, 10), 2**30 - 5))))
""")
    periodic, after, once, d1, d2 = eval(out)
    # 100 Hz for 0.5 s: 50 ticks, fewer if qemu was descheduled (a late timer
    # fires once, as a hardware timer's single pending flag would).
    assert 10 <= periodic <= 51
    assert after == periodic, "no callback after deinit()"
    assert once == 1
    assert (d1, d2) == (7, 10), "ticks arithmetic wraps as MicroPython's time module does"


def test_replay_on_qemu_is_timer_driven_and_exact(qemu):
    out = qemu.exec("""
s = Sampler(Replay('/rec.i16', 3, 500), None, window=100, hop=50)
s.start()
starts, err = _windows(s, limit=12)
s.stop()
st = s.stats()
big = Sampler(Replay('/rec.i16', 3, 500), 200000)
try:
    big.start()
    refused = None
except ValueError as e:
    refused = str(e)
print(repr((starts, err, st['mode'], st['rate_hz'], st['dropped'], big.max_rate_hz, refused)))
""", timeout=60)
    starts, err, mode, rate, dropped, top, refused = eval(out)
    assert err is None and mode == "timer"
    assert starts == list(range(0, 600, 50)) and dropped == 0
    assert rate == pytest.approx(500, rel=0.05)
    assert f"at most {top} Hz" in refused and top < 200000


def test_timer_driven_sampling_allocates_nothing_on_qemu(qemu):
    # Timer callbacks run from the scheduler in this same context, so a locked
    # heap covers them: an allocation would raise MemoryError in the callback,
    # which the sampler keeps and next_window raises. The recording is
    # preloaded: these boards' RAM disk is a Python block device (_vboot.py)
    # that allocates on each file read, which a real board's flash does not.
    out = qemu.exec("""
import gc
s = big = None
gc.collect()  # the preloaded recording wants 18 KB in one piece
s = Sampler(Replay('/rec.i16', 3, 500, loop=True, preload=True), None, window=50, hop=25)
def run():
    micropython.heap_lock()
    try:
        while s.count < 200:
            s.next_window(timeout_ms=0)
            time.sleep_ms(1)
    finally:
        micropython.heap_unlock()
s.start()
run()
s.stop()
print(s.count, s.dropped)
""", timeout=30)
    count, dropped = map(int, out.split())
    assert count >= 200 and dropped == 0


# -- board files: [[sensors]] and the board config written from them -------------------------------

def test_every_real_board_file_describes_its_sensors():
    from mpml import boards
    from mpml.device.boardconfig import board_config

    real = [b for b in boards.boards() if not b.virtual]
    assert {b.name for b in real} >= {"esp32", "esp32s3", "esp32c3", "pico", "pico2"}
    for b in real:
        cfg = board_config(b)
        assert cfg["board"] == b.name and cfg["arch"] == b.arch and cfg["sensors"], b.name
        for s in cfg["sensors"]:
            assert s["type"] in boards.SENSOR_TYPES


@pytest.mark.parametrize("entry, message", [
    ('name = "imu"\ntype = "mpu9999"', "type is 'mpu9999'; one of mpu6050"),
    ('name = "imu"\ntype = "mpu6050"\ni2c = 0\nsda = 4', "a mpu6050 needs 'scl'"),
    ('name = "imu"\ntype = "mpu6050"\ni2c = 0\nsda = 4\nscl = 5\nadress = 0x68', "unknown key 'adress'"),
    ('name = "imu"\ntype = "adxl345"\ni2c = 0\nsda = 4\nscl = 5\naddress = 0x1FF', "not a 7-bit I2C address"),
    ('name = "mic"\ntype = "adc"\npins = []', "pins must be a non-empty list"),
    ('type = "adc"\npins = [26]', "missing name"),
])
def test_bad_sensor_entries_are_refused_naming_the_file(tmp_path, entry, message):
    from mpml import boards

    text = (paths_board_text() + "\n[[sensors]]\n" + entry + "\n")
    f = tmp_path / "myboard.toml"
    f.write_text(text)
    with pytest.raises(boards.BoardFileError) as e:
        boards.load_board(f)
    assert str(f) in str(e.value) and message in str(e.value)


def paths_board_text() -> str:
    # A real board file without its own sensors, to add one entry to.
    from mpml import paths

    text = (paths.BOARDS_DIR / "pico.toml").read_text()
    return text[: text.index("[[sensors]]")] if "[[sensors]]" in text else text


def test_the_board_config_reaches_from_config_on_the_board(unix, tmp_path):
    from mpml.device.boardconfig import BOARD_CONFIG_PATH, board_config_bytes

    f = tmp_path / "replayboard.toml"
    f.write_text(paths_board_text().replace('name = "pico"', 'name = "replayboard"') +
                 '\n[[sensors]]\nname = "walk"\ntype = "replay"\npath = "/rec.i16"\nchannels = 3\n'
                 'rate_hz = 250\nloop = true\n')
    write_file(unix, BOARD_CONFIG_PATH, board_config_bytes(f))
    out = unix.exec("""
from mpml import sources
src = sources.from_config()
s = Sampler(src, window=10, hop=10, mode='poll')
s.start()
w = s.next_window()
print(repr((src.rate_hz, src.loop, _expect(w, s.window_start))))
""")
    assert eval(out) == (250, True, None)
