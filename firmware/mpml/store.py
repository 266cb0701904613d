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

from mpml import wire

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


def info():
    """What a push checks first (host: mpml.device.models): the blob format and op codes this runtime
    reads, free heap with the store loaded, free flash, and whether the board can inflate zlib and
    take raw bytes on stdin. A function here rather than code in the host's probe: the board
    compiles one line instead of twenty."""
    import gc
    import sys
    from mpml import blobfmt, ops
    try:
        fl = free()
    except OSError:
        fl = None
    try:
        import deflate
        z = hasattr(deflate, "DeflateIO")
    except ImportError:
        z = False
    gc.collect()
    return {"version": blobfmt.VERSION, "ops": sorted(ops.OPS), "heap": gc.mem_free(), "flash": fl,
            "deflate": z, "recv": hasattr(getattr(sys.stdin, "buffer", sys.stdin), "readinto")}


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


def put(data, z=0):
    """Append one chunk: base64 text (`data`), zlib-compressed when `z`."""
    import binascii
    if _cur is None:
        raise ValueError("no push under way")
    raw = binascii.a2b_base64(data)
    return _append(wire.inflate(raw) if z else raw)


def recv(limit=4608):
    """Append the blocks the host streams on stdin (mpml.wire's protocol); returns bytes written.

    A dropped link leaves the temp file for the next begin() to remove."""
    if _cur is None:
        raise ValueError("no push under way")
    wire.recv(_append, limit)
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
