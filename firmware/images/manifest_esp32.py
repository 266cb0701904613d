# ESP32 / ESP32-S3 / ESP32-C3 images (boards/esp32*.toml [image]): the esp32
# port's default manifest (it needs micropython-lib: an ESP-IDF build uses a
# MicroPython checkout with its submodules) and the mpml package.
include("$(PORT_DIR)/boards/manifest.py")
include("manifest_mpml.py")
