# Runs after every reset of a qemu virtual board (frozen; called from vboard.c).
# Mounts the RAM disk as littlefs at "/" like the flash filesystem of a real
# board, formatting it on first boot.
import sys
import vfs
import vboard


def _mount():
    bdev = vboard.RAMDisk(512)
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
del _mount, sys, vfs, vboard
