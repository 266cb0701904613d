# MPU6050 / MPU6886 (and MPU6500/9250) accelerometer + gyroscope on I2C, read
# through the part's FIFO in bursts (runs on the board).
#
#   from machine import I2C, Pin
#   from mpml.mpu6050 import MPU6050
#   imu = MPU6050(I2C(0, sda=Pin(21), scl=Pin(22), freq=400000), rate_hz=100)
#   s = Sampler(imu, imu.rate_hz)          # a source for mpml.sampler
#
# The part samples on its own clock at rate_hz (1 kHz / (1 + SMPLRT_DIV), the
# digital low-pass filter on) into its 1 KiB FIFO; read_into() hands out one
# sample at a time from a block read in one I2C burst, so the timing of the
# data is the part's, whatever the board's timer jitter. Register numbers and
# FIFO layout follow InvenSense's register maps (MPU-6000/6050 RM rev 4.2,
# MPU-6886 datasheet): FIFO packets hold accel X,Y,Z then gyro X,Y,Z, big-endian
# int16; the MPU6886 always adds the temperature between them.

from micropython import const

from mpml.i2cpart import I2CPart

_SMPLRT_DIV = const(0x19)
_CONFIG = const(0x1A)
_GYRO_CONFIG = const(0x1B)
_ACCEL_CONFIG = const(0x1C)
_FIFO_EN = const(0x23)
_INT_STATUS = const(0x3A)
_ACCEL_XOUT_H = const(0x3B)
_USER_CTRL = const(0x6A)
_PWR_MGMT_1 = const(0x6B)
_FIFO_COUNTH = const(0x72)
_FIFO_R_W = const(0x74)
_WHO_AM_I = const(0x75)

_FIFO_BYTES = const(1024)
_OFLOW = const(0x10)  # INT_STATUS.FIFO_OFLOW_INT

# WHO_AM_I -> part name; the MPU6886 puts the temperature in every FIFO packet.
PARTS = {0x68: "MPU6050", 0x19: "MPU6886", 0x70: "MPU6500", 0x71: "MPU9250", 0x73: "MPU9255"}
ACCEL_RANGES_G = (2, 4, 8, 16)
GYRO_RANGES_DPS = (250, 500, 1000, 2000)


