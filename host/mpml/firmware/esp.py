"""Flashing the ESP32 family through esptool's Python API (esptool v5: `esptool.cmds`).

The steps are esptool's own, in the order its command line takes them:
`detect_chip` (resets the board into its ROM bootloader through DTR/RTS and
reads which chip answers), our check that it is the board file's chip,
`run_stub`, `attach_flash`, `erase_flash` when asked, `write_flash` at the
board's offsets (esptool checks an MD5 of what it wrote), `verify_flash`
unless told not to, and a hard reset into the new firmware.

Nothing is written before both checks have passed: the image's own chip id
(the ESP image header's extended header) and the chip that answered must be
the board file's.
"""

from __future__ import annotations

import shlex
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mpml.firmware.target import FlashError, FlashTarget

__all__ = ["ESP_IMAGE_MAGIC", "image_chip_id", "chip_for_id", "check_image", "check_chip", "write_plan",
           "esptool_command", "no_chip_message", "interrupted_message", "flash_esp", "EspResult"]

ESP_IMAGE_MAGIC = 0xE9
DOWNLOAD_MODE_HELP = ("put the board in its bootloader by hand: hold the BOOT button (IO0), press and release "
                      "EN (RESET), then release BOOT")

Progress = Callable[[str, int, int], None]  # (what, done, total)


def image_chip_id(data: bytes) -> int | None:
    """The chip id in an ESP image header at the start of `data`, or None when there is no such header.

    The header: magic 0xE9, segment count, flash mode, flash size/frequency,
    entry point (8 bytes), then the extended header: WP pin, 3 bytes of SPI
    drive settings, and the 16-bit chip id at offset 12.
    """
    if len(data) < 24 or data[0] != ESP_IMAGE_MAGIC:
        return None
    return struct.unpack_from("<H", data, 12)[0]


def chip_for_id(chip_id: int) -> str:
    """The chip name for an image chip id ("ESP32-S3"), as esptool's targets define them."""
    from mpml.firmware.target import ESP_CHIPS

    for c in ESP_CHIPS.values():
        if c.image_chip_id == chip_id:
            return c.name
    return f"unknown chip id {chip_id}"


def check_image(target: FlashTarget, data: bytes, name: str) -> None:
    """Refuse an image that is not an ESP firmware image for this board's chip, or does not fit its flash."""
    if not data:
        raise FlashError(f"{name}: empty file")
    cid = image_chip_id(data)
    if cid is None:
        raise FlashError(f"{name}: not an ESP32 firmware image (it starts with 0x{data[0]:02x}, an ESP image "
                         f"starts with 0x{ESP_IMAGE_MAGIC:02x}); for {target.board.name} use MicroPython's "
                         f"combined firmware.bin for {target.image_board}")
    if cid != target.image_chip_id:
        raise FlashError(f"{name} is built for {chip_for_id(cid)} (image chip id {cid}), but board "
                         f"{target.board.name} is {target.chip_name}: refusing to flash it. Use an image for "
                         f"{target.image_board} (`make firmware BOARD={target.image_board}`), or the right --board")
    end = target.offsets[0] + len(data)
    if target.flash_bytes and end > target.flash_bytes:
        raise FlashError(f"{name}: {len(data):,} bytes at 0x{target.offsets[0]:x} end at 0x{end:x}, past the "
                         f"{target.flash_bytes // 1048576} MiB flash of {target.board.name}")


def _norm_chip(name: str) -> str:
    return name.upper().replace("-", "").replace("_", "").split("(")[0].strip()


def check_chip(target: FlashTarget, detected: str, port: str) -> None:
    """Refuse when the chip esptool detected (its CHIP_NAME, "ESP32-S3") is not the board file's."""
    if _norm_chip(detected) != _norm_chip(target.chip_name):
        raise FlashError(f"the chip on {port} is an {detected}, but board {target.board.name} is "
                         f"{target.chip_name}: nothing was written. Pass the --board for this chip "
                         f"(one whose mcu is {detected}), or plug in the {target.board.title}")


def write_plan(target: FlashTarget, image: Path) -> list[tuple[int, Path]]:
    """(offset, file) pairs to write: MicroPython's combined image goes whole at the board's first offset."""
    return [(target.offsets[0], Path(image))]


def esptool_command(target: FlashTarget, image: Path, port: str | None, erase: bool = False,
                    verify: bool = True) -> list[str]:
    """The esptool command line equivalent to what `flash_esp` does (for messages and the docs)."""
    cmd = ["esptool", "--chip", target.chip]
    if port:
        cmd += ["--port", port]
    cmd += ["write-flash"]
    if erase:
        cmd += ["--erase-all"]
    for off, path in write_plan(target, image):
        cmd += [f"0x{off:x}", str(path)]
    return cmd


def no_chip_message(target: FlashTarget, port: str, err: BaseException) -> str:
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (f"no {target.chip_name} answered on {port} (esptool: {detail}).\n"
            f"If the board is plugged in, {DOWNLOAD_MODE_HELP}; then run the same command again.\n"
            f"If it is on another port, name it with --port (`mpml devices --no-probe` lists them).")


