"""`Board`: one board, real or virtual, opened by what the user typed after `--port`.

    >>> from mpml.device import Board
    >>> with Board.open("m0") as b:          # or "/dev/ttyACM0", "a0", "auto", None
    ...     info = b.probe()
    ...     info.micropython, info.arch, info.runtime_version
    ('1.25.0', 'armv6m', '0.1.0')

`Board.open` resolves the port (mpml.device.ports), stops whatever program
the board is running (Ctrl-C, as a user would; `board.interrupted` says
whether there was one) and enters the raw REPL with a soft reset. `.conn` is
the Connection (exec/eval/interrupt) every device command works through.

`require_runtime(board)` is the check a command makes before using the
runtime on the board: installed, the host's version, and (when asked) a
native module that loads, each failure a BoardError naming the fix,
`mpml install --port ...`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import mpml
from mpml.device.arch import arch_from_mpy, mpy_version
from mpml.device.connection import BoardError, BoardTimeout, Connection
from mpml.device.ports import PortSpec, resolve

__all__ = ["Board", "BoardInfo", "RuntimeMismatch", "require_runtime", "DEVICE_DIR"]

DEVICE_DIR = "/lib/mpml"

# One exec gathers everything: each round trip costs tens of ms on a qemu UART.
_PROBE = """\
import sys, gc, os
gc.collect()
_r = {'v': '.'.join(str(x) for x in sys.implementation.version[:3]),
      'mpy': getattr(sys.implementation, '_mpy', 0),
      'machine': getattr(sys.implementation, '_machine', ''),
      'platform': sys.platform, 'heap': gc.mem_free(), 'rt': None, 'native': None}
for _d in ('/lib', '/'):
    try:
        _s = os.statvfs(_d)
        _r['flash'] = _s[0] * _s[3]
        _r['flash_total'] = _s[0] * _s[2]
        break
    except Exception:
        pass
try:
    import mpml
    _r['rt'] = getattr(mpml, '__version__', '?')
except ImportError:
    pass
except Exception as _e:
    _r['rt'] = '?'
    _r['rt_error'] = repr(_e)
if _r['rt'] and %(native)r:
    try:
        from mpml import _native
        _r['native'] = 'ok'
    except ImportError:
        _r['native'] = 'missing'
    except Exception as _e:
        _r['native'] = 'error: ' + str(_e)
