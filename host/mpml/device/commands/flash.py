"""`mpml flash`: write a firmware image to a board (esptool for the ESP32 family, UF2 for RP2040/RP2350).

Thin over mpml.firmware.flash; see docs/flashing.md.
"""

from __future__ import annotations

import sys

__all__ = ["register", "cmd_flash"]


def register(sub) -> None:
    fl = sub.add_parser(
        "flash", help="flash a firmware image to a board (ESP32 family: esptool; Pico/Pico 2: UF2)",
        description="Write IMAGE (default: build/images/<board>/firmware.uf2 or .bin, made by `make firmware "
                    "BOARD=...`) to the board. ESP32, ESP32-S3, ESP32-C3: through esptool on the serial port, at "
                    "the board file's offset, checking the image's chip and the chip that answers first. "
                    "Pico / Pico 2: the UF2 is copied to the mounted BOOTSEL drive (found by its INFO_UF2.TXT, "
                    "whose chip must be the board's), or loaded with picotool when no drive is mounted. "
                    "Afterwards the command waits for the board's REPL and reports the MicroPython version and "
                    "whether `import mpml` works. Nothing is written when the image or the attached chip is not "
                    "the board's.")
    fl.add_argument("image", nargs="?", help="the image file (.bin for ESP32 boards, .uf2 for RP boards)")
    fl.add_argument("--board", "-b", required=True, metavar="NAME",
                    help="the board file in boards/ (esp32, esp32s3, esp32c3, pico, pico2)")
    fl.add_argument("--port", "-p", metavar="PORT",
                    help="the serial port (/dev/ttyUSB0, a0, u0, id:SERIAL; default: the one attached USB serial "
                         "port). ESP32: where esptool talks to the chip; RP: where the REPL comes back, and the "
                         "board to send machine.bootloader() to")
    fl.add_argument("--drive", metavar="PATH", help="RP boards: the mounted BOOTSEL drive (default: searched under "
                                                    "/media/$USER, /run/media/$USER, /media, /mnt)")
    fl.add_argument("--erase", action="store_true",
                    help="ESP32: erase the whole flash first (the filesystem goes too); the way to recover from "
                         "an interrupted flash")
    fl.add_argument("--no-verify", dest="verify", action="store_false",
                    help="skip reading the flash back after writing (ESP32: esptool's verify-flash; picotool: -v)")
    bl = fl.add_mutually_exclusive_group()
    bl.add_argument("--bootloader", dest="bootloader", action="store_true", default=None,
                    help="RP boards: when no BOOTSEL drive is mounted and MicroPython answers on the serial port, "
                         "send it machine.bootloader() without asking")
    bl.add_argument("--no-bootloader", dest="bootloader", action="store_false",
                    help="never send machine.bootloader() (default: ask, when run from a terminal)")
    fl.add_argument("--no-wait", dest="wait", action="store_false",
                    help="do not wait for the board's REPL afterwards")
    fl.add_argument("--timeout", type=float, default=30.0,
                    help="seconds to wait for the REPL after flashing (default 30)")
    fl.add_argument("--dry-run", action="store_true",
                    help="check the image against the board and say what would be done; write nothing")
    fl.set_defaults(func=cmd_flash)


def _dry_run(args) -> int:
    from mpml.firmware import esp, uf2
    from mpml.firmware.flash import check_uf2, resolve_image
    from mpml.firmware.target import target_for

    target = target_for(args.board)
    path = resolve_image(target, args.image)
    print(target.describe())
    if target.method == "uf2":
        img = uf2.load(path)
        check_uf2(target, img)
        print(uf2.info(img))
        print(f"would copy {path} to the {target.mcu} BOOTSEL drive"
              + (f" {args.drive}" if args.drive else " (or load it with picotool)"))
    else:
        data = path.read_bytes()
        esp.check_image(target, data, str(path))
        print(f"{path}: {len(data):,} bytes, an ESP image for {esp.chip_for_id(esp.image_chip_id(data))}")
        print("would run the equivalent of: " +
              esp.format_command(esp.esptool_command(target, path, args.port, args.erase, args.verify)))
    return 0


def cmd_flash(args) -> int:
    from mpml.cli import CommandError
    from mpml.firmware import uf2
    from mpml.firmware.flash import FlashError, ProgressBar, flash, repl_report

    try:
        if args.dry_run:
            return _dry_run(args)
        r = flash(args.board, args.image, port=args.port, drive=args.drive, erase=args.erase, verify=args.verify,
                  bootloader=args.bootloader, wait=args.wait, wait_timeout=args.timeout, progress=ProgressBar())
    except (FlashError, uf2.Uf2Error) as e:
        raise CommandError(str(e)) from None
    for step in r.steps:
        print(f"  {step}", file=sys.stderr)
    print(f"flashed {r.image} to {r.board} ({r.method}: {r.where})")
    if not args.wait:
        return 0
    if r.info is None:
        print(f"mpml: {r.repl_error}", file=sys.stderr)
        return 1
    print(repl_report(r.repl_port, r.info))
    return 0
