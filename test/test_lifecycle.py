"""pare_node as a managed (lifecycle) node, driven from this test process over DDS: transitions
through ~/change_state, ~/reset_tracks answering during a slow frame, marker lifetime and
deletion on deactivate, frame_id checks, CameraInfo reuse without waiting, idle-camera
diagnostics, integer values for float parameters.

One node process for the whole module (autostart false); the tests run in file order and walk
it through its states.
"""
from __future__ import annotations

import time

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built (run scripts/bootstrap.sh)")

from ros_harness import NodeProcess  # noqa: E402
from test_ros_node import FRAME, TWO_PEOPLE, Client, _call_service  # noqa: E402

FOUR_PEOPLE = ";".join(f"{x},{y},{x + 150},{y + 440}" for x in (10, 170, 330, 480) for y in (10,))
NODE = "/pare_node"
PARAMS = {
    "autostart": False, "image_qos.reliability": "reliable", "model.allow_untrained": True,
    "detector.kind": "fixed", "detector.fixed_boxes": TWO_PEOPLE, "detector.max_people": 8,
    "tracker.min_hits": 1, "tracker.max_age": 0.3, "max_image_age": 0.0, "diagnostics_period": 0.3,
    "expected_rate": 30,            # an integer for a float parameter: must not crash start-up
}


def _state(client) -> str:
    from lifecycle_msgs.srv import GetState

    return _call_service(client, GetState, f"{NODE}/get_state", GetState.Request()).current_state.label


def _change(client, transition_id: int) -> bool:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    request = ChangeState.Request(transition=Transition(id=transition_id))
    return _call_service(client, ChangeState, f"{NODE}/change_state", request).success


def _status(client, suffix: str):
    for array in reversed(client.diagnostics):
        for status in array.status:
            if status.name.endswith(suffix):
                return status
    return None


def _set(client, name: str, value):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    reply = _call_service(client, SetParameters, f"{NODE}/set_parameters",
                          SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()]))
    return reply.results[0]


def _image(client, stamp, frame_id):
    msg = client.image(stamp)
    msg.header.frame_id = frame_id
    info = client.info(stamp)
    info.header.frame_id = frame_id
    return msg, info


def _frame_with_people(client, attempts: int = 4):
    """Stamp of a served frame with people in it. (The tracker may report a re-found track as
    LOST, without a body, on the first frame after a gap longer than its coasting time; CPU
    inference makes such gaps here.)"""
    for _ in range(attempts):
        stamp = client.next_stamp()
        client.send(client.image(stamp))
        if client.served(stamp).bodies:
            return stamp
    pytest.fail(f"no people in {attempts} frames")


@pytest.fixture(scope="module")
def managed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lifecycle")
    proc = NodeProcess("pare_ros.ros.node", dict(PARAMS, **{"model.dir": str(tmp / "no_model")}),
                       tmp / "pare_node.log", remaps={"image": "/cam/image", "camera_info": "/cam/camera_info"})
    client = Client("pare_lifecycle_client")
    try:
        yield proc, client
    finally:
        client.close()
        proc.stop()


def test_waits_unconfigured_without_autostart(managed):
    proc, client = managed
    assert _state(client) == "unconfigured", proc.output()
    assert client.node.count_publishers(f"{NODE}/bodies") == 0
    assert client.spin(lambda: _status(client, "/input") is not None, 30)
    assert any(kv.key == "lifecycle state" and kv.value == "unconfigured" for kv in _status(client, "/input").values)


def test_configure_loads_the_model_and_activate_subscribes(managed):
    from lifecycle_msgs.msg import Transition

    proc, client = managed
    assert _change(client, Transition.TRANSITION_CONFIGURE), proc.output()
    assert _state(client) == "inactive"
    assert client.spin(lambda: client.node.count_publishers(f"{NODE}/bodies") > 0, 30)
    assert client.image_pub.get_subscription_count() == 0, "subscribed to images while inactive"
    assert _change(client, Transition.TRANSITION_ACTIVATE), proc.output()
    assert _state(client) == "active"
    assert client.wait_connected(), proc.output()
    # The camera is idle: a warning, not an error.
    assert client.spin(lambda: "no images received" in (_status(client, "/input").message or ""), 30)
    assert _status(client, "/input").level == b"\x01"


def test_no_camera_info_ever_is_warned_once(managed):
    proc, client = managed
    for count in (1, 2):
        client.send(client.image(client.next_stamp()), info=False)
        assert client.spin(lambda: client.counter("missing_camera_info") >= count, 30), proc.output()
    assert proc.output().count("no CameraInfo ever received on /cam/camera_info") == 1


def test_serves_frames_and_integer_float_parameters(managed):
    proc, client = managed
    assert client.prime(), proc.output()
    result = _set(client, "markers.lifetime", 3)          # `ros2 param set ... 3`: an integer
    assert result.successful, result.reason
    assert not _set(client, "markers.lifetime", "long").successful
    stamp = _frame_with_people(client)
    assert client.spin(lambda: any(m.header.stamp == stamp and m.action == m.ADD
                                   for a in client.markers for m in a.markers), 30)
    lifetimes = {(m.lifetime.sec, m.lifetime.nanosec) for a in client.markers for m in a.markers
                 if m.header.stamp == stamp and m.action == m.ADD}
    assert lifetimes == {(3, 0)}, "markers must expire (they vanish when the node pauses or dies)"