print(repr(_r))
del _r
"""


@dataclass
class BoardInfo:
    """What a board said about itself (`Board.probe()`)."""

    port: str
    micropython: str                 # "1.25.0"
    mpy_version: tuple[int, int]     # (6, 3)
    mpy_arch: str | None             # the native arch the firmware reports (sys.implementation._mpy)
    arch: str | None                 # the arch to build for: the board file's when known (see below)
    machine: str                     # sys.implementation._machine
    platform: str                    # sys.platform
    free_heap: int                   # gc.mem_free() after gc.collect()
    free_flash: int | None           # bytes free on the filesystem holding /lib (None: no filesystem)
    total_flash: int | None
    runtime_version: str | None      # mpml.__version__ on the board, None when not installed
    native: str | None = None        # "ok", "missing", "error: ..." (None: not checked / no runtime)
    board_file: str | None = None    # name of the matching boards/*.toml, if any
    virtual: str | None = None       # the virtual board's name, for a virtual board
    runtime_error: str | None = None  # importing mpml raised this (not ImportError)
    extra: dict = field(default_factory=dict)

    @property
    def runtime_current(self) -> bool:
        return self.runtime_version == mpml.__version__


def _board_file_for(machine: str, mpy_arch: str | None, virtual_kind: str | None):
    """The boards/*.toml that describes this board, or None.

    A virtual board is its kind's file. A real one matches by MCU name in
    sys.implementation._machine ("Raspberry Pi Pico with RP2040"), the longest
    match winning ("ESP32S3" over "ESP32"), and only if the arch agrees.
    """
    from mpml import boards, paths
    if virtual_kind:
        # Its own file only: parsing every board file was a tenth of a push's time on a virtual board.
        try:
            b = boards.load_board(paths.BOARDS_DIR / "virtual" / f"{virtual_kind}.toml")
        except boards.BoardFileError:
            return None
        return b if b.virtual and b.name == virtual_kind else None
    try:
        all_boards = boards.boards()
    except boards.BoardFileError:
        return None
    text = machine.upper().replace("-", "").replace("_", "")
    best = None
    for b in all_boards:
        if b.virtual or not b.mcu:
            continue
        mcu = b.mcu.upper().replace("-", "").replace("_", "")
        if mcu and mcu in text and _arch_compatible(b.arch, mpy_arch):
            if best is None or len(mcu) > len(best.mcu.replace("-", "")):
                best = b
    return best


def _arch_compatible(file_arch: str, mpy_arch: str | None) -> bool:
    if mpy_arch is None or file_arch == mpy_arch:
        return True
    # Thumb-2 firmware without an FPU reports armv7em, M3 boards included.
    return file_arch in ("armv6m", "armv7m", "armv7em") and mpy_arch in ("armv7em", "armv7emsp", "armv7emdp")


def build_arch(mpy_arch: str | None, board_file=None) -> str | None:
    """The arch to compile the runtime for.

    The board file's when there is one (an M3 reports armv7em but has no DSP
    instructions: its code must be armv7m); otherwise the reported arch, with
    armv7em lowered to armv7m, which runs on every ARMv7-M/EM core.
    """
    if board_file is not None:
        return board_file.arch
    if mpy_arch == "armv7em":
        return "armv7m"
    return mpy_arch


class Board:
    """An open board. Use `Board.open(port)`; close it (or use `with`)."""

    def __init__(self, conn: Connection, spec: PortSpec, interrupted: bool = False):
        self.conn = conn
        self.spec = spec
        self.port = spec.device
        self.virtual_name = spec.virtual_name
        self.interrupted = interrupted  # a running program was stopped with Ctrl-C on open
        self._info: BoardInfo | None = None

    @property
    def name(self) -> str:
        """How to name this board to the user (and in `--port`): the virtual board's name or the port."""
        return self.virtual_name or self.port

    @classmethod
    def open(cls, port: str | None = None, *, timeout: float = 10.0, soft_reset: bool = True,
             start_virtual: bool = True) -> Board:
        """Open the board `port` names (see mpml.device.ports.resolve) and enter its raw REPL.

        A program running on the board is interrupted with Ctrl-C. If the
        board still does not answer (a program that catches KeyboardInterrupt,
        a hung board), BoardError says so and what to do.
        """
        spec = resolve(port, start_virtual=start_virtual)
        conn = Connection(spec.device, timeout=timeout, soft_reset=soft_reset)
        try:
            interrupted = _stop_program(conn)
            try:
                conn.enter_raw_repl()
            except BoardTimeout:
                # Maybe the program swallowed the first Ctrl-C: a second chance, harder.
                interrupted = _stop_program(conn, attempts=5) or interrupted
                try:
                    conn.enter_raw_repl()
                except BoardTimeout as e:
                    raise BoardError(
                        f"the board on {spec.device} does not answer: it may be running a program that "
                        f"ignores Ctrl-C (one that catches KeyboardInterrupt), or be hung.\n"
                        f"Press its reset button (or unplug it) and try again; if main.py starts that program, "
                        f"remove it with `mpremote connect {spec.device} fs rm :main.py` right after reset.\n"
                        f"{e}") from None
        except BaseException:
            conn.close()
            raise
        return cls(conn, spec, interrupted)

    def probe(self, *, check_native: bool = True, refresh: bool = False) -> BoardInfo:
        """Ask the board what it is (one round trip); cached unless `refresh`."""
        if self._info is not None and not refresh:
            return self._info
        import ast
        out = self.conn.exec(_PROBE % {"native": check_native}).strip().splitlines()
        r = ast.literal_eval(out[-1])
        mpy = r.get("mpy") or 0
        reported = arch_from_mpy(mpy) if mpy else None
        kind = None
        if self.virtual_name:
            from mpml import virtual
            vb = virtual.get(self.virtual_name)
            kind = vb.kind if vb else None
        bf = _board_file_for(r.get("machine", ""), reported, kind)
        self._info = BoardInfo(
            port=self.port,
            micropython=r["v"],
            mpy_version=mpy_version(mpy) if mpy else (0, 0),
            mpy_arch=reported,
            arch=build_arch(reported, bf),
            machine=r.get("machine", ""),
            platform=r.get("platform", ""),
            free_heap=r["heap"],
            free_flash=r.get("flash"),
            total_flash=r.get("flash_total"),
            runtime_version=r.get("rt"),
            native=r.get("native"),
            board_file=bf.name if bf else None,
            virtual=self.virtual_name,
            runtime_error=r.get("rt_error"),
        )
        return self._info

    def port_hint(self) -> str:
        """The `--port` value that names this board again, for messages."""
        return self.virtual_name or self.port

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Board {self.name} on {self.port}>"


_PROMPTS = (b">>> ", b"raw REPL; CTRL-B to exit\r\n>")  # the friendly and the raw REPL's prompts


def _stop_program(conn: Connection, attempts: int = 2, quiet: float = 0.15, first: float = 0.5,
                  limit: float = 2.0) -> bool:
    """Send Ctrl-C until the board stops printing; True if a program was running (it said KeyboardInterrupt)."""
    seen = b""
    serial = conn.transport.serial
    for _ in range(attempts):
        serial.write(b"\r\x03")
        time.sleep(0.02)
    deadline = time.monotonic() + limit
    last = time.monotonic()
    while time.monotonic() < deadline:
        n = serial.in_waiting
        if n:
            seen = (seen + serial.read(n))[-4096:]
            last = time.monotonic()
        elif time.monotonic() - last > (quiet if seen else first):
            # A board slowed down by a busy host may take a while to answer at all.
            break
        elif seen.endswith(_PROMPTS) and time.monotonic() - last > 0.03:
            # At a prompt after both Ctrl-Cs: idle (or stopped), no need to wait out the quiet time.
            break
        else:
            time.sleep(0.01)
    return b"KeyboardInterrupt" in seen


def on_each_board(ports: list[str], fn) -> list:
    """`fn(port)` on every port at once, a thread each; per port, in order, what it returned or raised."""
    import threading

    results: list = [None] * len(ports)

    def one(i: int, port: str) -> None:
        try:
            results[i] = fn(port)
        except Exception as e:  # noqa: BLE001 - every board gets its result
            results[i] = e

    threads = [threading.Thread(target=one, args=(i, p), daemon=True) for i, p in enumerate(ports)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class RuntimeMismatch(BoardError):
    """The mpml runtime on the board is missing, of another version, or its native module does not load."""


def require_runtime(board: Board, *, native: bool = False) -> BoardInfo:
    """Check the board has this host's mpml runtime; returns the probe.

    `native=True` also requires the native module to load (for commands that
    need the C kernels, e.g. a benchmark of backend native); a missing one is
    fine otherwise (the runtime falls back to viper), a broken one never is.
    Raises RuntimeMismatch naming the fix.
    """
    info = board.probe()
    fix = f"mpml install --port {board.port_hint()}"
    where = f"the board on {board.port}" if not board.virtual_name else f"the virtual board {board.virtual_name!r}"
    if info.runtime_version is None:
        raise RuntimeMismatch(f"the mpml runtime is not installed on {where} (no {DEVICE_DIR}).\n"
                              f"Install it with: {fix}")
    if info.runtime_error:
        raise RuntimeMismatch(f"the mpml runtime on {where} does not import: {info.runtime_error}.\n"
                              f"Reinstall it with: {fix} --force")
    if info.runtime_version != mpml.__version__:
        raise RuntimeMismatch(f"the mpml runtime on {where} is version {info.runtime_version}, this host's mpml "
                              f"is {mpml.__version__}: they must match.\nUpdate the board with: {fix}")
    if info.native and info.native.startswith("error"):
        detail = info.native[len("error: "):]
        hint = " (built for another CPU)" if "arch" in detail else ""
        raise RuntimeMismatch(f"the native module on {where} ({DEVICE_DIR}/_native.mpy) does not load: "
                              f"{detail}{hint}; the board reports arch {info.mpy_arch}.\n"
                              f"Reinstall the runtime for this board with: {fix}")
    if native and info.native != "ok":
        raise RuntimeMismatch(f"no native module on {where} for arch {info.arch} (the runtime uses viper).\n"
                              f"Install it, when built, with: {fix} --backend native")
    return info
