# Sample sources for mpml.sampler (run on the board).
#
# A source gives one sample at a time, without allocating:
#   src.channels, src.names, src.units, src.scale (physical = count * scale),
#   src.rate_hz (its own rate, or None), src.read_into(buf, offset) -> True
#   (False once a finite source has ended), src.close().
# Optional: src.max_rate_hz (the part's ceiling), tell()/seek()/skip() (a replay).
#
#   Replay(path, channels, rate_hz)   a recording (.i16), at its real rate
#   ADC(pins)                         machine.ADC pins, read_u16 >> 1
#   Envelope(pin)                     electret microphone envelope on an ADC pin
#   I2SMic(sck, ws, sd)               machine.I2S microphone, read in blocks
#   MPU6050 / ADXL345 / LSM6DSOX...   I2C IMUs (imu() below; own drivers in
#                                     mpml.mpu6050 / mpml.adxl345)
#   from_config(name)                 a sensor named in /lib/mpml/board.json
# docs/sensors.md has wiring, rates and errors.

from array import array

BOARD_CONFIG = "/lib/mpml/board.json"


def _names(names, channels, prefix):
    if names is None:
        return [prefix + str(i) for i in range(channels)]
    names = list(names)
    if len(names) != channels:
        raise ValueError("%d names for %d channels" % (len(names), channels))
    return names


def _per_channel(v, channels, what):
    if isinstance(v, (list, tuple)):
        if len(v) != channels:
            raise ValueError("%d %s values for %d channels" % (len(v), what, channels))
        return list(v)
    return [v] * channels


class Replay:
    """Plays a recording: raw little-endian int16 [n, channels] (a dataset's
    recordings/*.i16), one recorded sample per sampler tick, so a sampler at
    rate_hz (the default) plays it at its real rate. speed > 1 only for demos
    (reports a faster rate_hz). loop=True starts over at the end; otherwise
    read_into returns False there and the sampler ends.
    """

    def __init__(self, path, channels, rate_hz, loop=False, speed=1, names=None, units=None, scale=1.0,
                 block=32):
        import os

        channels = int(channels)
        if channels < 1:
            raise ValueError("channels must be at least 1")
        size = os.stat(path)[6]
        frame = 2 * channels
        if size % frame:
            raise ValueError("%s: %d bytes is not a whole number of %d-channel int16 samples: truncated or "
                             "wrong channel count" % (path, size, channels))
        if size == 0:
            raise ValueError("%s is empty" % path)
        self.path = path
        self.channels = channels
        self.n_samples = size // frame
        self.recorded_rate_hz = rate_hz
        self.rate_hz = rate_hz * speed if speed != 1 else rate_hz
        self.loop = loop
        self.names = _names(names, channels, "ch")
        self.units = _per_channel(units, channels, "unit")
        self.scale = _per_channel(scale, channels, "scale")
        self._f = open(path, "rb")
        self._blk = array("h", bytes(2 * block * channels))
        self._bn = 0  # samples in the block
        self._bp = 0  # next sample in the block
        self._i = 0  # next sample's index in the file

    def _fill(self):
        n = self._f.readinto(self._blk)
        if not n:
            if not self.loop or self.n_samples == 0:
                return False
            self._f.seek(0)
            self._i = 0
            n = self._f.readinto(self._blk)
        self._bn = n // (2 * self.channels)
        self._bp = 0
        return self._bn > 0

    def read_into(self, buf, offset):
        if self._bp >= self._bn and not self._fill():
            return False
        C = self.channels
        blk = self._blk
        p = self._bp * C
        for c in range(C):
            buf[offset + c] = blk[p + c]
        self._bp += 1
        self._i += 1
        return True

    def tell(self):
        """Index (in the file) of the next sample."""
        return self._i

    def seek(self, index):
        """Continue from sample `index` (wrapped when looping)."""
        if self.loop:
            index %= self.n_samples
        elif index > self.n_samples:
            index = self.n_samples
        self._f.seek(index * 2 * self.channels)
        self._i = index
        self._bn = self._bp = 0

    def skip(self, k):
        """Pass over k samples, as time passes over them (the sampler fell behind)."""
        self.seek(self._i + k)

    def close(self):
        self._f.close()