def interrupted_message(target: FlashTarget, port: str, where: str, err: BaseException | None) -> str:
    why = (str(err).strip().splitlines() or [type(err).__name__])[0] if err is not None else "interrupted"
    return (f"flashing {target.board.name} on {port} stopped {where}: {why}.\n"
            f"The flash now holds a partial image and the board will not start MicroPython, but nothing is "
            f"lost for good: the ROM bootloader cannot be overwritten. To recover, {DOWNLOAD_MODE_HELP} if the "
            f"board does not enter it by itself, and run `mpml flash --board {target.board.name} --port {port} "
            f"--erase` again.")


@dataclass
class EspResult:
    """What flash_esp did."""

    port: str
    chip: str          # as detected ("ESP32-S3 (QFN56) (revision v0.2)" or "ESP32-S3")
    written: list[tuple[int, int]]  # (offset, bytes)
    erased: bool
    verified: bool
    log: list[str]


def _make_logger(progress: Progress | None, lines: list[str], state: dict):
    """A logger for esptool (its documented custom-logger interface) that keeps its messages and relays progress."""
    from esptool.logger import TemplateLogger

    class _Logger(TemplateLogger):
        def print(self, *args, **kwargs):
            text = kwargs.get("sep", " ").join(str(a) for a in args).strip()
            if text:
                lines.append(text)

        def note(self, message):
            lines.append(f"note: {message}")

        def warning(self, message):
            lines.append(f"warning: {message}")

        def error(self, message):
            lines.append(f"error: {message}")

        def stage(self, finish=False):
            pass

        def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
            state["done"], state["total"] = cur_iter, total_iters
            if progress is not None:
                progress(state.get("what", "writing"), cur_iter, total_iters)

        def set_verbosity(self, verbosity):
            pass

    return _Logger()


def flash_esp(target: FlashTarget, image: Path, port: str, *, erase: bool = False, verify: bool = True,
              progress: Progress | None = None, connect_mode: str = "default-reset", connect_attempts: int = 7,
              stub: bool = True, baud: int | None = 460800, after: str = "hard-reset") -> EspResult:
    """Write `image` to the ESP32-family board on `port`; FlashError says what went wrong and how to recover.

    `connect_mode`, `stub`, `baud` and `after` are esptool's --before,
    --no-stub, --baud and --after (the defaults are esptool's, with a faster
    baud for the transfer once the stub runs).
    """
    from esp_pylib.logger import EspLog
    from esptool import cmds
    from esptool.logger import log
    from esptool.util import FatalError
    from serial import SerialException

    data = Path(image).read_bytes()
    check_image(target, data, str(image))
    lines: list[str] = []
    state: dict = {}
    saved = EspLog.instance
    log.set_logger(_make_logger(progress, lines, state))
    try:
        try:
            esp = cmds.detect_chip(port, connect_mode=connect_mode, connect_attempts=connect_attempts)
        except (FatalError, SerialException, OSError) as e:
            raise FlashError(no_chip_message(target, port, e)) from None
        with esp:
            try:
                detected = esp.CHIP_NAME
                check_chip(target, detected, port)
                try:
                    detected = esp.get_chip_description()
                except Exception:  # an informative extra; the check above used CHIP_NAME
                    pass
                if stub:
                    esp = cmds.run_stub(esp)
                if baud and baud != esp._port.baudrate:
                    esp.change_baud(baud)
                cmds.attach_flash(esp)
            except (FatalError, SerialException, OSError) as e:
                raise FlashError(f"the {target.chip_name} on {port} answered but the connection failed before "
                                 f"anything was written: {str(e).strip().splitlines()[0]}.\nRun the same "
                                 f"command again; if it keeps failing, {DOWNLOAD_MODE_HELP} first.") from None
            stage = "while erasing the flash"
            try:
                if erase and not esp.IS_STUB and esp.CHIP_NAME == "ESP32":
                    # esptool: the ESP32's ROM loader has no erase command (NotSupportedError)
                    raise FlashError("erasing the whole flash needs esptool's flasher stub (the ESP32's ROM "
                                     "loader cannot), and it was not loaded (stub=False): nothing was written")
                if erase:
                    state["what"] = "erasing"
                    if progress is not None:
                        progress("erasing", 0, 1)
                    cmds.erase_flash(esp)
                    if progress is not None:
                        progress("erasing", 1, 1)
                state["what"] = "writing"
                stage = "while writing"
                plan = [(off, p.read_bytes()) for off, p in write_plan(target, image)]
                cmds.write_flash(esp, plan, flash_size="keep")
                if verify:
                    state["what"] = "verifying"
                    stage = "while verifying"
                    cmds.verify_flash(esp, plan)
            except (FatalError, SerialException, OSError, KeyboardInterrupt) as e:
                where = stage
                if stage == "while writing" and state.get("total"):
                    where += f" ({state['done']:,} of {state['total']:,} done)"
                raise FlashError(interrupted_message(target, port, where, e)) from None
            try:
                cmds.reset_chip(esp, after)
            except (FatalError, SerialException, OSError):
                lines.append("warning: could not reset the board: press its EN/RESET button")
    finally:
        EspLog.instance = saved
    return EspResult(port, detected, [(off, len(d)) for off, d in plan], erase, verify, lines)


def format_command(cmd: list[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)

