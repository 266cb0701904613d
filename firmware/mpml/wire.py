# The board's end of the binary transfer (host: mpml.device.transfer). Plain
# Python with no mpml imports: `mpml install` sends this file's source in its
# exec, so the same receiver writes the runtime before the runtime exists, and
# `mpml.store` uses it for models.
#
# The host sends blocks on stdin, each an 8-hex-digit header (6 digits: bytes
# on the wire, 2: flags, 1 = zlib) and that many bytes; a header of length 0
# ends one payload. In a block, 0x1B, 0x03 (Ctrl-C), 0x04 (Ctrl-D) and 0x0D
# (stdin without .buffer turns CR into LF) travel escaped as 0x1B + E, C, D,
# M: no byte the REPL, the virtual boards' relays or the UART's Ctrl-C check
# act on is ever sent raw, so Ctrl-C stays enabled (the unix port dies on
# SIGINT when it is disabled). Each block is acknowledged with one byte on
# stdout: ACK, or NAK once a block failed (the rest is read and dropped, and
# the error raised at the end, so host and REPL stay in step). A byte that is
# not a hex digit where a header starts (a new session's CR + Ctrl-C after a
# dropped link) aborts at once.
import sys

ACK = "\x06"
NAK = "\x15"
READY = "\x05"


def unescape(d):
    if b"\x1b" in d:
        d = d.replace(b"\x1bC", b"\x03").replace(b"\x1bD", b"\x04").replace(b"\x1bM", b"\r")
        d = d.replace(b"\x1bE", b"\x1b")
    return d


def inflate(raw):
    import deflate, io
    return deflate.DeflateIO(io.BytesIO(raw), deflate.ZLIB).read()


def recv(sink, limit=4608):
    """Pass each block of one payload the host sends, unescaped and inflated, to `sink(raw)`.

    Returns the bytes passed. `limit` is the largest block accepted (the
    receive buffer, allocated once)."""
    import gc

    s = getattr(sys.stdin, "buffer", sys.stdin)
    out = sys.stdout
    # The buffer and each block's copies need a few KiB in one piece: on a
    # small heap left fragmented by earlier work, collect first.
    gc.collect()
    buf = bytearray(limit)
    mv = memoryview(buf)
    hb = bytearray(1)
    err = None
    total = 0
    out.write(READY)
    while True:
        h = 0
        for _ in range(8):
            if not s.readinto(hb):
                raise EOFError("stdin closed")
            c = hb[0]
            if 48 <= c <= 57:
                c -= 48
            elif 97 <= c <= 102:
                c -= 87
            else:
                raise ValueError("transfer aborted: byte %d where a block header was expected" % c)
            h = h * 16 + c
        n, flags = h >> 8, h & 0xFF
        if n == 0:
            break
        if n > limit:
            raise ValueError("transfer aborted: block of %d bytes, at most %d" % (n, limit))
        got = 0
        while got < n:
            k = s.readinto(mv[got:n])
            if not k:
                raise EOFError("stdin closed")
            got += k
        d = bytes(mv[:n])
        if b"\x03" in d:
            raise KeyboardInterrupt
        if err is None:
            try:
                d = unescape(d)
                if flags & 1:
                    d = inflate(d)
                sink(d)
                total += len(d)
            except Exception as e:
                err = e
        d = None
        out.write(ACK if err is None else NAK)
    if err is not None:
        raise err
    return total
