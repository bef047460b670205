"""CameraInfo pairing (info_pairing) and upstream-detection pairing (detection_pairing): ROS-free,
with duck-typed messages."""
from __future__ import annotations

import threading
from types import SimpleNamespace

from pare_ros.ros.detection_pairing import DetectionPairing
from pare_ros.ros.info_pairing import InfoPairing

FRAME = "cam_optical_frame"


def info(stamp_ns, fx=500.0, frame=FRAME, width=640, height=480):
    header = SimpleNamespace(frame_id=frame, stamp=stamp_ns)
    roi = SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0)
    return SimpleNamespace(header=header, width=width, height=height, binning_x=0, binning_y=0, roi=roi,
                           k=[fx, 0, 320, 0, fx, 240, 0, 0, 1])


def valid(msg):
    return msg.k[0] > 0


def test_exact_stamp_wins_over_latest():
    pairing = InfoPairing(wait=0.0, is_valid=valid)
    first, second = info(100, fx=400.0), info(200, fx=600.0)
    pairing.add(first)
    pairing.add(second)
    assert pairing.lookup(100, FRAME, (640, 480)) == (first, "exact")


def test_latest_valid_info_serves_cameras_that_publish_it_once():
    pairing = InfoPairing(wait=0.0, is_valid=valid)
    good = info(100, fx=400.0)
    pairing.add(good)
    pairing.add(info(200, fx=0.0))           # an uncalibrated info does not replace a good one
    for stamp in (300, 400, 500):
        assert pairing.lookup(stamp, FRAME, (640, 480)) == (good, "latest")
    # ... but an image at exactly the invalid info's stamp gets that info (counted by the caller)
    assert pairing.lookup(200, FRAME, (640, 480))[1] == "exact"


def test_latest_respects_frame_size_and_permission():
    pairing = InfoPairing(wait=0.0, is_valid=valid)
    pairing.add(info(100))
    assert pairing.lookup(300, "other_optical_frame", (640, 480)) == (None, "missing")
    assert pairing.lookup(300, FRAME, (320, 240)) == (None, "missing")
    assert pairing.lookup(300, FRAME, (640, 480), allow_latest=False) == (None, "missing")
    unsized = info(150, width=0, height=0)
    pairing.add(unsized)
    assert pairing.lookup(300, FRAME, (320, 240)) == (unsized, "latest")


def test_a_dropped_info_costs_one_wait_not_one_per_frame():
    pairing = InfoPairing(wait=0.01, is_valid=valid)
    pairing.add(info(100))
    assert pairing.lookup(100, FRAME, (640, 480))[1] == "exact"        # the stream is paired
    # Infos stop (dropped, or a driver that sent one): one short wait, then none.
    modes = [pairing.lookup(stamp, FRAME, (640, 480))[1] for stamp in (200, 300, 400, 500)]
    assert modes == ["latest"] * 4
    assert pairing.waits == 1


def test_waits_for_an_info_that_arrives_after_its_image():
    pairing = InfoPairing(wait=30.0, is_valid=valid)
    pairing.add(info(100))
    pairing.lookup(100, FRAME, (640, 480))                               # paired
    late = info(200, fx=700.0)
    timer = threading.Timer(0.05, pairing.add, args=(late,))
    timer.start()
    try:
        # Returns as soon as the info comes (notified), far before the 30 s limit.
        assert pairing.lookup(200, FRAME, (640, 480)) == (late, "exact")
    finally:
        timer.cancel()


def test_a_cameras_first_image_waits_for_its_trailing_info():
    """The node's first image may arrive before its first info (seen on Jazzy: the demo's first
    frame was refused as missing_camera_info); a camera that never sends one costs one wait,
    and images with unknown frame_ids later cost none (they cannot stall the worker)."""
    pairing = InfoPairing(wait=30.0, is_valid=valid)
    first = info(100)
    timer = threading.Timer(0.05, pairing.add, args=(first,))
    timer.start()
    try:
        assert pairing.lookup(100, FRAME, (640, 480)) == (first, "exact")
    finally:
        timer.cancel()
    # Images with made-up frame_ids never wait once the node has seen a camera.
    modes = [pairing.lookup(stamp, f"made_up_{stamp}", (640, 480))[1] for stamp in (200, 300, 400)]
    assert modes == ["missing"] * 3 and pairing.waits == 1
    silent = InfoPairing(wait=0.01, is_valid=valid)
    modes = [silent.lookup(stamp, "other_camera", (640, 480))[1] for stamp in (100, 200, 300)]
    assert modes == ["missing"] * 3 and silent.waits == 1


def test_a_late_info_turns_waiting_back_on():
    pairing = InfoPairing(wait=0.0, is_valid=valid)
    pairing.add(info(100))
    assert pairing.lookup(200, FRAME, (640, 480))[1] == "latest"       # not paired: no wait
    pairing.wait = 30.0
    assert pairing.lookup(300, FRAME, (640, 480))[1] == "latest" and pairing.waits == 0
    pairing.add(info(300))                                              # its info was only late
    later = info(400)
    threading.Timer(0.05, pairing.add, args=(later,)).start()
    assert pairing.lookup(400, FRAME, (640, 480)) == (later, "exact") and pairing.waits == 1


def test_detections_before_or_after_their_image_pair_once():
    pairing = DetectionPairing(max_images=5)
    assert pairing.add_image(1, "img1") is None
    assert pairing.add_detections(1, "det1") == ("img1", "det1")
    assert pairing.add_detections(2, "det2") is None              # detections first
    assert pairing.add_image(2, "img2") == ("img2", "det2")
    assert pairing.pending() == 0 and pairing.unanswered == 0


def test_slow_detector_that_skips_frames():
    """A detector at a third of the camera rate, answering 2.5 frames late: every answered frame
    is processed with its own boxes; the skipped ones are counted, none is mispaired."""
    pairing = DetectionPairing(max_images=30)
    pairs = []
    for frame in range(30):
        pairing.add_image(frame, f"img{frame}")
        if frame >= 3 and (frame - 3) % 3 == 0:       # answers frame-3 now
            pairs.append(pairing.add_detections(frame - 3, f"det{frame - 3}"))
    assert pairs == [(f"img{f}", f"det{f}") for f in range(0, 27, 3)]
    # frames 1, 2, 4, 5, ..., 22, 23 were skipped by the detector; 25..29 still wait
    assert pairing.unanswered == 16 and pairing.pending() == 5


def test_queue_bound_counts_unanswered_images():
    pairing = DetectionPairing(max_images=3)
    for frame in range(10):
        pairing.add_image(frame, frame)
    assert pairing.pending() == 3 and pairing.unanswered == 7
    assert pairing.add_detections(2, "late") is None            # its image is gone
