# mpml device runtime (runs on the board).
#
#   import mpml
#   m = mpml.load("/models/gesture.mpml")   # validates the blob, picks a backend
#   m.predict([0.1, 0.2, ...])              # floats in, floats (or ints) out
#   m.run(inbuf, outbuf)                    # int8 bytearrays, no allocation
#
# docs/device-runtime.md has the whole API. The loader is imported on first
# use, so `import mpml` alone (installers compare __version__) stays cheap.

__version__ = "0.1.0"


def load(src, backend=None):
    """Load a .mpml model from a path or buffer; backend None/"native"/"viper"/"pure"."""
    from mpml.model import load
    return load(src, backend)
