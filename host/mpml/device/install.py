"""`mpml install`: put this host's mpml runtime on a board, sending only what differs.

The package is built by mpml.device.package (every firmware/mpml/*.py through
the project's mpy-cross for the board's arch, plus the C kernels
`_native.mpy` for that arch unless the viper fallback is chosen). Before
building, the board's .mpy version is checked against the one mpy-cross
emits: a board that cannot load the files is refused, not half installed.

Idempotence: the board hashes every file of /lib/mpml with its own hashlib
(SHA-256) in one round trip; files whose hash equals the build's are not
sent, files the package no longer has are removed, and a manifest
(/lib/mpml/install.json: version, arch, backend, file hashes) is written
last. A board without hashlib falls back to that manifest.

    >>> from mpml.device import Board
    >>> from mpml.device.install import install
    >>> with Board.open("m0") as b:
    ...     r = install(b)
    >>> r.sent, r.bytes_sent
    ([], 0)                           # already up to date
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import mpml
from mpml.device import package
from mpml.device.board import DEVICE_DIR, Board, build_arch
from mpml.device.connection import BoardError
from mpml.device.boardconfig import board_config_bytes
from mpml.device.transfer import write_files

__all__ = ["InstallError", "InstallResult", "install", "plan_backend", "mpy_cross_version", "native_arch_of",
           "MANIFEST"]

MANIFEST = "install.json"
CONFIG = "board.json"  # mpml.device.boardconfig.BOARD_CONFIG_PATH, kept across installs


class InstallError(BoardError):
    """The runtime cannot be installed on this board as asked, with the reason and what to do."""


@dataclass
class InstallResult:
    port: str
    arch: str
    backend: str                       # "native" or "viper"
    version: str
    sent: list[str] = field(default_factory=list)       # files written
    unchanged: list[str] = field(default_factory=list)  # files already there with the same hash
    removed: list[str] = field(default_factory=list)    # stale files deleted
    bytes_sent: int = 0                # bytes written to the serial link by the whole install
    seconds: float = 0.0
    config: str | None = None          # board file whose sensor config went to /lib/mpml/board.json (--board)
    config_changed: bool = False       # whether that file was (re)written

    @property
    def changed(self) -> bool:
        return bool(self.sent or self.removed)


def mpy_cross_version() -> tuple[int, int]:
    """The .mpy version (major, minor) the project's mpy-cross emits."""
    exe = package.mpy_cross()
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"emitting mpy v(\d+)\.(\d+)", out)
    if not m:
        raise InstallError(f"cannot read the .mpy version from `{exe} --version`: {out!r}")
    return int(m.group(1)), int(m.group(2))


def native_arch_of(mpy_file: bytes) -> str | None:
    """The native arch in a .mpy file's header (None: bytecode only)."""
    from mpml.device.arch import NATIVE_ARCHS
    if len(mpy_file) < 4 or mpy_file[0] != ord("M"):
        raise ValueError("not a .mpy file")
    index = mpy_file[2] >> 2
    return NATIVE_ARCHS[index] if index < len(NATIVE_ARCHS) else f"unknown({index})"


def plan_backend(arch: str, backend: str | None, board_file=None) -> str:
    """native or viper: as asked, else the board file's, else native where built."""
    if backend not in (None, "native", "viper"):
        raise InstallError(f"--backend {backend!r}: one of native, viper")
    if backend is None:
        backend = board_file.backend if board_file is not None and board_file.backend in ("native", "viper") \
            else "native"
        if backend == "native" and package.native_module(arch) is None:
            backend = "viper"
    elif backend == "native" and package.native_module(arch) is None:
        raise InstallError(f"no native module built for {arch} (build/kernels/{arch}/_native.mpy): "
                           f"build it with `make kernels`, or install with --backend viper")
    return backend


_HASHES = """\
import os
try:
    import hashlib, binascii
except ImportError:
    hashlib = None
try:
    _l = os.listdir(%(dir)r)
except OSError:
    _l = None
_r = {}
if _l is not None:
    for _n in _l:
        if hashlib is None:
            _r[_n] = None
            continue
        _h = hashlib.sha256()
        try:
            with open(%(dir)r + '/' + _n, 'rb') as _f:
                while True:
                    _b = _f.read(1024)
                    if not _b:
                        break
                    _h.update(_b)
            _r[_n] = binascii.hexlify(_h.digest()).decode()
        except OSError:
            _r[_n] = 'dir'
print(repr(None if _l is None else _r))
del _l, _r
"""


