"""pare_ros.ros.input_guard (ROS-free): each test builds a camera stream whose truth is known
(which frames are outliers, where the time base really changes, how many frames were lost)
and checks the guard's verdicts against it."""
from __future__ import annotations

import pytest

from pare_ros.ros.input_guard import (BAD_STAMP_REASONS, GapEstimator, GuardSettings, InputGuard,
                                      NS)

T0 = 1_750_000_000.0          # node clock at the start of each stream (s)


def split(stamp: float):
    """stamp (s) → (sec, nanosec) as builtin_interfaces/Time stores it."""
    ns = int(round(stamp * NS))
    return ns // NS, ns % NS


def feed(guard: InputGuard, stamp: float, arrival: float, now: float = None):
    """One frame through the node's sequence: arrival, check, commit when processed.
    Returns the verdict."""
    sec, nanosec = split(stamp)
    guard.note_arrival(sec, nanosec, arrival)
    verdict = guard.check(sec, nanosec, arrival if now is None else now)
    if verdict.action in ("accept", "reset"):
        guard.commit(sec, nanosec)
    return verdict


def stream(guard, n, start_stamp, start_clock, rate=30.0, latency=0.03):
    """n frames at ``rate``; stamps from ``start_stamp``, arriving ``latency`` s after the
    camera took them on a node clock that starts at ``start_clock``. Returns the verdicts."""
    return [feed(guard, start_stamp + i / rate, start_clock + i / rate + latency) for i in range(n)]


def actions(verdicts):
    return [(v.action, v.reason) for v in verdicts]


def test_live_stream_is_accepted_without_warnings():
    verdicts = stream(InputGuard(), 60, T0, T0)
    assert all(v.action == "accept" for v in verdicts)
    assert all(v.warning is None for v in verdicts)


def test_bag_without_clock_hours_behind_is_answered_and_explained():
    guard = InputGuard(GuardSettings(max_image_age=0.5))
    verdicts = stream(guard, 30, T0 - 3 * 3600, T0)
    assert all(v.action == "accept" for v in verdicts)     # staleness counts from arrival
    text = verdicts[-1].warning
    assert "3.00 h behind" in text and "--clock" in text and "use_sim_time" in text


def test_far_future_stamp_is_bad_input_and_does_not_move_the_stream():
    guard = InputGuard()
    stream(guard, 10, T0, T0)
    last = guard.last_stamp
    for ahead in (1e5, 1e8, 2**31 - 1 - T0):
        v = feed(guard, T0 + ahead, T0 + 0.4)
        assert (v.action, v.reason) == ("reject", "stamp_future")
        assert guard.last_stamp == last
    nxt = stream(guard, 3, T0 + 0.4, T0 + 0.4)
    assert actions(nxt) == [("accept", "")] * 3               # no reset: IDs survive


def test_single_past_outlier_is_rejected_without_reset():
    guard = InputGuard()
    stream(guard, 10, T0, T0)
    for outlier in (1000.0, -5.0, T0 - 3600):
        v = feed(guard, outlier, T0 + 0.4)
        assert (v.action, v.reason) == ("reject", "stamp_jump")
    assert actions(stream(guard, 3, T0 + 0.4, T0 + 0.4)) == [("accept", "")] * 3


def test_small_step_back_and_duplicate_are_stamp_backwards():
    guard = InputGuard()
    stream(guard, 10, T0, T0)
    last = guard.last_stamp
    assert actions([feed(guard, last - 0.2, T0 + 0.5)]) == [("reject", "stamp_backwards")]
    assert actions([feed(guard, last, T0 + 0.5)]) == [("reject", "stamp_backwards")]
    assert "stamp_backwards" in BAD_STAMP_REASONS


def test_clock_and_stamps_jumping_back_together_reset_once():
    # A bag looping with --clock / use_sim_time: the node clock jumps back with the stamps.
    guard = InputGuard()
    stream(guard, 30, T0 + 60, T0 + 60)
    verdicts = stream(guard, 5, T0, T0)
    assert actions(verdicts) == [("reset", "stamp_reset")] + [("accept", "")] * 4
    assert "stamp_reset" not in BAD_STAMP_REASONS


def test_bag_loop_without_clock_resets_after_one_confirming_frame():
    # Stamps jump back 60 s while the node clock runs on: frame 1 could be an outlier, frame
    # 2 confirms the new time base (tracks reset), the rest are a normal stream.
    guard = InputGuard()
    stream(guard, 30, T0 - 3600, T0)
    verdicts = stream(guard, 5, T0 - 3600 - 59, T0 + 1.0)
    assert actions(verdicts) == [("reject", "stamp_jump"), ("reset", "stamp_reset")] + [("accept", "")] * 3


def test_late_delivery_in_order_is_accepted_without_reset():
    guard = InputGuard()
    stream(guard, 10, T0, T0)
    late = feed(guard, T0 + 10 / 30, T0 + 10 / 30 + 2.5)   # DDS repair held it back 2.5 s
    assert late.action == "accept"
    assert actions(stream(guard, 3, T0 + 11 / 30, T0 + 2.9)) == [("accept", "")] * 3


