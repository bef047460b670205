"""Ground-truth SMPL bodies in a camera: a :class:`~.types.PersonState` → camera-frame joints,
keypoints, vertices and the box of the projected mesh.

SMPL rotates the whole body about the pelvis J(β)₀ (smplx's root transform is [R | J₀]), so a
person whose pelvis is at ``root`` has smplx ``transl = root − J(β)₀``. ``local_*`` hold the same
body posed with the identity root rotation and the pelvis at the origin: any root rotation R
then gives the body ``R·local + root`` (pose blend shapes ignore the root), which the
perfect-network stand-in uses to fit crop-frame orientations without re-running SMPL.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from .types import CameraPose, PersonState, SceneCamera


@dataclass(frozen=True)
class SceneBody:
    """One person's true body in the camera optical frame (m; pixels for ``box``).

    rotmats (24,3,3): root = body → camera rotation, then the 23 parent-relative joints.
    betas (10,); transl (3,): smplx translation; rest_root (3,): J(β)₀; root (3,): pelvis.
    joints (24,3), keypoints (49,3) (PARE's joint set), vertices (6890,3): camera frame.
    local_joints / local_keypoints / local_vertices: identity root, pelvis at the origin.
    box (4,): x_min, y_min, x_max, y_max of the projected mesh.
    """

    person_id: int
    rotmats: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    rest_root: np.ndarray
    joints: np.ndarray
    keypoints: np.ndarray
    vertices: np.ndarray
    local_joints: np.ndarray
    local_keypoints: np.ndarray
    local_vertices: np.ndarray
    box: np.ndarray

    @property
    def root(self) -> np.ndarray:
        return self.joints[0]

    @property
    def orientation(self) -> np.ndarray:
        return self.rotmats[0]


def bodies_in_camera(body_model: torch.nn.Module, people: Sequence[PersonState], camera: SceneCamera,
                     camera_pose: Optional[CameraPose] = None) -> List[SceneBody]:
    """SMPL bodies of ``people`` (world frame; camera frame when ``camera_pose`` is None) seen
    by ``camera``, in one batched SMPL call.

    Raises:
        ValueError: a person's mesh reaches behind the camera (z ≤ 0.05 m): move the person in
            front of the camera.
    """
    if not people:
        return []
    if camera_pose is not None:
        people = [p.in_camera(camera_pose) for p in people]
    n = len(people)
    rot = np.zeros((n, 24, 3, 3))
    rot[:, 0] = np.eye(3)
    rot[:, 1:] = Rotation.from_rotvec(np.stack([p.body_pose for p in people]).reshape(-1, 3)).as_matrix().reshape(n, 23, 3, 3)
    betas = np.stack([np.asarray(p.betas, dtype=np.float64) for p in people])
    device = next(body_model.buffers()).device
    with torch.no_grad():
        out = body_model(torch.as_tensor(rot, dtype=torch.float32, device=device),
                         torch.as_tensor(betas, dtype=torch.float32, device=device))
    j0 = out.rest_joints[:, 0].double().cpu().numpy()                       # [N,3]
    local = [x.double().cpu().numpy() - j0[:, None] for x in (out.joints, out.joints49, out.vertices)]
    bodies = []
    for i, person in enumerate(people):
        r = np.asarray(person.orientation, dtype=np.float64)
        root = np.asarray(person.root, dtype=np.float64)
        joints, keypoints, vertices = (x[i] @ r.T + root for x in local)
        if vertices[:, 2].min() <= 0.05:
            raise ValueError(f"person {person.person_id}: body reaches behind the camera "
                             f"(nearest vertex z = {vertices[:, 2].min():.2f} m); place it in front")
        uv = camera.project(vertices)
        rotmats = rot[i].copy()
        rotmats[0] = r
        bodies.append(SceneBody(
            person.person_id, rotmats, betas[i], root - j0[i], j0[i], joints, keypoints, vertices,
            local[0][i], local[1][i], local[2][i],
            np.array([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])))
    return bodies


LEFT_SHOULDER, RIGHT_SHOULDER = 16, 17


def relaxed_pose(arm_drop_deg: float = 70.0) -> np.ndarray:
    """(23,3) body pose (axis-angle of joints 1..23) with both arms lowered by ``arm_drop_deg``
    from SMPL's T-pose (about the body's forward axis), the rest straight: how people mostly
    stand and walk. The T-pose (zeros) is the extreme for weak perspective when turned (arms
    reaching ±0.8 m in depth)."""
    pose = np.zeros((23, 3))
    a = math.radians(arm_drop_deg)
    pose[LEFT_SHOULDER - 1] = (0.0, 0.0, -a)
    pose[RIGHT_SHOULDER - 1] = (0.0, 0.0, a)
    return pose


def facing_camera(yaw_deg: float = 0.0) -> np.ndarray:
    """Body → camera rotation (3,3) of a person upright in a level camera (head towards −y),
    facing the camera's image plane (chest towards −z), turned by ``yaw_deg`` about the
    vertical (positive: towards the camera's +x)."""
    upright_facing = np.diag([1.0, -1.0, -1.0])          # body x → +x, y (up) → −y, z → −z
    return Rotation.from_rotvec([0.0, -math.radians(yaw_deg), 0.0]).as_matrix() @ upright_facing


def person_off_axis(off_axis_deg: float, distance: float, direction_deg: float = 0.0,
                    yaw_deg: float = 0.0, body_pose=None, betas=None, person_id: int = 0) -> PersonState:
    """A person in the camera frame whose pelvis is ``distance`` m from the camera centre on the
    ray ``off_axis_deg`` from the optical axis, towards image direction ``direction_deg``
    (0: right, 90: down, 180: left, 270: up), upright and turned by ``yaw_deg``
    (:func:`facing_camera`)."""
    a, phi = math.radians(off_axis_deg), math.radians(direction_deg)
    ray = np.array([math.sin(a) * math.cos(phi), math.sin(a) * math.sin(phi), math.cos(a)])
    return PersonState(person_id, distance * ray, facing_camera(yaw_deg),
                       np.zeros((23, 3)) if body_pose is None else np.asarray(body_pose, np.float64),
                       np.zeros(10) if betas is None else np.asarray(betas, np.float64))
