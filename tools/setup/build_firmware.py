#!/usr/bin/env python3
"""Build mpy-cross and the MicroPython firmware of every virtual board.

usage: build_firmware.py MICROPY_SRC BUILD_DIR [KIND ...]

With KINDs (e.g. m0k), only those boards are built and their entries of
status.json replaced; the others' are kept.

Each board in boards/virtual/*.toml says how it is built ([build]). Outputs go
to BUILD_DIR/firmware/<firmware>/, never into the MicroPython tree's own build
folders, so a user's MICROPY_DIR checkout stays clean. MicroPython's make is
incremental; a build folder whose configuration changed (or that a different
source tree produced) is wiped first, so a half-built or stale folder never
trips the next run. The outcome of every board goes to
BUILD_DIR/firmware/status.json, which the host package and the tests read.
Stdlib only: it runs before the virtual environment exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VIRTUAL_FW = REPO / "firmware" / "virtual"
JOBS = str(os.cpu_count() or 2)


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_make(args: list[str], log: Path, src: Path) -> bool:
    # MicroPython names its version after `git describe` of its tree. Debian's
    # source has no .git, and git would otherwise find mpml's own repository
    # above build/ and stamp the firmware with mpml's commit.
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(src.parent))
    with log.open("a") as f:
        f.write("$ " + " ".join(args) + "\n")
        f.flush()
        return subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, env=env).returncode == 0


def fresh_dir(out: Path, config: dict) -> None:
    """Wipe `out` unless it was built with exactly this configuration."""
    stamp = out / ".mpml-config.json"
    want = json.dumps(config, sort_keys=True)
    if out.exists() and (not stamp.exists() or stamp.read_text() != want):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(want)


def stripped_libgcc(cflags: list[str], out: Path) -> Path:
    """libgcc without ARM unwind tables.

    littlefs's stat() divides 64-bit integers, which pulls __aeabi_uldivmod and
    its .ARM.exidx entry from libgcc; the qemu port's linker scripts have no
    place for .ARM.exidx and the link fails with overlapping sections. Nothing
    unwinds on these boards, so the tables can go.
    """
    libgcc = subprocess.run(
        ["arm-none-eabi-gcc", *cflags, "-print-libgcc-file-name"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    dest = out / "libgcc-noexidx.a"
    if not dest.exists() or dest.stat().st_mtime < Path(libgcc).stat().st_mtime:
        subprocess.run(
            ["arm-none-eabi-objcopy", "--remove-section=.ARM.exidx*",
             "--remove-section=.ARM.extab*", libgcc, str(dest)],
            check=True,
        )
    return dest


def user_c_modules(build: dict, out: Path) -> Path:
    """The one folder USER_C_MODULES names: the qemu boards' module, plus the
    board's `user_c_modules` (e.g. firmware/kernels) linked beside it."""
    qemu_dir = VIRTUAL_FW / "qemu"
    extra = build.get("user_c_modules", [])
    if not extra:
        return qemu_dir
    mods = out / "usermods"
    shutil.rmtree(mods, ignore_errors=True)
    mods.mkdir(parents=True)
    for folder in [qemu_dir / "vboard", *(REPO / e for e in extra)]:
        if not (folder / "micropython.mk").is_file():
            raise ValueError(f"{folder} has no micropython.mk")
        (mods / folder.name).symlink_to(folder)
    return mods


def board_make_args(spec: dict, src: Path, out: Path, mpy_cross: Path, lib_stub: Path) -> list[str]:
    build = spec["build"]
    port = build["port"]
    args = ["make", f"-j{JOBS}", "-C", str(src / "ports" / port), f"BUILD={out}",
            f"MICROPY_MPYCROSS={mpy_cross}"]
    if port == "unix":
        # Debian's +ds source lacks berkeley-db, mbedtls and micropython-lib:
        # build without them and freeze nothing.
        args += [f"VARIANT={build.get('variant', 'standard')}", "FROZEN_MANIFEST=",
                 "MICROPY_PY_BTREE=0", "MICROPY_PY_SSL=0", "MICROPY_SSL_MBEDTLS=0"]
        return args
    if port != "qemu":
        raise ValueError(f"unknown port {port!r} in board {spec['name']}")
    qemu_dir = VIRTUAL_FW / "qemu"
    cflags = list(build.get("cflags", []))
    cflags += [f"-DVBOARD_RAMDISK_BYTES={spec['virtual']['ramdisk_bytes']}",
               "-include", str(qemu_dir / "vboard_config.h")]
    if "ramdisk_addr" in spec["virtual"]:
        cflags.append(f"-DVBOARD_RAMDISK_ADDR={spec['virtual']['ramdisk_addr']}")
    args += [f"BOARD={build['board']}",
             f"MPY_LIB_DIR={lib_stub}",
             f"FROZEN_MANIFEST={REPO / build.get('frozen_manifest', qemu_dir / 'manifest.py')}",
             f"USER_C_MODULES={user_c_modules(build, out)}",
             "MICROPY_VFS_LFS2=1",
             "CFLAGS_EXTRA=" + " ".join(cflags)]
    if "frozen_manifest" in build:
        # MicroPython's makemanifest, then the word alignment that frozen
        # ARMv6-M viper code needs (firmware/images/frozen_align.py says why).
        args.append(f"MAKE_MANIFEST={sys.executable} {REPO / 'firmware' / 'images' / 'makemanifest.py'}")
    if "libgcc_cflags" in build:
        args.append(f"LIBS={stripped_libgcc(build['libgcc_cflags'], out)}")
    args += [f"{k}={v}" for k, v in build.get("make_vars", {}).items()]
    return args


