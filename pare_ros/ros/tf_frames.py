"""TF frames of one body (design §4.4): ``body_<id>``, ``head_<id>`` and the 24 SMPL joints.

Tree (parent → child), all stamped with the image stamp::

    <image frame_id> → body_<id>           REP-155: origin mid-hips, x forward, y left, z up
    body_<id>        → head_<id>           SMPL head joint with REP-155 axes (optional)
    body_<id>        → <prefix>pelvis_<id> SMPL root frame (x = person's left, y up, z forward)
    <prefix><parent>_<id> → <prefix><joint>_<id>  SMPL local rotation, rest-pose bone offset

so composing the chain from the camera frame is exactly SMPL forward kinematics: the pelvis has
rotation ``rotmats[0]`` at ``rest_joints[0] + transl``, and every joint lands on ``joints3d``.
Everything is computed for all joints, and with :func:`bodies_transforms` for all people of a
frame, at once with NumPy (this runs every frame).
"""
from __future__ import annotations

import functools
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..constants import SMPL_JOINT_NAMES, SMPL_PARENTS
from .tf_message import TransformBundle

#: Columns are the REP-155 body axes (x forward, y left, z up) written in SMPL's rest axes
#: (x = person's left, y = up, z = forward): R_body = R_global · M.
REP_TO_SMPL = np.array([[0.0, 1.0, 0.0],
                        [0.0, 0.0, 1.0],
                        [1.0, 0.0, 0.0]])
LEFT_HIP, RIGHT_HIP, HEAD = 1, 2, 15


def _quaternion_map() -> Tuple[np.ndarray, np.ndarray]:
    """(W [9,20], b [20]): ``m.reshape(9) @ W + b`` gives the four unnormalised quaternion
    candidates of a rotation matrix m (x, y, z, w each; the largest-diagonal branches of
    Shepperd's method, as SciPy's from_matrix) followed by the branch scores (m00, m11, m22,
    trace)."""
    w, b = np.zeros((9, 20)), np.zeros(20)
    e = lambda r, c: 3 * r + c                                          # noqa: E731
    candidates = [   # (column, constant, [(row, col, coefficient)])
        (0, 1, [(0, 0, 1), (1, 1, -1), (2, 2, -1)]), (1, 0, [(1, 0, 1), (0, 1, 1)]),
        (2, 0, [(2, 0, 1), (0, 2, 1)]), (3, 0, [(2, 1, 1), (1, 2, -1)]),
        (4, 0, [(0, 1, 1), (1, 0, 1)]), (5, 1, [(0, 0, -1), (1, 1, 1), (2, 2, -1)]),
        (6, 0, [(2, 1, 1), (1, 2, 1)]), (7, 0, [(0, 2, 1), (2, 0, -1)]),
        (8, 0, [(0, 2, 1), (2, 0, 1)]), (9, 0, [(1, 2, 1), (2, 1, 1)]),
        (10, 1, [(0, 0, -1), (1, 1, -1), (2, 2, 1)]), (11, 0, [(1, 0, 1), (0, 1, -1)]),
        (12, 0, [(2, 1, 1), (1, 2, -1)]), (13, 0, [(0, 2, 1), (2, 0, -1)]),
        (14, 0, [(1, 0, 1), (0, 1, -1)]), (15, 1, [(0, 0, 1), (1, 1, 1), (2, 2, 1)]),
        (16, 0, [(0, 0, 1)]), (17, 0, [(1, 1, 1)]), (18, 0, [(2, 2, 1)]), (19, 0, [(0, 0, 1), (1, 1, 1), (2, 2, 1)]),
    ]
    for column, constant, terms in candidates:
        b[column] = constant
        for r, c, coefficient in terms:
            w[e(r, c), column] = coefficient
    return w, b


_QUAT_W, _QUAT_B = _quaternion_map()
_ROWS = np.arange(1024)          # row indices for picking each matrix's branch


