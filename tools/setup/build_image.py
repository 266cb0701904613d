#!/usr/bin/env python3
"""Build a MicroPython firmware image for a real board, with mpml inside.

usage: build_image.py MICROPY_SRC BUILD_DIR BOARD     build, then report on the image
       build_image.py --report BUILD_DIR BOARD        report on a built image

BOARD is MicroPython's board name (RPI_PICO, RPI_PICO2, ESP32_GENERIC, ...) or
an mpml board file's name (pico, esp32, ...): the board file's `[image]` table
(boards/*.toml) names the port, the board, the frozen manifest and the UF2
family or chip. The image holds mpml's C kernels compiled in (the builtin
module _mpml_native, firmware/kernels/micropython.cmake) and the mpml package
frozen (firmware/images/manifest_*.py). Outputs: BUILD_DIR/images/<BOARD>/
firmware.uf2 (or .bin), firmware.elf, firmware.map and image.json (what the
report prints). docs/firmware.md has the whole story.

rp2 (RP2040, RP2350) is built here from the project's setup alone: Debian
trixie's pico-sdk-source and tinyusb-source (binary packages, architecture
independent, unpacked with dpkg -x rather than installed), and the source
packages of picotool (built here: the SDK converts the ELF to UF2 with it)
and mbedtls (the rp2 port always links it), all fetched by apt-get with a
private state folder under BUILD_DIR/deps/apt, so the system's apt sources
are left alone. esp32 needs ESP-IDF (IDF_PATH); without it this says how to
get it and stops.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

# The folder-per-configuration rule of the virtual boards' builds (run as a script: its folder is on sys.path).
from build_firmware import fresh_dir

REPO = Path(__file__).resolve().parents[2]
JOBS = str(os.cpu_count() or 2)

# What MicroPython 1.25's rp2 port is built with, from Debian trixie.
RP2_DEBS = {"pico-sdk-source": "2.1.", "tinyusb-source": "0.18."}
RP2_SOURCES = {"picotool": "2.1.", "mbedtls": "3.6."}
# ESP-IDF releases MicroPython 1.25's esp32 port supports (ports/esp32/README.md).
IDF_VERSIONS = "v5.2, v5.2.2, v5.3 or v5.4 (MicroPython 1.25 is tested with v5.2.2)"


class ImageError(Exception):
    """The image cannot be built here; the message says why and what to do."""


def say(msg: str) -> None:
    print(f"mpml image: {msg}", flush=True)


# -- board files -------------------------------------------------------------------------------------

def image_boards() -> dict[str, dict]:
    """MicroPython board name -> the board file's [image] table, plus `file` and `name`."""
    found = {}
    for path in sorted((REPO / "boards").glob("*.toml")):
        data = tomllib.loads(path.read_text())
        if "image" in data:
            found[data["image"]["board"]] = dict(data["image"], file=str(path.relative_to(REPO)),
                                                 name=data["name"], mcu=data.get("mcu", ""),
                                                 flash_bytes=data.get("flash_bytes"),
                                                 ram_bytes=data.get("ram_bytes"),
                                                 filesystem_bytes=data.get("filesystem_bytes"))
    return found


def find_board(name: str) -> tuple[str, dict]:
    boards = image_boards()
    for board, table in boards.items():
        if name in (board, table["name"]):
            return board, table
    known = ", ".join(f"{b} ({t['name']})" for b, t in boards.items())
    raise ImageError(f"no board file has an [image] for {name!r}; known: {known}")


# -- helpers -----------------------------------------------------------------------------------------

