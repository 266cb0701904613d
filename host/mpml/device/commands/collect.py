"""`mpml collect`: record labelled data from a board's sensor into a dataset folder. Thin over mpml.device.collect."""

from __future__ import annotations

import os
import sys
import threading
import time

from mpml.device.connection import BoardError
from mpml.device.ports import add_port_argument

__all__ = ["register", "cmd_collect"]


def register(sub) -> None:
    p = sub.add_parser(
        "collect", help="record labelled samples from a board's sensor into a dataset folder",
        description="Sample SOURCE on the board at a fixed rate and stream the samples to the host as checked "
                    "binary frames (sequence numbers, CRC-16): every sample arrives once or the gap is reported "
                    "with its sample indices. The recording is added to the dataset folder OUT (created, or "
                    "appended to: its rate, channels and scale must match), in the format `mpml train` reads "
                    "(docs/datasets.md). Stops after --seconds, when a replayed recording ends, or on Ctrl-C "
                    "(the board stops cleanly; a second Ctrl-C stops waiting for it). A link that drops keeps "
                    "what arrived. docs/collect.md has the protocol and the faults.")
    p.add_argument("--label", "-l", required=True, help="the class of what is recorded (e.g. wave, idle)")
    p.add_argument("--seconds", "-s", type=float,
                   help="stop after this many seconds of samples (default: until Ctrl-C or the replay ends)")
    p.add_argument("--source", default="imu",
                   help="what to sample: replay:FILE[,rate=HZ,channels=N,speed=X,loop] (a local .i16 recording, "
                        "copied to the board's /data first; a dataset's recording brings its channels, rate and "
                        "scale), replay:/BOARD/PATH.i16,rate=HZ,channels=N, adc:PIN[,PIN...], or a sensor named in "
                        "the board's config, written by `mpml install --board B` (default: imu)")
    p.add_argument("--rate", type=float,
                   help="samples per second (default: the source's own, else the dataset's when adding to one); "
                        "a rate the board cannot sustain is refused with its maximum")
    p.add_argument("--out", "-o", default="dataset",
                   help="the dataset folder to add the recording to (default: ./dataset)")
    p.add_argument("--subject", default="", help="who or what was recorded (for splits by subject)")
    add_port_argument(p)
    p.add_argument("--all", action="store_true",
                   help="record from every attached board (USB and running virtual boards) at once: one "
                        "recording and one result line per board")
    p.add_argument("--plot", action="store_true",
                   help="plot the samples live (needs matplotlib and a display)")
    p.add_argument("-q", "--quiet", action="store_true", help="no live counter")
    p.set_defaults(func=cmd_collect)


class _Plot:
    """A live plot of the last seconds of each board's channels (matplotlib, optional)."""

    def __init__(self, seconds: float = 5.0):
        import matplotlib

        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and sys.platform.startswith(
                "linux"):
            raise RuntimeError("no display (DISPLAY is not set)")
        import matplotlib.pyplot as plt

        if matplotlib.get_backend().lower() in ("agg", "pdf", "svg", "ps", "template"):
            raise RuntimeError(f"matplotlib's backend {matplotlib.get_backend()} cannot show a window")
        self.plt = plt
        self.seconds = seconds
        self.data: dict[str, list] = {}
        self.lock = threading.Lock()
        plt.ion()
        self.fig = plt.figure("mpml collect")
        self.axes: dict[str, object] = {}

    def __call__(self, result, first: int, payload: bytes) -> None:
        import numpy as np

        with self.lock:
            d = self.data.setdefault(result.board, [result, []])
            d[1].append(np.frombuffer(payload, "<i2"))

    def update(self) -> None:
        import numpy as np

        with self.lock:
            items = []
            for name, d in self.data.items():
                r, chunks = d
                if not chunks or not r.rate_hz or not r.channels:
                    continue
                keep = int(self.seconds * r.rate_hz) * r.channels
                flat = np.concatenate(chunks)[-keep:]
                d[1] = [flat]
                items.append((name, r, flat))
        if not items:
            self.plt.pause(0.05)
            return
        if set(self.axes) != {name for name, _, _ in items}:
            self.fig.clear()
            self.axes = {name: self.fig.add_subplot(len(items), 1, j + 1) for j, (name, _, _) in enumerate(items)}
        for name, r, flat in items:
            ax = self.axes[name]
            ax.clear()
            rows = flat[: len(flat) // r.channels * r.channels].reshape(-1, r.channels)
            ax.plot(np.arange(len(rows)) / r.rate_hz, rows)
            ax.set_title(f"{name}: {r.samples} samples", fontsize=9)
        self.plt.pause(0.05)


def cmd_collect(args) -> int:
    from mpml.device.collect import CollectError, LiveLine, collect, collect_all
    from mpml.device.models import attached_ports

    stop = threading.Event()
    abort = threading.Event()
    live = LiveLine() if not args.quiet and sys.stderr.isatty() else None
    plot = None
    if args.plot:
        try:
            plot = _Plot()
        except (ImportError, RuntimeError) as e:
            print(f"mpml: no live plot ({e}); collecting without it", file=sys.stderr)
    kw = dict(out=args.out, seconds=args.seconds, source=args.source, rate=args.rate, subject=args.subject,
              stop=stop, abort=abort, on_frame=live, on_samples=plot)
    if args.all:
        if args.port:
            raise BoardError("--all and --port exclude each other")
        ports = attached_ports()
        if not ports:
            raise BoardError("no board attached: no USB serial board, and no virtual board running")
    else:
        ports = [args.port]
    results: list = [None]
    done = threading.Event()

    def run() -> None:
        try:
            if args.all:
                results[0] = collect_all(ports, args.label, **kw)
            else:
                results[0] = [collect(args.port, args.label, **kw)]
        except Exception as e:  # noqa: BLE001 - reported below
            results[0] = [e]
        finally:
            done.set()

    # The boards are read in a thread; this one takes Ctrl-C (and draws the plot).
    # Not Thread.join: a KeyboardInterrupt inside it can leave the thread looking finished.
    threading.Thread(target=run, daemon=True).start()
    interrupts = 0
    while not done.is_set():
        try:
            if plot is not None:
                plot.update()
            else:
                time.sleep(0.1)
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts == 1:
                stop.set()
                print("\nmpml: stopping the board" + "s" * (len(ports) > 1) + " (Ctrl-C again to stop waiting)",
                      file=sys.stderr)
            else:
                abort.set()
    if live is not None:
        live.done()
    status = 0
    for r in results[0]:
        if isinstance(r, Exception):
            if isinstance(r, (CollectError, BoardError)):
                print(f"mpml: {r}", file=sys.stderr)
            else:
                print(f"mpml: {type(r).__name__}: {r}", file=sys.stderr)
            status = 1
            continue
        print(r.line())
        if r.printed.strip():
            print(f"{r.board} printed: {r.printed.strip()}", file=sys.stderr)
        if not r.ok:
            status = 1
    return status
