"""`mpml flash` and the UF2 parser, without a physical board.

- UF2: files built here (and build/images/*/firmware.uf2 when `make firmware`
  made them) parse, describe themselves, and every kind of damage is refused.
- RP2040/RP2350: a temporary folder with an INFO_UF2.TXT stands for the
  BOOTSEL drive (what the boot ROM shows is exactly such a folder); family
  mismatches are refused before anything is copied; no drive gives the
  button to press.
- ESP32: the real esptool (its Python API) talks to a pty. Behind the pty is
  nothing, noise, or FakeEspRom: the ESP32 ROM bootloader's serial protocol
  (SLIP frames; SYNC, READ_REG, FLASH_BEGIN/DATA/END, SPI_FLASH_MD5) kept to
  what esptool needs to detect the chip, write and verify. It stands in for
  the chip, which no machine here has.
- After flashing: the wait for the REPL against the unix virtual board.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import struct
import threading
import tty
import zlib
from pathlib import Path

import pytest

from conftest import runtime_board
from mpml import cli, paths
from mpml.firmware import esp, rp, uf2
from mpml.firmware.flash import (FlashError, ProgressBar, check_uf2, flash, pick_drive, repl_report,
                                 wait_for_repl)
from mpml.firmware.target import ESP_CHIPS, RP_FAMILIES, target_for

RP2040 = 0xE48BFF56
RP2350 = 0xE48BFF59
ABSOLUTE = 0xE48BFF57
INFO_RP2040 = "UF2 Bootloader v3.0\r\nModel: Raspberry Pi RP2\r\nBoard-ID: RPI-RP2\r\n"
INFO_RP2350 = "UF2 Bootloader v1.0\nModel: Raspberry Pi RP2350\nBoard-ID: RP2350\n"
# A pty has no DTR/RTS to reset a chip with, and its baud rate is moot: the rest is esptool's defaults.
ESP_OPTS = dict(connect_mode="no-reset", connect_attempts=1, baud=None, after="no-reset")


def payload(n: int, seed: int = 1) -> bytes:
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


def rp_image(family: int = RP2040, n: int = 10_000) -> bytes:
    return uf2.build(payload(n), 0x10000000, family)


def rp2350_image(n: int = 10_000) -> bytes:
    # pico-sdk 2.x: one block of the absolute family (RP2350-E10 workaround) ahead of the image
    return uf2.build(b"\xef" * 256, 0x10FFFF00, ABSOLUTE) + uf2.build(payload(n), 0x10000000, RP2350)


def esp_image(chip_id: int, n: int = 40_000, random: bool = False) -> bytes:
    """An ESP firmware image for the chip with that image chip id, written by esptool's own image code."""
    import random as rnd
    import tempfile

    from esptool import bin_image

    cls = {0: bin_image.ESP32FirmwareImage, 9: bin_image.ESP32S3FirmwareImage,
           5: bin_image.ESP32C3FirmwareImage}[chip_id]
    img = cls()
    img.entrypoint = 0x40080000
    # random: incompressible, so esptool's stub sends it deflated in as many blocks as raw
    data = rnd.Random(n).randbytes(n) if random else payload(n)
    img.segments = [bin_image.ImageSegment(0x3FFB0000, data)]
    img.segments[0].name = ".data"
    with tempfile.TemporaryDirectory() as d:
        img.save(f"{d}/image.bin")
        return Path(f"{d}/image.bin").read_bytes()


def make_drive(root: Path, name: str, info: str) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "INFO_UF2.TXT").write_text(info)
    (d / "INDEX.HTM").write_text("<html></html>")
    return d


# ---------------------------------------------------------------- UF2 parser

def test_uf2_built_image_parses_and_describes_itself():
    data = payload(10_000)
    img = uf2.parse(uf2.build(data, 0x10000000, RP2040), "pico.uf2")
    main = img.main
    assert (main.family, main.family_name, main.num_blocks) == (RP2040, "RP2040", 40)
    assert (main.start, main.end, main.payload_sizes) == (0x10000000, 0x10000000 + 40 * 256, [256])
    assert main.data()[:len(data)] == data
    text = uf2.info(img)
    assert "Family ID is RP2040, hex value is 0xe48bff56" in text
    assert "Target Address is 0x10000000" in text
    assert "40 blocks, 256-byte payloads" in text
    assert "All block flag values consistent, 0x2000 (familyID present)" in text


