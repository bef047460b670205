"""Thread-safe latency, rate and error statistics for the diagnostics (design §4.6).

The worker thread records, the diagnostics timer reads; every class holds a lock. Times come
from ``time.monotonic`` unless a value is passed (tests, sim time).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Dict, Mapping, Optional

import numpy as np

# diagnostic_msgs/DiagnosticStatus levels (the message stores them as 1-byte ``bytes``).
OK, WARN, ERROR, STALE = 0, 1, 2, 3


class LatencyTracker:
    """Rolling window of the last ``window`` durations (s) per stage."""

    def __init__(self, window: int = 200) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
        self._samples: Dict[str, deque] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            samples = self._samples.get(stage)
            if samples is None:
                samples = self._samples[stage] = deque(maxlen=self.window)
            samples.append(float(seconds))

    def add_many(self, timings: Mapping[str, float]) -> None:
        """Record a dict of stage → seconds (e.g. ``Estimates.timings``)."""
        for stage, seconds in timings.items():
            self.add(stage, seconds)

    def percentiles(self, stage: str, q=(50, 95)) -> Optional[tuple]:
        """Percentiles (s) of a stage's window, or None if it has no samples."""
        with self._lock:
            samples = list(self._samples.get(stage, ()))
        if not samples:
            return None
        return tuple(float(v) for v in np.percentile(samples, q))

    def summary(self) -> Dict[str, Dict[str, float]]:
        """stage → {p50, p95, max, last, n} over the window (s)."""
        with self._lock:
            snapshot = {k: list(v) for k, v in self._samples.items() if v}
        out = {}
        for stage, samples in snapshot.items():
            p50, p95 = np.percentile(samples, (50, 95))
            out[stage] = {"p50": float(p50), "p95": float(p95), "max": float(max(samples)),
                          "last": samples[-1], "n": len(samples)}
        return out

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()


class RateTracker:
    """Events per second over the last ``window`` seconds."""

    def __init__(self, window: float = 5.0) -> None:
        if window <= 0:
            raise ValueError("window must be > 0")
        self.window = window
        self._times: deque = deque()
        self._lock = threading.Lock()
        self._last: Optional[float] = None

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()

    def tick(self, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self._last = now
            self._expire(now)

    def rate(self, now: Optional[float] = None) -> float:
        """Events in (now − window, now] divided by the window (Hz)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._expire(now)
            return len(self._times) / self.window

    def since_last(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds since the last event (None before the first one)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return None if self._last is None else now - self._last


class Counters:
    """Named monotonically increasing counters (errors, skipped frames, ...)."""

    def __init__(self, *names: str) -> None:
        self._values: Dict[str, int] = {name: 0 for name in names}
        self._lock = threading.Lock()

    def increment(self, name: str, n: int = 1) -> int:
        with self._lock:
            value = self._values.get(name, 0) + int(n)
            self._values[name] = value
            return value

    def get(self, name: str) -> int:
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._values)

    def take(self, name: str) -> int:
        """Return a counter and reset it to 0 (e.g. frames skipped since the last message)."""
        with self._lock:
            value = self._values.get(name, 0)
            self._values[name] = 0
            return value


def _format(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def diagnostic_status(name: str, hardware_id: str, level, message: str,
                      values: Optional[Mapping[str, object]] = None):
    """diagnostic_msgs/DiagnosticStatus with ``values`` as KeyValue strings (floats to 6
    significant digits, bools as true/false). ``level``: 0..3 or the message's byte constant."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    if isinstance(level, (bytes, bytearray)):
        level_byte = bytes(level)
    else:
        level = int(level)
        if level not in (OK, WARN, ERROR, STALE):
            raise ValueError(f"diagnostic level must be 0..3, got {level}")
        level_byte = bytes([level])
    status = DiagnosticStatus()
    status.level = level_byte
    status.name = name
    status.message = message
    status.hardware_id = hardware_id
    status.values = [KeyValue(key=str(k), value=_format(v)) for k, v in (values or {}).items()]
    return status


class ThrottledLog:
    """Rate-limits repeated log messages per key *and says how many it held back*.

    rclpy's ``throttle_duration_sec`` drops repeats silently, so a log can show one traceback
    where a hundred frames failed. ``message(key, text)`` returns the text to log (with
    "(N similar messages suppressed in the last T s)" appended when some were held back) or
    None when this one is to be suppressed; the caller's counters stay exact either way.
    """

    def __init__(self, period: float = 5.0) -> None:
        if period < 0:
            raise ValueError("period must be >= 0 s")
        self.period = period
        self._last: Dict[str, float] = {}
        self._suppressed: Dict[str, int] = {}
        self._lock = threading.Lock()

    def message(self, key: str, text: str, now: Optional[float] = None) -> Optional[str]:
        now = time.monotonic() if now is None else now
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            held = self._suppressed.pop(key, 0)
            self._last[key] = now
        if held and last is not None:
            return f"{text} ({held} similar message{'s' if held > 1 else ''} suppressed in the last {now - last:.1f} s)"
        return text

    def suppressed(self, key: str) -> int:
        """Messages held back for ``key`` since it was last logged."""
        with self._lock:
            return self._suppressed.get(key, 0)
