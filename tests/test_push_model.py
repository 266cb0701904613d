"""push-model, models, rm, rollback on the unix, m0 and m3 boards, and the faults of issue 5.

Blobs are small (a few hundred bytes to ~2 KB): the qemu boards' UARTs move a
few KB/s. Each test leaves /models as it found it for the next one.
"""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zlib

import pytest

from conftest import runtime_board, runtime_moved_aside
from mpml import blobfmt as F
from mpml import ops
from mpml.blob import write_blob
from mpml.device import BoardError, Connection
from mpml.device.models import PushError, list_models, push_all, push_model, rm_model, rollback_model
from mpml.device.transfer import Chunk
from mpml.testing.graphs import mlp


def blob(seed: int = 0, sizes=(8, 6, 4)) -> bytes:
    return write_blob(mlp(seed=seed, sizes=sizes))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def patched(data: bytes, offset: int, fmt: str, value) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    struct.pack_into("<I", b, len(b) - 4, zlib.crc32(b[:-4]))
    return bytes(b)


def on_board(board, code: str):
    with Connection(board.port, timeout=30) as c:
        return c.eval(code)


def board_sha(board, name: str):
    return on_board(board, "__import__('binascii').hexlify(__import__('hashlib').sha256("
                           f"open('/models/{name}.mpml','rb').read()).digest()).decode()")


def leftovers(board):
    return on_board(board, "[n for n in __import__('os').listdir('/models') if n.endswith('.tmp')]")


def loads(board, name: str) -> str:
    """The model's content hash as the board's loader reads it (so: the file loads)."""
    return on_board(board, f"__import__('mpml').load('/models/{name}.mpml').info()['hash']")


LOOK = """\
import os, hashlib, binascii, mpml
def _look(name):
    p = '/models/' + name + '.mpml'
    try:
        d = open(p, 'rb').read()
    except OSError:
        return None
    return (binascii.hexlify(hashlib.sha256(d).digest()).decode(), mpml.load(p).info()['hash'],
            [n for n in os.listdir('/models') if n.endswith('.tmp')])
print(repr(_look(%r)))
"""


def look(board, name: str):
    """(SHA-256 of /models/NAME.mpml, its content hash as mpml.load reads it, temp files left) in one trip."""
    import ast
    with Connection(board.port, timeout=30) as c:
        return ast.literal_eval(c.exec(LOOK % name).strip())


@pytest.mark.parametrize("kind", ["unix", "m0", "m3"])
def test_push_list_rollback_rm_round_trip(kind):
    board = runtime_board(kind)
    v1, v2 = blob(0), blob(1)
    r1 = push_model(board.name, v1, name="rt")
    assert r1.sha256 == sha(v1) and r1.path == "/models/rt.mpml" and r1.replaced is None
    r2 = push_model(board.name, v2, name="rt")
    assert r2.replaced["sha256"] == sha(v1)
    e = dict(list_models(board.name))["rt"]
    assert e["sha256"] == sha(v2) and e["size"] == len(v2) == e["file_size"] and e["has_prev"]
    assert e["prev"]["sha256"] == sha(v1) and e["pushed"] and e["hash"] == v2[16:32].hex()
    assert look(board, "rt") == (sha(v2), v2[16:32].hex(), [])  # the pushed file loads
    back = rollback_model(board.name, "rt")
    assert back["sha256"] == sha(v1) and back["prev"]["sha256"] == sha(v2)
    assert look(board, "rt") == (sha(v1), v1[16:32].hex(), [])
    rollback_model(board.name, "rt")  # and forward again
    rm_model(board.name, "rt")
    assert "rt" not in dict(list_models(board.name))
    with pytest.raises(BoardError, match="no model 'rt'"):
        rm_model(board.name, "rt")
    push_model(board.name, v1, name="rt")
    with pytest.raises(BoardError, match="no previous version"):
        rollback_model(board.name, "rt")
    rm_model(board.name, "rt")


