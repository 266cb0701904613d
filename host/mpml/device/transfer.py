"""Fast file transfer to a board over the raw REPL (mpremote's transport).

What makes it faster than `mpremote fs cp` (which sends `w(b'...')` with the
bytes' repr, 256 bytes per exec, one round trip each):

- big chunks: one raw-paste exec carries `chunk` bytes of the file, so the
  round trips (enter raw-paste, flow control, the board's reply) are few;
- base64, not `repr()`: 4/3 of the data on the wire instead of ~3x for binary;
- zlib where the board has `deflate.DeflateIO`: each chunk is compressed on
  its own (a 1 KiB window by default, so inflating needs little RAM), and
  sent compressed only when that is smaller.

The receiving side is a board function called once per chunk with
`(base64_text, compressed_flag)`; `mpml.store.put` is the one used for models.

`send_binary` is faster still: one exec whose board code reads the chunks as
raw bytes from stdin (`mpml.store.recv`), each acknowledged with one byte, so
the wire carries the file's own bytes (+~1.6 % escapes) and there is no
raw-paste exec, flow control or base64 decode per chunk. The bytes the REPL,
the virtual boards' relays or a UART's Ctrl-C check act on (0x03, 0x04, CR)
and the escape byte itself are escaped per block (see `escape`), so a block
boundary never splits an escape and Ctrl-C stays enabled on the board. Two
blocks are in flight at once: the board inflates, hashes and writes one
while the next is on the wire.
"""

from __future__ import annotations

import base64
import time
import zlib
from typing import Callable, Iterator, Sequence

from mpremote.transport import TransportError

from .connection import Connection

from .connection import BoardExecError

__all__ = ["CHUNK", "Chunk", "board_has_deflate", "encode_chunks", "escape", "send_binary", "send_chunks", "write_files",
           "unescape"]

CHUNK = 4096  # bytes of the file per exec: fastest of 2, 4, 8 and 16 KiB in a one-off sweep on the m0 board
WBITS = 10  # zlib window: 1 KiB of RAM on the board to inflate
BLOCK_LIMIT = CHUNK + CHUNK // 8  # most bytes of one escaped block on the wire (the board's receive buffer)
WINDOW = 2  # blocks sent before the first one is acknowledged

# (byte, its escape), the escape byte first; unescape in the reverse order.
ESCAPES = ((b"\x1b", b"\x1bE"), (b"\x03", b"\x1bC"), (b"\x04", b"\x1bD"), (b"\r", b"\x1bM"))
READY, ACK, NAK, EOT = b"\x05", b"\x06", b"\x15", b"\x04"


def escape(data: bytes) -> bytes:
    """`data` with no 0x03, 0x04, CR: each (and 0x1B) becomes 0x1B + a letter (mpml.store._unescape)."""
    for raw, esc in ESCAPES:
        data = data.replace(raw, esc)
    return data


def unescape(data: bytes) -> bytes:
    # Escapes first, 0x1B last: a 0x1B in the stream always starts an escape.
    for raw, esc in reversed(ESCAPES):
        data = data.replace(esc, raw)
    return data


class Chunk:
    __slots__ = ("raw_len", "text", "z")

    def __init__(self, raw_len: int, text: bytes, z: bool):
        self.raw_len, self.text, self.z = raw_len, text, z


def board_has_deflate(conn: Connection) -> bool:
    out = conn.exec("try:\n    import deflate\n    print(hasattr(deflate, 'DeflateIO'))\nexcept ImportError:\n"
                    "    print(False)\n")
    return out.strip() == "True"


def _packed(raw: bytes, compress: bool, wbits: int) -> tuple[bytes, bool]:
    """(payload, zlib?): `raw` zlib-compressed when asked and when that is smaller."""
    if compress:
        c = zlib.compressobj(9, zlib.DEFLATED, wbits)
        packed = c.compress(raw) + c.flush()
        if len(packed) < len(raw):
            return packed, True
    return raw, False


def encode_chunks(data: bytes, compress: bool, chunk: int = CHUNK, wbits: int = WBITS) -> Iterator[Chunk]:
    """The chunks of `data` as they travel: base64 text, zlib-compressed when that is smaller."""
    for i in range(0, len(data), chunk):
        raw = data[i:i + chunk]
        payload, z = _packed(raw, compress, wbits)
        yield Chunk(len(raw), base64.b64encode(payload), z)


