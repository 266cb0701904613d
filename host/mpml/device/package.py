"""The device package: mpml's runtime compiled for one board's arch, and installing it.

`build_package(arch)` compiles every `firmware/mpml/*.py` with the project's
`mpy-cross -march=<arch>` (so the viper kernels become that CPU's machine
code) into `build/device/<arch>/mpml/`, and adds the C kernels
(`build/kernels/<arch>/_native.mpy`) when they have been built.
`install(port, arch)` copies that folder to the board's `/lib/mpml/` over the
REPL, removing files a previous install left that the package no longer has.
This is the seed of `mpml install`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mpml import paths
from mpml.device.board import DEVICE_DIR
from mpml.device.connection import Connection

__all__ = ["ARCHS", "PackageError", "build_package", "install", "native_module", "package_dir"]

ARCHS = ("x64", "armv6m", "armv7m", "armv7emsp", "rv32imc", "xtensawin")


class PackageError(RuntimeError):
    """The package could not be built or installed, with the reason."""


def mpy_cross() -> Path:
    exe = paths.firmware_dir() / "mpy-cross" / "mpy-cross"
    if not exe.exists():
        raise PackageError(f"{exe} missing: run `make setup`")
    return exe


def native_module(arch: str) -> Path | None:
    """The built C kernels for `arch`, or None when they have not been built."""
    path = paths.build_dir() / "kernels" / arch / "_native.mpy"
    return path if path.exists() else None


def package_dir(arch: str) -> Path:
    return paths.build_dir() / "device" / arch / "mpml"


def build_package(arch: str, with_native: bool = True) -> Path:
    """Compile the device package for `arch`; returns the folder holding `mpml/*.mpy`."""
    if arch not in ARCHS:
        raise PackageError(f"unknown arch {arch!r}; one of {', '.join(ARCHS)}")
    exe = mpy_cross()
    out = package_dir(arch)
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted((paths.FIRMWARE_SRC / "mpml").glob("*.py"))
    wanted = set()
    for src in sources:
        dest = out / (src.stem + ".mpy")
        wanted.add(dest.name)
        if dest.exists() and dest.stat().st_mtime >= max(src.stat().st_mtime, exe.stat().st_mtime):
            continue
        r = subprocess.run([str(exe), f"-march={arch}", "-o", str(dest), "-s", f"mpml/{src.name}", str(src)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            dest.unlink(missing_ok=True)
            raise PackageError(f"mpy-cross -march={arch} {src.name} failed:\n{r.stdout}{r.stderr}")
    native = native_module(arch) if with_native else None
    if native is not None:
        (out / "_native.mpy").write_bytes(native.read_bytes())
        wanted.add("_native.mpy")
    for stale in out.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    return out


def write_file(conn: Connection, dest: str, data: bytes) -> None:
    """Write `data` to the board's file `dest` (one file of mpml.device.transfer.write_files)."""
    from mpml.device.transfer import write_files
    write_files(conn, {dest: data})


def install(port: str | Connection, arch: str, with_native: bool = True) -> list[str]:
    """Build the package for `arch` and copy it to the board's /lib/mpml/.

    `port` is a serial port or an open Connection. Files on the board that
    the package does not have (stale .py/.mpy, a _native.mpy when installing
    without one) are removed. Returns the names installed.
    """
    from mpml.device.transfer import write_files
    pkg = build_package(arch, with_native=with_native)
    files = sorted(p for p in pkg.iterdir() if p.is_file())
    conn = port if isinstance(port, Connection) else Connection(port, timeout=30)
    try:
        conn.exec(
            "import os\n"
            "for d in ('/lib', '/lib/mpml'):\n"
            "    try:\n        os.mkdir(d)\n    except OSError:\n        pass\n")
        present = conn.eval(f"__import__('os').listdir({DEVICE_DIR!r})")
        # Remove every old file first: stale ones, and the ones about to be
        # rewritten (a small littlefs disk cannot hold old and new at once).
        if present:
            conn.exec("import os\n" + "".join(f"os.remove({DEVICE_DIR + '/' + n!r})\n" for n in present))
        write_files(conn, {f"{DEVICE_DIR}/{p.name}": p.read_bytes() for p in files})
        # Modules already imported in this session would shadow the new files.
        conn.exec("import sys\nfor k in list(sys.modules):\n    if k == 'mpml' or k.startswith('mpml.'):\n"
                  "        del sys.modules[k]\n")
    finally:
        if conn is not port:
            conn.close()
    return [p.name for p in files]
