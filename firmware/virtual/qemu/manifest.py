# Frozen into the qemu virtual-board images: only the boot script that mounts
# the RAM disk. Nothing from micropython-lib (Debian's source lacks it).
freeze(".", "_vboot.py")
