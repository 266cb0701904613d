"""UF2 files: parse, validate, describe, and (for tests and tools) write.

Written from the format's specification (github.com/microsoft/uf2, README):
a UF2 file is a sequence of 512-byte blocks, each self-contained:

    offset  size  field
    0       4     magic start 0   0x0A324655 ("UF2\\n")
    4       4     magic start 1   0x9E5D5157
    8       4     flags
    12      4     target address (where the payload goes in flash)
    16      4     payload size (bytes of data used; at most 476)
    20      4     block number (0-based)
    24      4     number of blocks
    28      4     family id (flag 0x2000) or file size (file container) or 0
    32      476   data, payload first, padded
    508     4     magic end       0x0AB16F30

All fields little-endian. A bootloader ignores blocks whose family id is not
its own, so one file may hold several images, each with its own block
numbering: RP2350 images from pico-sdk 2.x carry one extra block of the
"absolute" family before the "rp2350-arm-s" ones (a workaround for the
RP2350-E10 erratum). `parse` therefore validates numbering per family.

    >>> img = parse(Path("firmware.uf2").read_bytes())
    >>> img.main.family_name, hex(img.main.start), img.main.num_blocks
    ('RP2040', '0x10000000', 2411)
    >>> print(info(img))
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Uf2Error", "Block", "Section", "Uf2Image", "FAMILIES", "family_name", "family_id", "parse", "load",
           "info", "build", "BLOCK_SIZE", "MAGIC_START0", "MAGIC_START1", "MAGIC_END", "FLAG_NOT_MAIN_FLASH",
           "FLAG_FILE_CONTAINER", "FLAG_FAMILY_ID", "FLAG_MD5", "FLAG_EXTENSION_TAGS"]

BLOCK_SIZE = 512
DATA_SIZE = 476
MAGIC_START0 = 0x0A324655
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30

FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FILE_CONTAINER = 0x00001000
FLAG_FAMILY_ID = 0x00002000
FLAG_MD5 = 0x00004000
FLAG_EXTENSION_TAGS = 0x00008000
# Extension tag words (size byte | 3-byte type, little-endian) after the payload.
EXT_RP2_IGNORE_BLOCK = 0x9957E304  # the block carries no image data: the RP2350 boot ROM skips it


def _has_tag(raw: bytes, size: int, tag: int) -> bool:
    """Whether the extension tags after a block's payload include `tag`."""
    off = 32 + ((size + 3) & ~3)
    while off + 4 <= BLOCK_SIZE - 4:
        (word,) = struct.unpack_from("<I", raw, off)
        if word == 0:
            return False
        if word == tag:
            return True
        length = word & 0xFF
        if length < 4:
            return False
        off += (length + 3) & ~3
    return False
_KNOWN_FLAGS = FLAG_NOT_MAIN_FLASH | FLAG_FILE_CONTAINER | FLAG_FAMILY_ID | FLAG_MD5 | FLAG_EXTENSION_TAGS
_FLAG_NAMES = ((FLAG_NOT_MAIN_FLASH, "not main flash"), (FLAG_FILE_CONTAINER, "file container"),
               (FLAG_FAMILY_ID, "familyID present"), (FLAG_MD5, "MD5 checksum present"),
               (FLAG_EXTENSION_TAGS, "extension tags present"))

# Family ids of the boards mpml knows. RP2040 and the ESP32 ids: MicroPython's
# tools/uf2families.json (a copy of the UF2 repository's list); RP2350 ids:
# the RP2350 datasheet, section 5.5.3 "UF2 targeting rules".
FAMILIES: dict[int, tuple[str, str]] = {
    0xE48BFF56: ("RP2040", "Raspberry Pi RP2040"),
    0xE48BFF57: ("ABSOLUTE", "Raspberry Pi RP2350: written to flash ignoring partitions"),
    0xE48BFF58: ("DATA", "Raspberry Pi RP2350: data"),
    0xE48BFF59: ("RP2350_ARM_S", "Raspberry Pi RP2350, Arm Secure image"),
    0xE48BFF5A: ("RP2350_RISCV", "Raspberry Pi RP2350, RISC-V image"),
    0xE48BFF5B: ("RP2350_ARM_NS", "Raspberry Pi RP2350, Arm Non-secure image"),
    0x1C5F21B0: ("ESP32", "ESP32"),
    0xBFDD4EEE: ("ESP32S2", "ESP32-S2"),
    0xC47E5767: ("ESP32S3", "ESP32-S3"),
    0xD42BA06C: ("ESP32C3", "ESP32-C3"),
    0x2B88D29C: ("ESP32C2", "ESP32-C2"),
    0x332726F6: ("ESP32H2", "ESP32-H2"),
}
# Families that ride along with an image rather than being the image.
AUXILIARY_FAMILIES = frozenset({0xE48BFF57, 0xE48BFF58})


class Uf2Error(ValueError):
    """A file that is not a valid UF2 image; the message names the block and the problem."""


def family_name(fid: int | None) -> str:
    """Short name of a family id ("RP2040"), or its hex value when unknown ("0x12345678")."""
    if fid is None:
        return "none"
    return FAMILIES.get(fid, (f"0x{fid:08x}",))[0]