def test_uf2_rp2350_absolute_block_is_its_own_section():
    img = uf2.parse(rp2350_image())
    assert img.families == [ABSOLUTE, RP2350]
    assert img.main.family_name == "RP2350_ARM_S" and img.main.start == 0x10000000
    text = uf2.info(img)
    assert "Family ID is ABSOLUTE, hex value is 0xe48bff57" in text
    assert "Family ID is RP2350_ARM_S, hex value is 0xe48bff59" in text


def _blocks(data: bytes) -> list[bytearray]:
    return [bytearray(data[i:i + 512]) for i in range(0, len(data), 512)]


def _set(block: bytearray, offset: int, value: int) -> bytearray:
    struct.pack_into("<I", block, offset, value)
    return block


def _corrupt(kind: str) -> bytes:
    good = rp_image(n=2048)  # 8 blocks
    b = _blocks(good)
    if kind == "empty":
        return b""
    if kind == "truncated":
        return good[:-100]
    if kind == "not uf2":
        return b"\x7fELF" + bytes(1020)
    if kind == "bad end magic":
        _set(b[3], 508, 0)
    elif kind == "bad start magic":
        _set(b[5], 4, 0x12345678)
    elif kind == "payload too big":
        _set(b[2], 16, 480)
    elif kind == "unaligned":
        _set(b[2], 12, 0x10000202)
    elif kind == "missing block":
        del b[4]
    elif kind == "duplicate":
        b[4] = bytearray(b[3])
    elif kind == "count":
        _set(b[6], 24, 9)
    elif kind == "block number":
        _set(b[6], 20, 8)
    elif kind == "overlap":
        _set(b[6], 12, 0x10000000 + 5 * 256 + 128)
    elif kind == "container":
        for blk in b:
            _set(blk, 8, uf2.FLAG_FILE_CONTAINER)
    elif kind == "unknown flag":
        _set(b[1], 8, uf2.FLAG_FAMILY_ID | 0x10)
    return b"".join(b)


@pytest.mark.parametrize("kind, message", [
    ("empty", "empty file"),
    ("truncated", "not a whole number of 512-byte UF2 blocks"),
    ("not uf2", "block 0 (file offset 0x0): bad start magic 0x464c457f"),
    ("bad end magic", "block 3 (file offset 0x600): bad end magic"),
    ("bad start magic", "block 5 (file offset 0xa00): bad start magic"),
    ("payload too big", "block 2 (file offset 0x400): payload size 480 outside 1..476"),
    ("unaligned", "must be multiples of 4"),
    ("missing block", "1 of 8 blocks missing (numbers 4)"),
    ("duplicate", "block number 3 appears twice (file blocks 3 and 4)"),
    ("count", "blocks disagree on the block count (8, 9)"),
    ("block number", "block number 8 of 8 blocks"),
    ("overlap", "both write address 0x10000580"),
    ("container", "file container"),
    ("unknown flag", "unknown flags 0x00000010"),
])
def test_uf2_damage_is_refused_with_where_and_what(kind, message):
    with pytest.raises(uf2.Uf2Error) as e:
        uf2.parse(_corrupt(kind), "x.uf2")
    assert message in str(e.value)
    assert str(e.value).startswith("x.uf2")


@pytest.mark.parametrize("board, family", [("RPI_PICO", RP2040), ("RPI_PICO2", RP2350)])
def test_uf2_of_the_built_firmware(board, family):
    path = paths.build_dir() / "images" / board / "firmware.uf2"
    if not path.is_file():
        pytest.skip(f"{path} not built (make firmware BOARD={board})")
    img = uf2.load(path)
    assert img.main.family == family
    assert img.main.start == 0x10000000
    assert img.main.end - img.main.start > 200_000  # MicroPython itself is larger than this
    check_uf2(target_for("pico" if board == "RPI_PICO" else "pico2"), img)
    print(uf2.info(img))


def test_family_ids_and_esp_facts_agree_with_micropython_and_esptool():
    from esptool.targets import CHIP_DEFS

    for c in ESP_CHIPS.values():
        assert CHIP_DEFS[c.chip].CHIP_NAME == c.name
        assert CHIP_DEFS[c.chip].IMAGE_CHIP_ID == c.image_chip_id
        assert CHIP_DEFS[c.chip].BOOTLOADER_FLASH_OFFSET == c.offset
    src = paths.micropython_src()
    if src is None or not (src / "tools" / "uf2families.json").is_file():
        pytest.skip("MicroPython source not found (make setup)")
    listed = {int(f["id"], 16): f["short_name"] for f in json.loads((src / "tools/uf2families.json").read_text())}
    for fid, (short, _) in uf2.FAMILIES.items():
        if fid in listed:
            assert listed[fid] == short
    assert listed[RP2040] == "RP2040"
    # MicroPython's own deploy instructions give the offset of its combined firmware.bin
    for c in ESP_CHIPS.values():
        bj = src / "ports" / "esp32" / "boards" / c.image_board / "board.json"
        if bj.is_file():
            assert int(json.loads(bj.read_text())["deploy_options"]["flash_offset"], 16) == c.offset, c.image_board


