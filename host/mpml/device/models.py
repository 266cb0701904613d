"""Models on a board: push (checked, verified, atomic), list, remove, roll back.

The board side is `mpml.store` (firmware/mpml/store.py): models live in
`/models/<name>.mpml`, the previous version in `/models/<name>.prev.mpml`,
and `/models/manifest.json` says what each is (version, SHA-256, size, push
time). A push

1. refuses before sending anything when the blob cannot run there: another
   format version than the board's runtime reads, an op the board's runtime
   does not know, arena + blob larger than the board's free heap, or more
   bytes than its free flash (each message says what and by how much);
2. sends the file into a temp file, zlib-compressed when the board has
   `deflate`: as raw (escaped) bytes on the board's stdin in one exec
   (mpml.device.transfer.send_binary, `mpml.store.recv`), or, for a runtime
   without `recv`, in big base64 chunks through raw-paste mode;
3. has the board compare the SHA-256 of what it wrote with the host's, and only
   then renames the old model to `.prev` and the new one into place.

A link that drops, a corrupted chunk or a full flash leave the old model as
it was; the next push removes the temp file a dropped one left.
"""

from __future__ import annotations

import ast
import hashlib
import re
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import mpml
from mpml import blobfmt as F

from .board import Board, on_each_board, require_runtime
from .connection import BoardError, BoardExecError, Connection
from .transfer import CHUNK, send_binary, send_chunks

__all__ = ["BlobSummary", "PushError", "PushResult", "list_models", "push_all", "push_model", "rm_model",
           "rollback_model", "summarize_blob"]


class PushError(BoardError):
    """The model was not pushed (the message says why); the board's models are as they were."""


@dataclass
class BlobSummary:
    """What the host needs from a blob to decide whether it fits a board (header and op codes only)."""

    version: int
    file_size: int
    arena_size: int
    content_hash: str
    name: str
    model_version: str
    opcodes: list[int]


def summarize_blob(data: bytes) -> BlobSummary:
    """Read the header and op codes of a blob, even one this host's runtime could not load."""
    if len(data) < F.HEADER_SIZE or data[:4] != F.MAGIC:
        raise PushError("not an mpml blob (no MPML magic)")
    h = struct.unpack_from(F.HEADER, data, 0)
    version = h[F.H_VERSION]
    if h[F.H_FILE_SIZE] != len(data):
        raise PushError(f"the file is {len(data)} bytes, its header says {h[F.H_FILE_SIZE]}: truncated or corrupt")
    crc = struct.unpack_from("<I", data, len(data) - F.CRC_SIZE)[0]
    if zlib.crc32(data[:-F.CRC_SIZE]) != crc:
        raise PushError("CRC mismatch: the file is corrupt")
    opcodes: list[int] = []
    names = ("", "")
    if version == F.VERSION:
        pos = h[F.H_OPS]
        for _ in range(h[F.H_N_OPS]):
            code, n_in, n_out, n_par = struct.unpack_from(F.OP_HEAD, data, pos)
            opcodes.append(code)
            pos += F.op_record_size(n_in + n_out, n_par)

        def s(ref):
            try:
                return F.string(data, h[F.H_STRINGS], h[F.H_STRINGS_SIZE], ref)
            except (ValueError, UnicodeError):
                return ""
        names = (s(h[F.H_NAME]), s(h[F.H_MODEL_VERSION]))
    return BlobSummary(version, len(data), h[F.H_ARENA_SIZE], bytes(h[F.H_HASH]).hex(), names[0], names[1],
                       opcodes)


# What a push needs to know (mpml.store.info) and the runtime's version: one
# short exec. require_runtime's probe (twenty lines for the board to compile)
# only runs when this fails, for its messages.
_PUSH_INFO = "import mpml, mpml.store as _st\nprint(repr((mpml.__version__, _st.info())))"


def _push_info(b: Board) -> dict:
    """The board's mpml.store.info(); RuntimeMismatch or PushError naming the fix when it cannot store models."""
    try:
        version, info = ast.literal_eval(b.conn.exec(_PUSH_INFO).strip().splitlines()[-1])
    except BoardExecError as e:
        version, info = None, e.traceback.strip().splitlines()[-1]
    if version == mpml.__version__ and isinstance(info, dict):
        return info
    require_runtime(b)  # missing, another version, does not import: its message names the fix
    raise PushError(f"{b.name}: the mpml runtime there cannot store models ({info}): update it with "
                    f"`mpml install --port {b.port_hint()}`")


def _op_name(code: int) -> str:
    from mpml import ops
    return ops.OPS[code][0] if code in ops.OPS else f"op#{code}"


