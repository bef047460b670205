"""Camera-frame errors of an estimated body against the scene truth.

All in the camera optical frame, with no alignment of any kind (a robot acts on absolute
positions): root translation (m, pelvis), global orientation (°, angle of R_est⁻¹·R_true),
MPJPE (mm, mean over the 24 SMPL joints). ``mpjpe_root_aligned_mm`` (pelvis subtracted) is
given too, to separate placement errors from articulation errors.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation


def rotation_error_deg(r_est: np.ndarray, r_true: np.ndarray) -> np.ndarray:
    """Geodesic angle (°) between rotations [..., 3, 3]."""
    r_est, r_true = np.asarray(r_est, np.float64), np.asarray(r_true, np.float64)
    rel = np.swapaxes(r_est, -1, -2) @ r_true
    flat = rel.reshape(-1, 3, 3)
    return np.degrees(Rotation.from_matrix(flat).magnitude()).reshape(rel.shape[:-2])


@dataclass(frozen=True)
class BodyErrors:
    orientation_deg: float
    root_m: float
    mpjpe_mm: float
    mpjpe_root_aligned_mm: float


def body_errors(joints_est: np.ndarray, orient_est: np.ndarray, joints_true: np.ndarray,
                orient_true: np.ndarray) -> BodyErrors:
    """Errors of one person: joints [24,3] (pelvis first, m) and root rotations [3,3]."""
    je, jt = np.asarray(joints_est, np.float64), np.asarray(joints_true, np.float64)
    if je.shape != jt.shape or je.ndim != 2 or je.shape[1] != 3:
        raise ValueError(f"joint arrays must both be [J,3], got {je.shape} and {jt.shape}")
    return BodyErrors(
        orientation_deg=float(rotation_error_deg(orient_est, orient_true)),
        root_m=float(np.linalg.norm(je[0] - jt[0])),
        mpjpe_mm=float(1000 * np.linalg.norm(je - jt, axis=1).mean()),
        mpjpe_root_aligned_mm=float(1000 * np.linalg.norm((je - je[0]) - (jt - jt[0]), axis=1).mean()),
    )


def estimate_errors(estimate, truth) -> BodyErrors:
    """Errors of a :class:`pare_ros.estimator.BodyEstimate` against a
    :class:`pare_ros.scenes.bodies.SceneBody`."""
    return body_errors(estimate.joints3d, estimate.rotmats[0], truth.joints, truth.orientation)
