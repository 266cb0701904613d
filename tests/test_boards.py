"""Board files (boards/*.toml, boards/virtual/*.toml) and their reader, mpml.boards."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpml import boards, virtual
from mpml.boards import BoardFileError

REAL = {"esp32": "xtensawin", "esp32s3": "xtensawin", "esp32c3": "rv32imc", "pico": "armv6m", "pico2": "armv7emsp"}


def test_every_board_is_described_with_typed_fields():
    found = {b.name: b for b in boards.boards()}
    for name, arch in REAL.items():
        b = found[name]
        assert b.arch == arch and not b.virtual and b.pins is not None
        assert b.clock_hz >= 100_000_000 and 0 < b.free_heap_bytes < b.ram_bytes
        assert 0 < b.filesystem_bytes <= b.flash_bytes
        assert boards.cost(b.arch, b.backend).cycles_per_mac > 0
    for kind in ("unix", "m0", "m3", "rv32"):
        assert found[kind].virtual and found[kind].pins is None
    # real boards first, then virtual ones
    flags = [b.virtual for b in boards.boards()]
    assert flags == sorted(flags)


def test_virtual_board_files_keep_their_keys():
    # the same files drive the virtual boards (mpml.virtual.spec): the new fields must not disturb them
    specs = virtual.specs()
    found = {b.name: b for b in boards.boards()}
    for kind, spec in specs.items():
        assert spec.arch == found[kind].arch
        assert spec.engine in ("unix", "qemu")
    assert found["m0"].free_heap_bytes <= specs["m0"].raw["heap_bytes"]


def test_pico2_is_armv7emsp_and_the_m0_cost_is_the_measured_one():
    assert boards.board("pico2").arch == "armv7emsp"
    assert boards.cost("armv6m", "native").cycles_per_mac == pytest.approx(5.1)
    assert "measured" in boards.cost("armv6m", "native").source


def test_bad_board_files_are_named(tmp_path: Path):
    with pytest.raises(BoardFileError, match="no such board file"):
        boards.load_board(tmp_path / "nope.toml")
    f = tmp_path / "x.toml"
    f.write_text('name = "x"\ntitle = "X"\narch = "z80"\n')
    with pytest.raises(BoardFileError, match=r"x\.toml.*'arch' is 'z80'"):
        boards.load_board(f)
    f.write_text('name = "x"\ntitle = "X"\narch = "armv6m"\nbackend = "native"\nclock_hz = 1\nram_bytes = 1\n'
                 'flash_bytes = 1\nfilesystem_bytes = 1\nfree_heap_bytes = 1\n')
    with pytest.raises(BoardFileError, match=r"\[pins\]"):
        boards.load_board(f)
    f.write_text(f.read_text() + "[pins]\ni2c_id = 0\ni2c_sda = 1\ni2c_scl = 2\n")
    with pytest.raises(BoardFileError, match="missing 'adc'"):
        boards.load_board(f)
    f.write_text('name = [')
    with pytest.raises(BoardFileError, match="not valid TOML"):
        boards.load_board(f)
    with pytest.raises(BoardFileError, match="unknown board 'nano'.*pico"):
        boards.board("nano")