def family_id(name: str | int) -> int:
    """A family id from its short name ("RP2040", "rp2350-arm-s", case-insensitive) or a number/hex string."""
    if isinstance(name, int):
        return name
    key = name.strip().upper().replace("-", "_")
    for fid, (short, _) in FAMILIES.items():
        if short == key:
            return fid
    try:
        return int(name, 0)
    except ValueError:
        raise ValueError(f"unknown UF2 family {name!r}; known: {', '.join(s for s, _ in FAMILIES.values())}") \
            from None


@dataclass(frozen=True)
class Block:
    """One 512-byte block's header and payload."""

    index: int          # position in the file
    flags: int
    address: int
    payload_size: int
    block_no: int
    num_blocks: int
    family: int | None  # None when the family-id flag is clear
    payload: bytes


@dataclass
class Section:
    """The blocks of one family: one image inside the file, numbered 0..num_blocks-1."""

    family: int | None
    blocks: list[Block] = field(default_factory=list)

    @property
    def family_name(self) -> str:
        return family_name(self.family)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @property
    def start(self) -> int:
        """Lowest target address."""
        return min(b.address for b in self.blocks)

    @property
    def end(self) -> int:
        """One past the highest byte written."""
        return max(b.address + b.payload_size for b in self.blocks)

    @property
    def payload_bytes(self) -> int:
        return sum(b.payload_size for b in self.blocks)

    @property
    def payload_sizes(self) -> list[int]:
        return sorted({b.payload_size for b in self.blocks})

    def flash_blocks(self) -> list[Block]:
        return [b for b in self.blocks if not b.flags & FLAG_NOT_MAIN_FLASH]

    def data(self, fill: int = 0xFF) -> bytes:
        """The flash image from `start` to `end`, gaps filled with `fill`."""
        start = self.start
        out = bytearray([fill]) * (self.end - start)
        for b in self.flash_blocks():
            out[b.address - start:b.address - start + b.payload_size] = b.payload
        return bytes(out)


@dataclass
class Uf2Image:
    """A parsed, validated UF2 file."""

    size: int
    blocks: list[Block]
    sections: list[Section]
    name: str = "UF2"

    @property
    def families(self) -> list[int | None]:
        return [s.family for s in self.sections]

    @property
    def main(self) -> Section:
        """The image proper: the largest section that is not an auxiliary (absolute/data) family."""
        primary = [s for s in self.sections if s.family not in AUXILIARY_FAMILIES] or self.sections
        return max(primary, key=lambda s: s.num_blocks)

    @property
    def flags_consistent(self) -> bool:
        return len({b.flags for b in self.blocks}) == 1


def _describe_flags(flags: int) -> str:
    names = [n for bit, n in _FLAG_NAMES if flags & bit]
    return ", ".join(names) if names else "none"


