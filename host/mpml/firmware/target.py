"""What flashing a board means: its chip, how it is written, where, and which image is its own.

Read from the board file (`boards/*.toml`): the `[image]` table when there is
one (MicroPython port and board name, UF2 family, flash offsets), otherwise
defaults by the board's `mcu`, which are MicroPython 1.25's own:

- ESP32: the combined `firmware.bin` (bootloader, partition table, app) is
  written at 0x1000, where the ESP32's ROM looks for the second-stage
  bootloader (ports/esp32/makeimg.py: OFFSET_BOOTLOADER_DEFAULT = 0x1000;
  boards/ESP32_GENERIC/board.json: flash_offset 0x1000);
- ESP32-S3 and ESP32-C3: the same file at 0x0 (their ROM reads the
  bootloader from offset 0; board.json flash_offset "0");
- RP2040 and RP2350: a UF2 with family id 0xe48bff56 (RP2040) or
  0xe48bff59 (RP2350, Arm Secure), flash at 0x10000000 (XIP base).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mpml import boards, paths
from mpml.firmware import uf2

__all__ = ["FlashError", "FlashTarget", "target_for", "ESP_CHIPS", "RP_FAMILIES", "XIP_BASE"]

XIP_BASE = 0x10000000


class FlashError(Exception):
    """Flashing cannot go on (or did not finish); the message says why and what to do."""


@dataclass(frozen=True)
class EspChip:
    chip: str          # esptool's name: "esp32s3"
    name: str          # what esptool's detection reports (ESPLoader.CHIP_NAME): "ESP32-S3"
    image_chip_id: int  # the chip id in an ESP image's extended header (esptool: IMAGE_CHIP_ID)
    offset: int        # where MicroPython's combined firmware.bin goes
    image_board: str   # MicroPython's generic board for it


# Chip ids: esptool's targets (ESP32ROM.IMAGE_CHIP_ID = 0, ESP32C3ROM 5, ESP32S3ROM 9);
# offsets: MicroPython 1.25's ports/esp32/boards/*/board.json "flash_offset".
ESP_CHIPS: dict[str, EspChip] = {
    "ESP32": EspChip("esp32", "ESP32", 0, 0x1000, "ESP32_GENERIC"),
    "ESP32-S2": EspChip("esp32s2", "ESP32-S2", 2, 0x1000, "ESP32_GENERIC_S2"),
    "ESP32-S3": EspChip("esp32s3", "ESP32-S3", 9, 0x0, "ESP32_GENERIC_S3"),
    "ESP32-C3": EspChip("esp32c3", "ESP32-C3", 5, 0x0, "ESP32_GENERIC_C3"),
    "ESP32-C6": EspChip("esp32c6", "ESP32-C6", 13, 0x0, "ESP32_GENERIC_C6"),
}

# RP chips: (UF2 family of a MicroPython image, the families a drive of that chip takes, board name).
RP_FAMILIES: dict[str, tuple[int, frozenset[int], str]] = {
    "RP2040": (0xE48BFF56, frozenset({0xE48BFF56}), "RPI_PICO"),
    "RP2350": (0xE48BFF59, frozenset({0xE48BFF59, 0xE48BFF5A, 0xE48BFF5B, 0xE48BFF57, 0xE48BFF58}), "RPI_PICO2"),
}


def _norm_mcu(mcu: str) -> str:
    m = mcu.strip().upper().replace("_", "-")
    if m.startswith("ESP32") and len(m) > 5 and m[5] != "-":
        m = "ESP32-" + m[5:]  # ESP32S3 -> ESP32-S3
    return m


@dataclass(frozen=True)
class FlashTarget:
    """How to flash one board file's board."""

    board: boards.Board
    method: str                  # "esptool" or "uf2"
    mcu: str                     # "ESP32-S3", "RP2040"
    image_board: str             # MicroPython board the image is built for ("RPI_PICO")
    chip: str = ""               # esptool chip name ("esp32s3"); "" for UF2 boards
    chip_name: str = ""          # what esptool's detection reports ("ESP32-S3")
    image_chip_id: int | None = None
    offsets: tuple[int, ...] = ()  # where the image file(s) go; one for a combined firmware.bin
    family: int | None = None    # UF2 family id of the board's images
    drive_families: frozenset[int] = frozenset()
    flash_base: int = 0
    flash_bytes: int = 0

    @property
    def image_suffix(self) -> str:
        return ".uf2" if self.method == "uf2" else ".bin"

    def default_image(self) -> Path:
        """build/images/<image board>/firmware.uf2 (RP) or firmware.bin (ESP32)."""
        return paths.build_dir() / "images" / self.image_board / f"firmware{self.image_suffix}"

    def describe(self) -> str:
        if self.method == "uf2":
            return f"{self.board.title}: {self.mcu}, UF2 family {uf2.family_name(self.family)} (0x{self.family:08x})"
        offs = ", ".join(f"0x{o:x}" for o in self.offsets)
        return f"{self.board.title}: {self.chip_name}, firmware.bin at {offs} with esptool"


def _image_table(board: boards.Board) -> dict:
    if board.path is None:
        return {}
    try:
        data = tomllib.loads(Path(board.path).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    table = data.get("image", {})
    return table if isinstance(table, dict) else {}


def _offsets(value) -> tuple[int, ...] | None:
    """`offset = 0x1000`, `offsets = [0x1000]` or `offsets = { "firmware.bin" = 0x1000 }`."""
    if value is None:
        return None
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str):
        return (int(value, 0),)
    if isinstance(value, list):
        return tuple(int(v, 0) if isinstance(v, str) else int(v) for v in value)
    if isinstance(value, dict):
        return tuple(int(v, 0) if isinstance(v, str) else int(v) for v in value.values())
    raise ValueError(f"offsets: {value!r}")


def target_for(board: str | boards.Board) -> FlashTarget:
    """The FlashTarget of a board name or Board; FlashError for a virtual or unknown board."""
    if isinstance(board, str):
        try:
            board = boards.board(board)
        except boards.BoardFileError as e:
            raise FlashError(str(e)) from None
    if board.virtual:
        raise FlashError(f"{board.name} is a virtual board: it runs the firmware built by `make setup` and needs "
                         f"no flashing (`mpml virtual start {board.name}`)")
    table = _image_table(board)
    mcu = _norm_mcu(str(table.get("chip") or table.get("mcu") or board.mcu or ""))
    where = board.path or board.name
    try:
        offsets = _offsets(table.get("offsets", table.get("offset")))
    except (ValueError, TypeError) as e:
        raise FlashError(f"{where}: [image] {e}") from None
    if mcu in ESP_CHIPS:
        c = ESP_CHIPS[mcu]
        return FlashTarget(board, "esptool", mcu, str(table.get("board") or c.image_board), chip=c.chip,
                           chip_name=c.name, image_chip_id=c.image_chip_id, offsets=offsets or (c.offset,),
                           flash_bytes=board.flash_bytes)
    if mcu in RP_FAMILIES:
        fam, drive_fams, image_board = RP_FAMILIES[mcu]
        if "family" in table:
            try:
                fam = uf2.family_id(table["family"])
            except ValueError as e:
                raise FlashError(f"{where}: [image] family: {e}") from None
        return FlashTarget(board, "uf2", mcu, str(table.get("board") or image_board), family=fam,
                           drive_families=drive_fams, flash_base=XIP_BASE, flash_bytes=board.flash_bytes)
    known = ", ".join(list(ESP_CHIPS) + list(RP_FAMILIES))
    raise FlashError(f"{where}: mpml does not know how to flash mcu {board.mcu!r} (it flashes {known})")
