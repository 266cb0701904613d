"""Flashing RP2040 / RP2350 boards: the BOOTSEL drive, picotool, and `machine.bootloader()`.

In BOOTSEL mode (the button held while plugging the board in, or
`machine.bootloader()` from MicroPython) the boot ROM shows a USB drive
holding INFO_UF2.TXT, which names the chip:

    UF2 Bootloader v3.0            UF2 Bootloader v1.0
    Model: Raspberry Pi RP2        Model: Raspberry Pi RP2350
    Board-ID: RPI-RP2              Board-ID: RP2350

Copying a UF2 file onto that drive writes it to flash; the ROM ignores blocks
of another family (so a wrong file does nothing and the drive stays), and
reboots into the new firmware once every block has arrived.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mpml.firmware.target import FlashError, FlashTarget

__all__ = ["BootselDrive", "parse_info_uf2", "chip_from_info", "read_drive", "search_roots", "find_drives",
           "copy_uf2", "picotool_path", "picotool_load", "enter_bootloader", "wait_for_drive", "BOOTSEL_HELP"]

BOOTSEL_HELP = ("hold the BOOTSEL button while plugging the board in (on a Pico 2 you may instead hold BOOTSEL "
                "and tap RUN), then release it: a drive named RPI-RP2 (RP2040) or RP2350 appears")
INFO_FILE = "INFO_UF2.TXT"


def parse_info_uf2(text: str) -> dict[str, str]:
    """INFO_UF2.TXT as a dict: its `Key: value` lines, and the first line as "banner"."""
    out: dict[str, str] = {}
    for i, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip() and " " not in key.strip().replace("-", ""):
            out[key.strip()] = value.strip()
        elif i == 0 or "banner" not in out:
            out.setdefault("banner", line)
    return out


def chip_from_info(info: dict[str, str]) -> str | None:
    """"RP2040" or "RP2350" from a parsed INFO_UF2.TXT (Board-ID first, then Model), None when neither."""
    board_id = info.get("Board-ID", "").upper()
    model = info.get("Model", "").upper()
    if board_id.startswith("RP2350") or "RP2350" in model:
        return "RP2350"
    if board_id.startswith("RPI-RP2") or model.endswith("RP2") or "RP2040" in board_id or "RP2040" in model:
        return "RP2040"
    return None


@dataclass(frozen=True)
class BootselDrive:
    """A mounted UF2 drive: its folder, INFO_UF2.TXT fields, and the chip they name."""

    path: Path
    info: dict[str, str] = field(hash=False)
    chip: str | None

    def describe(self) -> str:
        return (f"{self.path} ({self.chip or 'unknown chip'}: Board-ID {self.info.get('Board-ID', '?')}, "
                f"Model {self.info.get('Model', '?')})")


def _info_file(folder: Path) -> Path | None:
    try:
        for entry in folder.iterdir():
            if entry.name.upper() == INFO_FILE and entry.is_file():  # FAT is case-insensitive
                return entry
    except OSError:
        return None
    return None


def read_drive(folder: str | Path) -> BootselDrive | None:
    """The BootselDrive at `folder`, or None when it holds no INFO_UF2.TXT."""
    folder = Path(folder)
    f = _info_file(folder)
    if f is None:
        return None
    try:
        info = parse_info_uf2(f.read_text(errors="replace"))
    except OSError:
        return None
    return BootselDrive(folder, info, chip_from_info(info))


def search_roots() -> list[Path]:
    """Where removable drives get mounted: $MPML_BOOTSEL_ROOTS (os.pathsep-separated) if set, otherwise
    /media/$USER, /run/media/$USER, /media, /mnt and /Volumes."""
    env = os.environ.get("MPML_BOOTSEL_ROOTS")
    if env is not None:
        return [Path(p) for p in env.split(os.pathsep) if p]
    try:
        user = getpass.getuser()
    except Exception:
        user = os.environ.get("USER", "")
    roots = []
    if user:
        roots += [Path("/media") / user, Path("/run/media") / user]
    roots += [Path("/media"), Path("/mnt"), Path("/Volumes")]
    return roots


def find_drives(roots: Iterable[Path] | None = None) -> list[BootselDrive]:
    """Mounted UF2 drives: folders directly under each root that hold INFO_UF2.TXT."""
    found: dict[Path, BootselDrive] = {}
    for root in (search_roots() if roots is None else roots):
        try:
            children = sorted(p for p in Path(root).iterdir() if p.is_dir())
        except OSError:
            continue
        for child in children:
            d = read_drive(child)
            if d is not None:
                found.setdefault(child.resolve(), d)
    return list(found.values())


def copy_uf2(data: bytes, drive: BootselDrive, name: str = "firmware.uf2",
             progress: Callable[[str, int, int], None] | None = None, chunk: int = 64 * 1024) -> Path:
    """Copy a UF2 image onto the drive and flush it to the device (fsync).

    The ROM reboots as soon as the last block arrives, so the drive can vanish
    while the file is being closed: an error after every byte was written is
    not a failure (the REPL coming back confirms it). An error before that is
    a FlashError saying how to recover.
    """
    dest = drive.path / name
    written = 0
    fd = None
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        while written < len(data):
            n = os.write(fd, data[written:written + chunk])
            written += n
            if progress is not None:
                progress("copying", written, len(data))
        try:
            os.fsync(fd)
        except OSError:
            pass  # the board rebooted with the last block: see above
    except OSError as e:
        if written < len(data):
            raise FlashError(
                f"copying to {drive.path} stopped after {written:,} of {len(data):,} bytes: "
                f"{e.strerror or e}.\nThe board's boot ROM cannot be overwritten, so nothing is broken: put it in "
                f"BOOTSEL mode again ({BOOTSEL_HELP}) and run the same command again.") from None
    finally:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    return dest


def picotool_path() -> str | None:
    """picotool on PATH (or $PICOTOOL), if any."""
    explicit = os.environ.get("PICOTOOL")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return shutil.which("picotool")


@dataclass
class PicotoolResult:
    found_device: bool
    ok: bool
    output: str


def picotool_load(image: Path, verify: bool = True, timeout: float = 120.0) -> PicotoolResult:
    """`picotool load [-v] -x IMAGE`: load into a board in BOOTSEL mode over USB (no drive needed) and run it."""
    exe = picotool_path()
    if exe is None:
        return PicotoolResult(False, False, "picotool not found")
    cmd = [exe, "load"] + (["-v"] if verify else []) + ["-x", str(image)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return PicotoolResult(True, False, f"{' '.join(cmd)}: {e}")
    out = (r.stdout + r.stderr).strip()
    none = "no accessible rp" in out.lower() or "no accessible" in out.lower()
    return PicotoolResult(not none, r.returncode == 0, out)


def enter_bootloader(port: str, timeout: float = 10.0) -> None:
    """Ask MicroPython on `port` to reboot into BOOTSEL mode (`machine.bootloader()`), over the raw REPL.

    The board leaves without answering, so the code is sent without waiting
    for its end (as `mpremote bootloader` does).
    """
    from mpml.device.board import Board
    from mpml.device.connection import BoardError

    with Board.open(port, timeout=timeout, start_virtual=False) as b:
        try:
            b.conn.transport.exec_raw_no_follow("import time, machine\ntime.sleep_ms(100)\nmachine.bootloader()")
        except Exception as e:  # mpremote's TransportError and serial errors alike
            raise BoardError(f"could not send machine.bootloader() to {port}: {e}") from None


def wait_for_drive(target: FlashTarget, timeout: float = 15.0, roots: Iterable[Path] | None = None,
                   poll: float = 0.25) -> BootselDrive | None:
    """The first BOOTSEL drive of the target's chip to appear within `timeout` seconds (None otherwise)."""
    deadline = time.monotonic() + timeout
    while True:
        for d in find_drives(roots):
            if d.chip == target.mcu:
                return d
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll)
