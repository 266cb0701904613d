"""The C kernels on a simulated Cortex-M0: build, load, call, count.

The kernel sources of firmware/kernels (all but the MicroPython glue) are
compiled bare metal for armv6m (arm-none-eabi-gcc -mcpu=cortex-m0 -mthumb
-O2), loaded into Unicorn and called like C functions. With counting on, a
block hook counts every executed instruction and, with capstone's names,
estimates Cortex-M0+ cycles. Used by kernel_cycles.py and tests/test_kernels.py.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KERNELS = REPO / "firmware" / "kernels"
CORE_SRC = ["dispatch.c", "mac.c", "fully_connected.c", "conv.c", "depthwise_conv.c", "pool.c",
            "add.c", "lut.c", "softmax.c", "requantize.c", "tree.c", "requant.c"]
NAIVE_SRC = Path(__file__).parent / "naive.c"
CFLAGS = ["-mcpu=cortex-m0", "-mthumb", "-march=armv6-m", "-O2", "-std=c99", "-Wall", "-Werror",
          "-ffreestanding", "-nostdlib", "-fno-tree-loop-distribute-patterns", "-fno-jump-tables"]

CODE_BASE, CODE_SIZE = 0x0, 0x100000
RAM_BASE, RAM_SIZE = 0x20000000, 0x800000
STACK_TOP = RAM_BASE + RAM_SIZE - 0x100
STOP = 0xFF000  # return address: emulation ends when the callee returns here


def build_dir() -> Path:
    import os
    return Path(os.environ.get("MPML_BUILD_DIR", REPO / "build")) / "kernels" / "bench-armv6m"


def build(extra: tuple[str, ...] = ()) -> Path:
    """kernels.elf for Cortex-M0 (rebuilt when a source or flag changes)."""
    srcs = [KERNELS / s for s in CORE_SRC] + [NAIVE_SRC]
    h = hashlib.sha256(" ".join(CFLAGS + list(extra)).encode())
    for f in srcs + sorted(KERNELS.glob("*.h")):
        h.update(f.read_bytes())
    out = build_dir() / f"kernels-{h.hexdigest()[:12]}.elf"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = ["arm-none-eabi-gcc", *CFLAGS, *extra, f"-I{KERNELS}", *map(str, srcs),
               "-Wl,-Ttext=0x1000", "-Wl,-e,mpml_run", "-lgcc", "-o", str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("kernel build for Cortex-M0 failed:\n" + r.stderr)
    return out


def load_pure():
    """firmware/mpml/_pure.py on CPython, as the host loads device files."""
    from mpml.shared import device_module

    return device_module("_pure")


_COND = re.compile(r"^b(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)(\.n|\.w)?$")


def m0plus_cycles(mnemonic: str, op_str: str, taken: bool = True) -> int:
    """Cortex-M0+ cycles of one instruction (single-cycle multiplier, as RP2040)."""
    m = mnemonic.split(".")[0]
    nregs = lambda: len(re.findall(r"r\d+|lr|pc|sb|sl|fp|ip", op_str.split("{", 1)[-1]))  # noqa: E731
    if m in ("push", "stm", "stmia", "ldm", "ldmia"):
        return 1 + nregs() - (1 if m.startswith(("ldm", "stm")) else 0)
    if m == "pop":
        return 1 + nregs() + (2 if "pc" in op_str else 0)
    if m.startswith(("ldr", "str")):
        return 2
    if m == "bl":
        return 3
    if m in ("bx", "blx", "b"):
        return 2
    if _COND.match(m):
        return 2 if taken else 1
    return 1


class M0:
    """One Cortex-M0 with the kernels loaded. call() runs a function."""

    def __init__(self, elf: Path | None = None):
        from elftools.elf.elffile import ELFFile
        from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
        from unicorn.arm_const import UC_CPU_ARM_CORTEX_M0
        import capstone

        self.elf_path = elf or build()
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M0)
        self.uc.mem_map(CODE_BASE, CODE_SIZE)
        self.uc.mem_map(RAM_BASE, RAM_SIZE)
        self.symbols: dict[str, int] = {}
        with open(self.elf_path, "rb") as f:
            elf = ELFFile(f)
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]:
                    self.uc.mem_write(seg["p_paddr"], seg.data())
            for sym in elf.get_section_by_name(".symtab").iter_symbols():
                if sym["st_info"]["type"] == "STT_FUNC":
                    self.symbols[sym.name] = sym["st_value"] & ~1
        self.uc.mem_write(STOP, b"\x00\xbf" * 4)  # nops
        self.cs = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
        self._blocks: dict[tuple[int, int], list] = {}
        self.reset_heap()

    # -- memory ------------------------------------------------------------
    def reset_heap(self) -> None:
        self._heap = RAM_BASE + 0x1000

    def alloc(self, data: bytes | int, align: int = 8) -> int:
        size = data if isinstance(data, int) else len(data)
        addr = (self._heap + align - 1) & ~(align - 1)
        self._heap = addr + max(size, 1)
        assert self._heap < STACK_TOP - 0x10000, "simulated RAM exhausted"
        self.uc.mem_write(addr, bytes(size) if isinstance(data, int) else bytes(data))
        return addr

    def read(self, addr: int, n: int) -> bytes:
        return bytes(self.uc.mem_read(addr, n))

    def cstr(self, addr: int) -> str:
        return self.read(addr, 200).split(b"\0", 1)[0].decode()

    # -- calls ---------------------------------------------------------------
    def call(self, func: str, *args: int, count: bool = False):
        """Run func(args); returns r0, or (r0, stats) when count is True."""
        from unicorn import UC_HOOK_BLOCK
        from unicorn.arm_const import (UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2,
                                       UC_ARM_REG_R3, UC_ARM_REG_SP)
        sp = STACK_TOP
        stack_args = [a & 0xFFFFFFFF for a in args[4:]]
        sp -= 4 * len(stack_args)
        sp &= ~7
        for i, a in enumerate(stack_args):
            self.uc.mem_write(sp + 4 * i, a.to_bytes(4, "little"))
        for reg, a in zip((UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3), args):
            self.uc.reg_write(reg, a & 0xFFFFFFFF)
        self.uc.reg_write(UC_ARM_REG_SP, sp)
        self.uc.reg_write(UC_ARM_REG_LR, STOP | 1)
        hook = None
        if count:
            seen: Counter = Counter()
            taken: Counter = Counter()
            prev = [None]

            def on_block(uc, address, size, _):
                key = (address, size)
                seen[key] += 1
                p = prev[0]
                if p is not None and self._blocks[p][-1][2] == address:
                    taken[p] += 1
                if key not in self._blocks:
                    self._blocks[key] = self._decode(address, size)
                prev[0] = key

            hook = self.uc.hook_add(UC_HOOK_BLOCK, on_block)
        try:
            self.uc.emu_start(self.symbols[func] | 1, STOP, timeout=0, count=0)
        finally:
            if hook is not None:
                self.uc.hook_del(hook)
        r0 = self.uc.reg_read(UC_ARM_REG_R0)
        if not count:
            return r0
        return r0, self._stats(seen, taken)

    def _decode(self, address: int, size: int) -> list:
        insns = []
        for i in self.cs.disasm(self.read(address, size), address):
            target = None
            if _COND.match(i.mnemonic) and i.op_str.startswith("#"):
                target = int(i.op_str[1:], 0)
            insns.append([i.mnemonic, i.op_str, target])
        return insns

    def _stats(self, seen: Counter, taken: Counter) -> dict:
        n = cycles = 0
        classes: Counter = Counter()
        for key, times in seen.items():
            insns = self._blocks[key]
            for k, (mn, ops, target) in enumerate(insns):
                n += times
                classes[mn] += times
                if target is not None and k == len(insns) - 1:
                    t = taken[key]
                    cycles += t * m0plus_cycles(mn, ops, True) + (times - t) * m0plus_cycles(mn, ops, False)
                else:
                    cycles += times * m0plus_cycles(mn, ops)
        return {"instructions": n, "cycles": cycles, "mnemonics": classes}

    # -- ops -------------------------------------------------------------------
    def run_op(self, code: int, p, bufs: list[bytes], func: str = "mpml_run", count: bool = False,
               out_slot: int = -1):
        """Run one op; returns (error or None, output bytes[, stats]).

        func is mpml_run (checks, then the kernel) or a kernel entry such as
        naive_fully_connected (called with the buffers directly).
        """
        self.reset_heap()
        addrs = [self.alloc(b) for b in bufs]
        pa = self.alloc(b"".join((v & 0xFFFFFFFF).to_bytes(4, "little") for v in p))
        if func == "mpml_run":
            ba = self.alloc(b"".join(a.to_bytes(4, "little") for a in addrs))
            la = self.alloc(b"".join(len(b).to_bytes(4, "little") for b in bufs))
            args = (code, pa, len(p), ba, la)
        else:
            args = (pa, *addrs)
        res = self.call(func, *args, count=count)
        r0, stats = res if count else (res, None)
        err = self.cstr(r0) if (func == "mpml_run" and r0) else None
        out = self.read(addrs[out_slot], len(bufs[out_slot]))
        return (err, out, stats) if count else (err, out)
