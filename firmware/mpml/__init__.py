# mpml device runtime (runs on the board).
#
# The inference runtime (mpml.load, predict, the native kernels) arrives with
# the engine; until then the package only carries its version, which installers
# compare with the host's.

__version__ = "0.1.0"
