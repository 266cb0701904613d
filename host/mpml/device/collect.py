"""`mpml collect`: a board's sampler streamed to a dataset folder on the host.

    r = collect("m0", "wave", out="data/gestures", seconds=10, source="replay:take.i16")
    print(r.line())      # m0: wave-0003 (10000 samples, 10.0 s at 1000 Hz) ... no loss

The board runs `mpml.collect.stream` (firmware/mpml/collect.py) inside one
raw-REPL exec: it writes frames (magic, kind, sequence number, index of the
first sample, sample count, int16 payload, CRC-16) on its stdout, and stops
after `seconds` of samples or on Ctrl-C, which is how the host asks it to
stop. The host reads exactly frame by frame (never past the end of the exec,
so the REPL stays in step), checks each CRC, the sequence numbers and the
sample indices, and appends the samples to a recording file, flushed after
every frame. Nothing is lost silently:

- a sample index that jumps while the sequence numbers do not is the board's
  ring buffer overflowing (the board's `dropped` counts it); a jump with
  frames missing is the link's (a CRC error, bytes lost); either way the
  recording is split there, so no window of the dataset spans a hole, and the
  gap is reported with its sample indices;
- a repeated frame (sent again after a Ctrl-C that cut its write) is dropped
  by its indices;
- a link that drops (cable pulled, board gone) leaves every sample received
  in a valid recording, and the manifest is written on the way out.

The manifest is updated through `mpml.data.io.DatasetAppender` (atomic
rewrite), so collecting adds to an existing dataset folder.
"""

from __future__ import annotations

import ast
import binascii
import json
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mpremote.transport import TransportError

from mpml.data.dataset import DatasetError
from mpml.data.io import MANIFEST, DatasetAppender

from .board import Board, on_each_board, require_runtime
from .connection import BoardError, BoardExecError, Connection
from .sources import SourceError, SourceSpec, parse_source

__all__ = ["CollectError", "CollectResult", "Gap", "LiveLine", "board_code", "collect", "collect_all", "receive"]

MAGIC = b"\xa5\x5a"
HEAD = struct.Struct("<2sBBIIHH")
MAX_PAYLOAD = 2040
KINDS = {ord("H"): "H", ord("D"): "D", ord("S"): "S", ord("E"): "E"}
EOT = b"\x04"


