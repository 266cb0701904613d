# Live classification on the board: sample -> features -> model -> result,
# window after window (runs on the board).
#
#   import mpml
#   from mpml.classify import Classifier
#   from mpml.sources import from_config
#   c = Classifier(mpml.load("/models/gesture.mpml"), from_config("imu"), smooth=3)
#   c.run(on_result=lambda r: print(r.label, r.score))
#
# The model's feature spec (its blob's feature section) says the window, the
# channels and the sample rate; the sampler delivers windows every `hop`
# samples; the featurizer turns each into the model's int8 input, computed as
# the host computed it in training; run() needs no allocation. Results:
# - classifiers: the class whose int8 output, summed over the last `smooth`
#   windows, is largest (int8 outputs share one scale, so their order is the
#   order of the probabilities), and its mean dequantized value as the score;
# - autoencoders (anomaly models, `threshold` given): the mean squared
#   reconstruction error of the window, as mpml.evaluate.evaluate_anomaly
#   computes it on the host (in the board's float precision), averaged over
#   `smooth` windows; `r.anomaly` when it is above the threshold.
# With sleep_ms > 0 the board sleeps between windows (machine.lightsleep
# where the port has it): a duty cycle for battery boards, at the price of a
# full window of fresh samples after every sleep.
#
# Printed protocol (`emit=True`, read by the host's `mpml monitor`):
#   @L <n classes or 0> <labels joined by ,>      once at start
#   @R <window> <first sample> <class> <score*1000> <anomaly 0/1> <us> <dropped>
#   @E <windows> <dropped> <reason>                at the end
try:
    from time import ticks_us, ticks_diff
except ImportError:
    ticks_us = None


class Result:
    """One window's outcome (the same object, updated each window)."""

    def __init__(self):
        self.window = 0  # windows classified so far, this one included
        self.start = 0  # index of the window's first sample since sampling began
        self.index = -1  # class index (classifiers)
        self.label = None  # its label, or None
        self.score = 0.0  # mean probability of the class, or the anomaly score
        self.anomaly = False
        self.us = 0  # features + inference, microseconds (0 where there is no clock)
        self.dropped = 0  # samples the sampler has dropped so far


