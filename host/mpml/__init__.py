"""mpml: TinyML for MicroPython boards (host side).

The host package trains and quantizes models, writes `.mpml` blobs, and talks to
boards over the USB REPL through mpremote's transport. Virtual boards
(`mpml.virtual`) stand in for real ones on machines without hardware.
"""

__version__ = "0.1.0"