def test_staleness_is_measured_from_arrival():
    guard = InputGuard(GuardSettings(max_image_age=0.5))
    stream(guard, 5, T0 - 7200, T0)                        # two hours behind: not stale
    v = feed(guard, T0 - 7200 + 1.0, T0 + 1.0, now=T0 + 1.8)     # waited 0.8 s in the node
    assert (v.action, v.reason) == ("reject", "stale") and v.queue_age == pytest.approx(0.8)
    assert "stale" not in BAD_STAMP_REASONS
    v = feed(InputGuard(GuardSettings(max_image_age=0.0)), T0, T0, now=T0 + 30)
    assert v.action == "accept"                            # 0 = never stale


@pytest.mark.parametrize("sec, nanosec", [(0, 0), (T0, 1_000_000_000), (5, 4_294_967_295)])
def test_malformed_stamps_are_invalid(sec, nanosec):
    v = InputGuard().check(int(sec), nanosec, T0)
    assert (v.action, v.reason) == ("reject", "stamp_invalid")


def test_camera_clock_ahead_is_rejected_with_the_fix():
    guard = InputGuard(GuardSettings(max_future_stamp=5.0))
    verdicts = stream(guard, 10, T0 + 12, T0)
    assert all((v.action, v.reason) == ("reject", "stamp_future") for v in verdicts)
    assert "AHEAD" in verdicts[-1].warning and "11.970 s" in verdicts[-1].warning   # 12 s − 30 ms latency


def test_zero_node_clock_names_the_missing_clock_topic():
    guard = InputGuard()
    v = feed(guard, T0, 0.0)
    assert (v.action, v.reason) == ("reject", "stamp_future")
    assert "/clock" in v.warning


def test_gap_estimator_counts_missing_frames_at_the_cameras_rate():
    gaps = GapEstimator(expected_rate=30.0)
    stamps = [i / 30 for i in range(40) if i not in (20, 21, 22, 31)]
    assert sum(gaps.observe(s) for s in stamps) == 4


def test_gap_estimator_learns_a_slower_camera_and_ignores_jitter_and_pauses():
    gaps = GapEstimator(expected_rate=30.0)                # the camera really runs at 10 Hz
    warmup = sum(gaps.observe(i / 10) for i in range(6))   # 1/expected_rate until 5 intervals
    assert gaps.period() == pytest.approx(0.1)
    jitter = [0.0, 0.02, -0.02, 0.015, -0.02, 0.01] * 5    # intervals 60..140 ms: under half a period off
    steady = sum(gaps.observe(0.6 + i / 10 + j) for i, j in enumerate(jitter))
    assert steady == 0 and warmup > 0
    assert gaps.observe(100.0) == 0                        # a 97 s pause, not 970 lost frames
    assert gaps.observe(50.0) == 0                         # backwards: no count


def test_gap_estimator_ignores_outlier_stamps():
    guard = InputGuard(GuardSettings(expected_rate=30.0))
    lost = 0
    for i in range(60):
        lost += guard.note_arrival(*split(T0 + i / 30), T0 + i / 30)
        if i % 10 == 5:      # between two good frames: a past, a far-future and a malformed stamp
            lost += guard.note_arrival(*split(T0 + i / 30 - 0.5), T0 + i / 30)
            lost += guard.note_arrival(*split(T0 + 1e6), T0 + i / 30)
            lost += guard.note_arrival(int(T0) + 1, 3_000_000_000, T0 + i / 30)
    assert lost == 0
    # A new time base (3 frames in a row behind the newest stamp) restarts, then counts again.
    gaps = GapEstimator(expected_rate=10.0)
    counts = [gaps.observe(s) for s in (100.0, 100.1, 50.0, 50.1, 50.2, 50.3, 50.6)]
    assert counts == [0, 0, 0, 0, 0, 0, 2]


def test_stream_faster_than_the_clock_is_accepted():
    # `ros2 bag play -r 3` without --clock: stamps advance 3 s per second of node clock, and
    # the node processes only every 10th frame (it is slower than the stream).
    guard = InputGuard()
    verdicts = [feed(guard, T0 - 600 + 3 * i / 30, T0 + i / 30) for i in range(0, 300, 10)]
    assert all(v.action == "accept" for v in verdicts)


def test_outlier_stamps_do_not_raise_a_clock_warning():
    # A live stream with every third frame an outlier (far future or far past): the clock agrees,
    # so no "stamps are behind/ahead" warning, whatever the outliers say.
    guard = InputGuard()
    warnings = []
    for i in range(60):
        now = T0 + i / 30
        warnings.append(feed(guard, now - 0.03, now).warning)
        warnings.append(feed(guard, now + 1e6 if i % 2 else 1000.0, now).warning)
    assert warnings == [None] * 120
