"""What the node publishes for coasting, lost and re-found tracks and for PARE's one-frame
errors: the real FrameProcessor (tracker, batched smoother, SMPL rebuild, message builders) on
images of known people (test stand-in detector/estimator of ``planner_stand_in``)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from planner_stand_in import BoxDetector, BoxEstimator, person_box, render  # noqa: E402
from pare_ros.camera import Intrinsics  # noqa: E402
from pare_ros.scenes.track_metrics import geodesic_deg  # noqa: E402

W, H = 640, 480
K = Intrinsics(520.0, 520.0, 320.0, 240.0)
PELVIS = np.array([0.3, 0.3, 4.0])            # camera frame: 4 m ahead, level camera 1.23 m high


def messages(stamp: float, visible: bool):
    from sensor_msgs.msg import CameraInfo, Image

    from pare_ros.ros.planner_outputs import stamp_msg

    rgb = render([person_box(PELVIS, K.fx, K.fy, K.cx, K.cy)] if visible else [], W, H)
    msg = Image(height=H, width=W, encoding="rgb8", step=3 * W, data=rgb.tobytes())
    msg.header.stamp, msg.header.frame_id = stamp_msg(stamp), "camera_optical"
    info = CameraInfo(width=W, height=H, k=[K.fx, 0.0, K.cx, 0.0, K.fy, K.cy, 0.0, 0.0, 1.0])
    info.header = msg.header
    return msg, info


def processor(body_model, estimator=None, markers=False):
    from pare_ros.ros.frame_processor import FrameProcessor, ProcessorSettings
    from pare_ros.tracking import BodySmoother, Tracker

    return FrameProcessor(estimator or BoxEstimator(body_model), BoxDetector(), Tracker(seed=0),
                          ProcessorSettings(publish_markers=markers, markers_mesh=False), smoother=BodySmoother())


def test_coasting_confidence_decays_lost_is_not_published_and_the_id_returns(body_model):
    from pare_ros.msg import SmplBody
    from visualization_msgs.msg import Marker

    fp = processor(body_model, markers=True)
    hidden = range(5, 13)                                    # 1.6 s without a detection at 5 Hz
    out = [fp.process(*messages(100 + k / 5, k not in hidden), now=float(k)) for k in range(16)]
    bodies = [o.bodies.bodies for o in out]
    track = bodies[2][0].track_id
    assert all(len(b) == 1 and b[0].track_id == track for b in bodies[2:5])
    seen = bodies[4][0].joint_confidence.max()
    coasting = [b[0] for b in bodies[5:7]]                   # 0.2 and 0.4 s ≤ max_coast
    assert all(c.tracking_state == SmplBody.TRACK_COASTING for c in coasting)
    conf = [c.joint_confidence.max() for c in coasting]
    assert seen > conf[0] > conf[1] > 0                       # decaying
    assert conf[1] == pytest.approx(seen * np.exp(-0.4 / 0.5), rel=1e-3)
    assert all(len(b) == 0 for b in bodies[7:13])             # LOST: not published
    deleted = [k for k, o in enumerate(out) for m in o.markers.markers if m.action == Marker.DELETE]
    assert deleted and set(deleted) == {7}                    # markers removed once, when lost
    assert all(o.tracks_removed == [] for o in out)           # …but it stays a track
    # Back: the first image is the probation frame (not published), then the same ID again.
    assert len(bodies[13]) == 0 and bodies[14][0].track_id == track
    assert bodies[14][0].tracking_state == SmplBody.TRACK_CONFIRMED


class Glitch:
    """BoxEstimator whose estimate of frame ``at`` is corrupted like PARE sometimes is."""

    def __init__(self, body_model, at: int, kind: str) -> None:
        self.inner, self.at, self.kind, self.calls = BoxEstimator(body_model), at, kind, 0
        self.body_model = body_model

    def estimate(self, rgb, boxes, intrinsics, **kw):
        from pare_ros.estimator import rebuild_bodies

        est = self.inner.estimate(rgb, boxes, intrinsics, **kw)
        self.calls += 1
        if self.calls - 1 == self.at and est.bodies:
            b = est.bodies[0]
            rot, transl = np.array(b.rotmats, np.float64), np.array(b.transl, np.float64)
            if self.kind == "flip":
                rot[0] = rot[0] @ np.diag([-1.0, 1.0, -1.0])                 # 180° about body up
            else:
                transl = transl + 1.5 * transl / np.linalg.norm(transl)     # 1.5 m along the ray
            est.bodies[0] = rebuild_bodies(self.body_model, [b], rot[None], np.asarray(b.betas)[None],
                                           transl[None], intrinsics)[0]
            self.good, self.bad = b, est.bodies[0]
        return est


def test_one_frame_flip_or_depth_outlier_does_not_reach_the_messages(body_model):
    from scipy.spatial.transform import Rotation

    runs, glitches = {}, {}
    for name in ("clean", "flip", "depth"):
        est = BoxEstimator(body_model) if name == "clean" else Glitch(body_model, 7, name)
        fp = processor(body_model, est)
        runs[name] = [fp.process(*messages(100 + k / 10, True)).bodies.bodies[0] for k in range(12)]
        glitches[name] = est
    clean = runs["clean"]
    # The glitches were real: the raw estimates of frame 7 were flipped / 1.5 m deeper.
    assert geodesic_deg(glitches["flip"].bad.rotmats[0], glitches["flip"].good.rotmats[0]) == pytest.approx(180, abs=1e-3)
    assert np.linalg.norm(glitches["depth"].bad.transl - glitches["depth"].good.transl) == pytest.approx(1.5, abs=1e-4)
    for kind in ("flip", "depth"):
        rot = [Rotation.from_rotvec([np.asarray(b.global_orient) for b in r]).as_matrix() for r in (clean, runs[kind])]
        angle = geodesic_deg(*rot).max()
        shift = max(np.linalg.norm(np.asarray(a.transl) - np.asarray(b.transl)) for a, b in zip(clean, runs[kind]))
        joints = max(np.abs(np.asarray(a.joints_3d) - np.asarray(b.joints_3d)).max() for a, b in zip(clean, runs[kind]))
        assert angle < 10 and shift < 0.10 and joints < 0.10, (kind, angle, shift, joints)