def _board_hashes(board: Board) -> dict[str, str | None] | None:
    """{name: sha256 hex} of the files in /lib/mpml as the board computes them (None: no folder)."""
    import ast
    out = board.conn.exec(_HASHES % {"dir": DEVICE_DIR}, timeout=60).strip().splitlines()
    hashes = ast.literal_eval(out[-1])
    if hashes is not None and any(v is None for v in hashes.values()) and MANIFEST in hashes:
        # No hashlib on this board: trust the manifest our last install wrote.
        try:
            manifest = json.loads(board.conn.eval(f"open({DEVICE_DIR + '/' + MANIFEST!r}).read()"))
            for name, digest in manifest.get("files", {}).items():
                if name in hashes:
                    hashes[name] = digest
        except (BoardError, ValueError, TypeError):
            pass
    return hashes


def install(board: Board, *, backend: str | None = None, board_name: str | None = None,
            force: bool = False, progress=None) -> InstallResult:
    """Install (or bring up to date) the runtime on an open board; see the module docstring.

    `board_name` names a boards/*.toml to take arch and backend from (else
    the one the board matched, else the arch it reports). `force` sends
    every file. `progress(name, size)` is called before each file is sent.
    """
    from mpml import boards

    start = time.monotonic()
    info = board.probe(refresh=True)
    bf = None
    if board_name:
        try:
            bf = boards.board(board_name)
        except boards.BoardFileError as e:
            raise InstallError(str(e)) from None
        from mpml.device.board import _arch_compatible
        if not _arch_compatible(bf.arch, info.mpy_arch):
            raise InstallError(f"--board {board_name} is for {bf.arch}, but the board on {board.port} reports "
                               f"{info.mpy_arch}: choose its board file, or leave --board out")
    elif info.board_file:
        try:
            bf = boards.board(info.board_file)
        except boards.BoardFileError:
            bf = None
    arch = build_arch(info.mpy_arch, bf)
    if arch is None:
        raise InstallError(f"the board on {board.port} reports no native code support "
                           f"(sys.implementation._mpy has no arch): its firmware cannot run viper or native "
                           f"modules, which mpml's kernels need")
    if arch not in package.ARCHS:
        raise InstallError(f"no mpml build for arch {arch} (the board on {board.port}); built archs: "
                           f"{', '.join(package.ARCHS)}")
    have = mpy_cross_version()
    if info.mpy_version[0] != have[0]:
        raise InstallError(
            f"the board runs MicroPython {info.micropython}, which loads .mpy v{info.mpy_version[0]}."
            f"{info.mpy_version[1]}; this mpml's mpy-cross emits v{have[0]}.{have[1]} (MicroPython 1.22-1.28). "
            f"Update the board's firmware, or point the build at a matching MicroPython checkout")
    backend = plan_backend(arch, backend, bf)
    pkg = package.build_package(arch, with_native=(backend == "native"))
    files = {p.name: p.read_bytes() for p in sorted(pkg.iterdir()) if p.is_file()}
    if "_native.mpy" in files and native_arch_of(files["_native.mpy"]) != arch:
        raise InstallError(f"build/kernels/{arch}/_native.mpy is built for "
                           f"{native_arch_of(files['_native.mpy'])}, not {arch}: rebuild it with `make kernels`")
    want = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    # --board also says which sensor is wired where: /lib/mpml/board.json for mpml.sources.from_config.
    # It is the user's choice, not part of the package: an install without --board leaves it alone.
    config = board_config_bytes(bf) if board_name and bf is not None else None

    result = InstallResult(board.port, arch, backend, mpml.__version__)
    serial = board.conn.transport.serial
    write = serial.write

    def counting_write(data):
        result.bytes_sent += len(data)
        return write(data)

    serial.write = counting_write
    try:
        conn = board.conn
        present = _board_hashes(board)
        if present is None:
            conn.exec("import os\nfor d in ('/lib', %r):\n    try:\n        os.mkdir(d)\n    except OSError:\n"
                      "        pass\n" % DEVICE_DIR)
            present = {}
        old_manifest = present.pop(MANIFEST, None)
        old_config = present.pop(CONFIG, None)
        stale = sorted(n for n in present if n not in want)
        differ = sorted(n for n in want if force or present.get(n) != want[n])
        result.unchanged = sorted(n for n in want if n not in differ)
        # Remove what goes before writing: a small filesystem may not hold old and new at once.
        # The manifest goes first, so an install cut short is never taken for a finished one.
        doomed = ([MANIFEST] if old_manifest is not None and (stale or differ) else []) + stale + \
            [n for n in differ if n in present]
        if doomed:
            conn.exec("import os\n" + "".join(f"os.remove({DEVICE_DIR + '/' + n!r})\n" for n in doomed))
        result.removed = stale
        if differ:
            # One exec for all files (mpml.device.transfer.write_files); the manifest follows in its own
            # exec once every file is checked, so a cut install is never taken for a finished one.
            pending = [(name, len(files[name])) for name in differ]
            starts_at = [0]  # byte offset, over all files, where the next pending file begins

            def bar(done, total):
                # write_files reports bytes; the caller wants to hear of each file as it starts.
                while progress and pending and done >= starts_at[0]:
                    name, size = pending.pop(0)
                    progress(name, size)
                    starts_at[0] += size
            write_files(conn, {f"{DEVICE_DIR}/{name}": files[name] for name in differ}, progress=bar)
            result.sent.extend(differ)
        if config is not None:
            result.config = bf.name
            if old_config != hashlib.sha256(config).hexdigest():
                write_files(conn, {f"{DEVICE_DIR}/{CONFIG}": config})
                result.config_changed = True
        if differ or stale or old_manifest is None:
            manifest = {"name": "mpml", "version": mpml.__version__, "arch": arch, "backend": backend,
                        "mpy": list(have), "files": want}
            write_files(conn, {f"{DEVICE_DIR}/{MANIFEST}": json.dumps(manifest, sort_keys=True).encode()})
        if differ or stale:
            # Modules imported in this session would shadow the new files.
            conn.exec("import sys\nfor k in list(sys.modules):\n    if k == 'mpml' or k.startswith('mpml.'):\n"
                      "        del sys.modules[k]\n")
    finally:
        serial.write = write
    board.probe(refresh=True)
    result.seconds = time.monotonic() - start
    return result


