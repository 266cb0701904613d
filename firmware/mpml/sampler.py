# Fixed-rate sampling into a preallocated ring buffer (runs on the board).
#
#   from mpml.sampler import Sampler
#   from mpml.sources import Replay
#   s = Sampler(Replay("/data/walk.i16", 3, 100), 100, window=128, hop=64)
#   s.start()
#   while True:
#       w = s.next_window()          # array('h') window*channels, interleaved
#       ...                          # s.window_start, s.dropped, s.stats()
#
# What drives the sampling, best first (s.mode says which):
#   'timer'  machine.Timer (rp2, esp32...) or vboard.Timer (qemu virtual
#            boards): a periodic soft callback takes the samples that are due;
#   'thread' a _thread that sleeps until the next sample is due (the unix port:
#            it has threads but no machine.Timer);
#   'poll'   no timer at all: next_window(), read() and poll() take the samples
#            that came due since the last call.
# In every mode samples are taken against a schedule (t0 + k * period), so a
# late callback catches up instead of losing the sample; its lateness shows in
# stats(). A sampler that falls more than a ring behind skips ahead and counts
# what it skipped, as it counts samples overwritten before the consumer got
# them: s.dropped is never silent. docs/sensors.md has the whole story.

from array import array
import micropython

try:
    from time import ticks_us, ticks_ms, ticks_diff, ticks_add
except ImportError:
    ticks_us = None

# Sampling may use at most 1/LOAD of the CPU: the rest is the application's
# (features, inference) and the timer's own overhead.
LOAD = 2


@micropython.viper
def _copy16(dst, doff: int, src, soff: int, n: int):
    # Native code runs no VM hook, so neither a soft timer callback nor another
    # thread (the GIL is held) can write the ring while this copies.
    d = ptr16(dst)
    s = ptr16(src)
    i = 0
    while i < n:
        d[doff + i] = s[soff + i]
        i += 1


def _driver(mode):
    # (mode, Timer class or None) for this port, or for the mode asked for.
    if mode in (None, "timer"):
        for name in ("vboard", "machine"):
            try:
                T = getattr(__import__(name), "Timer", None)
            except ImportError:
                T = None
            if T is not None:
                return "timer", T
        if mode == "timer":
            raise ValueError("this port has no machine.Timer: use mode='poll'")
    if mode in (None, "thread"):
        try:
            import _thread  # noqa: F401

            return "thread", None
        except ImportError:
            if mode == "thread":
                raise ValueError("this port has no _thread: use mode='poll'")
    if mode in (None, "poll"):
        return "poll", None
    raise ValueError("mode must be None, 'timer', 'thread' or 'poll', not %r" % (mode,))


