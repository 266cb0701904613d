"""`mpml flash`: put a firmware image on a board, then check the board runs it.

    >>> from mpml.firmware.flash import flash
    >>> r = flash("pico")                      # build/images/RPI_PICO/firmware.uf2
    >>> r.info.micropython, r.info.runtime_version
    ('1.25.0', '0.1.0')

- ESP32 / ESP32-S3 / ESP32-C3: esptool (mpml.firmware.esp) on the serial port;
- RP2040 / RP2350: the UF2 copied to the BOOTSEL drive, or picotool when no
  drive is mounted (mpml.firmware.rp); a board running MicroPython can be
  sent to BOOTSEL with `machine.bootloader()` over its REPL.

Every refusal happens before anything is written: an image for another chip
or family, a drive or chip other than the board file's. Afterwards `flash`
waits for the board's REPL to come back and reports the MicroPython version
and whether `import mpml` works.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mpml.firmware import esp, rp, uf2
from mpml.firmware.target import FlashError, FlashTarget, target_for

__all__ = ["FlashError", "FlashResult", "flash", "resolve_image", "check_uf2", "pick_drive", "wait_for_repl",
           "repl_report", "ProgressBar", "serial_port_for"]

RP_USB_VID = 0x2E8A  # Raspberry Pi: MicroPython's rp2 port enumerates with it


@dataclass
class FlashResult:
    """What `flash` did and what the board said afterwards."""

    board: str
    image: Path
    method: str                # "esptool", "uf2 drive", "picotool"
    where: str                 # the port or drive written to
    steps: list[str] = field(default_factory=list)
    info: object | None = None  # mpml.device.board.BoardInfo once the REPL is back
    repl_port: str | None = None
    repl_error: str | None = None


class ProgressBar:
    """A one-line progress bar on a terminal (a line per stage otherwise)."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._what = None
        self._last_pct = -1

    def __call__(self, what: str, done: int, total: int) -> None:
        pct = 100 if total <= 0 else min(100, done * 100 // total)
        if what != self._what:
            if self._what is not None and self.tty:
                self.stream.write("\n")
            self._what, self._last_pct = what, -1
        if pct == self._last_pct:
            return
        self._last_pct = pct
        if self.tty:
            fill = self.width * pct // 100
            self.stream.write(f"\r{what:<10} [{'#' * fill}{'.' * (self.width - fill)}] {pct:3d}%")
            if pct == 100:
                self.stream.write("\n")
                self._what = None
        elif pct in (0, 100):
            self.stream.write(f"{what}: {pct}%\n")
        self.stream.flush()


def resolve_image(target: FlashTarget, image: str | Path | None) -> Path:
    """The image to flash: the one given, or the board's default build; FlashError saying how to build it."""
    if image is None:
        path = target.default_image()
        if not path.is_file():
            raise FlashError(f"no firmware image for {target.board.name} at {path}: build it with "
                             f"`make firmware BOARD={target.image_board}`, or name an image file "
                             f"(`mpml flash --board {target.board.name} FILE`)")
        return path
    path = Path(image)
    if not path.is_file():
        raise FlashError(f"{path}: no such file")
    want = target.image_suffix
    if path.suffix.lower() != want:
        kind = "a UF2 file (.uf2)" if want == ".uf2" else "an ESP firmware image (.bin)"
        raise FlashError(f"{path}: board {target.board.name} ({target.mcu}) is flashed with {kind}")
    return path


def check_uf2(target: FlashTarget, image: uf2.Uf2Image) -> None:
    """Refuse a UF2 whose family is not the board's, or that writes outside the board's flash."""
    main = image.main
    if main.family != target.family:
        families = ", ".join(f"{uf2.family_name(f)}" + (f" (0x{f:08x})" if f is not None else "")
                             for f in image.families)
        raise FlashError(f"{image.name} is a UF2 for {uf2.family_name(main.family)}, but board "
                         f"{target.board.name} is {target.mcu} (family {uf2.family_name(target.family)}, "
                         f"0x{target.family:08x}): refusing to copy it. Families in the file: {families}. "
                         f"Build the board's image with `make firmware BOARD={target.image_board}`")
    if target.flash_bytes:
        lo, hi = target.flash_base, target.flash_base + target.flash_bytes
        if main.start < lo or main.end > hi:
            raise FlashError(f"{image.name}: its blocks write 0x{main.start:08x}..0x{main.end:08x}, outside "
                             f"{target.board.name}'s flash 0x{lo:08x}..0x{hi:08x}: not an image for this board")


def pick_drive(target: FlashTarget, drive: str | Path | None = None,
               roots=None) -> rp.BootselDrive | None:
    """The BOOTSEL drive to copy to: `drive` (checked), or the one mounted drive of the board's chip.

    FlashError when the named folder is no UF2 drive, is another chip's, or
    when several drives of the chip are mounted; None when none is.
    """
    if drive is not None:
        d = rp.read_drive(drive)
        if d is None:
            raise FlashError(f"{drive}: no {rp.INFO_FILE} there, so it is not a board in BOOTSEL mode "
                             f"({rp.BOOTSEL_HELP})")
        _check_drive(target, d)
        return d
    drives = rp.find_drives(roots)
    ours = [d for d in drives if d.chip == target.mcu]
    if len(ours) > 1:
        raise FlashError(f"several {target.mcu} boards in BOOTSEL mode: choose one with --drive:\n" +
                         "\n".join(f"  {d.describe()}" for d in ours))
    if ours:
        return ours[0]
    others = [d for d in drives if d.chip != target.mcu]
    if others:
        _check_drive(target, others[0])  # raises: a board is waiting, but it is the wrong one
    return None


def _check_drive(target: FlashTarget, d: rp.BootselDrive) -> None:
    if d.chip != target.mcu:
        raise FlashError(f"the drive {d.describe()} is an {d.chip or 'unknown'} board, but board "
                         f"{target.board.name} is {target.mcu}: nothing was copied. Pass the --board of the "
                         f"attached board, or put the {target.board.title} in BOOTSEL mode")


def serial_port_for(target: FlashTarget, port: str | None) -> str | None:
    """The serial port to use: `port` (mpremote shortcuts expanded), else the one attached USB serial port.

    For RP boards a port with Raspberry Pi's USB vendor id is preferred. None
    when there is none; FlashError when several could be meant.
    """
    from mpml.device.ports import expand_shortcut, list_serial_ports

    if port not in (None, "", "auto"):
        if port.startswith("id:"):
            sn = port[3:]
            for p in list_serial_ports(usb_only=False):
                if p.serial_number == sn:
                    return p.device
            raise FlashError(f"no USB device with serial number {sn}")
        return expand_shortcut(port)
    usb = list_serial_ports()
    if target.method == "uf2":
        rp_ports = [p for p in usb if p.vid == RP_USB_VID]
        usb = rp_ports or usb
    if len(usb) == 1:
        return usb[0].device
    if len(usb) > 1:
        raise FlashError("several serial ports; choose the board's with --port:\n" +
                         "\n".join(f"  {p.device}  {p.usb_id}  {p.description}" for p in usb))
    return None


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _flash_uf2(target: FlashTarget, path: Path, port: str | None, drive, verify: bool, bootloader: bool | None,
               progress, say, roots=None, drive_timeout: float = 15.0) -> tuple[str, str]:
    image = uf2.load(path)
    check_uf2(target, image)
    data = path.read_bytes()
    d = pick_drive(target, drive, roots)
    if d is None and drive is None:
        pt = rp.picotool_path()
        if pt:
            say(f"no BOOTSEL drive mounted; trying picotool ({pt})")
            r = rp.picotool_load(path, verify=verify)
            if r.found_device and r.ok:
                return "picotool", "USB (picotool)"
            if r.found_device:
                raise FlashError(f"picotool could not load {path}:\n{r.output}\nThe boot ROM cannot be "
                                 f"overwritten: put the board in BOOTSEL mode ({rp.BOOTSEL_HELP}) and try again.")
        sp = _micropython_port(target, port)
        if sp is not None:
            ok = bootloader if bootloader is not None else _ask(
                f"{sp} looks like a board running MicroPython. Send it machine.bootloader() to enter BOOTSEL mode?")
            if ok:
                say(f"sending machine.bootloader() to {sp}")
                rp.enter_bootloader(sp)
                d = rp.wait_for_drive(target, timeout=drive_timeout, roots=roots)
                if d is None:
                    raise FlashError(f"the board on {sp} was sent machine.bootloader(), but no {target.mcu} "
                                     f"drive was mounted within {drive_timeout:.0f} s (searched "
                                     f"{', '.join(map(str, rp.search_roots() if roots is None else roots))}). "
                                     f"If your desktop does not mount USB drives by itself, mount it and pass "
                                     f"--drive; or {rp.BOOTSEL_HELP}")
        if d is None:
            searched = ", ".join(map(str, rp.search_roots() if roots is None else roots)) or "nowhere"
            hint = (f"\nA board running MicroPython on a serial port can be sent there with "
                    f"`mpml flash --board {target.board.name} --bootloader --port PORT` (it runs "
                    f"machine.bootloader() from the REPL).")
            raise FlashError(f"no {target.mcu} board in BOOTSEL mode: no drive with {rp.INFO_FILE} under "
                             f"{searched}{'' if pt else ', and picotool is not installed'}.\n"
                             f"To enter BOOTSEL mode, {rp.BOOTSEL_HELP}; then run the same command again "
                             f"(or name the mounted drive with --drive).{hint}")
    say(f"copying {path.name} ({len(data):,} bytes, {image.main.num_blocks} blocks, "
        f"{uf2.family_name(image.main.family)}) to {d.path}")
    rp.copy_uf2(data, d, path.name if path.suffix.lower() == ".uf2" else "firmware.uf2", progress=progress)
    return "uf2 drive", str(d.path)


def _micropython_port(target: FlashTarget, port: str | None) -> str | None:
    try:
        return serial_port_for(target, port)
    except FlashError:
        return None


def _usb_ports() -> set[str]:
    from mpml.device.ports import list_serial_ports

    return {p.device for p in list_serial_ports()}


def wait_for_repl(port: str | None, before: set[str] | None = None, timeout: float = 30.0,
                  poll: float = 0.5, rp_vid: bool = False):
    """Wait for a freshly flashed board's REPL and probe it; returns (port, BoardInfo).

    `port`: the board's serial port when known (an ESP32's USB-UART keeps
    its name). Otherwise the first USB serial port that was not in `before`
    (an RP board in BOOTSEL has none; MicroPython's port appears after the
    reboot), or the only one there is. Raises FlashError after `timeout`
    seconds saying what was last seen.
    """
    from mpml.device.board import Board
    from mpml.device.connection import BoardError

    deadline = time.monotonic() + timeout
    last = "no serial port appeared"
    while True:
        candidates: list[str] = []
        if port:
            if Path(port).exists() or not port.startswith("/"):
                candidates = [port]
            else:
                last = f"{port} did not appear"
        else:
            now = _usb_ports()
            new = sorted(now - (before or set()))
            candidates = new or (sorted(now) if len(now) == 1 else [])
        for c in candidates:
            try:
                with Board.open(c, timeout=5.0, start_virtual=False) as b:
                    return c, b.probe(check_native=False)
            except BoardError as e:
                last = f"{c}: {str(e).splitlines()[0]}"
        if time.monotonic() >= deadline:
            raise FlashError(f"the board's REPL did not come back within {timeout:.0f} s ({last}). If the board "
                             f"was erased, its first boot creates the filesystem and takes longer: try "
                             f"`mpml devices` in a moment. If it never answers, flash it again with --erase.")
        time.sleep(poll)


def repl_report(port: str, info) -> str:
    """One line: MicroPython's version, where, and whether `import mpml` works there."""
    line = f"MicroPython {info.micropython} is running on {port}"
    if info.machine:
        line += f" ({info.machine})"
    if info.runtime_error:
        return line + f"; `import mpml` fails: {info.runtime_error}"
    if info.runtime_version:
        return line + f"; `import mpml` works (mpml {info.runtime_version})"
    return line + f"; mpml is not on the board (`mpml install --port {port}` puts it there)"


def flash(board: str, image: str | Path | None = None, *, port: str | None = None, drive: str | Path | None = None,
          erase: bool = False, verify: bool = True, bootloader: bool | None = None, wait: bool = True,
          wait_timeout: float = 30.0, progress: Callable[[str, int, int], None] | None = None,
          say: Callable[[str], None] | None = None, esp_options: dict | None = None, roots=None,
          drive_timeout: float = 15.0) -> FlashResult:
    """Flash `image` (default: the board's build) onto the board `board` names; see the module docstring.

    `bootloader`: for RP boards with no BOOTSEL drive, whether to send
    machine.bootloader() to a MicroPython board on a serial port (None: ask
    when interactive). `esp_options`: extra keyword arguments for
    esp.flash_esp (connect_mode, stub, baud, ...). `roots`: folders searched
    for BOOTSEL drives (default rp.search_roots()); `drive_timeout`: how long
    to wait for the drive after machine.bootloader().
    """
    say = say or (lambda msg: print(msg, file=sys.stderr))
    target = target_for(board)
    path = resolve_image(target, image)
    result = FlashResult(target.board.name, path, target.method, "")
    before = _usb_ports()
    repl_port = None
    if target.method == "esptool":
        sp = serial_port_for(target, port)
        if sp is None:
            raise FlashError(f"no serial port for the {target.chip_name}: plug the board in (a data USB cable) or "
                             f"name its port with --port; if it is plugged in, {esp.DOWNLOAD_MODE_HELP}")
        say(f"flashing {path} to {target.chip_name} on {sp} (" +
            esp.format_command(esp.esptool_command(target, path, sp, erase, verify)) + ")")
        r = esp.flash_esp(target, path, sp, erase=erase, verify=verify, progress=progress, **(esp_options or {}))
        result.where = sp
        result.steps = [f"chip: {r.chip}"] + [f"wrote {n:,} bytes at 0x{off:x}" for off, n in r.written]
        if erase:
            result.steps.insert(1, "erased the whole flash")
        if verify:
            result.steps.append("verified (flash read back matches the image)")
        repl_port = sp
    else:
        result.method, result.where = _flash_uf2(target, path, port, drive, verify, bootloader, progress, say,
                                                 roots=roots, drive_timeout=drive_timeout)
        result.steps = [f"{result.method}: {result.where}"]
        repl_port = port if port not in (None, "", "auto") else None
        if repl_port:
            from mpml.device.ports import expand_shortcut
            repl_port = expand_shortcut(repl_port)
    if wait:
        say("waiting for the board's REPL")
        try:
            result.repl_port, result.info = wait_for_repl(repl_port, before, timeout=wait_timeout)
        except FlashError as e:
            result.repl_error = str(e)
    return result