def send_chunks(conn: Connection, data: bytes, put: str, compress: bool, chunk: int = CHUNK,
                progress: Callable[[int, int], None] | None = None,
                tamper: Callable[[int, Chunk], Chunk] | None = None) -> dict:
    """Send `data` by calling the board function `put(b64, z)` once per chunk.

    `progress(sent, total)` is called after every chunk; `tamper(i, chunk)`
    (tests only) may replace a chunk on its way. Returns wire statistics:
    bytes on the wire, chunks, seconds.
    """
    t0 = time.monotonic()
    wire = 0
    sent = 0
    n = 0
    if progress:
        progress(0, len(data))
    for i, c in enumerate(encode_chunks(data, compress, chunk)):
        if tamper is not None:
            c = tamper(i, c)
        code = b"%s(b'%s',%d)" % (put.encode(), c.text, int(c.z))
        conn.exec(code, timeout=max(conn.timeout, 30.0))
        wire += len(code)
        sent += c.raw_len
        n += 1
        if progress:
            progress(sent, len(data))
    return {"wire_bytes": wire, "chunks": n, "seconds": time.monotonic() - t0}


def _blocks(data: bytes, compress: bool, chunk: int, limit: int, wbits: int = WBITS) -> Iterator[tuple[int, bytes, bool]]:
    """(raw length, payload, zlib?) of each block: compressed when smaller, escaped size at most `limit`."""
    i = 0
    while i < len(data):
        n = min(chunk, len(data) - i)
        while True:
            payload, z = _packed(data[i:i + n], compress, wbits)
            if len(escape(payload)) <= limit or n == 1:
                break
            n //= 2  # mostly bytes that need escaping, sent as they are
        yield n, payload, z
        i += n


def send_binary(conn: Connection, data: bytes | Sequence[bytes], code: str, compress: bool, chunk: int = CHUNK,
                limit: int = BLOCK_LIMIT, window: int = WINDOW, progress: Callable[[int, int], None] | None = None,
                tamper: Callable[[int, Chunk], Chunk] | None = None, timeout: float | None = None) -> tuple[dict, str]:
    """Run `code` on the board and stream `data` to its `mpml.wire.recv` calls, one call per payload.

    `data` is one payload, or a list of them sent in turn (one exec for many
    files). Returns (wire statistics, what the code printed). Raises
    BoardExecError when the code raises (before, during or after a transfer:
    a failed block is reported at the end, the rest of the data read and
    dropped by the board), BoardTimeout when the board goes silent, OSError
    when the port goes away. `progress(done, total)` after every acknowledged
    block, over all payloads; `tamper(i, chunk)` (tests) sees each block as a
    base64 Chunk, as send_chunks' does.
    """
    payloads = [data] if isinstance(data, (bytes, bytearray, memoryview)) else list(data)
    t0 = time.monotonic()
    timeout = max(conn.timeout, 30.0) if timeout is None else timeout
    conn.enter_raw_repl()
    transport = conn.transport
    serial = transport.serial
    serial.timeout = max(1, timeout)
    try:
        transport.exec_raw_no_follow(code)
    except TransportError as e:
        conn._in_raw = False
        raise conn._fail("no answer from the board", e) from None
    finally:
        serial.timeout = 1
    printed = bytearray()

    def read_byte(waiting_for: str) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            b = serial.read(1)
            if b:
                return b
            if time.monotonic() > deadline:
                conn._in_raw = False
                raise conn._fail(f"no answer from the board ({waiting_for})", TimeoutError(f"{timeout:.0f} s"))

    def ended() -> BoardExecError:
        # The code ended (raised) before the transfer did: the rest is its traceback up to the 2nd EOT.
        err = bytearray()
        while True:
            b = read_byte("its traceback")
            if b == EOT:
                break
            err += b
        return BoardExecError(bytes(printed).decode(errors="replace"), err.decode(errors="replace"))

    total = sum(len(p) for p in payloads)
    done = 0  # bytes of earlier payloads, all acknowledged
    wire = 0
    index = 0  # block number over all payloads, for tamper
    if progress:
        progress(0, total)
    for payload_data in payloads:
        while True:
            b = read_byte("the receiver to start")
            if b == READY:
                break
            if b == EOT:
                raise ended()
            printed.extend(b)
        blocks = list(_blocks(payload_data, compress, chunk, limit))
        sent = acked = 0
        failed = False

        def wait_ack() -> None:
            nonlocal acked, failed
            b = read_byte("a block's acknowledgement")
            if b == EOT:
                raise ended()
            if b == NAK:
                failed = True
            elif b != ACK:
                raise conn._fail("the board broke the transfer protocol", ValueError(f"got {b!r} for an ack"))
            acked += 1
            if progress and not failed:
                progress(done + sum(n for n, _, _ in blocks[:acked]), total)

        for n, payload, z in blocks:
            if tamper is not None:
                c = tamper(index, Chunk(n, base64.b64encode(payload), z))
                payload, z = base64.b64decode(c.text), c.z
            index += 1
            while sent - acked >= window:
                wait_ack()
            if failed:
                break
            wire_block = escape(payload)
            serial.write(b"%06x%02x" % (len(wire_block), int(z)) + wire_block)
            wire += 8 + len(wire_block)
            sent += 1
        serial.write(b"00000000")
        wire += 8
        while acked < sent:
            wait_ack()
        done += len(payload_data)
    try:
        out, err = transport.follow(timeout)
    except TransportError as e:
        conn._in_raw = False
        raise conn._fail("no answer from the board", e) from None
    text = (bytes(printed) + out).decode(errors="replace")
    if err:
        raise BoardExecError(text, err.decode(errors="replace"))
    return {"wire_bytes": wire + len(code), "chunks": index, "seconds": time.monotonic() - t0}, text