# ---------------------------------------------------------------- boards

@pytest.mark.parametrize("board, method, chip, offset, family", [
    ("esp32", "esptool", "esp32", 0x1000, None),
    ("esp32s3", "esptool", "esp32s3", 0x0, None),
    ("esp32c3", "esptool", "esp32c3", 0x0, None),
    ("pico", "uf2", "", None, RP2040),
    ("pico2", "uf2", "", None, RP2350),
])
def test_flash_target_of_each_board(board, method, chip, offset, family):
    t = target_for(board)
    assert (t.method, t.chip, t.family) == (method, chip, family)
    if offset is not None:
        assert t.offsets == (offset,)
        assert t.default_image().name == "firmware.bin"
    else:
        assert t.default_image().name == "firmware.uf2"


@pytest.mark.parametrize("kind", ["unix", "m0", "m3"])
def test_virtual_boards_need_no_flashing(kind):
    with pytest.raises(FlashError, match="virtual board.*needs no flashing"):
        target_for(kind)


def test_missing_default_image_names_make_firmware(tmp_path, monkeypatch):
    monkeypatch.setenv("MPML_BUILD_DIR", str(tmp_path))
    with pytest.raises(FlashError) as e:
        flash("pico", wait=False)
    assert "make firmware BOARD=RPI_PICO" in str(e.value)
    assert str(tmp_path / "images" / "RPI_PICO" / "firmware.uf2") in str(e.value)


# ---------------------------------------------------------------- RP: BOOTSEL drive

INFO_SAMD21 = "UF2 Bootloader v1.1.3 SFA\nModel: Arduino Zero\nBoard-ID: SAMD21G18A-Zero-v0\n"


@pytest.mark.parametrize("text, chip", [(INFO_RP2040, "RP2040"), (INFO_RP2350, "RP2350"), (INFO_SAMD21, None)])
def test_info_uf2_names_the_chip(text, chip):
    info = rp.parse_info_uf2(text)
    assert info["banner"].startswith("UF2 Bootloader")
    assert rp.chip_from_info(info) == chip


def test_uf2_copied_to_the_bootsel_drive(tmp_path):
    drive = make_drive(tmp_path, "RPI-RP2", INFO_RP2040)
    image = tmp_path / "firmware.uf2"
    image.write_bytes(rp_image())
    seen = []
    r = flash("pico", image, drive=drive, wait=False, progress=lambda *a: seen.append(a), say=lambda m: None)
    assert (r.method, r.where) == ("uf2 drive", str(drive))
    assert (drive / "firmware.uf2").read_bytes() == image.read_bytes()
    assert seen[-1] == ("copying", image.stat().st_size, image.stat().st_size)


def test_bootsel_drive_found_under_the_mount_roots(tmp_path):
    root = tmp_path / "media" / "user"
    make_drive(root, "SOMESTICK", "not a uf2 drive\n")
    (root / "SOMESTICK" / "INFO_UF2.TXT").unlink()
    drive = make_drive(root, "RP2350", INFO_RP2350.replace("INFO", "info"))
    assert [d.path for d in rp.find_drives([root])] == [drive]
    image = tmp_path / "fw.uf2"
    image.write_bytes(rp2350_image())
    r = flash("pico2", image, wait=False, roots=[root], say=lambda m: None)
    assert r.where == str(drive) and (drive / "fw.uf2").read_bytes() == image.read_bytes()


def test_wrong_family_refused_before_copying(tmp_path):
    drive = make_drive(tmp_path, "RPI-RP2", INFO_RP2040)
    image = tmp_path / "pico2.uf2"
    image.write_bytes(rp2350_image())
    with pytest.raises(FlashError) as e:
        flash("pico", image, drive=drive, wait=False, say=lambda m: None)
    msg = str(e.value)
    assert "is a UF2 for RP2350_ARM_S, but board pico is RP2040" in msg and "make firmware BOARD=RPI_PICO" in msg
    assert sorted(p.name for p in drive.iterdir()) == ["INDEX.HTM", "INFO_UF2.TXT"]


