# Runs after every reset of a qemu virtual board (frozen; called from vboard.c).
# Mounts the RAM disk as littlefs at "/" like the flash filesystem of a real
# board, formatting it on first boot.
import sys
import vfs
import vboard


class _RAMBlockDev:
    # Extended block-device protocol (offsets, erase) as littlefs expects.
    def __init__(self, mem, block_size):
        self.mem = mem
        self.block_size = block_size

    def readblocks(self, block, buf, offset=0):
        start = block * self.block_size + offset
        buf[:] = self.mem[start : start + len(buf)]

    def writeblocks(self, block, buf, offset=0):
        start = block * self.block_size + offset
        self.mem[start : start + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return len(self.mem) // self.block_size
        if op == 5:  # block size
            return self.block_size
        return 0


def _mount():
    bdev = _RAMBlockDev(vboard.ramdisk(), 512)
    try:
        vfs.mount(vfs.VfsLfs2(bdev), "/")
    except OSError:
        vfs.VfsLfs2.mkfs(bdev)
        vfs.mount(vfs.VfsLfs2(bdev), "/")
    import os

    for d in ("/lib", "/models"):
        try:
            os.mkdir(d)
        except OSError:
            pass
    os.chdir("/")


_mount()
if "/lib" not in sys.path:
    sys.path.append("/lib")
del _mount, _RAMBlockDev, sys, vfs, vboard