class Sampler:
    """Samples `source` at `rate_hz` into a ring of `ring` samples; windows of
    `window` samples every `hop` samples (next_window) or a stream (read).

    rate_hz None takes the source's own rate (a Replay's recorded rate).
    ring defaults to 4 windows. mode None picks the best the port has
    ('timer', 'thread', 'poll'); timer_id picks a machine.Timer (default: -1,
    else 0). Use one consumer per sampler: next_window() or read().
    """

    def __init__(self, source, rate_hz=None, window=128, hop=64, ring=None, mode=None, timer_id=None):
        if ticks_us is None:
            raise OSError("this firmware has no time.ticks_us: the sampler needs a microsecond clock")
        if rate_hz is None:
            rate_hz = source.rate_hz
            if rate_hz is None:
                raise ValueError("give rate_hz: the source has no rate of its own")
        if not 0 < rate_hz <= 1000000:
            raise ValueError("rate_hz must be in (0, 1000000], not %r" % (rate_hz,))
        window = int(window)
        hop = int(hop)
        if window < 1 or hop < 1:
            raise ValueError("window and hop must be at least 1 sample")
        ring = 4 * window if ring is None else int(ring)
        if ring < window + 2:
            raise ValueError("ring (%d samples) must hold a window (%d) and 2 more" % (ring, window))
        self.source = source
        self.channels = C = source.channels
        self.rate_hz = rate_hz
        self.window = window
        self.hop = hop
        self.ring = ring
        self.mode, self._Timer = _driver(mode)
        self._timer_id = timer_id
        self._buf = array("h", bytes(2 * ring * C))
        self._win = array("h", bytes(2 * window * C))
        # The period as whole microseconds plus a remainder (in units of
        # 1/rate_mhz us), so that non-integer periods do not drift and nothing
        # on the sampling path needs a float (floats are heap objects here).
        mhz = int(rate_hz * 1000 + 0.5)
        self._den = mhz
        self._per = 1000000000 // mhz
        self._rem = 1000000000 % mhz
        if self._per < 1:
            raise ValueError("rate_hz too high for a microsecond clock")
        self._timer = None
        self._tick_cb = self._tick
        self._running = False
        self._thread_on = False
        self.cost_us = None
        self.max_rate_hz = None
        self._reset()

    def _reset(self):
        self.count = 0
        self._wo = 0
        self._valid = 0  # first index whose ring slot holds real data
        self._lost = 0  # samples dropped, counted when a consumer noticed
        self._missed = 0  # samples skipped because sampling fell behind
        self._next = 0  # next window's first sample
        self._delivered = 0  # end of the last window delivered
        self._rd = 0  # next sample for read()
        self.read_first = 0
        self._stream = False
        self.window_start = -1
        self._ended = False
        self._error = None
        self._clear_stats()

    def _clear_stats(self):
        self._late = 0
        self._jit = 0
        self._n0 = self.count
        self._m0 = self._missed
        self._t0 = None
        self._last = None

    # -- the sampling path: called per sample, allocates nothing ------------------------------

    def _take(self, now):
        # One sample at time `now` for the schedule slot self._due.
        src = self.source
        if not src.read_into(self._buf, self._wo):
            self._ended = True
            return False
        wo = self._wo + self.channels
        if wo >= len(self._buf):
            wo = 0
        self._wo = wo
        self.count += 1
        late = ticks_diff(now, self._due)
        if late > self._late:
            self._late = late
        last = self._last
        if last is None:
            self._t0 = now
        else:
            d = ticks_diff(now, last) - self._per
            if d < 0:
                d = -d
            if d > self._jit:
                self._jit = d
        self._last = now
        due = ticks_add(self._due, self._per)
        f = self._frac + self._rem
        if f >= self._den:
            f -= self._den
            due = ticks_add(due, 1)
        self._frac = f
        self._due = due
        return True

    def _take_due(self):
        # Every sample whose time has come (half a period early counts: a
        # timer's clock and ticks_us need not agree to the microsecond).
        # At most a ring per call: when a sample costs more than a
        # period (a starved emulator, an overloaded board) the loop would
        # never catch up and never return to the program; the next call goes
        # on, and what falls a ring behind is skipped and counted.
        now = ticks_us()
        early = self._per >> 1
        budget = self.ring
        while ticks_diff(now, self._due) >= -early:
            if self._ended:
                return
            behind = ticks_diff(now, self._due) // self._per
            if behind > self.ring:
                self._skip(behind - (self.ring >> 1))
            if not self._take(now):
                return
            budget -= 1
            if budget <= 0:
                return
            now = ticks_us()

    def _skip(self, k):
        # Hopelessly behind: samples older than a ring would be overwritten
        # before anyone read them. Skip them, count them, and keep a replay's
        # position in step with the clock.
        src = self.source
        skip = getattr(src, "skip", None)
        if skip is not None:
            if not getattr(src, "loop", True):
                # A finite recording: no skipping past its end (those samples never existed).
                k = min(k, src.n_samples - src.tell())
                if k <= 0:
                    return
            skip(k)
        self.count += k
        self._missed += k
        self._valid = self.count
        self._wo = (self.count % self.ring) * self.channels
        self._due = ticks_add(self._due, k * self._per + (k * self._rem) // self._den)

    def _tick(self, _t):
        # Timer callback (soft: runs from the scheduler).
        try:
            self._take_due()
        except Exception as e:  # an I2C error...: keep it for the consumer
            self._error = e
        if self._ended or self._error is not None:
            self._stop_driver()

    def _run(self):
        # The 'thread' driver. time.sleep() is the unix port's only sleep that
        # lets the other thread run; its float arguments come from a table
        # made in start(), so the loop allocates nothing.
        import time

        sleeps = self._sleeps
        try:
            while self._running:
                self._take_due()
                if self._ended:
                    break
                wait = ticks_diff(self._due, ticks_us())
                i = len(sleeps) - 1
                while wait > 16 and self._running:
                    while i > 0 and (16 << i) > wait:
                        i -= 1
                    time.sleep(sleeps[i])
                    wait = ticks_diff(self._due, ticks_us())
        except Exception as e:
            self._error = e
        self._thread_on = False

    # -- control -------------------------------------------------------------------------------

    def calibrate(self, n=8, rounds=4):
        """Per-sample cost in us (the best of `rounds` runs of n samples) and the
        highest rate this board can sustain with it; sets cost_us, max_rate_hz.

        Reads from the source and puts a replay back where it was.
        """
        src = self.source
        tell = getattr(src, "tell", None)
        pos = tell() if tell is not None else None
        best = None
        for _ in range(rounds):
            self._due = ticks_us()
            self._frac = 0
            self._last = None
            t = ticks_us()
            for _ in range(n):
                self._take(t)
            t = ticks_diff(ticks_us(), t)
            if best is None or t < best:
                best = t
        if pos is not None:
            src.seek(pos)
        self._reset()
        cost = max(1, (best + n - 1) // n)
        self.cost_us = cost
        top = 1000000 // (cost * LOAD)
        smax = getattr(src, "max_rate_hz", None)
        if smax is not None and smax < top:
            top = smax
        self.max_rate_hz = top
        return cost, top

    def start(self):
        """Calibrate (refusing a rate the board cannot sustain) and start sampling."""
        if self._running:
            return
        self.calibrate()
        if self.rate_hz > self.max_rate_hz:
            raise ValueError(
                "%s Hz is more than this board can sustain: one sample of %d channel(s) costs %d us here, "
                "so at most %d Hz (sampling may take half the CPU); lower the rate or the channels"
                % (self.rate_hz, self.channels, self.cost_us, self.max_rate_hz))
        self._reset()
        self._frac = 0
        self._due = ticks_us()
        self._running = True
        if self.mode == "timer":
            T = self._Timer
            tid = self._timer_id
            try:
                t = T(-1 if tid is None else tid)
            except (ValueError, OSError):
                if tid is not None:
                    raise
                t = T(0)
            self._timer = t
            t.init(freq=self.rate_hz, mode=T.PERIODIC, callback=self._tick_cb)
        elif self.mode == "thread":
            import _thread

            self._sleeps = [(16 << i) / 1000000 for i in range(17)]
            self._thread_on = True
            _thread.start_new_thread(self._run, ())

    def _stop_driver(self):
        t = self._timer
        if t is not None:
            t.deinit()
            self._timer = None
        self._running = False

    def stop(self):
        """Stop sampling; samples already in the ring can still be read."""
        self._stop_driver()
        if self.mode == "thread":
            import time

            while self._thread_on:
                time.sleep(0.001)

    def poll(self):
        """Take the samples that are due (poll mode; harmless in the others)."""
        if self._running and self.mode == "poll":
            self._take_due()
            if self._ended:
                self._running = False

    # -- consumers -----------------------------------------------------------------------------

    def _oldest(self):
        # First sample index still intact in the ring. One slot of margin: a
        # producer in another thread or a hard IRQ may be writing the next one.
        o = self.count - self.ring + 1
        return o if o > self._valid else self._valid

    def _copy_out(self, dst, first, n):
        C = self.channels
        R = self.ring
        slot = first % R
        k = R - slot
        if k > n:
            k = n
        _copy16(dst, 0, self._buf, slot * C, k * C)
        if n > k:
            _copy16(dst, k * C, self._buf, 0, (n - k) * C)

    def _check(self):
        if self._error is not None:
            e = self._error
            self._error = None
            raise e

    def _wait(self):
        import time

        if self.mode == "thread":
            time.sleep(0.0005)  # releases the GIL; sleep_ms on unix would not
        elif self.mode == "poll":
            w = ticks_diff(self._due, ticks_us())
            if w > 1000:
                w = 1000
            if w > 0:
                time.sleep_us(w)
        else:
            time.sleep_ms(1)  # runs pending timer callbacks while it waits

    @property
    def dropped(self):
        """Samples the consumer will never get: overwritten in the ring or skipped."""
        need = self._rd if self._stream else (self._next if self._next > self._delivered else self._delivered)
        o = self._oldest()
        return self._lost + (o - need if o > need else 0)

    def next_window(self, timeout_ms=None):
        """The next window (array('h'), window*channels, interleaved; reused), or None
        on timeout or when the source has ended. s.window_start is its first index.
        """
        self._stream = False
        W = self.window
        hop = self.hop
        t0 = ticks_ms()
        while True:
            self.poll()
            self._check()
            s = self._next
            o = self._oldest()
            if s < o:
                ns = s + ((o - s + hop - 1) // hop) * hop
                got = s if s > self._delivered else self._delivered
                if ns > got:
                    self._lost += ns - got
                self._next = s = ns
            if self.count >= s + W:
                self._copy_out(self._win, s, W)
                if self.count - s >= self.ring:
                    continue  # overwritten while copying (hard IRQ producer)
                self.window_start = s
                self._delivered = s + W
                self._next = s + hop
                return self._win
            if self._ended or not self._running:
                if self.count >= s + W:
                    continue  # the producer took the last samples after the check above
                return None
            if timeout_ms is not None and ticks_diff(ticks_ms(), t0) >= timeout_ms:
                return None
            self._wait()

    def read(self, buf):
        """Copy up to len(buf)//channels new samples into buf (array('h')); returns
        (n, index of the first). A jump in the index is a gap: s.dropped counts it.
        """
        n = self.readinto(buf)
        return n, self.read_first

    def readinto(self, buf):
        """read() without the tuple (nothing allocated): returns n; the index of
        the first sample copied is s.read_first."""
        self._stream = True
        C = self.channels
        while True:
            self.poll()
            self._check()
            r = self._rd
            o = self._oldest()
            if r < o:
                self._lost += o - r
                r = o
            n = self.count - r
            m = len(buf) // C
            if n > m:
                n = m
            if n > 0:
                self._copy_out(buf, r, n)
                if self.count - r >= self.ring:
                    self._rd = r
                    continue
            self._rd = r + n
            self.read_first = r
            return n

    @property
    def ended(self):
        """True once a finite source (a replay without loop) has no more samples."""
        return self._ended

    def stats(self, reset=False):
        """Measured rate and timing since start (or the last reset=True):
        rate_hz (samples taken per second), jitter_us (largest |interval - period|),
        late_us (largest lateness against the schedule), dropped, missed (skipped
        because sampling fell behind; part of dropped), count, mode, cost_us, max_rate_hz.
        """
        n = self.count - self._n0 - (self._missed - self._m0)
        rate = None
        if self._t0 is not None and self._last is not None and n > 1:
            dt = ticks_diff(self._last, self._t0)
            if dt > 0:
                rate = (n - 1) * 1000000 / dt
        d = {"rate_hz": rate, "jitter_us": self._jit, "late_us": self._late, "dropped": self.dropped,
             "missed": self._missed, "count": self.count, "mode": self.mode,
             "target_hz": self.rate_hz, "cost_us": self.cost_us, "max_rate_hz": self.max_rate_hz}
        if reset:
            self._clear_stats()
        return d

    def close(self):
        """Stop and close the source."""
        self.stop()
        self.source.close()
