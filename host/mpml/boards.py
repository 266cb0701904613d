"""Board descriptions, read from `boards/*.toml` and `boards/virtual/*.toml`.

One file per board: its CPU architecture (the natmod arch its code is built
for), clock, RAM, flash, the heap MicroPython leaves free after boot, which
mpml backend runs there, and default sensor pins. `mpml inspect` reads them to
say whether a model fits each board and how long it should take.

The figures in the files are typical for MicroPython 1.25 and say where they
come from; a user with another board (or a board with a different free heap)
copies a file and edits it.

Cost model (used by `estimate_latency`, documented in models/README.md):
cycles per multiply-accumulate for each arch and backend. Only armv6m's
native figure is measured (README.md's benchmark table: Cortex-M0+ cycles per
MAC estimated per instruction class in Unicorn, 4.71 for FULLY_CONNECTED and
5.10 for CONV_2D; we use the larger) and x64's (the unix board's whole-model
benchmark: about 1.3 ns per MAC at a nominal 3 GHz). The rest are stated
assumptions, written beside each figure.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import paths

__all__ = ["BoardFileError", "Pins", "Board", "Cost", "COSTS", "RUNTIME_HEAP_BYTES", "RUNTIME_FLASH_BYTES",
           "SENSOR_TYPES", "load_board", "boards", "board", "cost"]

ARCHES = ("x64", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp", "xtensawin", "rv32imc")
BACKENDS = ("native", "viper", "pure")


class BoardFileError(ValueError):
    """A board file that is missing, unreadable or lacks a field, with the file and the problem."""


@dataclass(frozen=True)
class Pins:
    """Default sensor pins: an I2C bus (id, SDA, SCL) and an ADC-capable pin."""

    i2c_id: int
    i2c_sda: int
    i2c_scl: int
    adc: int


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    arch: str
    backend: str
    clock_hz: int
    ram_bytes: int
    flash_bytes: int  # 0: unlimited (the unix board's host folder)
    filesystem_bytes: int  # 0: unlimited
    free_heap_bytes: int
    virtual: bool
    pins: Pins | None  # None on virtual boards: they have no sensors
    cpu: str = ""
    mcu: str = ""
    path: Path | None = None
    # [[sensors]]: what is wired where, as the board's mpml.sources.from_config reads it
    sensors: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Cost:
    """CPU cycles per unit of work for one arch and backend, and where each figure comes from."""

    cycles_per_mac: float
    cycles_per_op: float  # fixed cost of one op: Python dispatch and the kernel's argument checks
    cycles_per_tree_node: float
    source: str


# Heap the device runtime takes besides the blob (read into RAM whole) and the
# arena: the modules and a loaded model's objects. Measured on the m0 board
# (armv6m, MicroPython 1.25): free heap before import minus after load and one
# predict() of a 6 KB blob, less blob and arena, rounded up.
RUNTIME_HEAP_BYTES = {"native": 41_000, "viper": 46_000, "pure": 31_000}
# Filesystem bytes of the device package (.mpy files, every backend): 54 KB
# for armv6m, 80 KB for x64 (larger viper code); 80 KB is used for every arch.
RUNTIME_FLASH_BYTES = 80_000

_M0_MEASURED = "measured: README.md benchmark, est. Cortex-M0+ cycles/MAC (CONV_2D 5.10, FC 4.71)"
_ASSUMED_T2 = "assumed: Thumb-2 C loop, single-cycle MUL/MLA, no SIMD (about 3 cycles per MAC)"
_ASSUMED_VIPER = "assumed: viper kernels about 8x native (the unix benchmark's viper/native ratio, 4-10x)"
_ASSUMED_PURE = "assumed: plain MicroPython, about 300x native (the unix benchmark's ratio)"

COSTS: dict[tuple[str, str], Cost] = {
    ("armv6m", "native"): Cost(5.1, 2_000, 20, _M0_MEASURED + "; op and tree-node costs assumed"),
    ("armv7m", "native"): Cost(3.0, 1_500, 15, _ASSUMED_T2),
    ("armv7em", "native"): Cost(3.0, 1_500, 15, _ASSUMED_T2),
    ("armv7emsp", "native"): Cost(3.0, 1_500, 15, _ASSUMED_T2 + "; Cortex-M33 (RP2350)"),
    ("armv7emdp", "native"): Cost(3.0, 1_500, 15, _ASSUMED_T2),
    ("rv32imc", "native"): Cost(4.0, 2_000, 20, "assumed: RV32IMC C loop (lb, lb, mul, add), no SIMD"),
    ("xtensawin", "native"): Cost(3.0, 2_000, 20, "assumed: Xtensa LX6/LX7 C loop with MUL16/MULL"),
    ("x64", "native"): Cost(4.0, 900, 10, "measured: unix board, MLP 64-32-16-4 in 4.6 us (1.3 ns/MAC at 3 GHz)"),
}
for (_arch, _b), _c in list(COSTS.items()):
    COSTS[(_arch, "viper")] = Cost(_c.cycles_per_mac * 8, _c.cycles_per_op * 3, _c.cycles_per_tree_node * 4,
                                   _ASSUMED_VIPER)
    COSTS[(_arch, "pure")] = Cost(_c.cycles_per_mac * 300, _c.cycles_per_op * 10, _c.cycles_per_tree_node * 100,
                                  _ASSUMED_PURE)


def cost(arch: str, backend: str) -> Cost:
    """The cost model for an arch and backend (KeyError names both when there is none)."""
    try:
        return COSTS[(arch, backend)]
    except KeyError:
        raise KeyError(f"no cost model for arch {arch!r} with backend {backend!r}") from None


def _int(data: dict, key: str, path: Path, minimum: int = 0) -> int:
    if key not in data:
        raise BoardFileError(f"{path}: missing {key!r}")
    v = data[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise BoardFileError(f"{path}: {key!r} must be an integer >= {minimum}, not {v!r}")
    return v


def _str(data: dict, key: str, path: Path, choices: tuple[str, ...] | None = None, default: str | None = None) -> str:
    v = data.get(key, default)
    if v is None:
        raise BoardFileError(f"{path}: missing {key!r}")
    if not isinstance(v, str) or not v:
        raise BoardFileError(f"{path}: {key!r} must be a non-empty string, not {v!r}")
    if choices and v not in choices:
        raise BoardFileError(f"{path}: {key!r} is {v!r}; one of {', '.join(choices)}")
    return v


# [[sensors]] entries (docs/sensors.md): for each type, its required keys and
# the optional ones with their types; any other key is refused (a typo would
# otherwise reach the board as a driver argument).
_I2C_KEYS = {"i2c": int, "sda": int, "scl": int}
_IMU_OPTIONAL = {"freq": int, "address": int, "rate_hz": (int, float), "accel_range_g": int,
                 "gyro_range_dps": int, "gyro": bool, "fifo": bool, "block": int}
SENSOR_TYPES: dict[str, tuple[dict, dict]] = {
    **{t: (_I2C_KEYS, _IMU_OPTIONAL) for t in ("mpu6050", "mpu6886", "mpu6500", "mpu9250", "adxl345",
                                               "lsm6dsox", "bmi270", "lsm9ds1")},
    "adc": ({"pins": list}, {"rate_hz": (int, float), "vref": (int, float), "names": list}),
    "envelope": ({"pin": int}, {"rate_hz": (int, float), "burst": int, "vref": (int, float)}),
    "i2s": ({"sck": int, "ws": int, "sd": int}, {"i2s_id": int, "rate": int, "bits": int, "decimate": int,
                                                  "block": int}),
    "replay": ({"path": str, "channels": int, "rate_hz": (int, float)}, {"loop": bool, "preload": bool,
                                                                        "speed": (int, float)}),
}


def _sensors(data: dict, path: Path) -> tuple[dict, ...]:
    entries = data.get("sensors", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise BoardFileError(f"{path}: sensors must be [[sensors]] tables")
    out, names = [], set()
    for i, e in enumerate(entries):
        where = f"{path} [[sensors]] #{i + 1}"
        name, kind = e.get("name"), e.get("type")
        if not isinstance(name, str) or not name:
            raise BoardFileError(f"{where}: missing name (how from_config finds it)")
        where = f"{path} [[sensors]] {name!r}"
        if name in names:
            raise BoardFileError(f"{where}: the name is used twice")
        names.add(name)
        if kind not in SENSOR_TYPES:
            raise BoardFileError(f"{where}: type is {kind!r}; one of {', '.join(SENSOR_TYPES)}")
        required, optional = SENSOR_TYPES[kind]
        for key in e:
            if key not in required and key not in optional and key not in ("name", "type", "title"):
                raise BoardFileError(f"{where}: unknown key {key!r}; a {kind} takes "
                                     f"{', '.join([*required, *optional])}")
        for key, want in [*required.items(), *optional.items()]:
            if key not in e:
                if key in required:
                    raise BoardFileError(f"{where}: a {kind} needs {key!r}")
                continue
            v = e[key]
            if isinstance(v, bool) and want is not bool or not isinstance(v, want):
                raise BoardFileError(f"{where}: {key!r} is {v!r}, not of the right type")
            if key in ("rate_hz", "freq", "rate", "decimate", "channels", "burst", "block") and v <= 0:
                raise BoardFileError(f"{where}: {key!r} must be positive, not {v!r}")
        if kind == "adc" and not (e["pins"] and all(isinstance(p, int) for p in e["pins"])):
            raise BoardFileError(f"{where}: pins must be a non-empty list of pin numbers")
        if kind == "i2s" and e.get("bits", 32) not in (16, 32):
            raise BoardFileError(f"{where}: bits must be 16 or 32")
        if "address" in e and not 0x08 <= e["address"] <= 0x77:
            raise BoardFileError(f"{where}: address {e['address']!r} is not a 7-bit I2C address (0x08-0x77)")
        out.append(dict(e))
    return tuple(out)


def load_board(path: str | Path) -> Board:
    """Read one board file; BoardFileError names the file and the problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BoardFileError(f"{path}: no such board file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BoardFileError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise BoardFileError(f"{path}: not valid TOML: {e}") from None
    fields = dict(
        name=_str(data, "name", path),
        title=_str(data, "title", path),
        arch=_str(data, "arch", path, ARCHES),
        backend=_str(data, "backend", path, BACKENDS),
        clock_hz=_int(data, "clock_hz", path, 1),
        ram_bytes=_int(data, "ram_bytes", path, 1),
        flash_bytes=_int(data, "flash_bytes", path),
        filesystem_bytes=_int(data, "filesystem_bytes", path),
        free_heap_bytes=_int(data, "free_heap_bytes", path, 1),
        cpu=str(data.get("cpu", "")),
        mcu=str(data.get("mcu", "")),
        path=path,
    )
    virtual = "virtual" in data
    pins = None
    if "pins" in data:
        p = data["pins"]
        if not isinstance(p, dict):
            raise BoardFileError(f"{path}: [pins] must be a table")
        where = Path(f"{path} [pins]")
        pins = Pins(*(_int(p, k, where) for k in ("i2c_id", "i2c_sda", "i2c_scl", "adc")))
    elif not virtual:
        raise BoardFileError(f"{path}: missing the [pins] table (i2c_id, i2c_sda, i2c_scl, adc)")
    return Board(virtual=virtual, pins=pins, sensors=_sensors(data, path), **fields)


def boards(directory: str | Path | None = None) -> list[Board]:
    """Every board: real ones (`boards/*.toml`) first, then virtual ones (`boards/virtual/*.toml`)."""
    root = Path(directory) if directory else paths.BOARDS_DIR
    if not root.is_dir():
        raise BoardFileError(f"{root}: no boards folder")
    files = sorted(root.glob("*.toml")) + sorted((root / "virtual").glob("*.toml"))
    found = [load_board(p) for p in files]
    names: dict[str, Path | None] = {}
    for b in found:
        if b.name in names:
            raise BoardFileError(f"{b.path}: board name {b.name!r} is also used by {names[b.name]}")
        names[b.name] = b.path
    return found


def board(name: str, directory: str | Path | None = None) -> Board:
    """The board named `name`; BoardFileError lists the known names otherwise."""
    all_boards = boards(directory)
    for b in all_boards:
        if b.name == name:
            return b
    raise BoardFileError(f"unknown board {name!r}; known: {', '.join(b.name for b in all_boards)}")
