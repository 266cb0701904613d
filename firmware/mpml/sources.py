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
    read_into returns False there and the sampler ends. The file is read in
    blocks of `block` samples; preload=True keeps it all in RAM instead.
    """

    def __init__(self, path, channels, rate_hz, loop=False, speed=1, names=None, units=None, scale=1.0,
                 block=32, preload=False):
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
        self._bn = 0  # samples in the block
        self._bp = 0  # next sample in the block
        self._i = 0  # next sample's index in the file
        if preload:
            # The whole recording in RAM: no file reads while sampling (a flash
            # read in a timer callback can be slow; the qemu boards' RAM disk
            # is a Python block device that allocates on every read).
            self._f = None
            self._blk = array("h", bytes(size))
            with open(path, "rb") as f:
                f.readinto(self._blk)
            self._bn = self.n_samples
        else:
            self._f = open(path, "rb")
            self._blk = array("h", bytes(2 * block * channels))

    def _fill(self):
        if self._f is None:  # preloaded: the block is the whole recording
            if not self.loop:
                return False
            self._bp = 0
            self._i = 0
            return True
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
        self._i = index
        if self._f is None:
            self._bp = index
            return
        self._f.seek(index * 2 * self.channels)
        self._bn = self._bp = 0

    def skip(self, k):
        """Pass over k samples, as time passes over them (the sampler fell behind)."""
        self.seek(self._i + k)

    def close(self):
        if self._f is not None:
            self._f.close()


# -- I2C errors -------------------------------------------------------------------------------------

_I2C_ERRNO = {19: "ENODEV", 5: "EIO", 110: "ETIMEDOUT", 116: "ETIMEDOUT", 6: "ENXIO"}


def i2c_error(e, part, address, bus):
    """The OSError machine.I2C raised for a part that does not answer, as one that
    says which part, bus, address and pins, and what to check."""
    code = e.args[0] if e.args and isinstance(e.args[0], int) else None
    name = _I2C_ERRNO.get(code, "errno %s" % (code,))
    return OSError(code if code is not None else 19,
                   "%s not answering on I2C %s at address 0x%02x (%s): check its wiring (SDA/SCL not swapped, "
                   "pull-ups), power and address; i2c.scan() lists what answers" % (part, bus, address, name))


# -- analog -----------------------------------------------------------------------------------------

def _adc(pin):
    from machine import ADC, Pin

    a = ADC(Pin(pin) if isinstance(pin, int) else pin)
    try:
        a.atten(ADC.ATTN_11DB)  # ESP32: the full 0-3.3 V range
    except AttributeError:
        pass
    return a


class ADC:
    """machine.ADC pins, one channel each: read_u16() >> 1 (0..32767), physical
    volts = count * scale (vref / 32768). rate_hz None: the sampler's."""

    def __init__(self, pins, names=None, vref=3.3):
        pins = list(pins) if isinstance(pins, (list, tuple)) else [pins]
        self._adcs = [_adc(p) for p in pins]
        self.channels = len(pins)
        self.names = _names(names, self.channels, "adc")
        self.units = ["V"] * self.channels
        self.scale = [vref / 32768] * self.channels
        self.rate_hz = None

    def read_into(self, buf, offset):
        i = offset
        for a in self._adcs:
            buf[i] = a.read_u16() >> 1
            i += 1
        return True

    def close(self):
        pass


class Envelope:
    """Loudness of an electret microphone (amplified, e.g. MAX4466/MAX9814) on an
    ADC pin: each sample is the peak-to-peak of `burst` quick ADC reads, so a
    sampler at 50-200 Hz follows the sound's envelope without audio-rate
    sampling. A module with its own envelope output goes on ADC() instead."""

    def __init__(self, pin, burst=16, name="env", vref=3.3):
        self._a = _adc(pin)
        self._burst = burst
        self.channels = 1
        self.names = [name]
        self.units = ["V"]
        self.scale = [vref / 32768]
        self.rate_hz = None

    def read_into(self, buf, offset):
        a = self._a
        lo = 65535
        hi = 0
        for _ in range(self._burst):
            v = a.read_u16()
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        buf[offset] = (hi - lo) >> 1
        return True

    def close(self):
        pass


# -- I2S microphone ---------------------------------------------------------------------------------

