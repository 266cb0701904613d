# The board's model store: /models/<name>.mpml, the previous version kept as
# /models/<name>.prev.mpml, and /models/manifest.json (name, version, hash,
# size, push time of each, and of its previous version).
#
# A push (host: mpml.device.models.push_model) is
#   begin(name, size)        stale temp files go, free space is checked
#   put(b64, z) ...          chunks appended to /models/<name>.tmp, hashed
#   (or recv(): the same chunks as binary blocks read from stdin, one exec)
#   finish(sha256_hex, meta) verified, synced, then renamed into place
# Until finish() has checked the SHA-256 of every byte written, nothing the
# board had is touched: a dropped link or a bad chunk leaves the old model.
import os

DIR = "/models"
MANIFEST = DIR + "/manifest.json"
TMP = ".tmp"

_cur = None  # [name, tmp path, file, sha256, bytes written, expected size]


def _path(name, prev=False):
    return "%s/%s%s.mpml" % (DIR, name, ".prev" if prev else "")


def _exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False


def _remove(p):
    try:
        os.remove(p)
    except OSError:
        pass


def _mv(a, b):
    # Every rename is inside DIR, done from there by base name: the unix
    # board's VfsPosix (MicroPython 1.25) fails renames given absolute paths.
    cwd = os.getcwd()
    os.chdir(DIR)
    try:
        os.rename(a.rsplit("/", 1)[-1], b.rsplit("/", 1)[-1])
    finally:
        os.chdir(cwd)


def _rename(a, b):
    # FAT will not rename over a file; littlefs and POSIX do.
    try:
        _mv(a, b)
    except OSError:
        _remove(b)
        _mv(a, b)


def _sync():
    if hasattr(os, "sync"):
        os.sync()


def _check_name(name):
    if (not name or "/" in name or name.startswith(".") or name.endswith(".prev")
            or name == "manifest" or len(name) > 64):
        raise ValueError("bad model name %r" % name)


def free():
    """Bytes free on the models' filesystem."""
    s = os.statvfs(DIR if _exists(DIR) else "/")
    return s[0] * s[4]


def manifest():
    import json
    try:
        with open(MANIFEST) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _save_manifest(m):
    import json
    tmp = MANIFEST + TMP
    try:
        with open(tmp, "w") as f:
            json.dump(m, f)
        _sync()
        _rename(tmp, MANIFEST)
    except OSError:
        _remove(tmp)
        raise


def clean():
    """Remove temp files a dropped push left behind; returns their names."""
    global _cur
    if _cur is not None:
        try:
            _cur[2].close()
        except Exception:
            pass
        _cur = None
    gone = []
    try:
        names = os.listdir(DIR)
    except OSError:
        return gone
    for n in names:
        if n.endswith(TMP):
            _remove(DIR + "/" + n)
            gone.append(n)
        elif n.endswith(".mpml.swap"):
            # A rollback cut short: put the model back where one is missing.
            cur = DIR + "/" + n[:-5]
            dest = cur if not _exists(cur) else cur[:-5] + ".prev.mpml"
            if not _exists(dest):
                _mv(DIR + "/" + n, dest)
    return gone


def begin(name, size, reserve=2048):
    """Start receiving `size` bytes of model `name` into a temp file."""
    global _cur
    import hashlib
    _check_name(name)
    try:
        os.mkdir(DIR)
    except OSError:
        pass
    clean()
    avail = free()
    if size + reserve > avail:
        raise OSError(28, "flash full: model %s needs %d bytes (+%d spare), %d free on the board"
                      % (name, size, reserve, avail))
    tmp = DIR + "/" + name + TMP
    _cur = [name, tmp, open(tmp, "wb"), hashlib.sha256(), 0, size]


def abort():
    """Drop the push under way (its temp file goes)."""
    clean()


def _append(raw):
    try:
        _cur[2].write(raw)
    except OSError as e:
        clean()
        if e.args and e.args[0] == 28:
            raise OSError(28, "flash full while writing the model; nothing replaced")
        raise
    _cur[3].update(raw)
    _cur[4] += len(raw)
    return _cur[4]


def _inflate(raw):
    import deflate, io
    return deflate.DeflateIO(io.BytesIO(raw), deflate.ZLIB).read()


def put(data, z=0):
    """Append one chunk: base64 text (`data`), zlib-compressed when `z`."""
    import binascii
    if _cur is None:
        raise ValueError("no push under way")
    raw = binascii.a2b_base64(data)
    return _append(_inflate(raw) if z else raw)


