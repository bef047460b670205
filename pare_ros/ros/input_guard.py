"""Stamp policy for incoming camera frames (ROS-free): staleness, bad stamps, time-base changes,
clock-offset warnings and an estimate of frames lost before the node.

Two clocks meet here: the image stamp ``s`` (the camera's or the bag's clock) and the node clock
``a`` at the frame's *arrival* (the image callback), both in seconds. Their offset ``o = a - s``
is the stream's latency plus any clock disagreement (a bag played without ``--clock`` is hours
behind, steadily), so staleness is measured from arrival, not from the stamp. Rules:

* a stamp further than ``max_future_stamp`` ahead of the node clock is bad input and never
  becomes the stream's time (one such frame used to reset every track);
* newer stamps are accepted (gaps, late deliveries, streams faster than the clock);
* a step back of up to 1 s (or a repeated stamp) is bad input ("stamp_backwards");
* a bigger step back *with* the node clock (``o`` unchanged: a bag looping with ``--clock``)
  resets the tracks ("stamp_reset", not bad input); *without* it, the frame is an outlier
  ("stamp_jump") unless the next frame confirms the new time base (a bag looping without
  ``--clock``): then that one resets the tracks and is processed.

::

    guard = InputGuard(GuardSettings(max_image_age=0.5))
    guard.note_arrival(sec, nanosec, node_now)      # image callback: lost-frame estimate
    verdict = guard.check(sec, nanosec, node_now)   # worker, before processing
    if verdict.action == "reject": count(verdict.reason)
    elif verdict.action == "reset": processor.reset()      # and then process the frame
    ... processed ...
    guard.commit(sec, nanosec)                      # the stream's time moves only now

Counter names (:data:`BAD_STAMP_REASONS` are bad input; ``stale`` and ``stamp_reset`` are not).
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Optional

import numpy as np

#: Rejections caused by the stamp itself (bad input, counted in the input status).
BAD_STAMP_REASONS = ("stamp_invalid", "stamp_future", "stamp_backwards", "stamp_jump")
#: Counters that are not bad input: ``stale`` (waited too long in the node's buffer),
#: ``stamp_reset`` (a confirmed time-base change: tracks were reset) and ``dropped_upstream``
#: (frames estimated lost before the node, from gaps in the stamp sequence).
OTHER_COUNTERS = ("stale", "stamp_reset", "dropped_upstream")

NS = 1_000_000_000
#: An offset change smaller than this (s) is transport jitter, not a new time base.
JUMP_TOLERANCE = 1.0
#: Recent frames whose median clock offset the warning reports (robust to outliers while they
#: are fewer than half of them).
RECENT_FRAMES = 15
#: Verdicts whose offset describes the stream's clock (outliers and malformed stamps do not;
#: frames too far ahead do: a camera clock running ahead shows only as those).
_CLOCK_EVIDENCE = ("", "stale", "stamp_reset", "stamp_future")
#: Gaps longer than this (s) are a paused camera, not lost frames.
MAX_GAP = 10.0


@dataclass
class GuardSettings:
    """Args:
        max_image_age: s a frame may wait in the node (arrival → start of inference) before it
            is dropped as stale; 0 = never.
        max_future_stamp: s a stamp may be ahead of the node clock at arrival; further ahead
            is bad input ("stamp_future"), never the stream's new time.
        clock_offset_warn: s of |node clock − stamp| (median of recent frames) above which
            :meth:`InputGuard.check` returns a warning text with the measured offset; 0 = off.
        expected_rate: Hz; the frame period assumed until the stamps show their own.
    """

    max_image_age: float = 0.5
    max_future_stamp: float = 5.0
    clock_offset_warn: float = 1.0
    expected_rate: float = 10.0


@dataclass
class Verdict:
    """What to do with one frame. ``action``: "accept", "reset" (reset the tracks, then
    process) or "reject" (``reason`` names the counter, ``message`` the cause).
    ``queue_age``: s since arrival. ``warning``: clock-offset text for the (throttled) log."""

    action: str
    reason: str = ""
    message: str = ""
    queue_age: float = 0.0
    warning: Optional[str] = None


def stamp_ns(sec: int, nanosec: int) -> int:
    """builtin_interfaces/Time fields → int ns (no validation; see :func:`stamp_problem`)."""
    return int(sec) * NS + int(nanosec)


def stamp_problem(sec: int, nanosec: int) -> Optional[str]:
    """Why a stamp is malformed (None when it is usable): nanosec must be < 1e9 and an all-zero
    stamp means "not set" (REP-103/ROS convention; TF would read it as "latest")."""
    if not 0 <= int(nanosec) < NS:
        return f"nanosec {nanosec} is not in [0, 1e9)"
    if int(sec) == 0 and int(nanosec) == 0:
        return "stamp is zero (the driver does not stamp its images)"
    return None


def _duration(seconds: float) -> str:
    """1234.5 → '20 min 34.5 s' (the scale of the offset matters more than its digits)."""
    s = abs(seconds)
    if s >= 86400:
        return f"{s / 86400:.1f} days"
    if s >= 3600:
        return f"{s / 3600:.2f} h"
    if s >= 60:
        return f"{int(s // 60)} min {s % 60:.1f} s"
    return f"{s:.3f} s"


def clock_offset_text(offset: float, node_now: float, max_future: float) -> str:
    """Warning for a median offset (node clock − stamp, s) that is too large: what was measured,
    what it does to the output, and the fix."""
    if node_now == 0.0:
        return ("the node clock is zero: use_sim_time is true but nothing publishes /clock. Play "
                "the bag with `ros2 bag play --clock`, or set use_sim_time:=false")
    exact = f" ({abs(offset):.3f} s)" if abs(offset) >= 60 else ""
    if offset > 0:
        return (f"image stamps are {_duration(offset)} behind the node clock{exact}. "
                "Frames are processed (staleness counts from arrival), but outputs carry the old "
                "stamps, so TF lookups and latency figures will be off. If you play a bag, use "
                "`ros2 bag play --clock` and use_sim_time:=true on this node; if the camera stamps "
                "with its own clock, synchronise it (chrony/PTP) or let the driver stamp with ROS time")
    return (f"image stamps are {_duration(offset)} AHEAD of the node clock{exact}; "
            f"frames more than max_future_stamp = {max_future} s ahead are dropped (stamp_future). "
            "Synchronise the camera's clock with this computer (chrony/PTP), or, when playing a "
            "bag with --clock, set use_sim_time:=true on this node")


class GapEstimator:
    """Frames lost before the node (in the camera, the network or the DDS reader queue, which
    the node never sees), from gaps in the arriving stamps: a gap of ``k`` periods means
    ``k - 1`` missing frames. The period is the median of recent intervals (the camera's real
    rate), ``1/expected_rate`` until 5 intervals are known. Gaps are measured from the newest
    stamp seen, so an outlier stamp in the past costs nothing; 3 frames in a row behind it (a
    new time base) or a gap above :data:`MAX_GAP` (a paused camera) restart without counting."""

    def __init__(self, expected_rate: float = 10.0, window: int = 30) -> None:
        if not expected_rate > 0:
            raise ValueError(f"expected_rate must be > 0 Hz, got {expected_rate}")
        self.expected_rate = float(expected_rate)
        self._intervals: deque = deque(maxlen=window)
        self._last: Optional[float] = None      # newest stamp seen (s)
        self._behind = 0                         # frames in a row older than it

    def period(self) -> float:
        """Frame period in s (median interval, or 1/expected_rate while too few are known)."""
        if len(self._intervals) >= 5:
            return float(np.median(self._intervals))
        return 1.0 / self.expected_rate

    def observe(self, stamp: float) -> int:
        """Record one arriving stamp (s); returns the frames estimated missing before it."""
        last = self._last
        if last is None or stamp - last > MAX_GAP:
            self._last, self._behind = stamp, 0
            return 0
        dt = stamp - last
        if dt <= 0.0:
            self._behind += 1
            if self._behind >= 3:
                self._last, self._behind = stamp, 0
            return 0
        self._last, self._behind = stamp, 0
        period = self.period()
        self._intervals.append(dt)
        # Round to the nearest whole number of periods: jitter of up to half a period is not a loss.
        return max(0, int(math.floor(dt / period + 0.5)) - 1)


class InputGuard:
    """The stamp policy for one camera stream (thread-safe: the image callback calls
    :meth:`note_arrival`, the worker :meth:`check` and :meth:`commit`)."""

    def __init__(self, settings: Optional[GuardSettings] = None) -> None:
        self.settings = settings or GuardSettings()
        self._lock = threading.Lock()
        self._arrivals: "OrderedDict[int, float]" = OrderedDict()   # stamp ns → node time (s)
        self._last_offset: Optional[float] = None   # node clock − stamp of the last committed frame
        self._recent_offsets: deque = deque(maxlen=RECENT_FRAMES)  # see _CLOCK_EVIDENCE
        self._last: Optional[int] = None            # stamp (ns) of the last committed frame
        self._candidate: Optional[tuple] = None     # (stamp ns, offset) of an unconfirmed jump
        self._gaps = GapEstimator(self.settings.expected_rate)

    # -- image callback -----------------------------------------------------------------
    def note_arrival(self, sec: int, nanosec: int, node_now: float) -> int:
        """Record a frame's arrival (its stamp, node clock ``node_now`` s); returns the number
        of frames estimated lost before it (count them as ``dropped_upstream``)."""
        stamp = stamp_ns(sec, nanosec)
        with self._lock:
            self._arrivals[stamp] = node_now
            while len(self._arrivals) > 64:
                self._arrivals.popitem(last=False)
            if self._gaps.expected_rate != self.settings.expected_rate:
                self._gaps = GapEstimator(self.settings.expected_rate)
            # Malformed and far-future stamps say nothing about the camera's sequence.
            if stamp_problem(sec, nanosec) or stamp / NS - node_now > self.settings.max_future_stamp:
                return 0
            return self._gaps.observe(stamp / NS)

    # -- worker -------------------------------------------------------------------------
    def check(self, sec: int, nanosec: int, node_now: float) -> Verdict:
        """Decide about one frame before processing it (nothing is committed)."""
        problem = stamp_problem(sec, nanosec)
        if problem:
            return Verdict("reject", "stamp_invalid", problem)
        stamp = stamp_ns(sec, nanosec)
        with self._lock:
            # Unknown arrival (process_bag, tests): now; remembered so that commit() finds it.
            arrival = self._arrivals.setdefault(stamp, node_now)
            queue_age = max(0.0, node_now - arrival)
            offset = arrival - stamp / NS
            verdict = self._decide(stamp, offset, queue_age)
            if verdict.reason in _CLOCK_EVIDENCE:
                self._recent_offsets.append(offset)
            warning = self._offset_warning(node_now)
        verdict.queue_age, verdict.warning = queue_age, warning
        return verdict

    def _decide(self, stamp: int, offset: float, queue_age: float) -> Verdict:
        s = self.settings
        if s.max_image_age > 0 and queue_age > s.max_image_age:
            return Verdict("reject", "stale", f"waited {queue_age:.3f} s in the node "
                           f"(max_image_age {s.max_image_age} s)")
        if -offset > s.max_future_stamp:
            return Verdict("reject", "stamp_future",
                           f"stamp is {-offset:.3f} s ahead of the node clock "
                           f"(max_future_stamp {s.max_future_stamp} s)")
        if self._last is None or stamp > self._last:
            # In order (and not in the future): late deliveries, gaps and streams that run
            # faster than the node clock (a bag at -r 2 without --clock) are all fine.
            return Verdict("accept")
        back = (self._last - stamp) / NS
        if back <= JUMP_TOLERANCE:
            return Verdict("reject", "stamp_backwards", f"stamp {stamp / NS:.9f} is not newer than "
                           f"the previous frame's {self._last / NS:.9f}")
        if self._last_offset is not None and abs(offset - self._last_offset) <= JUMP_TOLERANCE:
            # Stamp and node clock went back together: a bag looping with --clock, a restarted
            # simulation. The old tracks belong to another time line.
            return Verdict("reset", "stamp_reset", f"stamps and node clock jumped back {back:.3f} s")
        # The stamps jumped back but the node clock did not: an outlier, unless the previous
        # frame started the same new time base (then this one confirms it).
        cand = self._candidate
        if cand is not None and stamp > cand[0] and abs(offset - cand[1]) <= JUMP_TOLERANCE:
            return Verdict("reset", "stamp_reset", f"stamps jumped back {back:.3f} s without the node "
                           "clock for two frames in a row: a new time base (a bag looping without --clock?)")
        self._candidate = (stamp, offset)
        return Verdict("reject", "stamp_jump", f"stamp {stamp / NS:.9f} is {back:.3f} s before the previous "
                       "frame's while the node clock went on (an outlier; if the next frame agrees, tracks "
                       "are reset and it is processed)")

    def _offset_warning(self, node_now: float) -> Optional[str]:
        threshold = self.settings.clock_offset_warn
        if threshold <= 0 or not self._recent_offsets:
            return None
        median = float(np.median(self._recent_offsets))
        if abs(median) <= threshold and node_now != 0.0:
            return None
        return clock_offset_text(median, node_now, self.settings.max_future_stamp)

    def commit(self, sec: int, nanosec: int) -> None:
        """The frame was processed: its stamp is now the stream's time."""
        stamp = stamp_ns(sec, nanosec)
        with self._lock:
            arrival = self._arrivals.get(stamp)
            self._candidate = None
            self._last = stamp
            self._last_offset = None if arrival is None else arrival - stamp / NS

    def reset(self) -> None:
        """Forget the stream's time (e.g. on ~/reset_tracks or a lifecycle deactivate)."""
        with self._lock:
            self._recent_offsets.clear()
            self._last, self._last_offset, self._candidate = None, None, None
            self._arrivals.clear()
            self._gaps = GapEstimator(self.settings.expected_rate)

    @property
    def last_stamp(self) -> Optional[float]:
        """Stamp (s) of the last committed frame (None before the first)."""
        with self._lock:
            return None if self._last is None else self._last / NS