class I2SMic:
    """An I2S MEMS microphone (INMP441, SPH0645, ICS-43434...) through machine.I2S,
    read in blocks of `block` frames. decimate=1 gives the audio itself (rate_hz =
    the I2S rate: only for fast boards, the sampler refuses what it cannot
    sustain); decimate=N gives the peak |amplitude| of every N frames (e.g. 16 kHz
    / 160 = a 100 Hz loudness). 32-bit slots keep their upper 16 bits.
    The I2S peripheral clocks the audio, so sampler jitter does not touch it.
    """

    def __init__(self, sck, ws, sd, i2s_id=0, rate=16000, bits=32, decimate=1, block=256, name="mic"):
        from machine import I2S, Pin

        if bits not in (16, 32):
            raise ValueError("bits must be 16 or 32")
        self._i2s = I2S(i2s_id, sck=Pin(sck), ws=Pin(ws), sd=Pin(sd), mode=I2S.RX, bits=bits,
                        format=I2S.MONO, rate=rate, ibuf=4 * block * bits // 8)
        self._w = bits // 8
        self._buf = bytearray(block * self._w)
        self._n = block
        self._p = block
        self._dec = decimate
        self.channels = 1
        self.names = [name]
        self.units = ["FS"]  # fraction of full scale
        self.scale = [1 / 32768]
        self.rate_hz = rate / decimate

    def _next(self):
        if self._p >= self._n:
            self._i2s.readinto(self._buf)  # blocks until the DMA has a block
            self._p = 0
        b = self._buf
        i = self._p * self._w + self._w - 2  # the upper 16 bits of the slot
        self._p += 1
        v = b[i] | (b[i + 1] << 8)
        return v - 65536 if v > 32767 else v

    def read_into(self, buf, offset):
        if self._dec == 1:
            buf[offset] = self._next()
            return True
        peak = 0
        for _ in range(self._dec):
            v = self._next()
            if v < 0:
                v = -v
            if v > peak:
                peak = v
        buf[offset] = peak if peak < 32768 else 32767
        return True

    def close(self):
        self._i2s.deinit()


# -- IMUs -------------------------------------------------------------------------------------------

class LibIMU:
    """A micropython-lib IMU driver (lsm6dsox, bmi270, lsm9ds1: `mip install <name>`)
    as a source: the driver sets the part up; samples are its accel() (g) and
    gyro() (deg/s) as int16 counts of the ranges given. These drivers return
    float tuples, so this source allocates on every sample (unlike MPU6050 and
    ADXL345); fine on a roomy heap (ESP32), not under heap_lock.
    """

    def __init__(self, driver, rate_hz, accel_range_g=4, gyro_range_dps=2000, gyro=True, part=None):
        self.driver = driver
        self.part = part or type(driver).__name__
        self.channels = 6 if gyro else 3
        self.names = ["ax", "ay", "az", "gx", "gy", "gz"][: self.channels]
        self.units = ["g"] * 3 + ["deg/s"] * (self.channels - 3)
        self._k = [32768 / accel_range_g] * 3 + [32768 / gyro_range_dps] * 3
        self.scale = [1 / k for k in self._k[: self.channels]]
        self.rate_hz = rate_hz

    def read_into(self, buf, offset):
        k = self._k
        a = self.driver.accel()
        for c in range(3):
            v = int(a[c] * k[c])
            buf[offset + c] = 32767 if v > 32767 else -32768 if v < -32768 else v
        if self.channels == 6:
            g = self.driver.gyro()
            for c in range(3):
                v = int(g[c] * k[3 + c])
                buf[offset + 3 + c] = 32767 if v > 32767 else -32768 if v < -32768 else v
        return True

    def close(self):
        pass


# The part's own name -> (module, default address); mip names are the module names.
_LIB_IMUS = {"lsm6dsox": 0x6A, "bmi270": 0x68, "lsm9ds1": 0x6B}


def imu(kind, i2c, address=None, rate_hz=100, accel_range_g=None, gyro_range_dps=None, gyro=True, bus=None,
        **options):
    """An IMU source by part name: mpu6050, mpu6886, mpu6500, mpu9250 and adxl345 (our
    drivers, FIFO bursts, no allocation per sample), lsm6dsox, bmi270, lsm9ds1
    (micropython-lib's drivers, installed with `mip install <name>`)."""
    kind = kind.lower()
    if kind in ("mpu6050", "mpu6886", "mpu6500", "mpu9250"):
        from mpml.mpu6050 import MPU6050

        return MPU6050(i2c, 0x68 if address is None else address, rate_hz, accel_range_g or 4,
                       gyro_range_dps or 500, gyro, bus=bus, **options)
    if kind == "adxl345":
        from mpml.adxl345 import ADXL345

        return ADXL345(i2c, 0x53 if address is None else address, rate_hz, accel_range_g or 16, bus=bus, **options)
    if kind in _LIB_IMUS:
        try:
            mod = __import__(kind)
        except ImportError:
            raise ImportError("the %s driver is micropython-lib's: install it on the board with "
                              "`mpremote mip install %s` (or mip.install('%s') on a networked board)"
                              % (kind, kind, kind))
        addr = _LIB_IMUS[kind] if address is None else address
        a = accel_range_g or (4 if kind != "lsm9ds1" else 4)
        g = gyro_range_dps or 2000
        try:
            if kind == "lsm6dsox":
                d = mod.LSM6DSOX(i2c, address=addr, accel_odr=rate_hz, gyro_odr=rate_hz, accel_scale=a,
                                 gyro_scale=g, **options)
            elif kind == "bmi270":
                d = mod.BMI270(i2c, address=addr, accel_odr=rate_hz, gyro_odr=rate_hz, accel_scale=a,
                               gyro_scale=g, **options)
            else:
                d = mod.LSM9DS1(i2c, address_imu=addr, **options)
        except OSError as e:
            if e.args and isinstance(e.args[0], int):
                raise i2c_error(e, kind.upper(), addr, bus or repr(i2c))
            raise
        return LibIMU(d, rate_hz, a, g, gyro, kind.upper())
    raise ValueError("unknown IMU %r: one of mpu6050, mpu6886, mpu6500, mpu9250, adxl345, %s"
                     % (kind, ", ".join(sorted(_LIB_IMUS))))


# -- board config -----------------------------------------------------------------------------------

def board_config(path=BOARD_CONFIG):
    """The board config `mpml install --board B` wrote (a dict), or an error saying so."""
    import json

    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        raise OSError(2, "%s missing: write it with `mpml install --board <board>` (boards/*.toml [[sensors]])"
                      % path)


def from_config(name=None, path=BOARD_CONFIG, **overrides):
    """Open the sensor `name` (the first one when None) of the board config.

    Entries (boards/*.toml [[sensors]], docs/sensors.md): type = mpu6050 | mpu6886 |
    mpu6500 | mpu9250 | adxl345 | lsm6dsox | bmi270 | lsm9ds1 (i2c, sda, scl, freq,
    address, rate_hz...), adc (pins), envelope (pin, burst), i2s (sck, ws, sd,
    rate, bits, decimate), replay (path, channels, rate_hz, loop).
    """
    cfg = board_config(path)
    sensors = cfg.get("sensors") or []
    if not sensors:
        raise ValueError("%s lists no sensors: add [[sensors]] to the board file and run mpml install again" % path)
    if name is None:
        s = sensors[0]
    else:
        for s in sensors:
            if s.get("name") == name:
                break
        else:
            raise ValueError("no sensor %r in %s; it has: %s" % (name, path, ", ".join(
                str(x.get("name")) for x in sensors)))
    s = dict(s)
    s.update(overrides)
    kind = s.pop("type")
    s.pop("name", None)
    s.pop("title", None)
    if kind == "replay":
        return Replay(s.pop("path"), s.pop("channels"), s.pop("rate_hz"), **s)
    if kind in ("adc", "envelope"):
        rate = s.pop("rate_hz", None)  # the rate it is meant to be sampled at
        src = ADC(s.pop("pins"), **s) if kind == "adc" else Envelope(s.pop("pin"), **s)
        src.rate_hz = rate
        return src
    if kind == "i2s":
        return I2SMic(s.pop("sck"), s.pop("ws"), s.pop("sd"), **s)
    from machine import I2C, Pin

    bid = s.pop("i2c", 0)
    sda = s.pop("sda")
    scl = s.pop("scl")
    freq = s.pop("freq", 400000)
    bus = "%s (sda=%s, scl=%s, %d Hz)" % (bid, sda, scl, freq)
    i2c = I2C(bid, sda=Pin(sda), scl=Pin(scl), freq=freq)
    return imu(kind, i2c, bus=bus, **s)
