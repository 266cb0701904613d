# The board's end of `mpml collect`: a Sampler's samples streamed to the host
# as framed binary on the USB serial link, inside one raw-REPL exec (host:
# mpml.device.collect, which parses, checks and writes the dataset).
#
#   import mpml.collect as C
#   C.stream(sampler, seconds=10)     # until 10 s of samples went out, or Ctrl-C
#
# A frame, little-endian (docs/collect.md):
#   0  2  magic A5 5A
#   2  1  kind: 'H' header, 'D' data, 'S' status, 'E' end
#   3  1  channels ('D'), 0 otherwise
#   4  4  sequence number, 0, 1, 2... over every frame of the stream
#   8  4  'D': absolute index of the first sample (Sampler.read); else samples sent so far
#   12 2  samples in the frame ('D'), 0 otherwise
#   14 2  payload bytes: 'D' samples*channels*2 int16 interleaved; else JSON
#   16 .. payload
#   .. 2  CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of bytes 2.. (all but the magic and itself)
#
# Data frames are built in one preallocated array and written with one call:
# no allocation per frame (status frames, once a second, do allocate). The
# stream ends after `seconds` of samples, on Ctrl-C (KeyboardInterrupt) or an
# error; the sampler is stopped and an 'E' frame sent in every case, so the
# REPL is usable afterwards.
import sys
import struct
import micropython
from array import array

try:
    from time import sleep_ms
except ImportError:  # the qemu port without the virtual boards' time: spin
    sleep_ms = None

MAGIC = b"\xa5\x5a"
HEAD = "<2sBBIIHH"
HEAD_SIZE = 16
MAX_PAYLOAD = 2040  # a frame stays under 2 KiB: one atomic pipe write on the unix board
K_HEADER, K_DATA, K_STATUS, K_END = 72, 68, 83, 69  # 'H' 'D' 'S' 'E'
VERSION = 1

_T = None
_active = None  # the sampler being streamed, for active()


def _table():
    global _T
    if _T is None:
        t = array("H", bytes(512))
        for i in range(256):
            c = i << 8
            for _ in range(8):
                c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
            t[i] = c & 0xFFFF
        _T = t
    return _T


@micropython.viper
def _crc(buf, end: int, table) -> int:
    # CRC-16/CCITT-FALSE of buf[2:end], table-driven: about 10 instructions a byte.
    p = ptr8(buf)
    t = ptr16(table)
    crc = 0xFFFF
    i = 2
    while i < end:
        crc = ((crc << 8) ^ t[((crc >> 8) ^ p[i]) & 0xFF]) & 0xFFFF
        i += 1
    return crc


def crc16(data):
    """CRC-16/CCITT-FALSE of `data` (as the frames carry it; for tests)."""
    b = bytearray(2) + bytearray(data)
    return _crc(b, len(b), _table())


def active():
    """True while a stream runs, or when one ended without stopping its sampler."""
    return _active is not None


def _out():
    # Ports without sys.stdout.buffer (the qemu port) turn LF into CR LF in
    # sys.stdout.write: the host undoes it (the header says 'cooked').
    b = getattr(sys.stdout, "buffer", None)
    return (b, False) if b is not None else (sys.stdout, True)