def check_fits(summary: BlobSummary, board_version: int, board_ops: list[int], free_heap: int,
               free_flash: int | None, reserve: int = 2048) -> list[str]:
    """Every reason the blob cannot run on (or be stored on) the board; empty when it fits."""
    why = []
    if summary.version != board_version:
        why.append(f"blob format version {summary.version}; the board's mpml runtime reads version "
                   f"{board_version} (update the runtime with `mpml install`, or re-export the model)")
        return why  # the rest of the layout cannot be trusted
    unknown = sorted(set(summary.opcodes) - set(board_ops))
    if unknown:
        why.append("the board's mpml runtime does not have op" + ("s " if len(unknown) > 1 else " ")
                   + ", ".join(_op_name(c) for c in unknown) + " (update it with `mpml install`)")
    need = summary.arena_size + summary.file_size
    if need > free_heap:
        why.append(f"arena {summary.arena_size} + blob {summary.file_size} = {need} bytes of RAM needed, the board "
                   f"has {free_heap} free: {need - free_heap} bytes too many")
    if free_flash is not None and summary.file_size + reserve > free_flash:
        why.append(f"flash full: the model needs {summary.file_size} bytes (+{reserve} spare), the board has "
                   f"{free_flash} free: {summary.file_size + reserve - free_flash} bytes short (remove a model "
                   f"with `mpml rm`)")
    return why


def _model_name(path, summary: BlobSummary, name: str | None) -> str:
    n = name or (Path(path).stem if isinstance(path, (str, Path)) else summary.name) or "model"
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", n) or n.endswith(".prev"):
        raise PushError(f"bad model name {n!r}: letters, digits, '_', '-', '.'; at most 64; not ending in .prev")
    return n


@dataclass
class PushResult:
    board: str
    name: str
    path: str
    size: int
    sha256: str
    seconds: float
    wire_bytes: int
    compressed: bool
    replaced: dict | None = None
    entry: dict = field(default_factory=dict)

    def line(self) -> str:
        rate = self.size / 1024 / self.seconds if self.seconds else 0
        old = f", previous kept ({self.replaced.get('sha256', '?')[:12]})" if self.replaced else ""
        return (f"{self.board}: {self.name} -> {self.path} ({self.size} bytes, sha256 {self.sha256[:12]}) "
                f"in {self.seconds:.1f} s, {rate:.1f} KB/s{old}")