class Classifier:
    """Runs `model` on windows of `source` (or on a ready mpml.sampler.Sampler).

    hop: samples between windows (default half the window); smooth: windows
    averaged; threshold: makes it an anomaly detector over the reconstruction
    error; sleep_ms: sleep between windows; rate_hz: the sampling rate
    (default: the source's own rate, else the feature spec's).
    """

    def __init__(self, model, source, hop=None, smooth=1, threshold=None, sleep_ms=0, rate_hz=None, mode=None):
        from mpml.sampler import Sampler

        fx = model.featurizer
        if fx is None:
            raise ValueError("the model has no feature spec: it was not trained on sensor windows "
                             "(train it with mpml train, or give it windows yourself with model.run)")
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError("live classification takes a model with one input and one output")
        if smooth < 1:
            raise ValueError("smooth must be at least 1")
        self.model = model
        self.fx = fx
        self.threshold = threshold
        self.smooth = smooth
        self.sleep_ms = sleep_ms
        if hasattr(source, "next_window"):
            self.sampler = source
            if source.window != fx.window or source.channels != fx.channels:
                raise ValueError("the sampler gives %d x %d windows, the model's feature spec wants %d x %d"
                                 % (source.window, source.channels, fx.window, fx.channels))
        else:
            if source.channels != fx.channels:
                raise ValueError("the source has %d channels, the model's feature spec wants %d"
                                 % (source.channels, fx.channels))
            if rate_hz is None and source.rate_hz is None:
                rate_hz = fx.sample_rate_hz
            self.sampler = Sampler(source, rate_hz, window=fx.window, hop=hop or max(1, fx.window // 2),
                                   mode=mode)
        self._in = bytearray(model.inputs[0].nbytes)
        out = model.outputs[0]
        self._out = bytearray(out.nbytes)
        self._n = out.count
        self.labels = model.labels
        # Ring of the last `smooth` outputs (int8) or anomaly scores.
        self._hist = [bytearray(out.nbytes) for _ in range(smooth)] if threshold is None else [0.0] * smooth
        self._seen = 0
        self.result = Result()
        self._io = (model.inputs[0].scale, model.inputs[0].zero_point, out.scale, out.zero_point)

    def _signed(self, b):
        return b - 256 if b > 127 else b

    def _classify(self, r):
        h = self._hist
        h[self._seen % self.smooth][:] = self._out
        self._seen += 1
        k = min(self._seen, self.smooth)
        best, best_sum = 0, None
        s = self._signed
        for j in range(self._n):
            t = 0
            for i in range(k):
                t += s(h[i][j])
            if best_sum is None or t > best_sum:
                best, best_sum = j, t
        _, _, so, zo = self._io
        r.index = best
        r.label = self.labels[best] if best < len(self.labels) else None
        r.score = (best_sum / k - zo) * so
        r.anomaly = False

    def _anomaly(self, r):
        si, zi, so, zo = self._io
        s = self._signed
        x, y = self._in, self._out
        e = 0.0
        for j in range(len(x)):
            d = (s(x[j]) - zi) * si - (s(y[j]) - zo) * so
            e += d * d
        e /= len(x)
        self._hist[self._seen % self.smooth] = e
        self._seen += 1
        k = min(self._seen, self.smooth)
        r.score = sum(self._hist[:k]) / k
        r.anomaly = r.score > self.threshold
        r.index, r.label = (1, "anomaly") if r.anomaly else (0, "normal")

    def step(self, timeout_ms=None):
        """Waits for the next window and classifies it; the Result, or None when the source ended or timed out."""
        s = self.sampler
        w = s.next_window(timeout_ms)
        if w is None:
            return None
        r = self.result
        t0 = ticks_us() if ticks_us else 0
        self.fx.compute(w, self._in)
        self.model.run(self._in, self._out)
        r.us = ticks_diff(ticks_us(), t0) if ticks_us else 0
        r.window += 1
        r.start = s.window_start
        r.dropped = s.dropped
        if self.threshold is None:
            self._classify(r)
        else:
            self._anomaly(r)
        return r

    def _sleep(self):
        s = self.sampler
        s.stop()
        try:
            import machine
            machine.lightsleep(self.sleep_ms)
        except (ImportError, AttributeError):
            import time
            time.sleep_ms(self.sleep_ms)
        s.start()

    def run(self, on_result=None, windows=None, seconds=None, emit=False):
        """Classify until the source ends, `windows` results or `seconds` pass (None: forever).

        on_result(r) is called with each Result; emit prints the protocol
        above for `mpml monitor`. Returns the number of windows classified."""
        s = self.sampler
        r = self.result
        if emit:
            print("@L", 0 if self.threshold is not None else self._n, ",".join(self.labels))
        deadline = None
        if seconds is not None:
            from time import ticks_ms, ticks_add
            deadline = ticks_add(ticks_ms(), int(seconds * 1000))
        why = "end of source"
        s.start()
        try:
            while windows is None or r.window < windows:
                wait = None
                if deadline is not None:
                    from time import ticks_ms
                    wait = ticks_diff(deadline, ticks_ms())
                    if wait <= 0:
                        why = "time"
                        break
                if self.step(wait) is None:
                    if deadline is not None and ticks_diff(deadline, ticks_ms()) <= 0:
                        why = "time"
                    break
                if emit:
                    print("@R", r.window, r.start, r.index, int(r.score * 1000), int(r.anomaly), r.us, r.dropped)
                if on_result is not None:
                    on_result(r)
                if self.sleep_ms:
                    self._sleep()
            else:
                why = "windows"
        except KeyboardInterrupt:
            why = "interrupted"
        finally:
            s.stop()
        if emit:
            print("@E", r.window, s.dropped, why)
        return r.window
