"""Serial ports a board may be on, and how `--port` names one.

`--port` takes what mpremote's `connect` takes, plus virtual boards:

- a device path (`/dev/ttyACM0`, `COM3`), or `port:PATH`;
- mpremote's shortcuts `a0`..`a3` (`/dev/ttyACM0`..), `u0`..`u3`
  (`/dev/ttyUSB0`..), `c0`..`c3` (`COM0`..), resolved as mpremote resolves them;
- `id:SERIAL`: the USB device with that serial number;
- `auto` or nothing: the one attached USB board (an error lists the
  candidates when there are several or none);
- the name of a running virtual board, or a virtual board kind
  (`unix`, `m0`, `m3`, `rv32`), which starts that board if none is running.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from serial.tools import list_ports

from mpml.device.connection import BoardError

__all__ = ["SerialPort", "PortSpec", "list_serial_ports", "expand_shortcut", "resolve", "add_port_argument"]

_SHORTCUTS = {"a": "/dev/ttyACM", "u": "/dev/ttyUSB", "c": "COM"}


@dataclass(frozen=True)
class SerialPort:
    """A serial port as pyserial lists it."""

    device: str
    vid: int | None
    pid: int | None
    description: str
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None

    @property
    def usb_id(self) -> str:
        """`VID:PID` in hex, as lsusb and mpremote print it ("" for a non-USB port)."""
        if self.vid is None or self.pid is None:
            return ""
        return f"{self.vid:04x}:{self.pid:04x}"


def list_serial_ports(usb_only: bool = True) -> list[SerialPort]:
    """Serial ports on this machine; with `usb_only`, the USB ones (where boards are), as mpremote's `auto`."""
    found = []
    for p in sorted(list_ports.comports()):
        if usb_only and (p.vid is None or p.pid is None):
            continue
        desc = p.description if p.description and p.description != "n/a" else (p.product or "")
        found.append(SerialPort(p.device, p.vid, p.pid, desc or "", p.serial_number, p.manufacturer, p.product))
    return found


def expand_shortcut(port: str) -> str:
    """mpremote's `a0`/`u1`/`c2` shortcuts and `port:` prefix to a device path; anything else unchanged."""
    m = re.fullmatch(r"([auc])([0-3])", port)
    if m:
        return _SHORTCUTS[m.group(1)] + m.group(2)
    if port.startswith("port:"):
        return port[len("port:"):]
    return port


@dataclass(frozen=True)
class PortSpec:
    """What `--port` resolved to: a device path, and the virtual board behind it if any."""

    device: str
    virtual_name: str | None = None
    usb: SerialPort | None = None


def resolve(port: str | None, *, start_virtual: bool = True) -> PortSpec:
    """Turn a `--port` value into a device path (see the module docstring).

    Raises BoardError saying what was looked for and what is there.
    """
    from mpml import virtual

    if port in (None, "", "auto"):
        usb = list_serial_ports()
        if len(usb) == 1:
            return PortSpec(usb[0].device, usb=usb[0])
        running = [b for b in virtual.boards() if b.status == "running"]
        if not usb and len(running) == 1:
            return PortSpec(running[0].port, virtual_name=running[0].name)
        candidates = [f"  {p.device}  {p.usb_id}  {p.description}" for p in usb]
        candidates += [f"  {b.name}  (virtual {b.kind} board on {b.port})" for b in running]
        if not candidates:
            raise BoardError("no board found: no USB serial port, and no virtual board running.\n"
                             "Plug a board in, or name one with --port (a serial path such as /dev/ttyACM0, "
                             "or a virtual board kind: " + ", ".join(virtual.specs()) + ")")
        raise BoardError("several boards found; choose one with --port:\n" + "\n".join(candidates))
    if port.startswith("id:"):
        serial_number = port[3:]
        for p in list_serial_ports(usb_only=False):
            if p.serial_number == serial_number:
                return PortSpec(p.device, usb=p)
        raise BoardError(f"no USB device with serial number {serial_number}")
    device = expand_shortcut(port)
    if "/" in device or re.fullmatch(r"COM\d+", device, re.I):
        usb = next((p for p in list_serial_ports(usb_only=False) if p.device == device), None)
        return PortSpec(device, usb=usb)
    # A virtual board: by name if one of that name exists, else by kind.
    existing = virtual.get(device)
    if existing is not None and existing.status == "running":
        return PortSpec(existing.port, virtual_name=existing.name)
    if existing is not None and existing.status in ("starting", "crashed"):
        # A board rebooting after a crash: wait for it rather than start another.
        import time
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and existing.refresh().status != "running":
            time.sleep(0.1)
        if existing.status == "running":
            return PortSpec(existing.port, virtual_name=existing.name)
    kinds = virtual.specs()
    kind = existing.kind if existing is not None else device
    if existing is None and kind in kinds:
        # A kind: a board of that kind already running will do.
        same = [b for b in virtual.boards() if b.kind == kind and b.status == "running"]
        if same:
            pick = next((b for b in same if b.name == kind), same[0])
            return PortSpec(pick.port, virtual_name=pick.name)
    if kind in kinds:
        if not start_virtual:
            raise BoardError(f"the virtual board {device!r} is not running: `mpml virtual start {kind}`")
        board = virtual.start(kind, name=device)
        return PortSpec(board.port, virtual_name=board.name)
    raise BoardError(f"--port {port!r}: not a serial device path, an mpremote shortcut (a0, u0, c0), "
                     f"auto, id:SERIAL, or a virtual board (running: "
                     f"{', '.join(b.name for b in virtual.boards() if b.status == 'running') or 'none'}; "
                     f"kinds: {', '.join(kinds)})")


def add_port_argument(parser, required: bool = False) -> None:
    """The `--port` option every device command takes, the same way."""
    parser.add_argument(
        "--port", "-p", default=None, required=required, metavar="PORT",
        help="the board: a serial path (/dev/ttyACM0, COM3), mpremote's a0/u0/c0, id:SERIAL, auto "
             "(the one attached board; the default), or a virtual board name or kind (unix, m0, m3, rv32: "
             "started if not running)")