# recv(): the binary transfer (host: mpml.device.transfer.send_binary). The
# host sends blocks on stdin, each an 8-hex-digit header (6 digits: bytes on
# the wire, 2: flags, 1 = zlib) and that many bytes; a header of length 0 ends.
# In a block, 0x1B, 0x03 (Ctrl-C), 0x04 (Ctrl-D) and 0x0D (stdin without
# .buffer turns CR into LF) travel escaped as 0x1B + E, C, D, M: no byte the
# REPL, the virtual boards' relays or the UART's Ctrl-C check act on is ever
# sent raw, so Ctrl-C stays enabled (the unix port dies on SIGINT when it is
# disabled). Each block is acknowledged with one byte on stdout: ACK, or NAK
# once a block failed (the rest is read and dropped, and the error raised at
# the end, so host and REPL stay in step). A byte that is not a hex digit
# where a header starts (a new session's CR + Ctrl-C after a dropped link)
# aborts at once, leaving the temp file for the next begin() to remove.
ACK = "\x06"
NAK = "\x15"
READY = "\x05"


def _unescape(d):
    if b"\x1b" in d:
        d = d.replace(b"\x1bC", b"\x03").replace(b"\x1bD", b"\x04").replace(b"\x1bM", b"\r")
        d = d.replace(b"\x1bE", b"\x1b")
    return d


def recv(limit=4608):
    """Append the blocks the host sends on stdin until the end header (see above); returns bytes written."""
    import sys
    if _cur is None:
        raise ValueError("no push under way")
    s = getattr(sys.stdin, "buffer", sys.stdin)
    out = sys.stdout
    buf = bytearray(limit)
    mv = memoryview(buf)
    hb = bytearray(1)
    err = None
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
                d = _unescape(d)
                _append(_inflate(d) if flags & 1 else d)
            except Exception as e:
                err = e
        d = None
        out.write(ACK if err is None else NAK)
    if err is not None:
        raise err
    return _cur[4]


def finish(sha256_hex, meta):
    """Check the whole file's SHA-256 and size, then swap it in. Returns the manifest entry."""
    global _cur
    import binascii
    if _cur is None:
        raise ValueError("no push under way")
    name, tmp, f, h, n, size = _cur
    try:
        f.close()
    except OSError:
        clean()
        raise OSError(28, "flash full while writing the model; nothing replaced")
    _cur = None
    got = binascii.hexlify(h.digest()).decode()
    if n != size or got != sha256_hex:
        _remove(tmp)
        raise ValueError("hash mismatch: got %d bytes with SHA-256 %s, sent %d bytes with %s;"
                         " nothing replaced" % (n, got, size, sha256_hex))
    _sync()
    cur, prev = _path(name), _path(name, True)
    m = manifest()
    old = m.get(name)
    if _exists(cur):
        _remove(prev)
        _mv(cur, prev)
    _rename(tmp, cur)
    entry = {"name": name, "size": n, "sha256": got}
    entry.update(meta)
    if old is not None:
        old.pop("prev", None)
        entry["prev"] = old
    m[name] = entry
    _save_manifest(m)
    _sync()
    return entry


def _file_size(p):
    try:
        return os.stat(p)[6]
    except OSError:
        return None


def list_models():
    """[(name, entry)] for every model file, the manifest's entry or {} for files it does not know."""
    m = manifest()
    out = []
    try:
        names = sorted(os.listdir(DIR))
    except OSError:
        names = []
    for n in names:
        if n.endswith(".mpml") and not n.endswith(".prev.mpml"):
            name = n[:-5]
            e = m.get(name) or {}
            e = dict(e)
            e["file_size"] = _file_size(DIR + "/" + n)
            e["has_prev"] = _exists(_path(name, True))
            out.append((name, e))
    return out


def rm(name):
    """Remove a model, its previous version and its manifest entry."""
    _check_name(name)
    cur, prev = _path(name), _path(name, True)
    if not _exists(cur) and not _exists(prev):
        raise ValueError("no model %r on the board" % name)
    _remove(cur)
    _remove(prev)
    m = manifest()
    if name in m:
        del m[name]
        _save_manifest(m)
    _sync()


def rollback(name):
    """Swap a model with its previous version (a second rollback swaps back). Returns the new entry."""
    _check_name(name)
    cur, prev = _path(name), _path(name, True)
    if not _exists(prev):
        raise ValueError("model %r has no previous version on the board" % name)
    tmp = cur + ".swap"  # not TMP: clean() must never delete a model
    if _exists(cur):
        _rename(cur, tmp)
    _mv(prev, cur)
    if _exists(tmp):
        _mv(tmp, prev)
    m = manifest()
    e = m.get(name) or {}
    p = e.pop("prev", None) or {}
    p["prev"] = e
    m[name] = p
    _save_manifest(m)
    _sync()
    return p
