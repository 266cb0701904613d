"""The `--source` of the sensor commands (collect, monitor): what to sample on the board.

    replay:FILE[,rate=HZ][,channels=N][,speed=X][,loop]
        a recording played at its real rate by mpml.sources.Replay. FILE is a
        local .i16 file (a dataset's recordings/*.i16: channels and rate come
        from the dataset's manifest.json; it is copied to /data/ on the board)
        or a path on the board (/data/walk.i16, then give rate and channels).
    adc:PIN[,PIN...][,rate=HZ]
        machine.ADC pins (mpml.sources.ADC).
    NAME
        a sensor named in the board's config (`mpml install --board B` writes
        it from boards/B.toml's [[sensors]]; mpml.sources.from_config).

`parse_source` turns that into the board-side expression that builds the
source, and the file to send first, if any.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SourceError", "SourceSpec", "parse_source", "BOARD_DATA_DIR"]

BOARD_DATA_DIR = "/data"


class SourceError(ValueError):
    """A --source that cannot be understood, with what was expected."""


@dataclass
class SourceSpec:
    """A parsed --source: `code` builds it on the board (after `from mpml.sources import *`)."""

    kind: str  # "replay" | "adc" | "config"
    code: str
    upload: tuple[Path, str] | None = None  # (local file, board path) to send before use
    channels: int | None = None
    rate_hz: float | None = None
    channel_names: list[str] | None = None
    scale: list[float] | None = None
    units: list[str] | None = None


def _options(parts: list[str], where: str) -> dict[str, str]:
    opts = {}
    for p in parts:
        k, eq, v = p.partition("=")
        opts[k.strip()] = v.strip() if eq else "1"
    allowed = {"rate", "channels", "speed", "loop"}
    bad = sorted(set(opts) - allowed)
    if bad:
        raise SourceError(f"{where}: unknown option {', '.join(bad)} (options: rate=HZ, channels=N, speed=X, loop)")
    return opts


def _number(opts: dict, key: str, kind, where: str):
    if key not in opts:
        return None
    try:
        v = kind(opts[key])
    except ValueError:
        raise SourceError(f"{where}: {key}={opts[key]!r} is not a number") from None
    if v <= 0:
        raise SourceError(f"{where}: {key} must be positive")
    return v


def _recording_manifest(path: Path) -> dict | None:
    """The dataset manifest of a recordings/*.i16 file, or None."""
    for m in (path.parent.parent / "manifest.json", path.parent / "manifest.json"):
        if m.is_file():
            try:
                return json.loads(m.read_text())
            except (OSError, ValueError):
                return None
    return None


def parse_source(desc: str) -> SourceSpec:
    """The board-side expression (and upload) for a --source description; SourceError when it is malformed."""
    desc = desc.strip()
    if not desc:
        raise SourceError("empty --source: give replay:FILE, adc:PINS or a sensor name from the board's config")
    kind, colon, rest = desc.partition(":")
    if not colon:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", desc):
            raise SourceError(f"--source {desc!r}: expected replay:FILE, adc:PINS or a sensor name")
        return SourceSpec("config", f"from_config({desc!r})")
    parts = [p for p in rest.split(",") if p.strip()]
    if kind == "replay":
        if not parts:
            raise SourceError("--source replay: needs a file: replay:FILE.i16")
        file, opts = parts[0].strip(), _options(parts[1:], f"--source {desc}")
        rate = _number(opts, "rate", float, desc)
        channels = _number(opts, "channels", int, desc)
        speed = _number(opts, "speed", float, desc) or 1
        local = Path(file)
        upload = None
        names = scale = units = None
        if local.is_file():
            if local.stat().st_size == 0:
                raise SourceError(f"{local} is empty")
            m = _recording_manifest(local)
            if m is not None:
                names = [str(c) for c in m.get("channels") or []] or None
                channels = channels or (len(names) if names else None)
                rate = rate or m.get("sample_rate_hz")
                scale, units = m.get("scale"), m.get("units")
            board_path = f"{BOARD_DATA_DIR}/{local.name}"
            upload = (local, board_path)
        elif file.startswith("/"):
            board_path = file
        else:
            raise SourceError(f"--source replay:{file}: no such local file (a file on the board starts with /)")
        if channels is None or rate is None:
            raise SourceError(f"--source {desc}: say the recording's rate and channels "
                              f"(replay:{file},rate=HZ,channels=N): no dataset manifest.json beside it")
        code = (f"Replay({board_path!r}, {channels}, {rate!r}, loop={'loop' in opts}, speed={speed!r}"
                + (f", names={names!r}" if names and len(names) == channels else "") + ")")
        return SourceSpec("replay", code, upload, channels, rate * speed, names, scale, units)
    if kind == "adc":
        pins, opts = [], {}
        for p in parts:
            if "=" in p:
                opts.update(_options([p], f"--source {desc}"))
            else:
                try:
                    pins.append(int(p))
                except ValueError:
                    raise SourceError(f"--source {desc}: pin {p!r} is not a number") from None
        if not pins:
            raise SourceError("--source adc: needs pins: adc:26 or adc:26,27")
        return SourceSpec("adc", f"ADC({pins!r})", None, len(pins), _number(opts, "rate", float, desc))
    raise SourceError(f"--source {desc!r}: unknown kind {kind!r} (replay:FILE, adc:PINS or a sensor name)")