def run(args: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> None:
    """Run a build step, its output appended to `log`; ImageError with the log's tail if it fails."""
    with log.open("a") as f:
        f.write("$ " + " ".join(str(a) for a in args) + "\n")
        f.flush()
        rc = subprocess.run([str(a) for a in args], stdout=f, stderr=subprocess.STDOUT,
                            env=env, cwd=cwd).returncode
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise ImageError(f"`{' '.join(str(a) for a in args[:3])} ...` failed (exit {rc}); log: {log}\n{tail}")


def debian_mirror() -> str:
    """The Debian mirror the system's apt already uses (as micropython-source.sh picks it)."""
    pat = re.compile(r"^(?:URIs:|deb(?:-src)?)\s+(?:\[[^]]*\]\s+)?(https?://\S+/debian)/?\s", re.M)
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for f in files:
        try:
            text = f.read_text() + "\n"
        except OSError:
            continue
        for m in pat.finditer(text):
            if "security" not in m.group(1):
                return m.group(1)
    return "http://deb.debian.org/debian"


class Apt:
    """apt-get with its own state under deps/apt and Debian trixie as its only source.

    The packages are architecture-independent sources: nothing is installed,
    and the system's sources list is not touched.
    """

    def __init__(self, root: Path, log: Path):
        self.root = root
        self.log = log
        (root / "etc" / "sources.list.d").mkdir(parents=True, exist_ok=True)
        for d in ("lists/partial", "cache/archives/partial"):
            (root / d).mkdir(parents=True, exist_ok=True)
        mirror = debian_mirror()
        (root / "etc" / "sources.list.d" / "trixie.sources").write_text(
            f"Types: deb deb-src\nURIs: {mirror}\nSuites: trixie\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
        self.opts = ["-o", "Dir::Etc::SourceList=/dev/null",
                     "-o", f"Dir::Etc::SourceParts={root / 'etc' / 'sources.list.d'}",
                     "-o", f"Dir::State::Lists={root / 'lists'}",
                     "-o", f"Dir::Cache={root / 'cache'}"]
        # Downloads land in build/, which apt's _apt user may not be allowed to write.
        self.opts += ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else ["-o", "Debug::NoLocking=1"]
        self.updated = (root / "lists" / ".updated").exists()

    def update(self) -> None:
        if not self.updated:
            say("fetching Debian trixie's package lists (once, into build/deps/apt)")
            run(["apt-get", *self.opts, "update", "-q"], self.log)
            (self.root / "lists" / ".updated").touch()
            self.updated = True

    def version(self, pkg: str, source: bool = False) -> str:
        cmd = ["apt-cache", *self.opts, "showsrc" if source else "show", pkg]
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        m = re.search(r"^Version: (\S+)", out, re.M)
        if not m:
            raise ImageError(f"Debian trixie has no {'source ' if source else ''}package {pkg!r} "
                             f"(apt-cache showsrc/show found nothing)")
        return m.group(1)

    def download(self, pkg: str, dest: Path) -> Path:
        """The .deb of binary package `pkg` in `dest` (downloaded once)."""
        self.update()
        ver = self.version(pkg)
        deb = dest / f"{pkg}_{ver.split(':')[-1]}_all.deb"
        if not deb.exists():
            say(f"downloading {pkg} {ver}")
            run(["apt-get", *self.opts, "download", "-q", f"{pkg}={ver}"], self.log, cwd=dest)
        return deb

    def orig_tarball(self, pkg: str, dest: Path) -> Path:
        """The upstream (.orig) tarball of source package `pkg` in `dest`.

        Only the upstream source is used: Debian's patches of these two change
        their packaging, not the code the build needs.
        """
        self.update()
        ver = self.version(pkg, source=True)
        upstream = ver.split(":")[-1].rsplit("-", 1)[0]
        found = sorted(dest.glob(f"{pkg}_{upstream}.orig.tar.*"))
        if not found:
            say(f"downloading the source of {pkg} {ver}")
            # A partial mirror may lack the .dsc or the Debian diff; the upstream tarball is what counts.
            with self.log.open("a") as f:
                subprocess.run(["apt-get", *self.opts, "source", "-q", "--download-only", f"{pkg}={ver}"],
                               stdout=f, stderr=subprocess.STDOUT, cwd=dest)
            found = sorted(dest.glob(f"{pkg}_{upstream}.orig.tar.*"))
            if not found:
                raise ImageError(f"could not download the source package {pkg} {ver}; log: {self.log}")
        return found[0]


# -- rp2 ---------------------------------------------------------------------------------------------

def rp2_dependencies(build: Path, src: Path) -> dict:
    """pico-sdk, TinyUSB and mbedtls where the rp2 port looks for them, and picotool built.

    The rp2 port reads TinyUSB and mbedtls from MicroPython's lib/ (its
    CMakeLists sets those paths itself). In the tree setup unpacked from
    Debian's +ds tarball those submodules are empty folders: they become links
    to the Debian copies. A MICROPY_DIR checkout must have its submodules.
    """
    deps = build / "deps"
    dl = build / "downloads" / "deps"
    dl.mkdir(parents=True, exist_ok=True)
    deps.mkdir(parents=True, exist_ok=True)
    log = deps / "deps.log"
    apt = Apt(deps / "apt", log)
    info: dict = {}

    debroot = deps / "debian"
    sdk = debroot / "usr" / "src" / "pico-sdk"
    tinyusb = debroot / "usr" / "src" / "tinyusb"
    for pkg, want in RP2_DEBS.items():
        stamp = deps / f".{pkg}"
        if not stamp.exists():
            deb = apt.download(pkg, dl)
            ver = deb.name.split("_")[1]
            if not ver.startswith(want):
                raise ImageError(f"{pkg} {ver} from Debian trixie: MicroPython 1.25 needs {want}x")
            run(["dpkg-deb", "-x", deb, debroot], log)
            stamp.write_text(ver)
        info[pkg] = stamp.read_text()

    unpacked = {}
    for pkg, want in RP2_SOURCES.items():
        stamp = deps / f".{pkg}"
        out = deps / pkg
        if not stamp.exists():
            tarball = apt.orig_tarball(pkg, dl)
            ver = tarball.name.split("_")[1].split(".orig")[0]
            if not ver.startswith(want):
                raise ImageError(f"{pkg} {ver} from Debian trixie: expected {want}x")
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            say(f"unpacking {tarball.name}")
            run(["tar", "-xf", tarball, "-C", out, "--strip-components=1"], log)
            stamp.write_text(ver)
        info[pkg] = stamp.read_text()
        unpacked[pkg] = out

    for name, target in (("pico-sdk", sdk), ("tinyusb", tinyusb), ("mbedtls", unpacked["mbedtls"])):
        link_submodule(src, build, name, target)

    # picotool: the SDK turns the ELF into a UF2 with it (SDK 2.x has no elf2uf2).
    # Built as the SDK itself would fetch and build it: no USB support needed.
    picotool_dir = deps / "picotool-install" / "picotool"
    if not (picotool_dir / "picotool").exists():
        say(f"building picotool {info['picotool']} (once)")
        pb = deps / "picotool-build"
        shutil.rmtree(pb, ignore_errors=True)
        run(["cmake", "-S", unpacked["picotool"], "-B", pb, f"-DPICO_SDK_PATH={sdk}",
             "-DPICOTOOL_NO_LIBUSB=1", "-DPICOTOOL_FLAT_INSTALL=1",
             f"-DCMAKE_INSTALL_PREFIX={deps / 'picotool-install'}", "-DCMAKE_BUILD_TYPE=Release"], log)
        run(["cmake", "--build", pb, f"-j{JOBS}", "--target", "install"], log)
    info["sdk"] = str(sdk)
    info["picotool_dir"] = str(picotool_dir)
    return info


def link_submodule(src: Path, build: Path, name: str, target: Path) -> None:
    lib = src / "lib" / name
    if lib.is_symlink():
        if lib.resolve() != target.resolve():
            lib.unlink()
            lib.symlink_to(target)
        return
    if lib.is_dir() and any(lib.iterdir()):
        return  # a checkout with its submodules: use its own
    if src != build / "micropython-src":  # a user's checkout: never changed by us
        raise ImageError(f"{lib} is empty: run `make -C {src}/ports/rp2 submodules` in your MicroPython checkout")
    if lib.is_dir():
        lib.rmdir()
    lib.symlink_to(target)


def build_rp2(src: Path, build: Path, board: str, table: dict) -> Path:
    deps = rp2_dependencies(build, src)
    out = build / "images" / board
    cmake_dir = out / "build"
    mpy_cross = build / "firmware" / "mpy-cross" / "mpy-cross"
    if not mpy_cross.exists():
        raise ImageError(f"{mpy_cross} is missing: run `make setup` first (it builds mpy-cross)")
    lib_dir = src / "lib" / "micropython-lib"
    if not (lib_dir / "README.md").exists():
        lib_dir = build / "firmware" / "micropython-lib-none"
        lib_dir.mkdir(parents=True, exist_ok=True)
        (lib_dir / "README.md").write_text("Empty: no micropython-lib in Debian's MicroPython source.\n")
    args = ["cmake", "-S", src / "ports" / "rp2", "-B", cmake_dir,
            f"-DMICROPY_BOARD={board}",
            f"-DPICO_SDK_PATH_OVERRIDE={deps['sdk']}",
            # the kernels, and the word alignment frozen ARMv6-M viper code needs
            # (firmware/images/frozen_align.py says why)
            f"-DUSER_C_MODULES={REPO / 'firmware' / 'kernels' / 'micropython.cmake'};"
            f"{REPO / 'firmware' / 'images' / 'frozen_align.cmake'}",
            f"-DMICROPY_FROZEN_MANIFEST={REPO / table['manifest']}",
            f"-DMICROPY_LIB_DIR={lib_dir}",
            f"-Dpicotool_DIR={deps['picotool_dir']}",
            "-DPICO_BUILD_DOCS=0"]
    if table.get("variant"):
        args.append(f"-DMICROPY_BOARD_VARIANT={table['variant']}")
    # CMake caches what it was configured with: another configuration starts afresh.
    fresh_dir(cmake_dir, {"cmake": [str(a) for a in args],
                          "deps": {k: deps[k] for k in (*RP2_DEBS, *RP2_SOURCES)}})
    log = out / "build.log"
    log.write_text("")
    env = dict(os.environ, MICROPY_MPYCROSS=str(mpy_cross), GIT_CEILING_DIRECTORIES=str(src.parent))
    if not (cmake_dir / "Makefile").exists():
        run(args, log, env=env)
    run(["make", f"-j{JOBS}", "-C", cmake_dir], log, env=env)
    for name, dest in (("firmware.uf2", "firmware.uf2"), ("firmware.elf", "firmware.elf"),
                       ("firmware.elf.map", "firmware.map"), ("frozen_content.c", "frozen_content.c")):
        shutil.copy2(cmake_dir / name, out / dest)
    return out


# -- esp32 -------------------------------------------------------------------------------------------

def esp_idf_missing(board: str, table: dict) -> str | None:
    """Why ESP-IDF is unusable here (None when IDF_PATH and idf.py are in place)."""
    idf = os.environ.get("IDF_PATH")
    if idf and (Path(idf) / "tools" / "idf.py").exists() and shutil.which("idf.py"):
        return None
    where = f"IDF_PATH={idf} has no tools/idf.py" if idf else "IDF_PATH is not set"
    return (f"{board} is built with Espressif's ESP-IDF, which is not installed here ({where}; "
            f"idf.py {'is' if shutil.which('idf.py') else 'is not'} on PATH).\n"
            f"MicroPython 1.25's esp32 port needs ESP-IDF {IDF_VERSIONS}. Get it, then run this again:\n"
            f"    git clone -b v5.2.2 --recursive https://github.com/espressif/esp-idf.git\n"
            f"    cd esp-idf && ./install.sh {table.get('chip', 'esp32')} && . ./export.sh\n"
            f"    make firmware BOARD={board} MICROPY_DIR=/path/to/micropython   "
            f"(a v1.25 checkout: git clone -b v1.25.0 https://github.com/micropython/micropython, "
            f"then make -C micropython/ports/esp32 submodules)\n"
            f"docs/firmware.md has the recipe.")


def build_esp32(src: Path, build: Path, board: str, table: dict) -> Path:
    missing = esp_idf_missing(board, table)
    if missing:
        raise ImageError(missing)
    out = build / "images" / board
    cmake_dir = out / "build"
    out.mkdir(parents=True, exist_ok=True)
    log = out / "build.log"
    log.write_text("")
    args = ["make", f"-j{JOBS}", "-C", src / "ports" / "esp32", f"BOARD={board}", f"BUILD={cmake_dir}",
            f"USER_C_MODULES={REPO / 'firmware' / 'kernels' / 'micropython.cmake'}",
            f"FROZEN_MANIFEST={REPO / table['manifest']}"]
    if table.get("variant"):
        args.append(f"BOARD_VARIANT={table['variant']}")
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(src.parent))
    run(args, log, env=env)
    for name, dest in (("firmware.bin", "firmware.bin"), ("micropython.elf", "firmware.elf"),
                       ("micropython.map", "firmware.map"), ("frozen_content.c", "frozen_content.c")):
        if (cmake_dir / name).exists():
            shutil.copy2(cmake_dir / name, out / dest)
    return out


# -- the report --------------------------------------------------------------------------------------

def elf_sizes(elf: Path, regions: dict[str, tuple[int, int]]) -> dict:
    """What the image stores in flash and takes of RAM before MicroPython's heap.

    flash: every loadable segment's file bytes (code, constants, frozen
    modules, and .data's initial values, which live in flash too); ram: the
    allocated sections in the RAM regions (.data, .bss, vector table), not
    the linker's reservations for the stacks and the C heap.
    """
    from elftools.elf.elffile import ELFFile

    ram_regions = [r for name, r in regions.items() if name != "FLASH" and name != "ROM"]
    flash = ram = 0
    with open(elf, "rb") as f:
        e = ELFFile(f)
        for seg in e.iter_segments():
            if seg["p_type"] == "PT_LOAD":
                flash += seg["p_filesz"]
        for sec in e.iter_sections():
            if not sec["sh_flags"] & 0x2 or sec.name.startswith((".heap", ".stack")):  # SHF_ALLOC
                continue
            if any(o <= sec["sh_addr"] < o + n for o, n in ram_regions):
                ram += sec["sh_size"]
    return {"flash": flash, "ram": ram}


def memory_regions(map_file: Path) -> dict[str, tuple[int, int]]:
    """name -> (origin, length) from the linker map's "Memory Configuration"."""
    regions = {}
    lines = map_file.read_text(errors="replace").splitlines()
    try:
        start = lines.index("Memory Configuration")
    except ValueError:
        return regions
    for line in lines[start + 3:]:
        parts = line.split()
        if not parts or parts[0] == "Linker":
            break
        if parts[0] != "*default*" and len(parts) >= 3:
            regions[parts[0]] = (int(parts[1], 16), int(parts[2], 16))
    return regions


def has_symbol(elf: Path, name: str) -> bool:
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return bool(symtab and symtab.get_symbol_by_name(name))


def frozen_modules(frozen_c: Path) -> list[str]:
    """The frozen module names, from makemanifest's frozen_content.c."""
    text = frozen_c.read_text(errors="replace")
    names = []
    # mp_frozen_names lists every frozen .py/.mpy name in a string table.
    m = re.search(r"const char mp_frozen_names\[\] = \{(.*?)\};", text, re.S)
    if m:
        names = [n for n in re.findall(r'"([^"]*)\\0"', m.group(1)) if n]
    if not names:  # MicroPython 1.25 lists them as a comment per module too
        names = re.findall(r"^// - frozen file name: (\S+)", text, re.M)
    return names


def uf2_summary(path: Path) -> dict:
    """The UF2's families, blocks and flash range, read by mpml.firmware.uf2 (what `mpml flash` checks)."""
    from mpml.firmware import uf2

    try:
        img = uf2.load(path)
    except uf2.Uf2Error as e:
        raise ImageError(f"the UF2 does not parse: {e}") from None
    main = img.main
    return {"families": [f"0x{f:08x}" if f is not None else None for f in img.families],
            "family": f"0x{main.family:08x}", "family_name": main.family_name,
            "blocks": len(img.blocks), "main_blocks": main.num_blocks,
            "start": f"0x{main.start:08x}", "end": f"0x{main.end:08x}",
            "payload_bytes": main.payload_bytes, "info": uf2.info(img)}


def report(build: Path, board: str, table: dict, seconds: float | None = None) -> dict:
    out = build / "images" / board
    elf, map_file = out / "firmware.elf", out / "firmware.map"
    if not elf.exists():
        raise ImageError(f"{elf} is missing: run `make firmware BOARD={board}`")
    r: dict = {"board": board, "port": table["port"], "board_file": table["file"]}
    old = {}
    if (out / "image.json").exists():
        old = json.loads((out / "image.json").read_text())
    if seconds is not None:
        r["build_seconds"] = round(seconds, 1)
    elif "build_seconds" in old:
        r["build_seconds"] = old["build_seconds"]
    regions = memory_regions(map_file) if map_file.exists() else {}
    r["sizes"] = elf_sizes(elf, regions)
    r["regions"] = {k: {"origin": f"0x{o:08x}", "length": n} for k, (o, n) in regions.items()}
    r["frozen"] = frozen_modules(out / "frozen_content.c")
    r["builtin_kernels"] = has_symbol(elf, "mpml_native_module")
    uf2_error = None
    if table["port"] == "rp2":
        try:
            r["uf2"] = uf2_summary(out / "firmware.uf2")
        except ImageError as e:
            uf2_error = r["uf2_error"] = str(e)
    (out / "image.json").write_text(json.dumps(r, indent=2) + "\n")

    s = r["sizes"]
    print(f"{board} ({table['file']}): {out}")
    if "build_seconds" in r:
        print(f"  built in {r['build_seconds']} s")
    flash = regions.get("FLASH") or regions.get("ROM")
    ram = regions.get("RAM")
    fs = table.get("filesystem_bytes") or 0
    line = f"  flash: {s['flash']} bytes"
    if flash and fs and fs < flash[1]:
        room = flash[1] - fs
        line += (f", {100 * s['flash'] / room:.1f} % of the {room // 1024} KiB beside the "
                 f"{fs // 1024} KiB filesystem ({flash[1] // 1024} KiB flash)")
    elif flash:
        line += f" of {flash[1] // 1024} KiB"
    print(line)
    line = f"  RAM: {s['ram']} bytes of static data (.data, .bss)"
    if ram:
        line += f" of {ram[1] // 1024} KiB; MicroPython's heap and the stacks take the rest"
    print(line)
    mpml = [n for n in r["frozen"] if n.startswith("mpml/")]
    print(f"  frozen: {len(r['frozen'])} modules, mpml's {len(mpml)}: {', '.join(mpml)}")
    others = [n for n in r["frozen"] if not n.startswith("mpml/")]
    if others:
        print(f"          others: {', '.join(others)}")
    print(f"  kernels compiled in (_mpml_native): {'yes' if r['builtin_kernels'] else 'NO'}")
    if "uf2" in r:
        u = r["uf2"]
        print(f"  UF2: family {u['family']} ({u['family_name']}), {u['main_blocks']} blocks of flash "
              f"{u['start']}..{u['end']} ({u['payload_bytes']} bytes)"
              + (f", {u['blocks'] - u['main_blocks']} more for families {u['families']}"
                 if u["blocks"] != u["main_blocks"] else ""))
        want = table.get("family")
        if want is not None:
            from mpml.firmware import uf2
            if int(u["family"], 16) != uf2.family_id(want):
                raise ImageError(f"{out / 'firmware.uf2'}: family {u['family']}, but {table['file']} says {want}")
    if uf2_error:
        print(f"  UF2: {uf2_error}")
        raise ImageError(f"{out / 'firmware.uf2'}: {uf2_error}")
    if not r["builtin_kernels"]:
        raise ImageError(f"{elf}: the kernels are not compiled in (no mpml_native_module)")
    if not mpml:
        raise ImageError(f"{elf}: the mpml package is not frozen in")
    return r


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["--report"]:
            build, name = Path(argv[1]).resolve(), argv[2]
            board, table = find_board(name)
            report(build, board, table)
            return 0
        src, build, name = Path(argv[0]).resolve(), Path(argv[1]).resolve(), argv[2]
        board, table = find_board(name)
    except IndexError:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    except ImageError as e:
        print(f"mpml image: {e}", file=sys.stderr)
        return 2
    # The outcome goes to status.json, which tests/test_images.py reads.
    status = build / "images" / board / "status.json"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.unlink(missing_ok=True)
    t0 = time.monotonic()
    try:
        if table["port"] == "rp2":
            say(f"building {board} (rp2 port, {table['file']}); log: build/images/{board}/build.log")
            build_rp2(src, build, board, table)
        elif table["port"] == "esp32":
            build_esp32(src, build, board, table)
        else:
            raise ImageError(f"{table['file']}: unknown port {table['port']!r}")
        report(build, board, table, time.monotonic() - t0)
    except ImageError as e:
        status.write_text(json.dumps({"ok": False, "error": str(e)}, indent=2) + "\n")
        print(f"mpml image: {e}", file=sys.stderr)
        return 2
    status.write_text(json.dumps({"ok": True, "seconds": round(time.monotonic() - t0, 1)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