def test_wrong_drive_refused_before_copying(tmp_path):
    drive = make_drive(tmp_path, "RP2350", INFO_RP2350)
    image = tmp_path / "pico.uf2"
    image.write_bytes(rp_image())
    with pytest.raises(FlashError, match="is an RP2350 board, but board pico is RP2040: nothing was copied"):
        flash("pico", image, drive=drive, wait=False, say=lambda m: None)
    # found by searching, too: a board is waiting, but not the one named
    with pytest.raises(FlashError, match="is an RP2350 board"):
        pick_drive(target_for("pico"), roots=[tmp_path])
    assert sorted(p.name for p in drive.iterdir()) == ["INDEX.HTM", "INFO_UF2.TXT"]


def test_several_drives_of_the_chip_need_drive(tmp_path):
    make_drive(tmp_path, "RPI-RP2", INFO_RP2040)
    make_drive(tmp_path, "RPI-RP2 1", INFO_RP2040)
    with pytest.raises(FlashError, match="several RP2040 boards in BOOTSEL mode: choose one with --drive"):
        pick_drive(target_for("pico"), roots=[tmp_path])


def test_image_outside_the_flash_refused(tmp_path):
    image = tmp_path / "big.uf2"
    image.write_bytes(uf2.build(payload(4096), 0x10000000 + (2 << 20) - 1024, RP2040))
    drive = make_drive(tmp_path, "RPI-RP2", INFO_RP2040)
    with pytest.raises(FlashError, match="outside pico's flash 0x10000000..0x10200000"):
        flash("pico", image, drive=drive, wait=False, say=lambda m: None)


def test_folder_without_info_uf2_is_not_a_drive(tmp_path):
    image = tmp_path / "fw.uf2"
    image.write_bytes(rp_image())
    with pytest.raises(FlashError, match="no INFO_UF2.TXT there"):
        flash("pico", image, drive=tmp_path / "nothing", wait=False, say=lambda m: None)


def test_no_board_in_bootsel_says_which_button(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MPML_BOOTSEL_ROOTS", str(tmp_path / "media"))
    monkeypatch.setenv("PICOTOOL", str(tmp_path / "no-picotool"))
    image = tmp_path / "fw.uf2"
    image.write_bytes(rp_image())
    rc = cli.main(["flash", "--board", "pico", str(image), "--no-bootloader", "--no-wait",
                   "--port", str(tmp_path / "ttyACM9")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "no RP2040 board in BOOTSEL mode" in err and "picotool is not installed" in err
    assert "hold the BOOTSEL button while plugging the board in" in err
    assert "machine.bootloader()" in err and "--drive" in err


def _fake_picotool(tmp_path: Path, output: str, rc: int) -> Path:
    # picotool talks USB to a board in BOOTSEL; this script stands in for it and records its arguments.
    exe = tmp_path / "picotool"
    exe.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/picotool.args\necho '{output}'\nexit {rc}\n")
    exe.chmod(0o755)
    return exe


def test_picotool_used_when_no_drive_is_mounted(tmp_path, monkeypatch):
    monkeypatch.setenv("PICOTOOL", str(_fake_picotool(tmp_path, "Loading into Flash: [==] 100%", 0)))
    image = tmp_path / "fw.uf2"
    image.write_bytes(rp_image())
    r = flash("pico", image, wait=False, roots=[], bootloader=False, say=lambda m: None)
    assert r.method == "picotool"
    assert (tmp_path / "picotool.args").read_text().split() == ["load", "-v", "-x", str(image)]


def test_picotool_without_a_board_falls_back_to_the_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PICOTOOL", str(_fake_picotool(
        tmp_path, "No accessible RP-series devices in BOOTSEL mode were found.", 249)))
    image = tmp_path / "fw.uf2"
    image.write_bytes(rp_image())
    with pytest.raises(FlashError, match="no RP2040 board in BOOTSEL mode"):
        flash("pico", image, wait=False, roots=[], bootloader=False, port=str(tmp_path / "none"),
              say=lambda m: None)


