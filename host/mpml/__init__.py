"""mpml: TinyML for MicroPython boards (host side).

The host package trains and quantizes models, writes `.mpml` blobs, and talks to
boards over the USB REPL through mpremote's transport. Virtual boards
(`mpml.virtual`) stand in for real ones on machines without hardware.
"""

__version__ = "0.1.0"

# The op set and blob format are the device package's files, shared as
# mpml.ops and mpml.blobfmt (see mpml.shared).
from mpml import shared as _shared  # noqa: E402,F401
