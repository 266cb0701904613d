# ADXL345 3-axis accelerometer on I2C, read through its 32-entry FIFO (runs on
# the board).
#
#   from mpml.adxl345 import ADXL345
#   acc = ADXL345(I2C(0, sda=Pin(21), scl=Pin(22), freq=400000), rate_hz=100)
#
# Registers per Analog Devices' ADXL345 datasheet (rev. G): DEVID 0x00 = 0xE5,
# BW_RATE 0x2C, POWER_CTL 0x2D, DATA_FORMAT 0x31, DATAX0..DATAZ1 0x32-0x37
# (little-endian int16), FIFO_CTL 0x38, FIFO_STATUS 0x39 (entries in bits 5:0).
# The FIFO runs in stream mode (the newest 32 samples kept); each entry is
# popped by one 6-byte read of DATAX0..DATAZ1, so a burst is one FIFO_STATUS
# read and then one 6-byte read per waiting entry, into a preallocated block.
# Full resolution: 3.9 mg per count (1/256 g) in every range.

from micropython import const

from mpml.i2cpart import I2CPart

_DEVID = const(0x00)
_BW_RATE = const(0x2C)
_POWER_CTL = const(0x2D)
_DATA_FORMAT = const(0x31)
_DATAX0 = const(0x32)
_FIFO_CTL = const(0x38)
_FIFO_STATUS = const(0x39)

# Output data rate (Hz) -> BW_RATE rate code.
RATES = {3200: 0xF, 1600: 0xE, 800: 0xD, 400: 0xC, 200: 0xB, 100: 0xA, 50: 0x9, 25: 0x8, 12.5: 0x7, 6.25: 0x6}
RANGES_G = (2, 4, 8, 16)


class ADXL345(I2CPart):
    """Acceleration X, Y, Z in g as int16 counts (scale 1/256 g per count).

    rate_hz: one of RATES (800 at most on I2C at 400 kHz: the datasheet's
    limit for that bus speed; 3200 over SPI, which this driver does not do).
    bus: how to name the bus in errors (default: repr(i2c)).
    """

    max_rate_hz = 800

    def __init__(self, i2c, address=0x53, rate_hz=100, range_g=16, fifo=True, bus=None):
        I2CPart.__init__(self, i2c, address, bus)
        if rate_hz not in RATES:
            raise ValueError("ADXL345 rate_hz must be one of %s" % sorted(RATES))
        if range_g not in RANGES_G:
            raise ValueError("ADXL345 range_g must be one of %s" % (RANGES_G,))
        b1 = self._b1
        self._read(_DEVID, b1)
        if b1[0] != 0xE5:
            raise OSError(19, "I2C %s address 0x%02x answered DEVID=0x%02x: not an ADXL345 (0xE5)"
                          % (self._bus(), address, b1[0]))
        self.part = "ADXL345"
        self.channels = 3
        self.names = ["ax", "ay", "az"]
        self.units = ["g"] * 3
        self.scale = [1 / 256] * 3
        self.rate_hz = rate_hz
        self.fifo = fifo
        self.overflows = 0  # bursts that found the FIFO full (older samples lost on the part)
        self.repeats = 0  # samples repeated because the part had none yet
        self._blk = bytearray(6 * 33)  # 32 FIFO entries + the output registers
        mv = memoryview(self._blk)
        self._views = [mv[6 * k : 6 * k + 6] for k in range(33)]
        self._bn = self._bp = 0
        self._write(_POWER_CTL, 0x00)  # standby while configuring
        self._write(_BW_RATE, RATES[rate_hz])
        self._write(_DATA_FORMAT, 0x08 | RANGES_G.index(range_g))  # FULL_RES
        self._write(_FIFO_CTL, 0x80 if fifo else 0x00)  # stream mode / bypass
        self._write(_POWER_CTL, 0x08)  # measure

    def entries(self):
        """Samples waiting: FIFO entries (0..32), plus the one in the output registers."""
        b1 = self._b1
        self._read(_FIFO_STATUS, b1)
        return b1[0] & 0x3F

    def _fill(self):
        k = self.entries()
        if k >= 32:
            self.overflows += 1
        if k > 33:
            k = 33
        if k:
            v = self._views
            for i in range(k):
                self._read(_DATAX0, v[i])
            self._bn = k
            self._bp = 0
        return k

    def read_into(self, buf, offset):
        if not self.fifo:
            self._read(_DATAX0, self._views[0])
            base = 0
        else:
            if self._bp >= self._bn and not self._fill():
                self.repeats += 1
                if self._bn == 0:
                    for c in range(3):
                        buf[offset + c] = 0
                    return True
                self._bp = self._bn - 1
            base = 6 * self._bp
            self._bp += 1
        r = self._blk
        for c in range(3):
            v = r[base + 2 * c] | (r[base + 2 * c + 1] << 8)
            buf[offset + c] = v - 65536 if v > 32767 else v
        return True

    def close(self):
        try:
            self._write(_POWER_CTL, 0x00)
        except OSError:
            pass
