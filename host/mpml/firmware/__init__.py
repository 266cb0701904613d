"""Firmware images and flashing: UF2 files (uf2), board flash targets (target), esptool (esp),
BOOTSEL drives and picotool (rp), and `mpml flash` itself (flash)."""
