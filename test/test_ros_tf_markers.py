"""TF frames and RViz markers of pare_ros.ros (in-process, real message classes, no DDS)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (source scripts/env.sh)")
pytest.importorskip("visualization_msgs.msg", reason="visualization_msgs not installed")
pytest.importorskip("geometry_msgs.msg", reason="geometry_msgs not installed")

from geometry_msgs.msg import Point  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from pare_ros.constants import SMPL_JOINT_NAMES, SMPL_PARENTS  # noqa: E402
from pare_ros.estimator import BodyEstimate  # noqa: E402
from pare_ros.preprocessing import Crop  # noqa: E402
from pare_ros.ros import markers, tf_frames  # noqa: E402

N_FACES = 13776


# ------------------------------------------------------------------------------------------
# A self-consistent fake body: random local rotations and rest joints, FK computed here.
# ------------------------------------------------------------------------------------------
def homogeneous(rot, trans):
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rot, trans
    return out


def forward_kinematics(rotmats, rest, transl):
    """Global 4×4 transforms [24,4,4] of the SMPL joints in the camera frame."""
    glob = np.zeros((24, 4, 4))
    for j, p in enumerate(SMPL_PARENTS):
        if p < 0:
            glob[j] = homogeneous(rotmats[0], rest[0] + transl)
        else:
            glob[j] = glob[p] @ homogeneous(rotmats[j], rest[j] - rest[p])
    return glob


def make_fake_body(seed=0, rotmats=None, rest=None, transl=None, image_size=(640, 480)):
    rng = np.random.default_rng(seed)
    rotmats = Rotation.random(24, random_state=seed).as_matrix() if rotmats is None else rotmats
    rest = rng.normal(scale=0.2, size=(24, 3)) if rest is None else rest
    transl = np.array([0.1, -0.2, 3.0]) + rng.normal(scale=0.1, size=3) if transl is None else transl
    joints = forward_kinematics(rotmats, rest, transl)[:, :3, 3]
    vertices = joints[rng.integers(0, 24, 6890)] + rng.normal(scale=0.05, size=(6890, 3))
    f, (w, h) = 500.0, image_size
    joints2d = np.stack((f * joints[:, 0] / joints[:, 2] + w / 2,
                         f * joints[:, 1] / joints[:, 2] + h / 2), -1)
    return BodyEstimate(
        box=np.array([100.0, 50.0, 300.0, 450.0]), score=0.9, crop=Crop(200.0, 250.0, 400.0),
        cam_crop=np.array([0.9, 0.01, 0.2]), betas=rng.normal(size=10),
        rotmats=rotmats.astype(np.float32),
        axis_angle=Rotation.from_matrix(rotmats).as_rotvec().astype(np.float32),
        transl=np.asarray(transl, dtype=np.float32), joints3d=joints.astype(np.float32),
        keypoints3d=np.zeros((49, 3)), joints2d=joints2d.astype(np.float32),
        keypoints2d=np.zeros((49, 2)), vertices=vertices.astype(np.float32),
        rest_joints=rest.astype(np.float32), part_attention=np.zeros((24, 2, 2)),
        part_segm_logits=np.zeros((25, 2, 2)), part_visibility=rng.uniform(size=24),
        truncation=0.1)


def upright_body():
    """A person standing upright facing the camera 3 m away (SMPL y up → optical −y)."""
    rest = np.zeros((24, 3))
    rest[1], rest[2] = (0.1, -0.1, 0.0), (-0.1, -0.1, 0.0)       # left hip at +x (person's left)
    for j in range(3, 24):
        rest[j] = rest[SMPL_PARENTS[j]] + (0.0, 0.1, 0.0)
    rotmats = np.repeat(np.eye(3)[None], 24, axis=0)
    rotmats[0] = np.diag([1.0, -1.0, -1.0])                    # π about x: facing the camera
    return make_fake_body(rotmats=rotmats, rest=rest, transl=np.array([0.0, 0.0, 3.0]))


def header(frame="camera_optical", sec=12, nanosec=345):
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = sec, nanosec
    return h


def transform_matrix(ts):
    t, q = ts.transform.translation, ts.transform.rotation
    rot = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    return homogeneous(rot, [t.x, t.y, t.z])


def compose_from_camera(transforms, camera_frame):
    """child frame → 4×4 pose in the camera frame, composing parent chains."""
    by_child = {ts.child_frame_id: ts for ts in transforms}
    cache = {camera_frame: np.eye(4)}

    def pose(frame):
        if frame not in cache:
            ts = by_child[frame]
            cache[frame] = pose(ts.header.frame_id) @ transform_matrix(ts)
        return cache[frame]
    return {child: pose(child) for child in by_child}


# ------------------------------------------------------------------------------------------
# TF
# ------------------------------------------------------------------------------------------
def test_quaternions_match_geometry_module_including_near_pi():
    torch = pytest.importorskip("torch")
    from pare_ros.geometry import rotmat_to_quaternion

    rots = Rotation.random(200, random_state=1).as_matrix()
    axes = np.random.default_rng(2).normal(size=(50, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    near_pi = Rotation.from_rotvec(axes * (np.pi - 1e-7)).as_matrix()
    allrots = np.concatenate((rots, near_pi, np.eye(3)[None]))
    ours = tf_frames.quaternions_xyzw(allrots)
    ref = rotmat_to_quaternion(torch.from_numpy(allrots)).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    back = Rotation.from_quat(ours).as_matrix()
    np.testing.assert_allclose(back, allrots, atol=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_tf_chain_reproduces_smpl_forward_kinematics(seed):
    body = make_fake_body(seed)
    transforms = tf_frames.body_transforms(body, "kqz17", header())
    poses = compose_from_camera(transforms, "camera_optical")
    glob = forward_kinematics(body.rotmats.astype(np.float64), body.rest_joints.astype(np.float64),
                              body.transl.astype(np.float64))
    for j, name in enumerate(SMPL_JOINT_NAMES):
        pose = poses[f"smpl_{name}_kqz17"]
        np.testing.assert_allclose(pose[:3, 3], body.joints3d[j], atol=1e-5, err_msg=name)
        np.testing.assert_allclose(pose[:3, :3], glob[j, :3, :3], atol=1e-6, err_msg=name)
    pelvis = poses["smpl_pelvis_kqz17"]
    np.testing.assert_allclose(pelvis[:3, :3], body.rotmats[0], atol=1e-6)
    np.testing.assert_allclose(pelvis[:3, 3], body.rest_joints[0] + body.transl, atol=1e-5)
    # Local rotations are the SMPL pose parameters themselves.
    by_child = {ts.child_frame_id: ts for ts in transforms}
    for j in range(1, 24):
        local = transform_matrix(by_child[f"smpl_{SMPL_JOINT_NAMES[j]}_kqz17"])
        np.testing.assert_allclose(local[:3, :3], body.rotmats[j], atol=1e-6)
        np.testing.assert_allclose(local[:3, 3], body.rest_joints[j]
                                   - body.rest_joints[SMPL_PARENTS[j]], atol=1e-6)


def test_tf_frame_names_parents_and_stamps():
    body = make_fake_body(3)
    h = header(frame="/camera_optical", sec=7, nanosec=99)
    transforms = tf_frames.body_transforms(body, "abc", h, prefix="smpl_")
    assert len(transforms) == 2 + 24
    by_child = {ts.child_frame_id: ts for ts in transforms}
    assert len(by_child) == 26
    assert by_child["body_abc"].header.frame_id == "camera_optical"      # no leading slash
    assert by_child["head_abc"].header.frame_id == "body_abc"
    assert by_child["smpl_pelvis_abc"].header.frame_id == "body_abc"
    assert by_child["smpl_left_knee_abc"].header.frame_id == "smpl_left_hip_abc"
    assert by_child["smpl_head_abc"].header.frame_id == "smpl_neck_abc"
    assert by_child["smpl_right_hand_abc"].header.frame_id == "smpl_right_wrist_abc"
    for ts in transforms:
        assert (ts.header.stamp.sec, ts.header.stamp.nanosec) == (7, 99)
        assert not ts.header.frame_id.startswith("/") and not ts.child_frame_id.startswith("/")
        assert ts.child_frame_id == ts.child_frame_id.lower()
    only_body = tf_frames.body_transforms(body, "abc", h, joint_frames=False)
    assert [ts.child_frame_id for ts in only_body] == ["body_abc", "head_abc"]
    custom = tf_frames.body_transforms(body, "abc", h, prefix="p_", head_frame=False)
    assert custom[0].child_frame_id == "body_abc" and custom[1].child_frame_id == "p_pelvis_abc"


def test_joint_names_match_message_constants():
    msg = pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built (colcon build)")
    for j, name in enumerate(SMPL_JOINT_NAMES):
        assert getattr(msg.SmplBody, name.upper()) == j


def test_body_frame_axes_upright_person_facing_camera():
    body = upright_body()
    poses = compose_from_camera(tf_frames.body_transforms(body, "b1", header()), "camera_optical")
    frame = poses["body_b1"]
    np.testing.assert_allclose(frame[:3, 0], [0, 0, -1], atol=1e-9)   # x: toward the camera
    np.testing.assert_allclose(frame[:3, 1], [1, 0, 0], atol=1e-9)    # y: person's left = image right
    np.testing.assert_allclose(frame[:3, 2], [0, -1, 0], atol=1e-9)   # z: image-up
    np.testing.assert_allclose(frame[:3, 3], 0.5 * (body.joints3d[1] + body.joints3d[2]), atol=1e-6)
    head = poses["head_b1"]
    np.testing.assert_allclose(head[:3, 3], body.joints3d[15], atol=1e-6)
    np.testing.assert_allclose(head[:3, :3], frame[:3, :3], atol=1e-9)  # no pose: same axes
    position, quat = tf_frames.body_pose(body)
    np.testing.assert_allclose(Rotation.from_quat(quat).as_matrix(), frame[:3, :3], atol=1e-9)
    np.testing.assert_allclose(position, frame[:3, 3])


def test_head_frame_follows_head_rotation():
    body = make_fake_body(4)
    poses = compose_from_camera(tf_frames.body_transforms(body, "x", header()), "camera_optical")
    glob = forward_kinematics(body.rotmats.astype(np.float64), body.rest_joints.astype(np.float64),
                              body.transl.astype(np.float64))
    np.testing.assert_allclose(poses["head_x"][:3, :3], glob[15, :3, :3] @ tf_frames.REP_TO_SMPL,
                               atol=1e-6)
    np.testing.assert_allclose(poses["head_x"][:3, :3], poses["smpl_head_x"][:3, :3]
                               @ tf_frames.REP_TO_SMPL, atol=1e-6)


def test_tf_rejects_non_finite_pose():
    body = make_fake_body(5)
    body.rotmats[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        tf_frames.body_transforms(body, "x", header())


# ------------------------------------------------------------------------------------------
# Markers
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def faces():
    return np.random.default_rng(0).integers(0, 6890, size=(N_FACES, 3))


@pytest.fixture(scope="module")
def vertex_parts():
    return np.random.default_rng(1).integers(0, 24, size=6890)


def test_points_from_array_equals_constructor():
    arr = np.random.default_rng(0).normal(size=(100, 3))
    fast = markers.points_from_array(arr)
    assert fast == [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in arr]
    fast[0].x = 2.0                       # setters still work on bulk-built objects
    assert fast[0].x == 2.0


def test_body_markers_mesh_skeleton_label(faces):
    body = make_fake_body(0)
    h = header(frame="cam")
    out = markers.body_markers(body, 7, h, faces, color=(1.0, 0.5, 0.0), alpha=0.8,
                               body_id="kqz17", state=1, ns_prefix="pare/")
    mesh, skeleton, label = out
    assert [m.ns for m in out] == ["pare/mesh", "pare/skeleton", "pare/label"]
    assert all(m.id == 7 and m.action == Marker.ADD and m.header.frame_id == "cam" for m in out)
    assert mesh.type == Marker.TRIANGLE_LIST and len(mesh.points) == N_FACES * 3
    pts = np.array([(p.x, p.y, p.z) for p in mesh.points])
    np.testing.assert_array_equal(pts, body.vertices.astype(np.float64)[faces].reshape(-1, 3))
    assert len(mesh.colors) == 0 and (mesh.scale.x, mesh.scale.y, mesh.scale.z) == (1, 1, 1)
    assert mesh.pose.orientation.w == 1.0
    assert (mesh.color.r, mesh.color.g, mesh.color.b) == (1.0, 0.5, 0.0)
    assert mesh.color.a == pytest.approx(0.8)
    assert skeleton.type == Marker.LINE_LIST and len(skeleton.points) == 2 * 23
    seg = np.array([(p.x, p.y, p.z) for p in skeleton.points]).reshape(23, 2, 3)
    children = [j for j in range(24) if SMPL_PARENTS[j] >= 0]
    np.testing.assert_allclose(seg[:, 0], body.joints3d[children], atol=1e-6)
    np.testing.assert_allclose(seg[:, 1], body.joints3d[[SMPL_PARENTS[j] for j in children]],
                               atol=1e-6)
    assert label.type == Marker.TEXT_VIEW_FACING and label.text == "kqz17 (confirmed)"
    assert label.pose.position.y < body.joints3d[15, 1]          # above the head (image-up)


def test_marker_options(faces, vertex_parts):
    body = make_fake_body(1)
    no_mesh = markers.body_markers(body, 3, header(), faces, include_mesh=False)
    assert [m.ns for m in no_mesh] == ["skeleton", "label"] and no_mesh[1].text == "3"
    vis = markers.body_markers(body, 3, header(), faces, color_mode="visibility",
                               vertex_parts=vertex_parts)[0]
    assert len(vis.colors) == len(vis.points) == N_FACES * 3
    rgba = np.array([(c.r, c.g, c.b, c.a) for c in vis.colors[:30]])
    expected = markers.visibility_colors(body.part_visibility, vertex_parts)[faces[:10].reshape(-1)]
    np.testing.assert_allclose(rgba, expected, atol=1e-6)
    with pytest.raises(ValueError, match="vertex_parts"):
        markers.body_markers(body, 3, header(), faces, color_mode="visibility")
    with pytest.raises(ValueError, match="color_mode"):
        markers.body_markers(body, 3, header(), faces, color_mode="rainbow")
    big = markers.body_markers(body, 2 ** 32 - 1, header(), faces, include_mesh=False)
    assert big[0].id == (2 ** 32 - 1) % 2 ** 31                 # fits int32


@pytest.mark.parametrize("field", ["vertices", "joints3d"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_markers_reject_non_finite(faces, field, bad):
    body = make_fake_body(2)
    getattr(body, field)[5, 1] = bad
    with pytest.raises(markers.InvalidBodyError, match="non-finite"):
        markers.body_markers(body, 1, header(), faces)


def test_delete_markers_and_delete_all():
    h = header()
    deletes = markers.delete_markers(9, h, ns_prefix="p/")
    assert [(m.ns, m.id, m.action) for m in deletes] == [
        ("p/mesh", 9, Marker.DELETE), ("p/skeleton", 9, Marker.DELETE), ("p/label", 9, Marker.DELETE)]
    everything = markers.delete_all(h)
    assert len(everything) == 1 and everything[0].action == Marker.DELETEALL and everything[0].ns == ""
    scoped = markers.delete_all(h, ns_prefix="p/")
    assert [m.ns for m in scoped] == ["p/mesh", "p/skeleton", "p/label"]
    assert all(m.action == Marker.DELETEALL and m.header.frame_id == h.frame_id for m in scoped)


def test_track_colors_stable_and_distinct():
    assert markers.track_color(5) == markers.track_color(5)
    colors = np.array([markers.track_color(i) for i in range(8)])
    assert len({tuple(np.round(c, 3)) for c in colors}) == 8
    assert ((0 <= colors) & (colors <= 1)).all()


@pytest.mark.parametrize("mode", ["track", "visibility"])
def test_bundle_serialize_matches_rclpy(faces, vertex_parts, mode):
    h = header(frame="cam")
    bundle = markers.MarkerBundle()
    bundle.extend(markers.delete_all(h))
    for i in range(3):
        bundle.extend(markers.body_marker_bundle(make_fake_body(i), i, h, faces, color_mode=mode,
                                                 vertex_parts=vertex_parts, body_id=f"b{i}"))
    bundle.extend(markers.delete_markers(42, h))
    fast = bundle.serialize()
    assert bundle.last_path == "cdr"
    reference = serialize_message(bundle.to_msg())
    assert len(fast) == len(reference)
    decoded = deserialize_message(fast, MarkerArray)
    assert decoded == deserialize_message(reference, MarkerArray)
    assert len(decoded.markers) == 1 + 3 * 3 + 3
    assert len(decoded.markers[1].points) == N_FACES * 3


def test_bundle_serialize_falls_back_when_writer_disagrees(faces, monkeypatch):
    from pare_ros.ros import marker_cdr

    bundle = markers.body_marker_bundle(make_fake_body(0), 1, header(), faces)
    monkeypatch.setattr(marker_cdr, "fast_path_agrees", lambda: False)
    data = bundle.serialize()
    assert bundle.last_path == "objects"
    decoded = deserialize_message(data, MarkerArray)
    assert len(decoded.markers[0].points) == N_FACES * 3


def test_bundle_keeps_markers_reusable(faces):
    bundle = markers.body_marker_bundle(make_fake_body(0), 1, header(), faces)
    first = bundle.serialize()
    assert len(bundle.markers[0].index) == N_FACES * 3     # the record is not changed
    again = bundle.serialize()                             # padding bytes may differ, content not
    assert deserialize_message(again, MarkerArray) == deserialize_message(first, MarkerArray)
    with pytest.raises(ValueError, match="as long as"):
        markers.MarkerBundle().append(Marker(), points=np.zeros((3, 3)), colors=np.zeros((2, 4)))