def parse(data: bytes, name: str = "UF2") -> Uf2Image:
    """Parse and validate a UF2 file; Uf2Error says what is wrong, and where.

    Checks: the size is a whole number of 512-byte blocks; every block's three
    magic numbers; known flags only; payload size 1..476 (less the MD5 record
    when flagged) and 4-byte aligned, as is the target address; per family,
    block numbers 0..N-1 each exactly once with the same N in every block;
    no two blocks writing the same bytes. File containers (UF2 used as an
    archive) are refused: they are not firmware images.
    """
    if not data:
        raise Uf2Error(f"{name}: empty file")
    if len(data) < BLOCK_SIZE or len(data) % BLOCK_SIZE:
        whole, rest = divmod(len(data), BLOCK_SIZE)
        raise Uf2Error(f"{name}: {len(data)} bytes is not a whole number of {BLOCK_SIZE}-byte UF2 blocks "
                       f"({whole} blocks and {rest} bytes): the file is truncated or not a UF2 file "
                       f"(download or build it again)")
    blocks: list[Block] = []
    for i in range(len(data) // BLOCK_SIZE):
        raw = data[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE]
        m0, m1, flags, addr, size, no, count, fam = struct.unpack_from("<8I", raw, 0)
        (mend,) = struct.unpack_from("<I", raw, BLOCK_SIZE - 4)
        where = f"{name}: block {i} (file offset 0x{i * BLOCK_SIZE:x})"
        if m0 != MAGIC_START0 or m1 != MAGIC_START1:
            what = "not a UF2 file" if i == 0 else "corrupt block"
            raise Uf2Error(f"{where}: bad start magic 0x{m0:08x} 0x{m1:08x} (expected 0x{MAGIC_START0:08x} "
                           f"0x{MAGIC_START1:08x}): {what}")
        if mend != MAGIC_END:
            raise Uf2Error(f"{where}: bad end magic 0x{mend:08x} (expected 0x{MAGIC_END:08x}): corrupt block")
        if flags & ~_KNOWN_FLAGS:
            raise Uf2Error(f"{where}: unknown flags 0x{flags & ~_KNOWN_FLAGS:08x}")
        if flags & FLAG_FILE_CONTAINER:
            raise Uf2Error(f"{where}: a UF2 file container (files for a filesystem), not a firmware image")
        limit = DATA_SIZE - (24 if flags & FLAG_MD5 else 0)
        if not 0 < size <= limit:
            raise Uf2Error(f"{where}: payload size {size} outside 1..{limit}")
        if size % 4 or addr % 4:
            raise Uf2Error(f"{where}: payload size {size} and target address 0x{addr:08x} must be multiples of 4")
        if count == 0 or no >= count:
            raise Uf2Error(f"{where}: block number {no} of {count} blocks")
        if addr + size > 0x1_0000_0000:
            raise Uf2Error(f"{where}: target 0x{addr:08x} + {size} bytes goes past the 4 GiB address space")
        if flags & FLAG_EXTENSION_TAGS and _has_tag(raw, size, EXT_RP2_IGNORE_BLOCK):
            # picotool's RP2350-E10 workaround: a lone "block 0 of 2" of the absolute family that the boot
            # ROM is told to ignore (MicroPython's own RP2350 images carry it); not part of the image.
            continue
        blocks.append(Block(i, flags, addr, size, no, count, fam if flags & FLAG_FAMILY_ID else None,
                            bytes(raw[32:32 + size])))

    by_family: dict[int | None, Section] = {}
    for b in blocks:
        by_family.setdefault(b.family, Section(b.family)).blocks.append(b)
    for sec in by_family.values():
        label = f"{name}: family {sec.family_name}"
        counts = {b.num_blocks for b in sec.blocks}
        if len(counts) > 1:
            raise Uf2Error(f"{label}: blocks disagree on the block count ({', '.join(map(str, sorted(counts)))})")
        (count,) = counts
        seen: dict[int, Block] = {}
        for b in sec.blocks:
            if b.block_no in seen:
                raise Uf2Error(f"{label}: block number {b.block_no} appears twice (file blocks "
                               f"{seen[b.block_no].index} and {b.index})")
            seen[b.block_no] = b
        if len(seen) != count:
            missing = sorted(set(range(count)) - set(seen))
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            raise Uf2Error(f"{label}: {len(missing)} of {count} blocks missing (numbers {shown}): the file is "
                           f"truncated or damaged")
        spans = sorted((b.address, b.address + b.payload_size, b.index) for b in sec.flash_blocks())
        for (a0, e0, i0), (a1, _, i1) in zip(spans, spans[1:]):
            if a1 < e0:
                raise Uf2Error(f"{label}: blocks {i0} and {i1} both write address 0x{a1:08x}")
    return Uf2Image(len(data), blocks, list(by_family.values()), name)


def load(path: str | Path) -> Uf2Image:
    """Read and parse a UF2 file (Uf2Error for a missing or invalid one)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise Uf2Error(f"{p}: cannot read: {e.strerror or e}") from None
    return parse(data, str(p))


def info(image: Uf2Image) -> str:
    """A description like `uf2conv.py --info`'s, with block counts and address ranges."""
    lines = ["--- UF2 File Header Info ---"]
    for s in image.sections:
        if s.family is None:
            lines.append("No family ID (flag 0x2000 clear)")
        else:
            lines.append(f"Family ID is {s.family_name}, hex value is 0x{s.family:08x}")
        lines.append(f"Target Address is 0x{s.start:08x}")
        sizes = "/".join(map(str, s.payload_sizes))
        lines.append(f"  {s.num_blocks} blocks, {sizes}-byte payloads, 0x{s.start:08x}..0x{s.end:08x} "
                     f"({s.end - s.start:,} bytes, {s.payload_bytes:,} written)")
    if image.flags_consistent:
        flags = image.blocks[0].flags
        lines.append(f"All block flag values consistent, 0x{flags:04x} ({_describe_flags(flags)})")
    else:
        lines.append("Flags were not all the same: " +
                     ", ".join(f"0x{f:04x}" for f in sorted({b.flags for b in image.blocks})))
    lines.append("----------------------------")
    lines.append(f"{image.name}: {image.size:,} bytes, {len(image.blocks)} blocks")
    return "\n".join(lines)


def build(data: bytes, address: int, family: int | None, payload_size: int = 256, flags: int = 0) -> bytes:
    """A UF2 file writing `data` at `address` (payload_size bytes per block, the last one padded)."""
    if payload_size <= 0 or payload_size > DATA_SIZE or payload_size % 4:
        raise ValueError(f"payload_size {payload_size}: a multiple of 4 in 4..{DATA_SIZE}")
    if family is not None:
        flags |= FLAG_FAMILY_ID
    chunks = [data[i:i + payload_size] for i in range(0, len(data), payload_size)] or [b""]
    out = bytearray()
    for no, chunk in enumerate(chunks):
        chunk = chunk.ljust(payload_size, b"\x00")
        head = struct.pack("<8I", MAGIC_START0, MAGIC_START1, flags, address + no * payload_size, payload_size,
                           no, len(chunks), family or 0)
        out += head + chunk.ljust(DATA_SIZE, b"\x00") + struct.pack("<I", MAGIC_END)
    return bytes(out)