def product(spec: dict, out: Path) -> Path:
    return out / ("micropython" if spec["build"]["port"] == "unix" else "firmware.elf")


def main() -> int:
    src = Path(sys.argv[1]).resolve()
    fw_root = Path(sys.argv[2]).resolve() / "firmware"
    fw_root.mkdir(parents=True, exist_ok=True)
    # Which MicroPython tree these builds come from (natmod builds need it too).
    (fw_root / "micropython-src.txt").write_text(f"{src}\n")
    only = set(sys.argv[3:])
    status: dict[str, dict] = {}
    if only:
        try:
            status = json.loads((fw_root / "status.json").read_text())
        except (OSError, ValueError):
            pass

    # mpy-cross first and on its own: it is needed to freeze code, and its link
    # fails when a port's FROZEN_MANIFEST is on its command line.
    mpy_out = fw_root / "mpy-cross"
    fresh_dir(mpy_out, {"src": str(src)})
    mpy_cross = mpy_out / "mpy-cross"
    log = mpy_out / "build.log"
    log.write_text("")
    t0 = time.monotonic()
    print("mpml setup: building mpy-cross", flush=True)
    if not run_make(["make", f"-j{JOBS}", "-C", str(src / "mpy-cross"), f"BUILD={mpy_out}"], log, src):
        print(f"mpml setup: mpy-cross failed to build; log: {log}\n{log_tail(log)}", file=sys.stderr)
        return 1

    # makemanifest.py insists on a micropython-lib checkout even when the
    # manifest needs nothing from it; Debian's source has none.
    lib_stub = fw_root / "micropython-lib-none"
    lib_stub.mkdir(exist_ok=True)
    (lib_stub / "README.md").write_text("Empty: mpml's frozen manifests need nothing from micropython-lib.\n")

    failed_required = []
    for toml in sorted((REPO / "boards" / "virtual").glob("*.toml")):
        spec = tomllib.loads(toml.read_text())
        name = spec["name"]
        if only and name not in only:
            continue
        out = fw_root / spec["virtual"]["firmware"]
        config = {"src": str(src), "build": spec["build"], "virtual": spec["virtual"]}
        fresh_dir(out, config)
        log = out / "build.log"
        log.write_text("")
        t1 = time.monotonic()
        print(f"mpml setup: building firmware for the {name} board ({spec['arch']})", flush=True)
        try:
            ok = run_make(board_make_args(spec, src, out, mpy_cross, lib_stub), log, src)
        except (subprocess.CalledProcessError, OSError, ValueError) as e:
            with log.open("a") as f:
                f.write(f"\n{e}\n")
            ok = False
        ok = ok and product(spec, out).exists()
        entry = {"ok": ok, "arch": spec["arch"], "firmware": str(product(spec, out)),
                 "log": str(log), "seconds": round(time.monotonic() - t1, 1)}
        if not ok:
            entry["error"] = log_tail(log)
            print(f"mpml setup: the {name} board failed to build; log: {log}\n{entry['error']}",
                  file=sys.stderr)
            if not spec.get("optional", False):
                failed_required.append(name)
        status[name] = entry

    (fw_root / "status.json").write_text(json.dumps(status, indent=2) + "\n")
    summary = ", ".join(f"{n}: {'ok' if e['ok'] else 'FAILED'}" for n, e in status.items()
                        if not only or n in only)
    print(f"mpml setup: firmware {summary} ({time.monotonic() - t0:.0f} s)")
    if failed_required:
        print(f"mpml setup: required boards failed to build: {', '.join(failed_required)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
