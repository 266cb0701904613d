# The m0k virtual board (boards/virtual/m0k.toml): the qemu boards' boot
# script (mounts the RAM disk) and the mpml package. Nothing from
# micropython-lib (Debian's MicroPython source has none).
include("../virtual/qemu/manifest.py")
include("manifest_mpml.py")
