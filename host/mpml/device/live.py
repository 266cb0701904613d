"""Live classification on a board, seen from the host (`mpml monitor`, `make demo`).

The board runs mpml.classify (firmware/mpml/classify.py): sampler -> the
model's own feature spec -> the model, window after window, printing one
`@R` line per window. `classify_live` starts it through the raw REPL and
hands each parsed result to a callback as it arrives; `watch` reads the
same lines from a board whose main.py already runs the app.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from mpml.device.connection import BoardError, BoardExecError, Connection
from mpml.device.sources import SourceSpec, parse_source

__all__ = ["LiveError", "LiveResult", "LiveRun", "classify_live", "parse_lines", "app_code"]

RESERVE = 16384  # bytes kept in one piece for the app's buffers (see app_code)


class LiveError(BoardError):
    """Live classification could not start or stopped with an error on the board."""


@dataclass
class LiveResult:
    """One window classified on the board (an `@R` line)."""

    window: int  # 1, 2, ...
    start: int  # index of the window's first sample since sampling began
    index: int  # class index (anomaly models: 1 anomaly, 0 normal)
    label: str | None
    score: float  # mean probability of the class, or the anomaly score (3 decimals)
    anomaly: bool
    us: int  # features + inference on the board, microseconds
    dropped: int  # samples the sampler had dropped so far


@dataclass
class LiveRun:
    """A finished live run: its results and how it ended."""

    labels: list[str] = field(default_factory=list)
    results: list[LiveResult] = field(default_factory=list)
    windows: int = 0
    dropped: int = 0
    reason: str = ""
    seconds: float = 0.0
    printed: list[str] = field(default_factory=list)  # other lines the board printed
    heap_used: int | None = None  # the board's heap in use with the model and app loaded, bytes
    heap_free: int | None = None


def parse_lines(lines: Iterable[str], run: LiveRun, on_result: Callable[[LiveResult], None] | None = None) -> LiveRun:
    """Fold the app's printed protocol (firmware/mpml/classify.py) into `run`."""
    for ln in lines:
        parts = ln.split(" ")
        tag = parts[0]
        if tag == "@L" and len(parts) >= 2:
            run.labels = parts[2].split(",") if len(parts) > 2 and parts[2] else []
        elif tag == "@R" and len(parts) == 8:
            w, start, idx, score, anom, us, dropped = (int(p) for p in parts[1:])
            label = run.labels[idx] if 0 <= idx < len(run.labels) else ("anomaly" if anom else None)
            r = LiveResult(w, start, idx, label, score / 1000, bool(anom), us, dropped)
            run.results.append(r)
            if on_result is not None:
                on_result(r)
        elif tag == "@E" and len(parts) >= 3:
            run.windows, run.dropped = int(parts[1]), int(parts[2])
            run.reason = " ".join(parts[3:])
        else:
            run.printed.append(ln)
    return run


def app_code(model_path: str, source: SourceSpec, *, hop: int | None = None, smooth: int = 1,
             threshold: float | None = None, sleep_ms: int = 0, windows: int | None = None,
             seconds: float | None = None, backend: str | None = None) -> str:
    """The board code that runs the live classifier and prints its protocol."""
    # Loading modules leaves a small heap (an m0's 140 KiB) in pieces of a few KiB, too small for the
    # sampler's ring: hold RESERVE bytes in one piece through the imports and free it for the buffers.
    return (
        f"_r = bytearray({RESERVE})\n"
        "import mpml, gc\n"
        "try:\n    import mpml._native\nexcept Exception:\n    pass\n"
        f"_m = mpml.load({model_path!r}, {backend!r})\n"
        "from mpml.sources import *\n"
        "from mpml.classify import Classifier\n"
        "import mpml.sampler\n"
        "_r = None\n"
        "gc.collect()\n"
        f"_c = Classifier(_m, {source.code}, hop={hop!r}, smooth={smooth!r}, threshold={threshold!r}, "
        f"sleep_ms={sleep_ms!r})\n"
        "gc.collect()\n"
        "print('@H', gc.mem_alloc(), gc.mem_free())\n"
        f"_c.run(windows={windows!r}, seconds={seconds!r}, emit=True)\n"
        "_c.sampler.source.close()\n"
        "del _m, _c, _r\n"
    )


def classify_live(board, model: str, source: str | SourceSpec, *, hop: int | None = None, smooth: int = 1,
                  threshold: float | None = None, sleep_ms: int = 0, windows: int | None = None,
                  seconds: float | None = None, backend: str | None = None,
                  on_result: Callable[[LiveResult], None] | None = None, idle_timeout: float = 60.0) -> LiveRun:
    """Run the live classifier on the board until the source ends, `windows` or `seconds`; returns what it said.

    `board`: a Board, a Connection or a --port value. `model` names a model on the board (NAME or /models/NAME.mpml, put there
    by push-model); `source` a --source description (mpml.device.sources) or
    a parsed one. A replay file given locally is copied to the board first.
    Ctrl-C on the host stops the board's loop and returns what came so far.
    """
    if isinstance(board, str):  # a --port value: open it for this run
        from mpml.device.board import Board, require_runtime

        b = Board.open(board, timeout=30)
        try:
            require_runtime(b)
            return classify_live(b, model, source, hop=hop, smooth=smooth, threshold=threshold, sleep_ms=sleep_ms,
                                 windows=windows, seconds=seconds, backend=backend, on_result=on_result,
                                 idle_timeout=idle_timeout)
        finally:
            b.close()
    from mpml.device.transfer import write_files

    conn: Connection = board.conn if hasattr(board, "conn") else board
    spec = parse_source(source) if isinstance(source, str) else source
    path = model if model.startswith("/") else f"/models/{model[:-5] if model.endswith('.mpml') else model}.mpml"
    # The upload and then the app each want an unfragmented heap (an m0 has 140 KiB): soft resets.
    conn.reset()
    if spec.upload is not None:
        local, dest = spec.upload
        conn.exec(f"import os\ntry:\n    os.mkdir({dest.rsplit('/', 1)[0]!r})\nexcept OSError:\n    pass\n")
        write_files(conn, {dest: local.read_bytes()})
        conn.reset()
    run = LiveRun()
    t0 = time.monotonic()
    code = app_code(path, spec, hop=hop, smooth=smooth, threshold=threshold, sleep_ms=sleep_ms, windows=windows,
                    seconds=seconds, backend=backend)
    heap = []

    def lines():
        for ln in conn.exec_lines(code, idle_timeout=idle_timeout):
            if ln.startswith("@H "):
                heap.append(tuple(int(v) for v in ln.split()[1:3]))
                continue
            yield ln

    try:
        parse_lines(lines(), run, on_result)
    except KeyboardInterrupt:
        run.reason = "interrupted on the host"
    except BoardExecError as e:
        last = e.traceback.strip().splitlines()[-1] if e.traceback.strip() else "error"
        raise LiveError(f"the live classifier stopped on the board: {last}") from None
    run.seconds = time.monotonic() - t0
    if heap:
        run.heap_used, run.heap_free = heap[0]
    return run