def test_refusals_before_sending():
    board = runtime_board("m0")
    good = blob(0)
    h = struct.unpack_from(F.HEADER, good, 0)
    cases = [
        (patched(good, 4, "<H", 2), r"blob format version 2; the board's mpml runtime reads version 1"),
        (patched(good, h[F.H_OPS], "B", 99), r"does not have op op#99"),
        (patched(good, 12, "<I", 200000), r"arena 200000 \+ blob \d+ = \d+ bytes of RAM needed, "
                                                   r"the board has \d+ free: \d+ bytes too many"),
    ]
    sent = []
    for data, words in cases:
        with pytest.raises(PushError, match=words):
            push_model(board.name, data, name="refused", _after_chunk=lambda d, t: sent.append(d))
    assert sent == []  # not even the first chunk
    assert "refused" not in dict(list_models(board.name)) and leftovers(board) == []


def test_runtime_missing_or_of_another_version_is_refused_naming_the_fix():
    # push-model asks the board in one short exec; only when that fails does the full runtime check run,
    # for its message. Nothing may be written either way.
    from mpml.device import Board, RuntimeMismatch
    from mpml.device.board import DEVICE_DIR
    board = runtime_board("unix")
    fix = f"mpml install --port {board.name}"
    with Board.open(board.name) as b, runtime_moved_aside(b.conn):
        with pytest.raises(RuntimeMismatch, match="not installed") as e:
            push_model(b, blob(0), name="norun")
        assert fix in str(e.value)
    with Board.open(board.name) as b:
        b.conn.exec(f"import os\nos.rename({DEVICE_DIR + '/__init__.mpy'!r}, 'lib/mpml/init.aside')\n"
                    f"open({DEVICE_DIR + '/__init__.py'!r}, 'w').write('__version__ = \"0.0.1\"\\n')")
    try:
        with pytest.raises(RuntimeMismatch, match="version 0.0.1") as e:
            push_model(board.name, blob(0), name="oldrun")
        assert fix in str(e.value)
    finally:
        with Board.open(board.name) as b:
            b.conn.exec(f"import os\nos.remove({DEVICE_DIR + '/__init__.py'!r})\n"
                        f"os.rename('lib/mpml/init.aside', {DEVICE_DIR[1:] + '/__init__.mpy'!r})")
    names = dict(list_models(board.name))
    assert "norun" not in names and "oldrun" not in names and leftovers(board) == []


@pytest.mark.parametrize("kind", ["unix", "m0"])
def test_corrupted_in_transit_replaces_nothing(kind):
    board = runtime_board(kind)
    old, new = blob(0), blob(2, sizes=(16, 24, 4))
    push_model(board.name, old, name="ct")

    def flip(i, c: Chunk) -> Chunk:
        if i != 1:
            return c
        raw = base64.b64decode(c.text)
        if c.z:
            raw = zlib.decompress(raw, 10)
        raw = bytearray(raw)
        raw[7] ^= 0x40
        return Chunk(c.raw_len, base64.b64encode(bytes(raw)), False)

    with pytest.raises(PushError, match="hash mismatch.*nothing replaced"):
        push_model(board.name, new, name="ct", chunk=256, _tamper=flip)
    with pytest.raises(PushError, match="hash mismatch"):
        push_model(board.name, new, name="ct", _sha256="0" * 64)
    assert board_sha(board, "ct") == sha(old) and dict(list_models(board.name))["ct"]["sha256"] == sha(old)
    assert leftovers(board) == []
    loads(board, "ct")
    rm_model(board.name, "ct")


@pytest.mark.parametrize("kind", ["unix", "m0"])
def test_link_drop_mid_push_keeps_the_old_model_and_the_next_push_works(kind):
    board = runtime_board(kind)
    old, new = blob(0), blob(3, sizes=(32, 24, 4))
    push_model(board.name, old, name="ld")
    from mpml.device.board import Board

    b = Board.open(board.name, timeout=10)
    try:
        def cut(done, total):
            if 0 < done < total:
                b.conn.transport.serial.close()  # the cable is pulled

        with pytest.raises(BoardError):
            push_model(b, new, name="ld", chunk=512, _after_chunk=cut)
    finally:
        b.close()
    assert board_sha(board, "ld") == sha(old)
    assert loads(board, "ld") == old[16:32].hex()
    assert leftovers(board) == ["ld.tmp"]  # what the dropped push left; the next one removes it
    push_model(board.name, new, name="ld")
    assert board_sha(board, "ld") == sha(new) and leftovers(board) == []
    assert loads(board, "ld") == new[16:32].hex()
    rm_model(board.name, "ld")