class ProgressBar:
    """`[#####.....]  45%  10.2/22.6 KB  4.1 KB/s` on stderr, redrawn in place."""

    def __init__(self, label: str, stream=None, width: int = 30):
        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self.t0 = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        frac = done / total if total else 1.0
        n = int(frac * self.width)
        dt = time.monotonic() - self.t0
        rate = done / 1024 / dt if dt > 0 else 0.0
        self.stream.write(f"\r{self.label} [{'#' * n}{'.' * (self.width - n)}] {frac * 100:3.0f}%  "
                          f"{done / 1024:.1f}/{total / 1024:.1f} KB  {rate:.1f} KB/s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _as_board(board) -> tuple[Board, bool]:
    if isinstance(board, Board):
        return board, False
    return _open(board), True


def _open(port) -> Board:
    """Board.open, first tried the way mpremote connects (Ctrl-C, raw REPL, soft reset) without its wait for
    the board to go quiet (~0.2 s of a push's ~0.3 s on a unix board). A board that is not in the raw REPL
    within 3 s (a program that ignores Ctrl-C, a slow board) gets Board.open's harder attempts and messages."""
    from .ports import resolve

    spec = resolve(port)
    conn = Connection(spec.device, timeout=3)
    try:
        conn.enter_raw_repl()
    except BoardError:
        conn.close()
        return Board.open(port, timeout=15)
    conn.timeout = 15
    return Board(conn, spec)


def push_model(board, path, name: str | None = None, progress: Callable[[int, int], None] | bool | None = None,
               chunk: int = CHUNK, compress: bool | None = None, binary: bool | None = None, _tamper=None,
               _sha256: str | None = None, _after_chunk=None) -> PushResult:
    """Push the blob at `path` (or bytes) to `board` (a Board, or a --port value) as /models/NAME.mpml.

    `progress`: a callable (done, total), or True for a bar on stderr.
    `compress`: None = when the board can inflate. `binary`: None = raw bytes
    on stdin when the board's runtime can receive them, False = base64 chunks
    (one exec each). Raises PushError (nothing
    replaced on the board) or BoardError (the link failed; the board keeps its
    old model, the next push cleans up).
    `_tamper`, `_sha256` and `_after_chunk` are test hooks (a chunk changed on its
    way, the hash the board is told, a call after every chunk).
    """
    data = bytes(path) if isinstance(path, (bytes, bytearray)) else Path(path).read_bytes()
    summary = summarize_blob(data)
    name = _model_name(path, summary, name)
    b, own = _as_board(board)
    try:
        x = _push_info(b)
        conn = b.conn
        has_deflate, has_recv = x["deflate"], x["recv"]
        why = check_fits(summary, x["version"], x["ops"], x["heap"], x["flash"])
        if why:
            raise PushError(f"{name} does not fit {b.name}:\n  " + "\n  ".join(why))
        if compress is None:
            compress = has_deflate
        if binary is None:
            binary = has_recv
        sha = hashlib.sha256(data).hexdigest()
        meta = {"version": summary.model_version, "model": summary.name, "hash": summary.content_hash,
                "pushed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        t0 = time.monotonic()
        bar = ProgressBar(f"{name} -> {b.name}") if progress is True else (progress or None)
        if _after_chunk is not None:
            user_bar = bar

            def bar(done, total):  # noqa: F811
                if user_bar:
                    user_bar(done, total)
                _after_chunk(done, total)
        begin = f"import mpml.store as _st\n_st.begin({name!r}, {len(data)})\n"
        finish = f"print(repr(_st.finish({_sha256 or sha!r}, {meta!r})))\n"
        try:
            if binary:
                # One exec: begin (the board's flash check), the transfer, the hash check and swap.
                limit = chunk + chunk // 8  # the board's receive buffer: a block and its escapes
                stats, out = send_binary(conn, data, begin + f"_st.recv({limit})\n" + finish, compress,
                                         chunk=chunk, limit=limit, progress=bar, tamper=_tamper)
            else:
                try:
                    conn.exec(begin)
                except BoardExecError as e:
                    raise PushError(f"{b.name}: {e.traceback.strip().splitlines()[-1]}") from None
                stats = send_chunks(conn, data, "_st.put", compress, chunk=chunk, progress=bar, tamper=_tamper)
                out = conn.exec(finish)
            entry = ast.literal_eval(out.strip().splitlines()[-1])
            old = entry.get("prev")
        except OSError as e:  # pyserial's errors: the port went away under us
            raise BoardError(f"{b.name}: the link dropped during the push ({e}); the board keeps its previous "
                             f"model; push again (the next push removes the partial file)") from None
        except BoardExecError as e:
            try:
                conn.exec("import mpml.store as _st\n_st.abort()")
            except BoardError:
                pass
            raise PushError(f"{b.name}: {e.traceback.strip().splitlines()[-1]}") from None
        return PushResult(b.name, name, f"/models/{name}.mpml", len(data), sha, time.monotonic() - t0,
                          stats["wire_bytes"], compress, old, entry)
    finally:
        if own:
            b.close()


def push_all(path, ports: list[str] | None = None, name: str | None = None,
             out=None) -> list[PushResult | Exception]:
    """Push `path` to every board in `ports` (default: every attached board) at once; one line each on `out`."""
    if ports is None:
        ports = attached_ports()
    if not ports:
        raise BoardError("no board attached: no USB serial board, and no virtual board running")
    lock = threading.Lock()
    out = out or sys.stdout

    def say(line: str) -> None:
        with lock:
            print(line, file=out, flush=True)

    def one(port):
        try:
            r = push_model(port, path, name=name)
        except Exception as e:  # noqa: BLE001 - every board gets its line
            say(f"{port}: FAILED: {str(e).strip()}")
            raise
        say(r.line())
        return r

    return on_each_board(ports, one)


def attached_ports() -> list[str]:
    """Every attached board as a --port value: USB serial ports, then running virtual boards by name."""
    from mpml import virtual

    from .ports import list_serial_ports
    return [p.device for p in list_serial_ports()] + [b.name for b in virtual.boards() if b.status == "running"]


def _store_call(board, code: str):
    b, own = _as_board(board)
    try:
        require_runtime(b)
        try:
            return ast.literal_eval(b.conn.exec("import mpml.store as _st\nprint(repr(%s))" % code)
                                    .strip().splitlines()[-1])
        except BoardExecError as e:
            raise BoardError(f"{b.name}: {e.traceback.strip().splitlines()[-1]}") from None
    finally:
        if own:
            b.close()


def list_models(board) -> list[tuple[str, dict]]:
    """[(name, entry)] for every model on the board (entry: the manifest's, plus file_size and has_prev)."""
    return [tuple(x) for x in _store_call(board, "_st.list_models()")]


def rm_model(board, name: str) -> None:
    """Remove model `name` (and its previous version) from the board."""
    _store_call(board, f"_st.rm({name!r})")


def rollback_model(board, name: str) -> dict:
    """Swap model `name` with its previous version; returns the manifest entry now current."""
    return _store_call(board, f"_st.rollback({name!r})")
