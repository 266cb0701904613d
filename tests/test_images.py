"""Firmware images with mpml inside: the kernels as a user C module, the frozen
package, the board files' [image] tables, the rp2 image built here, the ESP32
recipe's configuration, and the m0k virtual board (an m0 whose firmware has the
kernels compiled in and mpml frozen).

The engine's bit-exact tests run on m0k too (RUNTIME_BOARDS in conftest):
there the compiled-in kernels and the frozen package answer, nothing installed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import start_board
from mpml import paths
from mpml.blob import write_blob
from mpml.device import Connection
from mpml.firmware import uf2
from mpml.firmware.target import target_for
from mpml.testing.graphs import mlp

REPO = Path(__file__).resolve().parents[1]
KERNELS = REPO / "firmware" / "kernels"
BUILD_IMAGE = REPO / "tools" / "setup" / "build_image.py"


def _src() -> Path:
    src = paths.micropython_src()
    assert src and src.exists(), "MicroPython source unknown: run `make setup`"
    return src


def image_tables() -> dict[str, dict]:
    out = {}
    for f in sorted((REPO / "boards").glob("*.toml")):
        data = tomllib.loads(f.read_text())
        if "image" in data:
            out[data["name"]] = dict(data, file=f)
    return out


# -- the user C module: the same sources in every build ------------------------------------------------

def _natmod_sources() -> list[str]:
    text = (KERNELS / "natmod.mk").read_text().replace("\\\n", " ")
    return re.search(r"^SRC = (.*)$", text, re.M).group(1).split()


def _mk_sources() -> list[str]:
    text = (KERNELS / "micropython.mk").read_text().replace("\\\n", " ")
    c = re.findall(r"^SRC_USERMOD_C \+= \$\(MPML_KERNELS_DIR\)/(\S+)", text, re.M)
    lib = re.search(r"^SRC_USERMOD_LIB_C \+= \$\(addprefix \$\(MPML_KERNELS_DIR\)/,(.*)\)$", text, re.M)
    return c + lib.group(1).split()


def _cmake_sources() -> list[str]:
    text = (KERNELS / "micropython.cmake").read_text()
    block = re.search(r"set\(MPML_KERNELS_SOURCES(.*?)\)", text, re.S).group(1)
    return re.findall(r"\$\{CMAKE_CURRENT_LIST_DIR\}/(\S+\.c)", block)


def test_the_three_builds_list_the_same_kernel_sources():
    natmod = _natmod_sources()
    builtin = [s if s != "modkernels_builtin.c" else "modkernels.c" for s in _mk_sources()]
    cmake = [s if s != "modkernels_builtin.c" else "modkernels.c" for s in _cmake_sources()]
    assert sorted(natmod) == sorted(builtin) == sorted(cmake)
    assert len(set(natmod)) == len(natmod)
    # every C file of the folder is in them (the builtin glue replaces modkernels.c)
    on_disk = {p.name for p in KERNELS.glob("*.c")} - {"modkernels_builtin.c"}
    assert on_disk == set(natmod)
    assert '#include "modkernels.c"' in (KERNELS / "modkernels_builtin.c").read_text()


def test_the_frozen_manifest_freezes_what_mpml_install_installs():
    # makemanifest's own reader, on the manifest the images include
    sys.path.insert(0, str(_src() / "tools"))
    try:
        import manifestfile
    finally:
        sys.path.pop(0)
    m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {"MPY_DIR": str(_src()), "MPY_LIB_DIR": ""})
    m.execute(str(REPO / "firmware" / "images" / "manifest_mpml.py"))
    frozen = sorted(f.target_path for f in m.files())
    pkg = json.loads((REPO / "firmware" / "package.json").read_text())
    installed = sorted(dest for _src_path, dest in pkg["urls"] if dest.endswith(".py"))
    assert frozen == installed
    assert "mpml/model.py" in frozen and "mpml/__init__.py" in frozen


# -- board files' [image] tables against the MicroPython tree and the flash helper -------------------

def _sdkconfig_files(port_dir: Path, board: str, variant: str) -> list[Path]:
    files = []
    for f in [port_dir / "boards" / board / "mpconfigboard.cmake",
              *([port_dir / "boards" / board / f"mpconfigvariant_{variant}.cmake"] if variant else [])]:
        for block in re.findall(r"set\(SDKCONFIG_DEFAULTS(.*?)\)", f.read_text(), re.S):
            files += [port_dir / p for p in block.split() if not p.startswith("$")]
    return files


def _partition_csv(port_dir: Path, board: str, variant: str) -> str:
    name = None
    for f in _sdkconfig_files(port_dir, board, variant):  # later files override earlier ones
        m = re.search(r'^CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="([^"]+)"', f.read_text(), re.M)
        if m:
            name = m.group(1)
    return name


def test_image_tables_name_ports_and_boards_of_the_micropython_tree():
    src = _src()
    tables = image_tables()
    assert {"pico", "pico2", "esp32", "esp32s3", "esp32c3"} <= set(tables)
    for name, data in tables.items():
        img = data["image"]
        board_dir = src / "ports" / img["port"] / "boards" / img["board"]
        assert (board_dir / "mpconfigboard.cmake").is_file(), f"{data['file']}: {board_dir}"
        if img.get("variant"):
            assert (board_dir / f"mpconfigvariant_{img['variant']}.cmake").is_file(), data["file"]
        assert (REPO / img["manifest"]).is_file(), data["file"]
        # the flash helper reads the same table: same image folder, family or offset
        t = target_for(name)
        assert t.image_board == img["board"]
        if img["port"] == "rp2":
            assert t.family == uf2.family_id(img["family"])
            assert uf2.family_name(t.family) == {"RP2040": "RP2040", "RP2350": "RP2350_ARM_S"}[data["mcu"]]
            assert img["manifest"].endswith("manifest_rp2.py")
        else:
            assert t.offsets == (img["offset"],) and t.chip_name == img["chip"] == data["mcu"]


def test_esp32_tables_match_the_ports_offsets_partitions_and_chips():
    port = _src() / "ports" / "esp32"
    for name, data in image_tables().items():
        img = data["image"]
        if img["port"] != "esp32":
            continue
        board_dir = port / "boards" / img["board"]
        board_json = json.loads((board_dir / "board.json").read_text())
        assert int(board_json["deploy_options"]["flash_offset"], 0) == img["offset"], name
        target = re.search(r"set\(IDF_TARGET (\w+)\)", (board_dir / "mpconfigboard.cmake").read_text())
        assert (target.group(1) if target else "esp32") == img["chip"].lower().replace("-", ""), name
        csv = _partition_csv(port, img["board"], img.get("variant", ""))
        assert csv == img["partitions"], name
        rows = [ln.split(",") for ln in (port / csv).read_text().splitlines() if ln and not ln.startswith("#")]
        parts = {r[0].strip(): (int(r[3], 0), int(r[4], 0)) for r in rows}
        # the app where makeimg.py puts it, and the filesystem the board file promises
        assert parts["factory"][0] == 0x10000
        assert parts["vfs"][1] == data["filesystem_bytes"], name
        assert parts["vfs"][0] + parts["vfs"][1] <= data["flash_bytes"], name


def test_esp32_build_says_esp_idf_is_missing_and_how_to_get_it():
    if os.environ.get("IDF_PATH"):
        pytest.skip("IDF_PATH is set: `make firmware BOARD=ESP32_GENERIC` builds for real here")
    env = {k: v for k, v in os.environ.items() if k != "IDF_PATH"}
    r = subprocess.run([sys.executable, str(BUILD_IMAGE), str(_src()), str(paths.build_dir()), "ESP32_GENERIC"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert "ESP-IDF" in r.stderr and "IDF_PATH is not set" in r.stderr
    assert "v5.2.2" in r.stderr and "export.sh" in r.stderr and "docs/firmware.md" in r.stderr
    r = subprocess.run([sys.executable, str(BUILD_IMAGE), str(_src()), str(paths.build_dir()), "NO_SUCH_BOARD"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "RPI_PICO (pico)" in r.stderr


# -- the rp2 image built here ----------------------------------------------------------------------------

@pytest.mark.parametrize("board, family, mcu", [("RPI_PICO", 0xE48BFF56, "RP2040"),
                                                ("RPI_PICO2", 0xE48BFF59, "RP2350")], ids=["RPI_PICO", "RPI_PICO2"])
def test_rp2_image_holds_mpml_and_parses_as_a_uf2(board, family, mcu):
    out = paths.build_dir() / "images" / board
    status = json.loads((out / "status.json").read_text()) if (out / "status.json").exists() else {}
    if status and not status["ok"]:
        pytest.fail(f"the {board} image failed to build or its check failed:\n{status['error']}")
    if not (out / "firmware.uf2").exists():
        pytest.skip(f"no {board} image built (build/images/{board}/firmware.uf2): "
                    f"`make firmware BOARD={board}` builds it (docs/firmware.md)")
    r = subprocess.run([sys.executable, str(BUILD_IMAGE), "--report", str(paths.build_dir()), board],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "kernels compiled in (_mpml_native): yes" in r.stdout
    rep = json.loads((out / "image.json").read_text())
    assert {"mpml/__init__.py", "mpml/model.py", "mpml/_viper.py", "mpml/blobfmt.py"} <= set(rep["frozen"])
    img = uf2.load(out / "firmware.uf2")
    main = img.main
    assert main.family == family
    assert main.start == 0x10000000
    # the blocks cover what the ELF stores in flash, in 256-byte pages
    s = rep["sizes"]
    assert s["flash"] <= main.payload_bytes <= s["flash"] + 2 * 4096
    assert main.end - main.start <= target_for("pico" if mcu == "RP2040" else "pico2").flash_bytes
    assert main.num_blocks == len(main.blocks)
    # and they hold the ELF's bytes where the ELF puts them (load addresses in flash)
    from elftools.elf.elffile import ELFFile

    flash = main.data()
    with open(out / "firmware.elf", "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]:
                at = seg["p_paddr"] - main.start
                assert flash[at:at + seg["p_filesz"]] == seg.data(), f"segment at 0x{seg['p_paddr']:08x}"


# -- m0k: the Cortex-M0 board with mpml built into its firmware -----------------------------------------

FROZEN_CHECK = """
import sys, os
import mpml, mpml.model as M
print('FILE', mpml.__file__)
print('LIB', sorted(os.listdir('/lib')))
name, mod, notes = M._pick(None, ('fully_connected', 'conv_2d'))
print('PICK', name, mod.__name__)
import _mpml_native
print('SAME', mod is _mpml_native)
"""


def test_m0k_imports_mpml_and_its_kernels_from_the_firmware():
    board = start_board("m0k")
    with Connection(board.port, timeout=30) as c:
        # nothing on the filesystem: the frozen package and the builtin module answer
        c.exec("import os\nfor f in os.listdir('/lib'):\n    os.remove('/lib/' + f)\n")
        out = dict(line.split(" ", 1) for line in c.exec(FROZEN_CHECK).splitlines() if " " in line)
        # a frozen module's __file__ is its name in the image; an installed one's is a path
        assert out["FILE"] == "mpml/__init__.py", out
        assert out["LIB"] == "[]"
        assert out["PICK"] == "native _mpml_native" and out["SAME"] == "True"
        # a model runs on the compiled-in kernels, and their errors are the C's own messages
        blob = base64.b64encode(write_blob(mlp(sizes=(8, 6, 4))))
        got = c.exec(f"import binascii\nm = mpml.load(binascii.a2b_base64({blob!r}))\nprint(m.backend)\n"
                     "try:\n    _mpml_native.fully_connected([1, 1, 0, 0, -128, 127], b'', b'', b'', b'', b'',"
                     " bytearray(1))\nexcept ValueError as e:\n    print(e)\n")
        assert got.split("\n")[0].strip() == "native"
        assert "FULLY_CONNECTED: " in got


def test_m0k_frozen_mpml_is_not_shadowed_by_an_installed_one():
    # MicroPython's sys.path is ('', '.frozen', '/lib'): a /lib/mpml (from
    # `mpml install` or mip) is never imported on an image with mpml frozen.
    board = start_board("m0k")
    with Connection(board.port, timeout=30) as c:
        c.exec("import os\ntry:\n    os.mkdir('/lib/mpml')\nexcept OSError:\n    pass\n"
               "with open('/lib/mpml/__init__.py', 'w') as f:\n    f.write('__version__ = \"installed\"\\n')\n")
        try:
            out = c.exec("import sys\nsys.modules.pop('mpml', None)\nimport mpml\n"
                         "print(mpml.__file__, mpml.__version__)\nprint(sys.path)\n")
            assert out.split("\n")[0].split() == ["mpml/__init__.py", json.loads((REPO / "firmware" / "package.json")
                                                                         .read_text())["version"]]
            assert "'.frozen', '/lib'" in out
        finally:
            c.exec("import os\nos.remove('/lib/mpml/__init__.py')\nos.rmdir('/lib/mpml')\n")