class _Writer:
    def __init__(self, channels, frame_samples):
        self.out, self.cooked = _out()
        self.ch = channels
        # One int16 array holds a whole data frame: 8 items of header, the
        # samples, one item of CRC, so Sampler.read fills it in place.
        self.frame = array("h", bytes(HEAD_SIZE + frame_samples * channels * 2 + 2))
        self.payload = memoryview(self.frame)[HEAD_SIZE // 2:HEAD_SIZE // 2 + frame_samples * channels]
        self.text = bytearray(HEAD_SIZE + MAX_PAYLOAD + 2)
        self.seq = 0
        self.table = _table()

    def data(self, first, n, corrupt=False):
        f = self.frame
        size = n * self.ch * 2
        struct.pack_into(HEAD, f, 0, MAGIC, K_DATA, self.ch, self.seq, first, n, size)
        end = HEAD_SIZE + size
        struct.pack_into("<H", f, end, _crc(f, end, self.table))
        if corrupt:  # test hook: a byte flipped after the CRC, as a noisy link would
            f[HEAD_SIZE // 2] ^= 0x40
        self.out.write(f, end + 2)
        if corrupt:
            f[HEAD_SIZE // 2] ^= 0x40
        self.seq += 1

    def json(self, kind, count, obj):
        import json
        data = json.dumps(obj).encode()
        if len(data) > MAX_PAYLOAD:
            data = json.dumps({"truncated": True}).encode()
        t = self.text
        struct.pack_into(HEAD, t, 0, MAGIC, kind, 0, self.seq, count, 0, len(data))
        end = HEAD_SIZE + len(data)
        t[HEAD_SIZE:end] = data
        struct.pack_into("<H", t, end, _crc(t, end, self.table))
        self.out.write(t, end + 2)
        self.seq += 1


def _stats(sampler):
    try:
        d = sampler.stats()
    except Exception as e:
        d = {"error": repr(e)}
    return d


def _waiter(sampler, ms):
    # Sleep about a quarter of a frame while samples come. The unix port's
    # sampling thread only runs while this one is in time.sleep() (sleep_ms
    # keeps the GIL); a timer's soft callbacks run during sleep_ms.
    if getattr(sampler, "mode", None) == "thread":
        import time
        s = ms / 1000  # made once: a float is a heap object

        def wait():
            time.sleep(s)
        return wait
    if sleep_ms is not None:
        def wait():
            sleep_ms(ms)
        return wait
    return lambda: None


def frame_samples_for(rate_hz, channels, period_ms=50):
    """Samples per data frame: about `period_ms` of them, at most MAX_PAYLOAD bytes."""
    n = int(rate_hz * period_ms // 1000) if rate_hz else 16
    return max(1, min(n, MAX_PAYLOAD // (2 * channels)))


def stream(sampler, seconds=None, source=None, frame_samples=None, status_s=1.0, info=None,
           _corrupt=None, _stall=None):
    """Stream `sampler`'s samples to the host as frames on stdout; returns the end frame's dict.

    Ends after round(seconds * rate) samples (`seconds` None: never), on
    Ctrl-C, or on an error (re-raised after the end frame). `source` (default
    sampler.source) gives channel names, units and scale to the header;
    `info`, a dict, is added to it. Test hooks: `_corrupt` = sequence number of
    a data frame sent with a flipped byte; `_stall` = (after_frame, waits) to stop
    reading the sampler for that many idle waits (its ring overflows).
    """
    global _active
    ch = sampler.channels
    rate = getattr(sampler, "rate_hz", None) or 0
    src = source if source is not None else getattr(sampler, "source", None)
    fs = frame_samples or frame_samples_for(rate, ch)
    fs = max(1, min(fs, MAX_PAYLOAD // (2 * ch)))
    limit = None if seconds is None else int(seconds * rate + 0.5)
    w = _Writer(ch, fs)
    head = {"v": VERSION, "channels": ch, "rate_hz": rate, "frame_samples": fs, "cooked": w.cooked,
            "limit": limit, "platform": sys.platform}
    if src is not None:
        for k in ("names", "units", "scale"):
            v = getattr(src, k, None)
            if v is not None:
                head[k] = list(v)
    if info:
        head.update(info)
    status_every = max(1, int(rate * status_s / fs + 0.5)) if rate else 20
    payload = w.payload
    poll = getattr(sampler, "poll", None)
    wait = _waiter(sampler, max(1, min(10, int(fs * 250 / rate))) if rate else 1)
    sent = 0
    frames = 0
    n = first = seq = 0
    nxt = 0  # the index the next data frame should start at
    gaps = 0  # samples the sampler dropped (seen as jumps in its indices)
    reason = "error"
    last = None  # a short last frame reads into its own view (one allocation)
    pending = False
    w.json(K_HEADER, 0, head)
    _active = sampler
    try:
        sampler.start()
        nxt = 0  # Sampler indices count from its start
        # `seconds` is a span of sample indices: samples the board dropped in it count.
        end = None if limit is None else nxt + limit
        while True:
            want = fs
            if end is not None:
                if nxt >= end:
                    reason = "seconds"
                    break
                if end - nxt < fs:
                    want = end - nxt
            if _stall is not None and frames == _stall[0]:
                t = _stall[1]
                _stall = None
                while t > 0:  # the sampler keeps sampling meanwhile: its ring overflows
                    wait()
                    t -= 1
            if sampler.count - nxt < want:
                if poll is not None:
                    poll()
                avail = sampler.count - nxt
                if avail < want:
                    if getattr(sampler, "ended", False):
                        # A finite source (a replay) ran out: send what is left, then end.
                        if avail <= 0:
                            reason = "ended"
                            break
                        want = avail
                    else:
                        wait()
                        continue
            if want == fs:
                n, first = sampler.read(payload)
            else:
                if last is None or len(last) != want * ch:
                    last = payload[:want * ch]
                n, first = sampler.read(last)
            if n == 0:
                continue
            if first > nxt:
                # The sampler's ring overflowed: these samples are gone (the host sees the jump).
                gaps += (first if end is None or first < end else end) - nxt
            if end is not None and first + n > end:
                n = end - first
                if n <= 0:
                    nxt = end
                    reason = "seconds"
                    break
            pending = True
            seq = w.seq
            w.data(first, n, seq == _corrupt)
            pending = False
            nxt = first + n
            sent += n
            frames += 1
            if frames % status_every == 0:
                st = _stats(sampler)
                st["sent"] = sent
                w.json(K_STATUS, sent, st)
        return _end(w, sampler, reason, sent, gaps, None, nxt)
    except KeyboardInterrupt:
        if pending:
            # Interrupted around the frame's write: send it again, whole. The
            # host drops a cut copy by its CRC and a repeated one by its index.
            w.out.write(w.frame, HEAD_SIZE + n * ch * 2 + 2)
            if w.seq == seq:
                w.seq += 1
            sent += n
        return _end(w, sampler, "interrupted", sent, gaps, None, nxt)
    except Exception as e:
        _end(w, sampler, "error", sent, gaps, repr(e), nxt)
        raise


def _end(w, sampler, reason, sent, gaps, error, nxt):
    # Stop the sampler and send the end frame, even through more Ctrl-Cs (a
    # host that opens the board sends two).
    global _active
    for _ in range(5):
        try:
            sampler.stop()
            break
        except KeyboardInterrupt:
            pass
        except Exception as e:
            if error is None:
                error = "stop: " + repr(e)
            break
    _active = None
    d = {"reason": reason, "sent": sent, "gaps": gaps, "next": nxt}
    if error is not None:
        d["error"] = error
    for _ in range(3):
        try:
            d["stats"] = _stats(sampler)
            w.json(K_END, sent, d)
            break
        except KeyboardInterrupt:
            pass
    return d