class CollectError(BoardError):
    """Collecting could not start or went wrong; the message says why and what to do."""


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, as the board computes it (mpml.collect._crc)."""
    return binascii.crc_hqx(data, 0xFFFF)


# -- what came out ----------------------------------------------------------------------------------

@dataclass
class Gap:
    """Samples [start, start + count) (the board's absolute indices) that did not arrive."""

    start: int
    count: int
    cause: str  # "board": its ring buffer overflowed; "link": frames lost or corrupted on the way

    def __str__(self) -> str:
        why = "board ring overflow" if self.cause == "board" else "lost on the link"
        return f"samples {self.start}..{self.start + self.count - 1} ({self.count}, {why})"


@dataclass
class CollectResult:
    """One board's recording: what was written, and everything that went wrong on the way."""

    board: str
    label: str
    dataset: Path
    recordings: list[str] = field(default_factory=list)  # recording names (file stems), one per segment
    samples: int = 0              # samples written
    rate_hz: float = 0.0          # the rate asked for
    channels: int = 0
    board_rate_hz: float | None = None  # the rate the board measured
    dropped: int = 0              # the board's ring-overflow count
    gaps: list[Gap] = field(default_factory=list)
    crc_errors: int = 0
    repeats: int = 0              # frames received twice (dropped)
    frames: int = 0
    seconds: float = 0.0          # wall time on the host
    end: str = ""                 # "seconds", "interrupted", "error", "link lost"
    error: str | None = None
    printed: str = ""             # anything the board printed outside frames

    @property
    def lost(self) -> int:
        return sum(g.count for g in self.gaps)

    @property
    def ok(self) -> bool:
        """Every sample from the first to the last arrived, once, and the board ended cleanly."""
        return not self.gaps and not self.crc_errors and self.end in ("seconds", "ended", "interrupted") \
            and not self.dropped

    def line(self) -> str:
        names = ", ".join(self.recordings) or "nothing written"
        dur = self.samples / self.rate_hz if self.rate_hz else 0
        s = f"{self.board}: {self.label} -> {self.dataset}/{names} ({self.samples} samples, {dur:.1f} s at " \
            f"{self.rate_hz:g} Hz"
        if self.board_rate_hz:
            s += f", board measured {self.board_rate_hz:.1f} Hz"
        s += ")"
        if self.ok:
            return s + ", no loss"
        probs = []
        if self.gaps:
            shown = "; ".join(str(g) for g in self.gaps[:3]) + ("; ..." if len(self.gaps) > 3 else "")
            probs.append(f"{len(self.gaps)} gap{'s' * (len(self.gaps) > 1)}: {shown}")
        if self.dropped:
            probs.append(f"board dropped {self.dropped} samples (ring overflow: lower --rate)")
        if self.crc_errors:
            probs.append(f"{self.crc_errors} CRC error{'s' * (self.crc_errors > 1)}")
        if self.end == "link lost":
            probs.append(f"link lost: {self.error}; what arrived is kept")
        elif self.end == "error":
            probs.append(f"board error: {self.error}")
        return s + "; " + "; ".join(probs)


# -- reading the link ---------------------------------------------------------------------------------

class LinkLost(Exception):
    pass


class _Link:
    """Exact reads from the board's port: never past what is asked (the raw REPL's '>' stays unread).

    `cooked`: the board's stdout turns LF into CR LF (ports without
    sys.stdout.buffer); every CR before an LF is removed. `idle()` is called
    while waiting and may raise.
    """

    def __init__(self, serial, cooked: bool, idle: Callable[[], None]):
        self.serial = serial
        self.cooked = cooked
        self.idle = idle
        self.buf = bytearray()   # decoded bytes read ahead, or pushed back
        self.cr = False          # cooked: a CR whose next byte is not read yet
        self.bytes_in = 0

    def unread(self, data: bytes) -> None:
        self.buf[:0] = data

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            want = n - len(self.buf)
            try:
                raw = self.serial.read(min(max(want, 1), 65536))
            except (OSError, TypeError, AttributeError) as e:  # SerialException is an OSError; a closed port
                raise LinkLost(str(e) or type(e).__name__) from None
            if not raw:
                self.idle()
                continue
            self.bytes_in += len(raw)
            if self.cooked:
                if self.cr:
                    raw = b"\r" + raw
                    self.cr = False
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                    self.cr = True
                raw = raw.replace(b"\r\n", b"\n")
            self.buf += raw
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


# -- the receiver -------------------------------------------------------------------------------------

class _Segment:
    def __init__(self, path: Path, stem: str, first: int):
        self.path, self.stem, self.first = path, stem, first
        self.f = open(path, "ab")
        self.n = 0


class _Sink:
    """Samples into recording files, a new one after each gap; entered in the manifest at the end."""

    def __init__(self, appender: DatasetAppender, label: str, subject: str, metadata: dict):
        self.app, self.label, self.subject, self.metadata = appender, label, subject, metadata
        self.segments: list[_Segment] = []
        self.cur: _Segment | None = None

    def write(self, first: int, payload: bytes, n: int, split: bool) -> None:
        if self.cur is None or split:
            if self.cur is not None:
                self.cur.f.close()
            path, stem = self.app.new_file(self.label)
            self.cur = _Segment(path, stem, first)
            self.segments.append(self.cur)
        self.cur.f.write(payload)
        self.cur.f.flush()  # a link that drops now leaves whole samples on disk
        self.cur.n += n

    def finish(self, extra: dict) -> list[str]:
        names = []
        take = self.segments[0].stem if self.segments else None
        for k, seg in enumerate(self.segments):
            seg.f.close()
            meta = dict(self.metadata, first_sample=seg.first, **extra)
            if len(self.segments) > 1:
                meta.update(take=take, segment=k)
            if self.app.add(seg.path, self.label, self.subject, meta):
                names.append(seg.stem)
        return names


@dataclass
class _State:
    header: dict | None = None
    channels: int | None = None
    next_seq: int = 0
    next_index: int = 0  # the sampler's indices start at 0 with the stream
    clean: bool = True   # between good frames (not resynchronising after a bad one)
    end: dict | None = None
    status: dict = field(default_factory=dict)


def receive(conn: Connection, code: str, sink_factory: Callable[[dict], _Sink], *, result: CollectResult,
            cooked: bool, stop: threading.Event | None = None, abort: threading.Event | None = None,
            on_frame: Callable[[CollectResult, _State], None] | None = None,
            on_samples: Callable[[CollectResult, int, bytes], None] | None = None,
            first_timeout: float = 20.0, stall_timeout: float = 10.0,
            after_frame: Callable[[int], None] | None = None) -> CollectResult:
    """Run `code` (which calls mpml.collect.stream) on the board and take its frames into a sink.

    `sink_factory(header)` is called at the header frame (it may raise to
    refuse: the board is then stopped). `stop` set: Ctrl-C goes to the board,
    which ends the stream cleanly; `abort` set: stop reading at once (the
    board is left streaming until the next connection's Ctrl-C).
    `on_samples(result, first, int16 bytes)` sees every run of samples
    written (a live plot). The result is filled in place and returned;
    a dropped link ends it with `end == "link lost"` (raised only when nothing
    arrived). `after_frame(frames)` is a test hook (e.g. to close the port).
    """
    t0 = time.monotonic()
    conn.enter_raw_repl()
    serial = conn.transport.serial
    serial.timeout = max(1, first_timeout)
    try:
        conn.transport.exec_raw_no_follow(code)
    except TransportError as e:
        conn._in_raw = False
        raise conn._fail("no answer from the board", e) from None
    except OSError as e:
        conn._in_raw = False
        raise CollectError(f"{result.board}: the link dropped before collecting started ({e})") from None
    serial.timeout = 0.1
    st = _State()
    last_rx = [time.monotonic()]
    stop_sent = [0.0]
    sink: list[_Sink | None] = [None]

    def check() -> None:
        if abort is not None and abort.is_set():
            raise LinkLost("abandoned on the host (the board may still be streaming: the next command stops it)")
        if stop is not None and stop.is_set() and not stop_sent[0]:
            try:
                serial.write(b"\x03")
            except (OSError, TypeError, AttributeError) as e:
                raise LinkLost(str(e)) from None
            stop_sent[0] = time.monotonic()

    def idle() -> None:
        check()
        now = time.monotonic()
        limit = first_timeout if st.header is None else stall_timeout
        if stop_sent[0]:
            limit = max(limit, 5.0)
            since = now - max(last_rx[0], stop_sent[0])
        else:
            since = now - last_rx[0]
        if since > limit:
            raise LinkLost(f"the board sent nothing for {since:.0f} s")
        if on_frame:
            on_frame(result, st)

    link = _Link(serial, cooked, idle)
    printed = bytearray()
    err_text = None

    def read(n: int) -> bytes:
        d = link.read(n)
        last_rx[0] = time.monotonic()
        return d

    try:
        while True:
            b = read(1)
            if b == MAGIC[:1]:
                b2 = read(1)
                if b2 != MAGIC[1:]:
                    link.unread(b2)
                    _junk(st, printed, b)
                    continue
                head = read(HEAD.size - 2)
                _, kind, ch, seq, first, n, size = HEAD.unpack(MAGIC + head)
                if not _plausible(st, kind, ch, n, size):
                    _bad_frame(st, result, link, b2 + head)
                    continue
                rest = read(size + 2)
                body, (crc,) = rest[:size], struct.unpack("<H", rest[size:])
                if crc16(head + body) != crc:
                    _bad_frame(st, result, link, b2 + head + rest)
                    continue
                st.clean = True
                k = KINDS[kind]
                if k == "D":
                    _data(st, result, sink, sink_factory, seq, first, n, ch, body, on_samples)
                else:
                    obj = _json(body)
                    if seq < st.next_seq:
                        result.repeats += 1
                        continue
                    in_step = seq == st.next_seq  # no frame lost before this one
                    st.next_seq = seq + 1
                    if k == "H":
                        st.header = obj
                        st.channels = int(obj.get("channels") or 0) or None
                        result.rate_hz = float(obj.get("rate_hz") or 0)
                        if sink[0] is None:
                            try:
                                sink[0] = sink_factory(obj)
                            except BaseException:
                                # Refused (an incompatible dataset): stop the board, then say why.
                                try:
                                    serial.write(b"\x03")
                                    _drain(conn)
                                except Exception:
                                    pass
                                conn._in_raw = False
                                raise
                    elif k == "S":
                        st.status = obj
                        _status(result, obj)
                    else:
                        st.end = obj
                        _status(result, obj.get("stats") or {})
                        # What the board dropped inside the stream (its sampler keeps counting until it
                        # is stopped, after the last sample sent).
                        if "gaps" in obj:
                            result.dropped = int(obj["gaps"])
                        # Samples dropped after the last data frame show only here.
                        tail = int(obj.get("next") or 0) - st.next_index
                        if tail > 0:
                            result.gaps.append(Gap(st.next_index, tail, "board" if in_step else "link"))
                            st.next_index += tail
                        result.end = obj.get("reason", "?")
                        if obj.get("error"):
                            result.error = obj["error"]
                result.frames += 1
                if after_frame is not None:
                    after_frame(result.frames)
                if on_frame:
                    on_frame(result, st)
                check()
            elif b == EOT:
                if not st.clean:
                    # Resynchronising after a bad frame, a 0x04 may be payload: the exec's end is
                    # 0x04 then 0x04 (no error) or a traceback.
                    nxt = read(1)
                    if nxt != EOT:
                        more = read(8)
                        if nxt + more != b"Traceback":
                            link.unread(nxt + more)
                            continue
                        link.unread(nxt + more)
                    else:
                        link.unread(nxt)
                err = bytearray()
                while True:
                    c = read(1)
                    if c == EOT:
                        break
                    err += c
                err_text = err.decode(errors="replace")
                break
            else:
                _junk(st, printed, b)
    except LinkLost as e:
        conn._in_raw = False
        result.end = "link lost"
        result.error = str(e)
    except BaseException:
        conn._in_raw = False
        _close_sink(sink[0], result)
        raise
    finally:
        try:
            serial.timeout = 1
        except Exception:
            pass
    result.printed = bytes(printed).decode(errors="replace")
    result.seconds = time.monotonic() - t0
    _close_sink(sink[0], result)
    if err_text:
        last = err_text.strip().splitlines()[-1] if err_text.strip() else "error"
        if "KeyboardInterrupt" in last and result.frames:
            result.end = result.end or "interrupted"  # a Ctrl-C that came after the stream's own handler
        elif result.frames == 0 or st.end is None or result.end == "error":
            raise _board_error(result, err_text, last)
        else:
            result.error = result.error or last
    elif st.end is None and result.end != "link lost":
        result.end = "incomplete"  # the exec ended without the end frame (it was lost)
    if result.end == "link lost" and result.frames == 0:
        raise CollectError(f"{result.board}: the link dropped before any frame arrived ({result.error})")
    return result


def _board_error(result: CollectResult, err_text: str, last: str) -> CollectError:
    msg = f"{result.board}: {last}"
    if result.samples:
        msg += f" (after {result.samples} samples, kept in {result.dataset}: {', '.join(result.recordings)})"
    e = CollectError(msg)
    e.traceback = err_text  # type: ignore[attr-defined]
    e.result = result  # type: ignore[attr-defined]
    return e


def _drain(conn: Connection) -> None:
    """Read to the end of the exec after a Ctrl-C (the board sends its end frame and the REPL's trailer)."""
    serial = conn.transport.serial
    serial.timeout = 0.2
    deadline = time.monotonic() + 5
    seen = bytearray()
    while time.monotonic() < deadline:
        seen += serial.read(max(1, serial.in_waiting))
        if seen.endswith(b"\x04>") or (seen.count(b"\x04") >= 2 and seen.endswith(b">")):
            return
    conn._in_raw = False


def _close_sink(sink: _Sink | None, result: CollectResult) -> None:
    if sink is None or getattr(sink, "closed", False):
        return
    sink.closed = True  # type: ignore[attr-defined]
    extra = {"end": result.end or "?"}
    if result.board_rate_hz:
        extra["board_rate_hz"] = round(result.board_rate_hz, 3)
    if result.dropped:
        extra["board_dropped"] = result.dropped
    if result.gaps:
        extra["gaps"] = [[g.start, g.count, g.cause] for g in result.gaps]
    result.recordings = sink.finish(extra)


def _junk(st: _State, printed: bytearray, b: bytes) -> None:
    if st.clean:
        printed += b


def _plausible(st: _State, kind: int, ch: int, n: int, size: int) -> bool:
    k = KINDS.get(kind)
    if k is None or size > MAX_PAYLOAD:
        return False
    if k == "D":
        if ch == 0 or size != n * ch * 2 or (st.channels is not None and ch != st.channels):
            return False
        fs = (st.header or {}).get("frame_samples")
        return fs is None or n <= fs
    return ch == 0 and n == 0


def _bad_frame(st: _State, result: CollectResult, link: _Link, after_magic: bytes) -> None:
    # Rescan from the byte after this frame's magic: the next good frame is in there or after it.
    result.crc_errors += 1
    st.clean = False
    link.unread(after_magic)


def _json(body: bytes) -> dict:
    try:
        obj = json.loads(body.decode())
        return obj if isinstance(obj, dict) else {}
    except (UnicodeDecodeError, ValueError):
        return {}


def _status(result: CollectResult, stats: dict) -> None:
    if "dropped" in stats:
        result.dropped = int(stats["dropped"])
    if stats.get("rate_hz"):
        result.board_rate_hz = float(stats["rate_hz"])


def _data(st: _State, result: CollectResult, sink, sink_factory, seq: int, first: int, n: int, ch: int,
          body: bytes, on_samples=None) -> None:
    if st.channels is None:
        st.channels = ch
    result.channels = ch
    if sink[0] is None:
        # The header frame was lost: go on with what the data frames say.
        sink[0] = sink_factory({"channels": ch})
    skip = 0
    if first < st.next_index:
        # Sent again (the board resends a frame a Ctrl-C may have cut): keep only what is new.
        skip = min(n, st.next_index - first)
        if skip == n:
            result.repeats += 1
            st.next_seq = max(st.next_seq, seq + 1)
            return
    split = False
    if first > st.next_index:
        cause = "board" if seq == st.next_seq else "link"
        result.gaps.append(Gap(st.next_index, first - st.next_index, cause))
        split = True
    st.next_seq = max(st.next_seq, seq + 1)
    sink[0].write(first + skip, body[skip * ch * 2:], n - skip, split)
    st.next_index = first + n
    result.samples += n - skip
    if on_samples is not None:
        on_samples(result, first + skip, body[skip * ch * 2:])


# -- the board side -----------------------------------------------------------------------------------

_PROBE = """\
import sys, os
import gc
gc.collect()
_r = {'buffer': hasattr(sys.stdout, 'buffer'), 'heap': gc.mem_free()}
try:
    import mpml.collect, mpml.sampler, mpml.sources
    _r['collect'] = True
except ImportError as _e:
    _r['collect'] = repr(_e)
_p = %(path)r
if _p:
    try:
        _r['size'] = os.stat(_p)[6]
    except OSError:
        _r['size'] = -1
    if _r['size'] == %(size)d:
        try:
            import hashlib, binascii
            _h = hashlib.sha256()
            with open(_p, 'rb') as _f:
                while True:
                    _b = _f.read(1024)
                    if not _b:
                        break
                    _h.update(_b)
            _r['sha'] = binascii.hexlify(_h.digest()).decode()
        except ImportError:
            pass
print(repr(_r))
"""

_RUN = """\
from mpml.sources import *
import mpml.collect as _C
from mpml.sampler import Sampler as _Sm
_src = %(source)s
try:
    _s = _Sm(_src, %(rate)r, window=16, hop=16, ring=%(ring)d)
    _C.stream(_s, %(seconds)r, source=_src, info=%(info)r%(hooks)s)
finally:
    _src.close()
"""


def ring_for(rate: float | None, channels: int | None, free_heap: int | None = None) -> int:
    """The sampler's ring for collecting: a second of samples (the longest stall of the board's loop
    it absorbs: a qemu board on a loaded host stalls for hundreds of ms), at least 256, in at most an
    eighth of the board's free heap (the m3 board could not allocate 12 KB at once)."""
    n = max(256, int(rate or 0))
    if channels and free_heap:
        n = min(n, free_heap // 8 // (2 * channels))
    return max(256, n)


def board_code(spec: SourceSpec, rate: float | None, seconds: float | None, info: dict | None = None,
               hooks: str = "", ring: int | None = None, free_heap: int | None = None) -> str:
    """The exec that streams `spec`'s source from the board (mpml.collect.stream)."""
    return _RUN % {"source": spec.code, "rate": rate, "seconds": seconds, "info": info or {},
                   "ring": ring or ring_for(rate, spec.channels, free_heap), "hooks": hooks}


# -- the command's API --------------------------------------------------------------------------------

def _prepare(b: Board, spec: SourceSpec) -> dict:
    """Check the runtime, find how the board writes binary, and put a replay file in place."""
    import hashlib

    require_runtime(b, native=False)
    local, board_path = spec.upload or (None, None)
    if local is None and spec.kind == "replay":
        board_path = spec.code.split("'")[1] if "'" in spec.code else None
    data = Path(local).read_bytes() if local is not None else None
    out = b.conn.exec(_PROBE % {"path": board_path, "size": len(data) if data is not None else -2})
    probe = ast.literal_eval(out.strip().splitlines()[-1])
    if probe.get("collect") is not True:
        raise CollectError(f"{b.name}: the mpml runtime there cannot collect ({probe.get('collect')}): update it "
                           f"with `mpml install --port {b.port_hint()}`")
    if data is not None:
        if spec.channels and len(data) % (2 * spec.channels):
            raise CollectError(f"{local}: {len(data)} bytes is not a whole number of {spec.channels}-channel "
                               f"int16 samples")
        same = probe.get("size") == len(data) and probe.get("sha") in (None, hashlib.sha256(data).hexdigest())
        if not same:
            from .transfer import write_files

            folder = board_path.rsplit("/", 1)[0]
            if folder:
                b.conn.exec(f"import os\ntry:\n    os.mkdir({folder!r})\nexcept OSError:\n    pass\n")
            try:
                write_files(b.conn, {board_path: data})
            except BoardExecError as e:
                raise CollectError(f"{b.name}: could not put {local} on the board as {board_path}: "
                                   f"{e.traceback.strip().splitlines()[-1]}") from None
    elif board_path and probe.get("size", -1) < 0:
        raise CollectError(f"{b.name}: no file {board_path} on the board (give a local file to send it)")
    return probe


def _header_lists(spec: SourceSpec, header: dict, n: int) -> tuple[list[str], list[str], list[float]]:
    names = spec.channel_names or header.get("names") or [f"c{k}" for k in range(n)]
    units = spec.units or header.get("units") or [""] * n
    scale = spec.scale or header.get("scale") or [1.0] * n
    if len(names) != n or len(units) != n or len(scale) != n:
        names, units, scale = [f"c{k}" for k in range(n)], [""] * n, [1.0] * n
    return [str(x) for x in names], [str(x) for x in units], [float(x) for x in scale]


def collect(board, label: str, *, out: str | Path = "dataset", seconds: float | None = None,
            source: str | SourceSpec = "imu", rate: float | None = None, subject: str = "",
            stop: threading.Event | None = None, abort: threading.Event | None = None,
            on_frame: Callable[[CollectResult, object], None] | None = None,
            on_samples: Callable[[CollectResult, int, bytes], None] | None = None,
            appender_lock: threading.Lock | None = None, _code: str | None = None, _hooks: str = "",
            _after_frame: Callable[[int], None] | None = None, ring: int | None = None) -> CollectResult:
    """Record `label` from `board` (a Board or a --port value) into the dataset folder `out`.

    Ends after `seconds` of samples (None: until `stop` is set, when the board
    gets Ctrl-C and ends cleanly; `abort`: stop reading at once), when a
    replayed recording ends, or when the link drops (what arrived is kept:
    result.end == "link lost"). `source`: mpml.device.sources.parse_source's
    descriptions; `rate`: Hz
    (default: the source's own, else the dataset's when adding to one).
    Raises CollectError for what stops it from starting (no runtime, an
    unknown source, a rate the board refuses, a dataset with other channels).
    `_code`, `_hooks` and `_after_frame` are test hooks (board code replacing
    the sampler's, extra arguments to stream(), a call after each frame).
    """
    try:
        spec = source if isinstance(source, SourceSpec) else parse_source(source)
    except SourceError as e:
        raise CollectError(str(e)) from None
    out = Path(out)
    if rate is None:
        rate = spec.rate_hz
    if rate is None:
        try:
            rate = float(json.loads((out / MANIFEST).read_text())["sample_rate_hz"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    own = not isinstance(board, Board)
    b = Board.open(board, timeout=15) if own else board
    result = CollectResult(board=b.name, label=label, dataset=out, rate_hz=float(rate or 0))
    try:
        probe = _prepare(b, spec) if _code is None else {"buffer": _has_buffer(b)}
        text = source if isinstance(source, str) else spec.code
        info = {"board": b.name}
        code = _code or board_code(spec, rate, seconds, info=info, hooks=_hooks, ring=ring,
                                   free_heap=probe.get("heap"))
        meta = {"board": b.name, "source": text,
                "collected": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

        def make_sink(header: dict) -> _Sink:
            n = int(header.get("channels") or spec.channels or 0)
            names, units, scale = _header_lists(spec, header, n)
            hz = float(header.get("rate_hz") or rate or 0)
            result.rate_hz = hz
            try:
                app = DatasetAppender(out, sample_rate_hz=hz, channels=names, units=units, scale=scale)
            except DatasetError as e:
                raise CollectError(str(e)) from None
            if appender_lock is not None:
                app._lock = appender_lock
            return _Sink(app, label, subject, dict(meta, platform=header.get("platform", "")))

        receive(b.conn, code, make_sink, result=result, cooked=not probe.get("buffer", True), stop=stop,
                abort=abort, on_frame=on_frame, on_samples=on_samples, after_frame=_after_frame)
        return result
    except BoardExecError as e:
        raise CollectError(f"{b.name}: {e.traceback.strip().splitlines()[-1]}") from None
    except DatasetError as e:
        raise CollectError(str(e)) from None
    finally:
        if own:
            b.close()


def _has_buffer(b: Board) -> bool:
    return b.conn.eval("hasattr(__import__('sys').stdout, 'buffer')") is True


def collect_all(ports: list[str], label: str, **kw) -> list[CollectResult | Exception]:
    """`collect` on every board in `ports` at once, one thread each, one recording per board."""
    lock = threading.Lock()  # one manifest writer at a time in this process
    return on_each_board(ports, lambda port: collect(port, label, appender_lock=lock, **kw))


class LiveLine:
    """The one-line live counter on stderr: samples, seconds, rate, drops, gaps, per board."""

    def __init__(self, stream=None, every: float = 0.25):
        self.stream = stream or sys.stderr
        self.every = every
        self.last = 0.0
        self.rows: dict[str, CollectResult] = {}
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.width = 0

    def __call__(self, result: CollectResult, state=None) -> None:
        with self.lock:
            self.rows[result.board] = result
            now = time.monotonic()
            if now - self.last < self.every:
                return
            self.last = now
            self.draw()

    def draw(self) -> None:
        dt = time.monotonic() - self.t0
        parts = []
        for name, r in self.rows.items():
            s = f"{name}: {r.samples} samples"
            if r.rate_hz:
                s += f" ({r.samples / r.rate_hz:.1f} s at {r.rate_hz:g} Hz)"
            if r.board_rate_hz:
                s += f" board {r.board_rate_hz:.0f} Hz"
            if r.dropped or r.gaps or r.crc_errors:
                s += f" dropped {r.dropped} gaps {len(r.gaps)} crc {r.crc_errors}"
            parts.append(s)
        text = f"{dt:5.1f} s  " + " | ".join(parts)
        pad = max(0, self.width - len(text))
        self.width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def done(self) -> None:
        with self.lock:
            if self.rows:
                self.draw()
                self.stream.write("\n")
                self.stream.flush()
