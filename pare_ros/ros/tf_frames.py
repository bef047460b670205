"""TF frames of one body (design §4.4): ``body_<id>``, ``head_<id>`` and the 24 SMPL joints.

Tree (parent → child), all stamped with the image stamp::

    <image frame_id> → body_<id>           REP-155: origin mid-hips, x forward, y left, z up
    body_<id>        → head_<id>           SMPL head joint with REP-155 axes (optional)
    body_<id>        → <prefix>pelvis_<id> SMPL root frame (x = person's left, y up, z forward)
    <prefix><parent>_<id> → <prefix><joint>_<id>  SMPL local rotation, rest-pose bone offset

so composing the chain from the camera frame is exactly SMPL forward kinematics: the pelvis has
rotation ``rotmats[0]`` at ``rest_joints[0] + transl``, and every joint lands on ``joints3d``.
Everything is computed for all joints at once with NumPy (this runs every frame).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
from scipy.spatial.transform import Rotation

from ..constants import SMPL_JOINT_NAMES, SMPL_PARENTS

#: Columns are the REP-155 body axes (x forward, y left, z up) written in SMPL's rest axes
#: (x = person's left, y = up, z = forward): R_body = R_global · M.
REP_TO_SMPL = np.array([[0.0, 1.0, 0.0],
                        [0.0, 0.0, 1.0],
                        [1.0, 0.0, 0.0]])
LEFT_HIP, RIGHT_HIP, HEAD = 1, 2, 15


def quaternions_xyzw(rotmats: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] → unit quaternions [..., 4] (x, y, z, w), w ≥ 0.

    SciPy's ``Rotation`` (stable near 180°; equals :func:`pare_ros.geometry.rotmat_to_quaternion`
    to 1e-12) rather than Torch, whose per-call overhead dominates for 26 small matrices.
    """
    m = np.asarray(rotmats, dtype=np.float64)
    q = Rotation.from_matrix(m.reshape(-1, 3, 3)).as_quat()
    q = np.where(q[:, 3:4] < 0, -q, q)
    return q.reshape(*m.shape[:-2], 4)


def global_rotation(rotmats: np.ndarray, joint: int, parents: Sequence[int] = SMPL_PARENTS) -> np.ndarray:
    """Rotation of SMPL joint ``joint`` in the camera frame: product of the local rotations
    along its chain, root first. rotmats: (24,3,3) → (3,3)."""
    chain = []
    j = joint
    while j >= 0:
        chain.append(j)
        j = parents[j]
    out = np.eye(3)
    for j in reversed(chain):
        out = out @ rotmats[j]
    return out


def body_frame(body) -> Tuple[np.ndarray, np.ndarray]:
    """Pose of ``body_<id>`` in the camera optical frame: (R (3,3), origin (3,) m).

    Origin: midpoint of the SMPL hip joints (1, 2) of ``joints3d``; orientation R_global · M
    (:data:`REP_TO_SMPL`). For an upright person facing the camera, x points toward the camera
    (−z optical) and z toward image-up (−y optical).
    """
    rotmats = np.asarray(body.rotmats, dtype=np.float64)
    joints = np.asarray(body.joints3d, dtype=np.float64)
    return rotmats[0] @ REP_TO_SMPL, 0.5 * (joints[LEFT_HIP] + joints[RIGHT_HIP])


def body_pose(body) -> Tuple[np.ndarray, np.ndarray]:
    """``body_<id>`` pose as (position (3,), quaternion (x, y, z, w)) in the camera frame."""
    rotation, origin = body_frame(body)
    return origin, quaternions_xyzw(rotation)


def frame_names(body_id: str, prefix: str = "smpl_",
                joint_names: Sequence[str] = SMPL_JOINT_NAMES) -> List[str]:
    """Child frame names of the joints: ``<prefix><name>_<body_id>`` (24 entries)."""
    return [f"{prefix}{name}_{body_id}" for name in joint_names]