def test_camera_info_sent_once_serves_later_frames_without_waiting(managed):
    proc, client = managed
    first = client.next_stamp()
    calibration = client.info(first, k=(600.0, 0, 321.0, 0, 610.0, 241.0, 0, 0, 1.0))
    client.send(client.image(first), info_msg=calibration)
    client.served(first)
    client.spin(lambda: False, 0.5)
    waits_before = int(next(kv.value for kv in _status(client, "/input").values if kv.key == "camera_info waits"))
    stamps = []
    for _ in range(3):
        stamps.append(client.next_stamp())
        client.send(client.image(stamps[-1]), info=False)
        client.served(stamps[-1])
    for stamp in stamps:
        assert list(client.bodies_for(stamp)[0].intrinsics) == [600.0, 610.0, 321.0, 241.0]
    assert client.spin(lambda: any(kv.key == "camera_info pairing" and kv.value == "latest"
                                   for kv in _status(client, "/input").values), 10)
    waits = int(next(kv.value for kv in _status(client, "/input").values if kv.key == "camera_info waits"))
    assert waits - waits_before <= 1, "the worker waited for a CameraInfo on every frame"


def _send_in_new_frame(client, image, info) -> None:
    """An image whose frame_id the node has not paired yet: its CameraInfo first, delivered.
    (The node waits for a trailing CameraInfo only in frames it has paired before: with Jazzy's
    Fast DDS the info can arrive after its image, and this one frame would be skipped as
    missing_camera_info.)"""
    client.send_info(info)
    assert client.infos_delivered(), "the node never received the CameraInfo"
    client.send(image, info=False)


def test_frame_id_checks_and_override(managed):
    proc, client = managed
    empty = client.next_stamp()
    client.send(*_image(client, empty, ""))
    assert client.spin(lambda: client.counter("no_frame_id") >= 1, 30), proc.output()
    assert "camera_frame_id" in proc.output()
    link = client.next_stamp()
    image, info = _image(client, link, "camera_link")
    _send_in_new_frame(client, image, info)
    assert client.served(link).header.frame_id == "camera_link"
    assert "'camera_link' does not look like an optical frame" in proc.output()
    assert _set(client, "camera_frame_id", "front_optical_frame").successful
    try:
        fixed = client.next_stamp()
        image, info = _image(client, fixed, "")
        _send_in_new_frame(client, image, info)
        assert client.served(fixed).header.frame_id == "front_optical_frame", proc.output()
    finally:
        assert _set(client, "camera_frame_id", "").successful


def test_detector_rebuilds_apply_between_frames(managed):
    proc, client = managed
    for boxes in ("20,20,300,460", TWO_PEOPLE, "340,30,620,470"):
        assert _set(client, "detector.fixed_boxes", boxes).successful
    stamp = _frame_with_people(client)
    assert len(client.bodies_for(stamp)[0].bodies) == 1           # the last setting, whole
    errors = [kv.value for st in (_status(client, "/inference"), _status(client, "/input"))
              for kv in st.values if kv.key == "internal_error"]
    assert errors == ["0"], errors
    assert _set(client, "detector.fixed_boxes", TWO_PEOPLE).successful


def test_reset_tracks_answers_within_100ms_during_a_slow_frame(managed):
    from std_srvs.srv import Trigger

    proc, client = managed
    cli = client.node.create_client(Trigger, f"{NODE}/reset_tracks")
    assert client.spin(cli.service_is_ready, 30)
    assert _set(client, "detector.fixed_boxes", FOUR_PEOPLE).successful
    client.prime()                                              # the four-person set-up is in place
    for _ in range(3):
        stamp = client.next_stamp()
        client.send(client.image(stamp))
        client.spin(lambda: False, 0.15)                        # inference of 4 people has begun
        if client.bodies_for(stamp):
            continue                                            # the frame was not slow enough: again
        start = time.monotonic()
        future = cli.call_async(Trigger.Request())
        assert client.spin(future.done, 10), "no reply from ~/reset_tracks"
        elapsed = time.monotonic() - start
        in_progress = not client.bodies_for(stamp)
        client.served(stamp)
        if in_progress:
            print(f"~/reset_tracks answered in {1000 * elapsed:.1f} ms while a frame was processed")
            # The acceptance bound of issue 11; a reply that waited for the frame would take
            # its whole inference (about a second or more for four people on a CPU).
            assert future.result().success and elapsed < 0.1, elapsed
            break
    else:
        pytest.fail("no frame was slow enough to call the service during its processing")
    assert _set(client, "detector.fixed_boxes", TWO_PEOPLE).successful


def test_deactivate_pauses_and_deletes_markers(managed):
    from lifecycle_msgs.msg import Transition

    proc, client = managed
    client.markers.clear()
    assert _change(client, Transition.TRANSITION_DEACTIVATE), proc.output()
    assert _state(client) == "inactive"
    assert client.spin(lambda: any(m.action == m.DELETEALL for a in client.markers for m in a.markers), 30)
    assert client.spin(lambda: client.image_pub.get_subscription_count() == 0, 30)
    stamp = client.next_stamp()
    client.send(client.image(stamp))
    client.spin(lambda: False, 1.0)
    assert not client.bodies_for(stamp), "published while inactive"
    assert _change(client, Transition.TRANSITION_ACTIVATE)
    assert client.wait_connected() and client.prime(), proc.output()


def test_cleanup_and_shutdown(managed):
    from lifecycle_msgs.msg import Transition

    proc, client = managed
    assert _change(client, Transition.TRANSITION_DEACTIVATE)
    assert _change(client, Transition.TRANSITION_CLEANUP)
    assert _state(client) == "unconfigured"
    assert client.spin(lambda: client.node.count_publishers(f"{NODE}/bodies") == 0, 30)
    assert _change(client, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    assert _state(client) == "finalized"
    assert "Traceback" not in proc.output()