# -- mip packages: `mpremote mip install firmware/package.json` (sources) or a compiled one per arch --

def package_json(files: list[str], version: str | None = None) -> dict:
    """A mip package.json installing `files` (paths relative to it, e.g. "mpml/model.py") as the same paths
    under the target (/lib by default), as mpremote's mip and the board's own `mip` read it."""
    return {"urls": [[f, f] for f in sorted(files)], "version": version or mpml.__version__, "deps": []}


def source_package_json() -> dict:
    """firmware/package.json as it should be: every firmware/mpml/*.py tracked by git."""
    from mpml import paths
    r = subprocess.run(["git", "ls-files", "mpml/*.py"], cwd=paths.FIRMWARE_SRC, capture_output=True, text=True)
    files = [f for f in r.stdout.split() if f.count("/") == 1] if r.returncode == 0 else \
        [f"mpml/{p.name}" for p in sorted((paths.FIRMWARE_SRC / "mpml").glob("*.py"))]
    return package_json(files)


def build_mip_package(arch: str, out: str | Path, with_native: bool = True) -> Path:
    """A mip package of the compiled runtime for `arch` in folder `out` (package.json + mpml/*.mpy).

    Serve the folder over HTTP (or give its path to mpremote) and
    `mpremote mip install URL/package.json` installs what `mpml install` would.
    """
    import shutil
    out = Path(out)
    pkg = package.build_package(arch, with_native=with_native)
    (out / "mpml").mkdir(parents=True, exist_ok=True)
    for old in (out / "mpml").iterdir():
        old.unlink()
    names = []
    for p in sorted(pkg.iterdir()):
        shutil.copy2(p, out / "mpml" / p.name)
        names.append(f"mpml/{p.name}")
    (out / "package.json").write_text(json.dumps(package_json(names), indent=2) + "\n")
    return out / "package.json"


if __name__ == "__main__":
    # python -m mpml.device.install: rewrite firmware/package.json from the tracked sources.
    from mpml import paths as _paths
    (_paths.FIRMWARE_SRC / "package.json").write_text(json.dumps(source_package_json(), indent=2) + "\n")
    print(_paths.FIRMWARE_SRC / "package.json")