_WRITE_FILES = """
import os
try:
    import hashlib as _h
except ImportError:
    _h = None
import binascii as _ba


def _mpml_put(path, limit):
    h = _h.sha256() if _h else None
    with open(path, "wb") as f:
        def sink(d):
            f.write(d)
            if h:
                h.update(d)
        n = recv(sink, limit)
    print(repr((path, n, _ba.hexlify(h.digest()).decode() if h else None)))


for _p in %(paths)r:
    _mpml_put(_p, %(limit)d)
del _mpml_put, _p, _h, _ba, recv, unescape, inflate, ACK, NAK, READY
"""


def _wire_source() -> str:
    """firmware/mpml/wire.py without its comment lines: the receiver `write_files` sends ahead of the data."""
    from mpml import paths
    text = (paths.FIRMWARE_SRC / "mpml" / "wire.py").read_text()
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")) + "\n"


def write_files(conn: Connection, files: dict[str, bytes], compress: bool | None = None,
                progress: Callable[[int, int], None] | None = None, chunk: int = CHUNK) -> dict:
    """Write each `{board path: bytes}` to the board in one exec, through mpml.wire's binary receiver.

    Works on a board without mpml (the receiver travels as source in the
    exec), so it also installs the runtime itself. Each file is checked on the
    board after writing: its size, and its SHA-256 where the board has
    hashlib; a mismatch raises BoardExecError naming the file. `compress`:
    zlib where smaller (default: when the board has `deflate`). Returns wire
    statistics as send_binary's.
    """
    import ast
    import hashlib
    if not files:
        return {"wire_bytes": 0, "chunks": 0, "seconds": 0.0}
    if compress is None:
        compress = board_has_deflate(conn)
    limit = chunk + chunk // 8
    paths = list(files)
    code = _wire_source() + _WRITE_FILES % {"paths": paths, "limit": limit}
    stats, out = send_binary(conn, [files[p] for p in paths], code, compress, chunk=chunk, limit=limit,
                             progress=progress)
    got = {}
    for line in out.splitlines():
        if line.startswith("("):
            path, n, digest = ast.literal_eval(line)
            got[path] = (n, digest)
    for path in paths:
        n, digest = got.get(path, (None, None))
        want = hashlib.sha256(files[path]).hexdigest()
        if n != len(files[path]) or (digest is not None and digest != want):
            raise BoardExecError(out, f"{path}: the board wrote {n} bytes with SHA-256 {digest}, "
                                      f"sent {len(files[path])} bytes with {want}")
    return stats