@pytest.mark.parametrize("kind", ["unix", "m0"])
def test_link_drop_in_the_middle_of_a_block(kind):
    """The cable goes while a block is half sent: the board, blocked reading the rest, takes the next session's
    Ctrl-C; the old model stays and the next push works."""
    board = runtime_board(kind)
    old, new = blob(0), blob(5, sizes=(32, 24, 4))
    push_model(board.name, old, name="mb")
    crashes = board.refresh().state.get("crashes")
    from mpml.device.board import Board

    b = Board.open(board.name, timeout=10)
    serial = b.conn.transport.serial
    write = serial.write
    blocks = []

    def half_then_pull(data):
        head = bytes(data[:8])
        is_block = len(data) > 8 and all(c in b"0123456789abcdef" for c in head) and int(head[:6], 16) == len(data) - 8
        if is_block:
            blocks.append(len(data))
            if len(blocks) == 2:
                write(data[: len(data) // 2])
                serial.close()  # the cable is pulled in the middle of the second block
                raise OSError("link gone")
        return write(data)

    serial.write = half_then_pull
    try:
        with pytest.raises(BoardError):
            push_model(b, new, name="mb", chunk=512, compress=False)
    finally:
        serial.write = write
        b.close()
    assert len(blocks) == 2
    sha_now, content, tmp = look(board, "mb")
    assert sha_now == sha(old) and content == old[16:32].hex()
    push_model(board.name, new, name="mb")
    sha_now, content, tmp = look(board, "mb")
    assert sha_now == sha(new) and content == new[16:32].hex() and tmp == []
    rm_model(board.name, "mb")
    # The rest of the cut block reaches the REPL as line noise: a board shrugs it off, it must not restart.
    assert board.refresh().state.get("crashes") == crashes


def test_link_drop_by_stopping_the_board_keeps_the_old_model():
    """The unix board's process is stopped mid-push (its filesystem is a host folder, so it survives, as a real
    board's flash survives a power cut); restarted, it loads the old model and takes the next push."""
    from mpml import virtual
    from mpml.device.board import Board

    board = runtime_board("unix")
    old, new = blob(0), blob(6, sizes=(48, 24, 4))
    push_model(board.name, old, name="ps")
    b = Board.open(board.name, timeout=10)
    try:
        def stop(done, total):
            if 0 < done < total:
                virtual.stop(board.name)

        with pytest.raises(BoardError):
            push_model(b, new, name="ps", chunk=512, compress=False, _after_chunk=stop)
    finally:
        b.close()
    board = virtual.start("unix", name=board.name, watch_pid=__import__("os").getpid())
    sha_now, content, tmp = look(board, "ps")
    assert sha_now == sha(old) and content == old[16:32].hex()
    push_model(board.name, new, name="ps")
    sha_now, content, tmp = look(board, "ps")
    assert sha_now == sha(new) and tmp == []
    rm_model(board.name, "ps")


FILL = """\
import os, mpml.store as st
b = bytearray(4096)
with open('/fill.bin', 'wb') as f:
    while st.free() > %d:
        f.write(b if st.free() > %d else b[:512])
print(st.free())
"""


def test_flash_full_is_refused_before_anything_is_replaced():
    board = runtime_board("m0")  # a 256 KiB littlefs disk
    old, new = blob(0), blob(4, sizes=(64, 32, 4))
    push_model(board.name, old, name="ff")
    try:
        left = on_board(board, "None") or 0
        with Connection(board.port, timeout=60) as c:
            left = int(c.exec(FILL % (len(new) - 1024, len(new) + 8192)).strip())
        assert left < len(new)
        with pytest.raises(PushError, match=r"flash full: the model needs \d+ bytes .* \d+ bytes short"):
            push_model(board.name, new, name="ff")
        # The board's own check, and a write that fills the disk half way (the board was told a small size).
        with Connection(board.port, timeout=60) as c:
            out = c.exec("import mpml.store as st\ntry:\n    st.begin('ff', %d)\nexcept OSError as e:\n"
                         "    print('refused', e)\n" % len(new))
            assert "refused" in out and "flash full" in out
            zeros = base64.b64encode(zlib.compress(bytes(16384), 9)).decode()
            out = c.exec("st.begin('ff', 10, reserve=0)\ntry:\n    for i in range(40):\n"
                         f"        st.put({zeros!r}, 1)\nexcept OSError as e:\n    print('refused', e)\n")
            assert "flash full while writing" in out
        assert leftovers(board) == []
        assert board_sha(board, "ff") == sha(old) and loads(board, "ff") == old[16:32].hex()
    finally:
        on_board(board, "__import__('os').remove('/fill.bin')")
    push_model(board.name, new, name="ff")
    assert board_sha(board, "ff") == sha(new)
    rm_model(board.name, "ff")


def test_push_all_to_two_boards_at_once():
    boards = [runtime_board("unix"), runtime_board("m3")]
    data = blob(5)
    out = io.StringIO()
    results = push_all(data, ports=[b.name for b in boards], name="all", out=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(not isinstance(r, Exception) for r in results), lines
    assert sorted(line.split(":")[0] for line in lines) == sorted(b.name for b in boards)
    for b in boards:
        assert board_sha(b, "all") == sha(data)
        rm_model(b.name, "all")


def test_the_cli(capsys):
    from mpml.cli import main

    board = runtime_board("unix")
    data = blob(6)
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "clim.mpml"
        p.write_bytes(data)
        assert main(["push-model", str(p), "--port", board.name]) == 0
        assert main(["push-model", str(p), "--port", board.name, "--name", "clim"]) == 0
        assert main(["models", "--port", board.name]) == 0
        out = capsys.readouterr().out
        assert "clim" in out and sha(data)[:12] in out
        assert main(["rollback", "clim", "--port", board.name]) == 0
        assert main(["rm", "clim", "--port", board.name]) == 0
        assert main(["rm", "clim", "--port", board.name]) == 1
        assert "no model 'clim'" in capsys.readouterr().err
    assert ops.FULLY_CONNECTED in ops.OPS


@pytest.mark.parametrize("kind", ["unix", "m0"])
def test_binary_transfer_carries_every_byte_the_link_acts_on(kind):
    """0x03 (Ctrl-C: SIGINT on the unix board, KeyboardInterrupt on qemu), 0x04, CR, the escape byte and
    escape-like pairs arrive intact, compressed or not, and nothing interrupts the board."""
    import random

    from mpml.device.transfer import escape, send_binary, unescape

    board = runtime_board(kind)
    rnd = random.Random(7)
    special = bytes(rnd.choice(b"\x03\x04\x1b\r") for _ in range(3000))
    data = (special + b"\x1bC\x1bD\x1bE\x1bM\x1b\x1b\x03\x03" * 64
            + bytes(rnd.randrange(256) for _ in range(3000)) + bytes(range(256)) * 4)
    assert unescape(escape(data)) == data and not set(escape(data)) & {3, 4, 13}
    for compress in (False, True):
        with Connection(board.port, timeout=30) as c:
            stats, out = send_binary(c, data, "import mpml.store as _st\n_st.begin('esc', %d)\n_st.recv(4608)\n"
                                     "print(repr(_st.finish(%r, {})))\n" % (len(data), sha(data)), compress)
            assert stats["chunks"] >= 2 and sha(data) in out
        assert board_sha(board, "esc") == sha(data)
    assert leftovers(board) == []
    rm_model(board.name, "esc")
