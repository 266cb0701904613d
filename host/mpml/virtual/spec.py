"""Virtual board definitions, read from `boards/virtual/*.toml`.

The same files drive the firmware build (tools/setup/build_firmware.py) and
how a board is started here, so a board is described in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths


class VirtualBoardError(Exception):
    """A virtual board cannot be built, started, reached or stopped."""


@dataclass(frozen=True)
class VirtualBoardSpec:
    """One kind of virtual board (unix, m0, m3, rv32).

    `arch` is the instruction set code for this board is compiled for;
    `mpy_arch` what its firmware reports in sys.implementation._mpy (they
    differ only where MicroPython cannot name the ISA exactly).
    """

    kind: str  # also the board's name in `mpml virtual start KIND`
    title: str
    stands_for: str
    arch: str
    mpy_arch: str
    engine: str
    firmware: str
    filesystem: str
    heap: str = ""
    qemu: str = ""
    qemu_args: tuple[str, ...] = ()
    ramdisk_bytes: int = 0
    optional: bool = False
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def firmware_path(self) -> Path:
        """The built unix binary or qemu ELF image for this board."""
        name = "micropython" if self.engine == "unix" else "firmware.elf"
        return paths.firmware_dir() / self.firmware / name

    def build_status(self) -> dict:
        """This board's entry in the setup's status.json ({} when never built)."""
        status_file = paths.firmware_dir() / "status.json"
        try:
            return json.loads(status_file.read_text()).get(self.kind, {})
        except (OSError, ValueError):
            return {}

    def check_built(self) -> None:
        """Raise VirtualBoardError saying why this board's firmware is unusable."""
        status = self.build_status()
        if status and not status.get("ok"):
            raise VirtualBoardError(
                f"the {self.kind} board failed to build; see {status.get('log')}:\n"
                f"{status.get('error', '')}"
            )
        if not self.firmware_path.exists():
            raise VirtualBoardError(
                f"the {self.kind} board is not built ({self.firmware_path} is missing): run `make setup`"
            )


def _load(path: Path) -> VirtualBoardSpec:
    import tomllib  # here, not at the top: every mpml command imports this module, few read board files

    data = tomllib.loads(path.read_text())
    virtual = data["virtual"]
    return VirtualBoardSpec(
        kind=data["name"],
        title=data["title"],
        stands_for=data["stands_for"],
        arch=data["arch"],
        mpy_arch=data.get("mpy_arch", data["arch"]),
        engine=virtual["engine"],
        firmware=virtual["firmware"],
        filesystem=virtual["filesystem"],
        heap=virtual.get("heap", ""),
        qemu=virtual.get("qemu", ""),
        qemu_args=tuple(virtual.get("args", ())),
        ramdisk_bytes=int(virtual.get("ramdisk_bytes", 0)),
        optional=bool(data.get("optional", False)),
        raw=data,
    )


def specs() -> dict[str, VirtualBoardSpec]:
    """All virtual board kinds, by name."""
    found = [_load(p) for p in sorted((paths.BOARDS_DIR / "virtual").glob("*.toml"))]
    return {s.kind: s for s in found}


def spec(kind: str) -> VirtualBoardSpec:
    """The virtual board kind `kind`, or a VirtualBoardError listing the known ones."""
    all_specs = specs()
    if kind not in all_specs:
        raise VirtualBoardError(f"unknown virtual board {kind!r}; known: {', '.join(all_specs)}")
    return all_specs[kind]