def test_machine_bootloader_sent_over_the_repl(tmp_path, monkeypatch):
    """No drive, MicroPython on the port: mpml sends machine.bootloader() and waits for the drive.

    The unix board has no machine.bootloader() (no drive can appear), so this
    checks the REPL side and the message when no drive comes; the board must
    stay usable.
    """
    from mpml.device.board import Board

    monkeypatch.setenv("PICOTOOL", str(tmp_path / "no-picotool"))
    board = runtime_board("unix")
    image = tmp_path / "fw.uf2"
    image.write_bytes(rp_image())
    said = []
    with pytest.raises(FlashError) as e:
        flash("pico", image, port=board.port, bootloader=True, roots=[tmp_path], drive_timeout=1, wait=False,
              say=said.append)
    assert f"sending machine.bootloader() to {board.port}" in said
    assert f"the board on {board.port} was sent machine.bootloader(), but no RP2040 drive was mounted" in str(e.value)
    with Board.open(board.port) as b:
        assert b.conn.eval("1 + 1") == 2


def test_interrupted_copy_says_how_to_recover(tmp_path):
    drive = rp.BootselDrive(tmp_path / "gone", {}, "RP2040")  # unplugged: the folder is not there any more
    with pytest.raises(FlashError) as e:
        rp.copy_uf2(rp_image(), drive)
    assert "stopped after 0 of" in str(e.value) and "BOOTSEL" in str(e.value)


# ---------------------------------------------------------------- ESP32: esptool