def quaternions_xyzw(rotmats: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] → unit quaternions [..., 4] (x, y, z, w), w ≥ 0.

    Shepperd's method (the branch of the largest of trace, m00, m11, m22: stable near 180°),
    as SciPy's ``Rotation.from_matrix(assume_valid=True)`` (equal to 3e-16), written as one
    matrix product for all matrices: SciPy's per-call overhead is larger than the maths for
    the 26 matrices of a person. The branch is picked by plain indexing (take_along_axis
    costs ~20 µs of Python for these sizes) and w made ≥ 0 in place.
    """
    m = np.asarray(rotmats, dtype=np.float64)
    flat = m.reshape(-1, 9)
    n = flat.shape[0]
    out = flat @ _QUAT_W                                                 # [N, 20]
    out += _QUAT_B
    rows = _ROWS[:n] if n <= _ROWS.size else np.arange(n)
    q = out[:, :16].reshape(n, 4, 4)[rows, out[:, 16:].argmax(axis=1)]  # [N, 4], a fresh array
    q /= np.sqrt(np.einsum("ij,ij->i", q, q))[:, None]
    np.negative(q, out=q, where=q[:, 3:4] < 0)
    return q.reshape(*m.shape[:-2], 4)


@functools.lru_cache(maxsize=64)
def _chain(joint: int, parents: Tuple[int, ...]) -> Tuple[int, ...]:
    """Joints from the root down to ``joint``."""
    chain = []
    while joint >= 0:
        chain.append(joint)
        joint = parents[joint]
    return tuple(reversed(chain))


def global_rotations(rotmats: np.ndarray, joint: int, parents: Sequence[int] = SMPL_PARENTS) -> np.ndarray:
    """Rotations of SMPL joint ``joint`` in the camera frame for P bodies: the product of the
    local rotations along its chain, root first. rotmats (P,24,3,3) → (P,3,3)."""
    chain = _chain(joint, parents if isinstance(parents, tuple) else tuple(np.asarray(parents).tolist()))
    out = rotmats[:, chain[0]]
    for j in chain[1:]:
        out = out @ rotmats[:, j]
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


@functools.lru_cache(maxsize=4096)
def frame_names(body_id: str, prefix: str = "smpl_",
                joint_names: Sequence[str] = SMPL_JOINT_NAMES) -> List[str]:
    """Child frame names of the joints: ``<prefix><name>_<body_id>`` (24 entries; cached per
    body: the same names every frame)."""
    return [f"{prefix}{name}_{body_id}" for name in joint_names]


@functools.lru_cache(maxsize=16)
def _joint_edges(parents: Tuple[int, ...]) -> Tuple[list, np.ndarray, object]:
    """(joints with a parent [J-1], their parents [J-1], an index of the former: a slice when
    they are consecutive, as SMPL's 1..23, so that gathering them is a view)."""
    idx = [j for j, p in enumerate(parents) if p >= 0]
    consecutive = idx == list(range(idx[0], idx[0] + len(idx))) if idx else False
    return idx, np.array([parents[j] for j in idx], dtype=np.intp), (
        slice(idx[0], idx[0] + len(idx)) if consecutive else np.array(idx, dtype=np.intp))


@functools.lru_cache(maxsize=4096)
def _body_tree(camera_frame: str, body_id: str, prefix: str, joint_names: Tuple[str, ...],
               parents: Tuple[int, ...], joint_frames: bool, head_frame: bool) -> Tuple[tuple, tuple]:
    """(parent frames, child frames) of one body's transforms, in :func:`body_transforms`'
    order (cached: the same names every frame while the person is tracked)."""
    body = f"body_{body_id}"
    parent_frames, child_frames = [camera_frame], [body]
    if head_frame:
        parent_frames.append(body)
        child_frames.append(f"head_{body_id}")
    if joint_frames:
        names = frame_names(body_id, prefix, joint_names)
        idx, par, _ = _joint_edges(parents)
        parent_frames += [body] + [names[p] for p in par]
        child_frames += [names[0]] + [names[j] for j in idx]
    return tuple(parent_frames), tuple(child_frames)


@functools.lru_cache(maxsize=1024)
def _frame_tree(camera_frame: str, body_ids: Tuple[str, ...], prefix: str, joint_names: Tuple[str, ...],
                parents: Tuple[int, ...], joint_frames: bool, head_frame: bool) -> Tuple[tuple, tuple]:
    """:func:`_body_tree` of every body of a frame, concatenated (one cache look-up a frame)."""
    trees = [_body_tree(camera_frame, body_id, prefix, joint_names, parents, joint_frames, head_frame)
             for body_id in body_ids]
    return tuple(f for tree in trees for f in tree[0]), tuple(f for tree in trees for f in tree[1])


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
        [body_<id>, head_<id>?, <prefix>pelvis_<id>, <prefix><joint>_<id> × 23?] as
        TransformStamped objects, ready to be sent together in one TFMessage.
    """
    return bodies_transforms([body], [body_id], header, prefix, parents, joint_names, joint_frames,
                             head_frame).to_msgs()


def bodies_transforms(bodies: Sequence, body_ids: Sequence[str], header, prefix: str = "smpl_",
                      parents: Sequence[int] = SMPL_PARENTS,
                      joint_names: Sequence[str] = SMPL_JOINT_NAMES,
                      joint_frames: bool = True, head_frame: bool = True) -> TransformBundle:
    """:func:`body_transforms` of every person of a frame at once (P bodies, one NumPy pass
    and one quaternion conversion for all): the concatenation of each body's list, in order,
    as a :class:`.tf_message.TransformBundle` (arrays; ``serialize()`` → TFMessage bytes).

    Raises:
        ValueError: a body with a non-finite pose (named; no transforms for the frame).
    """
    sec, nanosec = int(header.stamp.sec), int(header.stamp.nanosec)
    if not len(bodies):
        return TransformBundle(sec, nanosec)
    p = len(bodies)
    rotmats = np.array([b.rotmats for b in bodies], dtype=np.float64)                    # [P,24,3,3]
    rest = np.array([b.rest_joints for b in bodies], dtype=np.float64)                   # [P,24,3]
    transl = np.array([b.transl for b in bodies], dtype=np.float64).reshape(p, 3)
    joints = np.array([b.joints3d for b in bodies], dtype=np.float64)                    # [P,24,3]
    n_joints = rotmats.shape[1]
    parent_key = tuple(parents.tolist() if hasattr(parents, "tolist") else parents)   # hashable, for the caches
    if len(parents) != n_joints or len(joint_names) != n_joints:
        raise ValueError(f"{n_joints} joints but {len(parents)} parents, {len(joint_names)} names")
    # Every transform's rotation (9) and translation (3) side by side in one [P,T,12] array
    # that the products below write into (one finiteness check, no concatenation); rotations in
    # body_<id> (head, pelvis) are one stacked product each for the rotation and the offset.
    # Each 3×3 product is the same BLAS call as a separate ``a @ b`` (same values, same bits).
    n_rel = int(head_frame) + int(joint_frames)                       # transforms in body_<id>
    t = 1 + n_rel + (n_joints - 1 if joint_frames else 0)
    values = np.empty((p, t, 12))
    rot_all = values[..., :9].reshape(p, t, 3, 3)                     # views into ``values``
    trans_all = values[..., 9:]
    body_rot = np.matmul(rotmats[:, 0], REP_TO_SMPL, out=rot_all[:, 0])                 # [P,3,3]
    body_origin = np.add(joints[:, LEFT_HIP], joints[:, RIGHT_HIP], out=trans_all[:, 0])
    body_origin *= 0.5                                                                   # [P,3] mid-hips
    if n_rel:
        body_rot_t = body_rot.transpose(0, 2, 1)[:, None]                                # [P,1,3,3]
        rel_rot, offsets = np.empty((p, n_rel, 3, 3)), np.empty((p, n_rel, 3))
        if head_frame:
            # head_<id> = SMPL head joint with REP axes, expressed in body_<id>.
            np.matmul(global_rotations(rotmats, HEAD, parent_key), REP_TO_SMPL, out=rel_rot[:, 0])
            np.subtract(joints[:, HEAD], body_origin, out=offsets[:, 0])
        if joint_frames:
            # Pelvis relative to body_<id>: camera→pelvis is (R0, rest0 + transl).
            rel_rot[:, -1] = rotmats[:, 0]
            np.add(rest[:, 0], transl, out=offsets[:, -1])
            offsets[:, -1] -= body_origin
        np.matmul(body_rot_t, rel_rot, out=rot_all[:, 1:1 + n_rel])
        trans_all[:, 1:1 + n_rel] = (body_rot_t @ offsets[..., None])[..., 0]
    if joint_frames:
        _, par, take = _joint_edges(parent_key)
        rot_all[:, 1 + n_rel:] = rotmats[:, take]                                      # local rotations
        np.subtract(rest[:, take], rest.take(par, axis=1), out=trans_all[:, 1 + n_rel:])  # rest-pose bone offsets
    if not np.isfinite(values).all():
        raise ValueError(f"body {body_ids[int(np.argmin(np.isfinite(values).all(axis=(1, 2))))]}: "
                         "non-finite pose, no transforms")
    frame_parents, frame_children = _frame_tree(header.frame_id.lstrip("/"), tuple(map(str, body_ids)),
                                                prefix, tuple(joint_names), parent_key, bool(joint_frames),
                                                bool(head_frame))
    n = p * t
    return TransformBundle(sec, nanosec, frame_parents, frame_children, trans_all.reshape(n, 3),
                           quaternions_xyzw(rot_all.reshape(n, 3, 3)))


def body_roots(transforms: TransformBundle, people: int) -> Optional[np.ndarray]:
    """[P,7] poses of the ``body_<id>`` frames (position, quaternion x, y, z, w) in the camera
    frame, read from :func:`bodies_transforms`' output for ``people`` bodies (each body's first
    transform, the same numbers SmplBody.root carries); None when there are none to read."""
    if people == 0 or len(transforms) == 0:
        return None
    step = len(transforms) // people
    return np.concatenate((transforms.translations[::step], transforms.quaternions[::step]), axis=1)
