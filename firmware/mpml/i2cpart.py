# Register access shared by the I2C sensor drivers (mpml.mpu6050, mpml.adxl345),
# runs on the board: one-byte writes through a preallocated buffer, reads into
# the caller's buffer, and, when the part does not answer, an error naming the
# part, bus, address and pins (mpml.sources.i2c_error).


class I2CPart:
    def __init__(self, i2c, address, bus=None):
        self.i2c = i2c
        self.address = address
        self.bus = bus
        self._b1 = bytearray(1)

    def _bus(self):
        return self.bus if self.bus is not None else repr(self.i2c)

    def _error(self, e):
        from mpml.sources import i2c_error

        return i2c_error(e, self.__class__.__name__, self.address, self._bus())

    def _read(self, reg, buf):
        try:
            self.i2c.readfrom_mem_into(self.address, reg, buf)
        except OSError as e:
            raise self._error(e)

    def _write(self, reg, value):
        b = self._b1
        b[0] = value
        try:
            self.i2c.writeto_mem(self.address, reg, b)
        except OSError as e:
            raise self._error(e)
