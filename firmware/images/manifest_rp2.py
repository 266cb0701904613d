# RP2040 / RP2350 images (boards/pico.toml, pico2.toml [image]): what the rp2
# port freezes by default, and the mpml package.
freeze("$(PORT_DIR)/modules")
include("$(MPY_DIR)/extmod/asyncio")
# The port's default manifest also freezes these drivers from micropython-lib.
# Debian's MicroPython source has no micropython-lib: they are frozen only when
# the build points at one (MICROPY_DIR with its submodules).
for _name in ("onewire", "ds18x20", "dht", "neopixel"):
    try:
        require(_name)
    except Exception:
        pass
include("manifest_mpml.py")