def _transform_msgs(stamp, parents: List[str], children: List[str],
                    translations: np.ndarray, quaternions: np.ndarray) -> list:
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
    from std_msgs.msg import Header

    sec, nanosec = int(stamp.sec), int(stamp.nanosec)
    t_list, q_list = translations.tolist(), quaternions.tolist()   # Python floats for the setters
    out = []
    for parent, child, (tx, ty, tz), (qx, qy, qz, qw) in zip(parents, children, t_list, q_list):
        out.append(TransformStamped(
            header=Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=parent),
            child_frame_id=child,
            transform=Transform(translation=Vector3(x=tx, y=ty, z=tz),
                                rotation=Quaternion(x=qx, y=qy, z=qz, w=qw))))
    return out


def body_transforms(body, body_id: str, header, prefix: str = "smpl_",
                    parents: Sequence[int] = SMPL_PARENTS,
                    joint_names: Sequence[str] = SMPL_JOINT_NAMES,
                    joint_frames: bool = True, head_frame: bool = True) -> list:
    """All TF transforms of one body for one image, as geometry_msgs/TransformStamped.

    Args:
        body: a BodyEstimate (uses rotmats (24,3,3) local, rest_joints (24,3) without transl,
            transl (3,), joints3d (24,3); metres, camera optical frame).
        body_id: REP-155 body ID (the ``_<id>`` suffix).
        header: the image header; its frame_id (leading "/" removed: tf2 rejects it) is the
            parent of ``body_<id>`` and its stamp stamps every transform.
        joint_frames: include the 24 SMPL joint frames, pelvis included (``tf.joint_frames``).
        head_frame: include ``head_<id>``.
    Returns:
        [body_<id>, head_<id>?, <prefix>pelvis_<id>, <prefix><joint>_<id> × 23?], ready to be
        sent together in one TFMessage.
    """
    rotmats = np.asarray(body.rotmats, dtype=np.float64)
    rest = np.asarray(body.rest_joints, dtype=np.float64)
    transl = np.asarray(body.transl, dtype=np.float64).reshape(3)
    joints = np.asarray(body.joints3d, dtype=np.float64)
    if len(parents) != len(rotmats) or len(joint_names) != len(rotmats):
        raise ValueError(f"{len(rotmats)} joints but {len(parents)} parents, {len(joint_names)} names")
    body_rot, body_origin = body_frame(body)
    cam_frame = header.frame_id.lstrip("/")
    body_frame_id = f"body_{body_id}"
    names = frame_names(body_id, prefix, joint_names)

    rots = [body_rot]
    trans = [body_origin]
    parent_frames = [cam_frame]
    child_frames = [body_frame_id]
    if head_frame:
        # head_<id> = SMPL head joint with REP axes, expressed in body_<id>.
        head_rot = global_rotation(rotmats, HEAD, parents) @ REP_TO_SMPL
        rots.append(body_rot.T @ head_rot)
        trans.append(body_rot.T @ (joints[HEAD] - body_origin))
        parent_frames.append(body_frame_id)
        child_frames.append(f"head_{body_id}")
    rot_all = np.stack(rots)
    trans_all = np.stack(trans)
    if joint_frames:
        # Pelvis relative to body_<id>: camera→pelvis is (R0, rest0 + transl).
        rot_all = np.concatenate((rot_all, [body_rot.T @ rotmats[0]]))
        trans_all = np.concatenate((trans_all, [body_rot.T @ (rest[0] + transl - body_origin)]))
        parent_frames.append(body_frame_id)
        child_frames.append(names[0])
        idx = np.array([j for j in range(len(parents)) if parents[j] >= 0])
        par = np.array([parents[j] for j in idx])
        rot_all = np.concatenate((rot_all, rotmats[idx]))            # local rotations
        trans_all = np.concatenate((trans_all, rest[idx] - rest[par]))   # rest-pose bone offsets
        parent_frames += [names[p] for p in par]
        child_frames += [names[j] for j in idx]
    if not (np.isfinite(rot_all).all() and np.isfinite(trans_all).all()):
        raise ValueError(f"body {body_id}: non-finite pose, no transforms")
    return _transform_msgs(header.stamp, parent_frames, child_frames, trans_all,
                           quaternions_xyzw(rot_all))