class MPU6050(I2CPart):
    """Accel (g) and optionally gyro (deg/s) as int16 counts: physical = count * scale.

    rate_hz: 4..1000 (rounded to 1000/(1+div); see .rate_hz). fifo=False reads
    the output registers at each sample instead (no burst, the board's timing).
    bus: how to name the bus in errors (default: repr(i2c), which names its pins).
    """

    max_rate_hz = 1000

    def __init__(self, i2c, address=0x68, rate_hz=100, accel_range_g=4, gyro_range_dps=500, gyro=True,
                 fifo=True, block=16, bus=None):
        I2CPart.__init__(self, i2c, address, bus)
        if accel_range_g not in ACCEL_RANGES_G or gyro_range_dps not in GYRO_RANGES_DPS:
            raise ValueError("accel_range_g one of %s, gyro_range_dps one of %s" % (ACCEL_RANGES_G, GYRO_RANGES_DPS))
        b1 = self._b1
        self._read(_WHO_AM_I, b1)
        who = b1[0]
        if who not in PARTS:
            raise OSError(19, "I2C %s address 0x%02x answered WHO_AM_I=0x%02x: not an MPU6050/6886/6500/9250 "
                          "(an ADXL345 answers 0xE5 at register 0)" % (self._bus(), address, who))
        self.part = PARTS[who]
        self._temp = who == 0x19
        self.channels = 6 if gyro else 3
        self.names = ["ax", "ay", "az", "gx", "gy", "gz"][: self.channels]
        self.units = ["g"] * 3 + ["deg/s"] * (self.channels - 3)
        self.scale = [accel_range_g / 32768] * 3 + [gyro_range_dps / 32768] * (self.channels - 3)
        div = int(1000 / rate_hz + 0.5) - 1
        div = 0 if div < 0 else 255 if div > 255 else div
        self.rate_hz = 1000 / (1 + div)
        self.fifo = fifo
        self.overflows = 0  # times the FIFO filled up (samples lost on the part)
        self.repeats = 0  # samples repeated because the part had none yet

        self._write(_PWR_MGMT_1, 0x80)  # reset
        self._sleep_ms(100)
        self._write(_PWR_MGMT_1, 0x01)  # awake, PLL on gyro X
        self._write(_CONFIG, 0x01)  # DLPF 188 Hz: 1 kHz internal rate
        self._write(_SMPLRT_DIV, div)
        self._write(_ACCEL_CONFIG, ACCEL_RANGES_G.index(accel_range_g) << 3)
        self._write(_GYRO_CONFIG, GYRO_RANGES_DPS.index(gyro_range_dps) << 3)
        # FIFO packet: accel (6), [temp (2) on the 6886], [gyro (6)]
        self._pkt = 6 + (2 if self._temp else 0) + (6 if gyro else 0)
        self._gofs = 8 if self._temp else 6
        n = block if block * self._pkt <= _FIFO_BYTES else _FIFO_BYTES // self._pkt
        self._blk = bytearray(n * self._pkt)
        mv = memoryview(self._blk)
        self._views = [mv[: k * self._pkt] for k in range(n + 1)]  # no slicing per read
        self._regs = bytearray(14)
        self._cnt = bytearray(2)
        self._bn = self._bp = 0
        if fifo:
            self._write(_FIFO_EN, 0x08 | (0x70 if gyro else 0))  # ACCEL, XG/YG/ZG
            self.reset_fifo()
        else:
            self._write(_FIFO_EN, 0)

    def _sleep_ms(self, ms):
        try:
            from time import sleep_ms

            sleep_ms(ms)
        except ImportError:
            pass

    def reset_fifo(self):
        """Empty the FIFO and start filling it again."""
        self._write(_USER_CTRL, 0x04)  # FIFO_RESET
        self._write(_USER_CTRL, 0x40)  # FIFO_EN

    def fifo_count(self):
        """Bytes waiting in the part's FIFO."""
        c = self._cnt
        self._read(_FIFO_COUNTH, c)
        return (c[0] << 8) | c[1]

    def _fill(self):
        # One burst: as many whole packets as wait (up to a block).
        b1 = self._b1
        self._read(_INT_STATUS, b1)
        if b1[0] & _OFLOW:
            # Full FIFO: packets were overwritten and the stream may be out of
            # step with packet boundaries: count it and start clean.
            self.overflows += 1
            self.reset_fifo()
            return 0
        k = self.fifo_count() // self._pkt
        if k > len(self._views) - 1:
            k = len(self._views) - 1
        if k:
            # The last block stays when nothing waits: read_into repeats its last sample.
            self._read(_FIFO_R_W, self._views[k])
            self._bn = k
            self._bp = 0
        return k

    def read_into(self, buf, offset):
        if not self.fifo:
            r = self._regs
            self._read(_ACCEL_XOUT_H, r)
            base = 0
            g = 8
        else:
            if self._bp >= self._bn and not self._fill():
                # Nothing new yet (the board's clock ran ahead of the part's):
                # give the last sample again and count it.
                self.repeats += 1
                if self._bn == 0:
                    for c in range(self.channels):
                        buf[offset + c] = 0
                    return True
                self._bp = self._bn - 1
            r = self._blk
            base = self._bp * self._pkt
            g = self._gofs
            self._bp += 1
        for c in range(3):
            v = (r[base + 2 * c] << 8) | r[base + 2 * c + 1]
            buf[offset + c] = v - 65536 if v > 32767 else v
        if self.channels == 6:
            base += g
            for c in range(3):
                v = (r[base + 2 * c] << 8) | r[base + 2 * c + 1]
                buf[offset + 3 + c] = v - 65536 if v > 32767 else v
        return True

    def close(self):
        try:
            self._write(_PWR_MGMT_1, 0x40)  # sleep
        except OSError:
            pass