class FakeEspRom:
    """The ESP32 ROM bootloader's side of esptool's serial protocol, on a pty (see the module docstring).

    `die_after`: close the link after that many FLASH_DATA blocks (a cable
    pulled mid-write); `silent`: read and never answer; `noise`: answer
    everything with a boot log, as a board running its firmware does.
    """

    ESP32_MAGIC = 0x00F01D83
    MAGIC_REG = 0x40001000

    def __init__(self, die_after: int | None = None, silent: bool = False, noise: bool = False):
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.flash = bytearray(b"\xff") * (4 << 20)
        self.die_after, self.silent, self.noise = die_after, silent, noise
        self.blocks = 0
        self.stub = False
        self.ops: list[int] = []
        self._begin = (0, 0)
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def _frame(self, pkt: bytes) -> None:
        os.write(self.master, b"\xc0" + pkt.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0")

    def _reply(self, op: int, val: int = 0, data: bytes = b"") -> None:
        status = b"\x00\x00" if self.stub else b"\x00\x00\x00\x00"  # the ROM sends 4 status bytes, the stub 2
        self._frame(struct.pack("<BBHI", 1, op, len(data) + len(status), val) + data + status)

    def _serve(self) -> None:
        frame, inside = bytearray(), False
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if self.silent:
                continue
            if self.noise:
                os.write(self.master, b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\nMicroPython\r\n")
                continue
            for byte in chunk:
                if byte != 0xC0:
                    if inside:
                        frame.append(byte)
                    continue
                if inside and frame:
                    pkt = bytes(frame).replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb")
                    frame.clear()
                    inside = False
                    if not self._handle(pkt):
                        return
                else:
                    inside, frame = True, bytearray()

    def _handle(self, pkt: bytes) -> bool:
        if len(pkt) < 8 or pkt[0] != 0:
            return True
        op, size = pkt[1], struct.unpack_from("<H", pkt, 2)[0]
        data = pkt[8:8 + size]
        self.ops.append(op)
        if op == 0x08:  # SYNC: the ROM answers eight times, with a non-zero value
            for _ in range(8):
                self._reply(op, 0x20120707)
        elif op == 0x14:  # GET_SECURITY_INFO: the ESP32's ROM has no such command
            self._frame(struct.pack("<BBHI", 1, op, 4, 0) + b"\x01\x05\x00\x00")
        elif op == 0x06:  # MEM_END: the flasher stub was loaded into RAM and starts: it says OHAI
            self._reply(op)
            self.stub = True
            self._frame(b"OHAI")
        elif op == 0x10:  # FLASH_DEFL_BEGIN (stub): size, blocks, block size, offset, encrypted
            self._pos = struct.unpack_from("<IIII", data)[3]
            self._inflate = zlib.decompressobj()
            self._reply(op)
        elif op == 0x11:  # FLASH_DEFL_DATA (stub): length, sequence number, 0, 0, deflated data
            n = struct.unpack_from("<I", data)[0]
            out = self._inflate.decompress(data[16:16 + n])
            self.flash[self._pos:self._pos + len(out)] = out
            self._pos += len(out)
            self.blocks += 1
            if self.die_after is not None and self.blocks >= self.die_after:
                self.close()
                return False
            self._reply(op)
        elif op == 0x0A:  # READ_REG
            self._reply(op, self.ESP32_MAGIC if struct.unpack_from("<I", data)[0] == self.MAGIC_REG else 0)
        elif op == 0x02:  # FLASH_BEGIN: erase size, blocks, block size, offset
            erase, _, block, offset = struct.unpack_from("<IIII", data)
            self.flash[offset:offset + erase] = b"\xff" * erase
            self._begin = (block, offset)
            self._reply(op)
        elif op == 0x03:  # FLASH_DATA: length, sequence number, 0, 0, data
            n, seq = struct.unpack_from("<II", data)
            block, offset = self._begin
            self.flash[offset + seq * block:offset + seq * block + n] = data[16:16 + n]
            self.blocks += 1
            if self.die_after is not None and self.blocks >= self.die_after:
                self.close()
                return False
            self._reply(op)
        elif op == 0xD0:  # ERASE_FLASH (the ESP32's ROM and the stub have it)
            self.flash[:] = b"\xff" * len(self.flash)
            self._reply(op)
        elif op == 0x13:  # SPI_FLASH_MD5: address, size -> 32 hex digits (the ROM's form)
            addr, n = struct.unpack_from("<II", data)
            md5 = hashlib.md5(self.flash[addr:addr + n])
            self._reply(op, 0, md5.digest() if self.stub else md5.hexdigest().encode())  # raw from the stub
        else:  # SPI_ATTACH, SPI_SET_PARAMS, WRITE_REG, FLASH_END: acknowledged
            self._reply(op)
        return True


@pytest.fixture
def fake_rom(request):
    roms = []

    def make(**kw):
        roms.append(FakeEspRom(**kw))
        return roms[-1]
    yield make
    for r in roms:
        r.close()


def test_esptool_command_per_board(tmp_path):
    img = tmp_path / "firmware.bin"
    assert esp.esptool_command(target_for("esp32"), img, "/dev/ttyUSB0") == [
        "esptool", "--chip", "esp32", "--port", "/dev/ttyUSB0", "write-flash", "0x1000", str(img)]
    assert esp.esptool_command(target_for("esp32s3"), img, "/dev/ttyACM0", erase=True) == [
        "esptool", "--chip", "esp32s3", "--port", "/dev/ttyACM0", "write-flash", "--erase-all", "0x0", str(img)]
    assert esp.esptool_command(target_for("esp32c3"), img, None)[-2:] == ["0x0", str(img)]


def test_esptool_accepts_the_command_we_build(tmp_path, capsys):
    """esptool's own command line takes our arguments (it fails to connect to an empty pty, not to parse)."""
    import esptool

    img = tmp_path / "firmware.bin"
    img.write_bytes(esp_image(0))
    master, slave = pty.openpty()
    try:
        cmd = esp.esptool_command(target_for("esp32"), img, os.ttyname(slave), erase=True)
        with pytest.raises((SystemExit, Exception)) as e:
            esptool.main(["--before", "no-reset", "--connect-attempts", "1"] + cmd[1:])
    finally:
        os.close(master)
        os.close(slave)
    out = capsys.readouterr()
    assert "No serial data received" in str(e.value) + out.out + out.err
    assert "Usage" not in out.err and "No such option" not in out.err


def test_esp_image_checks_before_connecting(tmp_path):
    t = target_for("esp32")
    with pytest.raises(FlashError, match="is built for ESP32-S3 .image chip id 9., but board esp32 is ESP32"):
        esp.check_image(t, esp_image(9), "s3.bin")
    with pytest.raises(FlashError, match="not an ESP32 firmware image"):
        esp.check_image(t, rp_image(), "pico.uf2")
    with pytest.raises(FlashError, match="past the 4 MiB flash"):
        esp.check_image(t, esp_image(0) + bytes(4 << 20), "huge.bin")
    esp.check_image(t, esp_image(0), "ok.bin")
    esp.check_image(target_for("esp32c3"), esp_image(5), "c3.bin")


def test_no_chip_answering_on_a_bare_pty(tmp_path):
    img = tmp_path / "firmware.bin"
    img.write_bytes(esp_image(0))
    master, slave = pty.openpty()
    port = os.ttyname(slave)
    try:
        with pytest.raises(FlashError) as e:
            esp.flash_esp(target_for("esp32"), img, port, **ESP_OPTS)
    finally:
        os.close(master)
        os.close(slave)
    msg = str(e.value)
    assert msg.startswith(f"no ESP32 answered on {port}")
    assert "hold the BOOT button" in msg and "press and release EN (RESET)" in msg and "--port" in msg


@pytest.mark.parametrize("mode", ["silent", "noise"])
def test_no_chip_answering_behind_silence_or_noise(tmp_path, fake_rom, mode):
    img = tmp_path / "firmware.bin"
    img.write_bytes(esp_image(0))
    rom = fake_rom(**{mode: True})
    with pytest.raises(FlashError, match=f"(?s)no ESP32 answered on {rom.port}.*BOOT"):
        esp.flash_esp(target_for("esp32"), img, rom.port, **ESP_OPTS)
    assert 0x02 not in rom.ops


def test_flash_write_and_verify_through_esptool(tmp_path, fake_rom):
    img = tmp_path / "firmware.bin"
    data = esp_image(0)
    img.write_bytes(data)
    rom = fake_rom()
    seen = []
    r = esp.flash_esp(target_for("esp32"), img, rom.port, progress=lambda *a: seen.append(a), **ESP_OPTS)
    assert r.chip.startswith("ESP32") and r.written == [(0x1000, len(data))] and r.verified
    assert bytes(rom.flash[0x1000:0x1000 + len(data)]) == data
    assert rom.flash[:0x1000] == b"\xff" * 0x1000  # nothing below the bootloader offset
    assert rom.stub and 0x11 in rom.ops  # through esptool's flasher stub, deflated
    assert 0x13 in rom.ops  # esptool's MD5 check of the written data
    assert any("Verification successful" in line for line in r.log)
    assert seen and seen[-1][0] in ("writing", "verifying")


def test_flash_through_the_rom_loader_without_the_stub(tmp_path, fake_rom):
    img = tmp_path / "firmware.bin"
    data = esp_image(0)
    img.write_bytes(data)
    rom = fake_rom()
    esp.flash_esp(target_for("esp32"), img, rom.port, **dict(ESP_OPTS, stub=False))
    assert not rom.stub and 0x03 in rom.ops and 0x11 not in rom.ops
    assert bytes(rom.flash[0x1000:0x1000 + len(data)]) == data
    with pytest.raises(FlashError, match="erasing the whole flash needs esptool's flasher stub.*nothing was written"):
        esp.flash_esp(target_for("esp32"), img, fake_rom().port, erase=True, **dict(ESP_OPTS, stub=False))


def test_erase_first_when_asked(tmp_path, fake_rom):
    img = tmp_path / "firmware.bin"
    data = esp_image(0)
    img.write_bytes(data)
    rom = fake_rom()
    rom.flash[0x200000:0x200010] = b"old filesystem.."
    r = esp.flash_esp(target_for("esp32"), img, rom.port, erase=True, **ESP_OPTS)
    assert r.erased and rom.ops.index(0xD0) < rom.ops.index(0x02)
    assert rom.flash[0x200000:0x200010] == b"\xff" * 16
    assert bytes(rom.flash[0x1000:0x1000 + len(data)]) == data


def test_wrong_chip_refused_before_writing(tmp_path, fake_rom):
    img = tmp_path / "firmware.bin"
    img.write_bytes(esp_image(9))  # an ESP32-S3 image, right for the board file
    rom = fake_rom()  # but an ESP32 answers
    with pytest.raises(FlashError) as e:
        esp.flash_esp(target_for("esp32s3"), img, rom.port, **ESP_OPTS)
    assert "is an ESP32, but board esp32s3 is ESP32-S3: nothing was written" in str(e.value)
    assert 0x02 not in rom.ops and 0x03 not in rom.ops


def test_interrupted_write_says_how_to_recover(tmp_path, fake_rom, monkeypatch):
    import esptool.cmds

    # esptool waits for a lost chip to come back, one try a second (its connect_attempts setting, 7 by
    # default); ours never does, so one try is enough
    monkeypatch.setattr(esptool.cmds, "DEFAULT_CONNECT_ATTEMPTS", 1)
    img = tmp_path / "firmware.bin"
    img.write_bytes(esp_image(0, 100_000, random=True))
    rom = fake_rom(die_after=3)
    with pytest.raises(FlashError) as e:
        esp.flash_esp(target_for("esp32"), img, rom.port, **ESP_OPTS)
    msg = str(e.value)
    assert f"flashing esp32 on {rom.port} stopped while writing" in msg
    assert "the ROM bootloader cannot be overwritten" in msg
    assert f"mpml flash --board esp32 --port {rom.port} --erase" in msg


def test_cli_flash_esp32_through_the_fake_rom(tmp_path, fake_rom, capsys, monkeypatch):
    import mpml.firmware.esp as esp_mod

    img = tmp_path / "firmware.bin"
    data = esp_image(0)
    img.write_bytes(data)
    rom = fake_rom()
    real = esp_mod.flash_esp

    def flash_esp(*a, **kw):  # the CLI's esptool defaults reset the chip through DTR/RTS: a pty has none
        kw.update(ESP_OPTS)
        return real(*a, **kw)
    monkeypatch.setattr(esp_mod, "flash_esp", flash_esp)
    rc = cli.main(["flash", "--board", "esp32", str(img), "--port", rom.port, "--no-wait"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert f"flashed {img} to esp32 (esptool: {rom.port})" in out.out
    assert f"esptool --chip esp32 --port {rom.port} write-flash 0x1000 {img}" in out.err
    assert bytes(rom.flash[0x1000:0x1000 + len(data)]) == data


def test_cli_dry_run(tmp_path, capsys):
    img = tmp_path / "fw.bin"
    img.write_bytes(esp_image(5))
    assert cli.main(["flash", "--board", "esp32c3", str(img), "--dry-run", "--erase"]) == 0
    out = capsys.readouterr().out
    assert "an ESP image for ESP32-C3" in out and "write-flash --erase-all 0x0" in out
    u = tmp_path / "fw.uf2"
    u.write_bytes(rp2350_image())
    assert cli.main(["flash", "--board", "pico2", str(u), "--dry-run"]) == 0
    assert "Family ID is RP2350_ARM_S" in capsys.readouterr().out
    assert cli.main(["flash", "--board", "pico", str(u), "--dry-run"]) == 1
    assert "is a UF2 for RP2350_ARM_S" in capsys.readouterr().err


def test_progress_bar_without_a_terminal():
    import io

    s = io.StringIO()
    bar = ProgressBar(s)
    for i in range(0, 101, 10):
        bar("writing", i, 100)
    bar("verifying", 1, 1)
    assert s.getvalue() == "writing: 0%\nwriting: 100%\nverifying: 100%\n"


# ---------------------------------------------------------------- after flashing: the REPL

def test_wait_for_repl_reports_version_and_mpml():
    board = runtime_board("unix")
    port, info = wait_for_repl(board.port, timeout=30)
    assert port == board.port
    assert info.micropython.startswith("1.")
    assert info.runtime_version and not info.runtime_error
    line = repl_report(port, info)
    assert line.startswith(f"MicroPython {info.micropython} is running on {port}")
    assert f"`import mpml` works (mpml {info.runtime_version})" in line


def test_wait_for_repl_gives_up_saying_what_it_saw(tmp_path):
    with pytest.raises(FlashError, match=r"did not come back within 1 s \(.*ttyGONE did not appear\)"):
        wait_for_repl(str(tmp_path / "ttyGONE"), timeout=1, poll=0.2)


def test_rp_families_cover_the_boards():
    assert RP_FAMILIES["RP2040"][0] == RP2040 and RP_FAMILIES["RP2350"][0] == RP2350


def test_rp2350_images_lead_with_an_ignore_block_that_is_not_part_of_the_image():
    """picotool (and MicroPython's RP2350 releases) put a lone 'block 0 of 2' of the absolute family first, tagged
    for the boot ROM to ignore (the RP2350-E10 erratum); the parser skips it, but not an untagged one."""
    def e10_block(tagged: bool) -> bytes:
        head = struct.pack("<8I", uf2.MAGIC_START0, uf2.MAGIC_START1,
                           uf2.FLAG_FAMILY_ID | (uf2.FLAG_EXTENSION_TAGS if tagged else 0),
                           0x10FFFF00, 256, 0, 2, 0xE48BFF57)
        body = b"\xef" * 256 + (struct.pack("<I", uf2.EXT_RP2_IGNORE_BLOCK) if tagged else b"")
        return head + body.ljust(uf2.DATA_SIZE, b"\x00") + struct.pack("<I", uf2.MAGIC_END)

    image = uf2.build(bytes(range(256)) * 8, 0x10000000, 0xE48BFF59)
    parsed = uf2.parse(e10_block(True) + image, "pico2.uf2")
    assert [s.family for s in parsed.sections] == [0xE48BFF59] and len(parsed.blocks) == 8
    with pytest.raises(uf2.Uf2Error, match="1 of 2 blocks missing"):
        uf2.parse(e10_block(False) + image, "pico2.uf2")
