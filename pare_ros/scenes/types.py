"""The shared vocabulary of the ground-truth scenes.

Frames:
- **world**: REP-103 (x forward, y left, z up), ground plane z = 0.
- **camera optical frame**: x right, y down, z forward (REP-103 optical), as every output of
  the node.
- **SMPL body frame**: x to the body's left, y up (towards the head), z forward (out of the
  chest), origin at the model origin; a person's ``orientation`` maps body → world.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..camera import Intrinsics


def yaw_orientation(yaw: float) -> np.ndarray:
    """Body → world rotation (3,3) of an upright person facing world direction ``yaw`` (rad,
    0 = facing +x): body z → (cos, sin, 0), body y → +z, body x → the person's left."""
    forward = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    left = np.cross(up, forward)
    return np.stack([left, up, forward], axis=1)


@dataclass(frozen=True)
class CameraPose:
    """Pose of the camera optical frame in the world: p_world = rotation @ p_cam + translation."""

    rotation: np.ndarray      # (3,3)
    translation: np.ndarray   # (3,) m

    @classmethod
    def looking(cls, position, yaw: float = 0.0, pitch: float = 0.0) -> "CameraPose":
        """A camera at ``position`` (world, m) looking along world yaw ``yaw`` (rad), tilted
        down by ``pitch`` (rad, positive looks down), no roll."""
        cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
        z = np.array([cy * cp, sy * cp, -sp])          # optical axis
        x = np.array([sy, -cy, 0.0])                   # image right = world right of the view
        y = np.cross(z, x)                             # image down
        return cls(np.stack([x, y, z], axis=1), np.asarray(position, dtype=np.float64))

    def world_to_camera(self, points) -> np.ndarray:
        """[..., 3] world points → camera optical frame."""
        p = np.asarray(points, dtype=np.float64)
        return (p - self.translation) @ self.rotation

    def camera_to_world(self, points) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return p @ self.rotation.T + self.translation


@dataclass(frozen=True)
class SceneCamera:
    """A pinhole camera with an image size (no distortion)."""

    intrinsics: Intrinsics
    width: int
    height: int

    def project(self, points_cam) -> np.ndarray:
        """[..., 3] camera-frame points → pixels [..., 2] (points must be in front, z > 0)."""
        p = np.asarray(points_cam, dtype=np.float64)
        k = self.intrinsics
        return np.stack([k.fx * p[..., 0] / p[..., 2] + k.cx, k.fy * p[..., 1] / p[..., 2] + k.cy], -1)

    def ray(self, u: float, v: float) -> np.ndarray:
        """Unit ray (3,) through pixel (u, v) in the camera optical frame."""
        k = self.intrinsics
        d = np.array([(u - k.cx) / k.fx, (v - k.cy) / k.fy, 1.0])
        return d / np.linalg.norm(d)


@dataclass(frozen=True)
class PersonState:
    """One person at one instant, in the world frame.

    root: (3,) m, the SMPL root (pelvis) joint position in the world.
    orientation: (3,3) body → world rotation (see :func:`yaw_orientation` for upright people).
    body_pose: (23,3) axis-angle of the 23 non-root SMPL joints (parent-relative).
    betas: (10,) SMPL shape.
    velocity: (3,) m/s of the root in the world.
    """

    person_id: int
    root: np.ndarray
    orientation: np.ndarray
    body_pose: np.ndarray = field(default_factory=lambda: np.zeros((23, 3)))
    betas: np.ndarray = field(default_factory=lambda: np.zeros(10))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def in_camera(self, pose: CameraPose) -> "PersonState":
        """The same person with root, orientation and velocity expressed in the camera frame."""
        r = pose.rotation.T
        return PersonState(self.person_id, pose.world_to_camera(self.root), r @ self.orientation,
                           self.body_pose, self.betas, r @ self.velocity)
