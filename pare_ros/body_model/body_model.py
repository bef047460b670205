"""The SMPL layer PARE uses (smplx 0.1.28 ``SMPL``, pose2rot=False), built from plain arrays.

``BodyModel`` turns PARE's rotation matrices and betas into the mesh, the 24 SMPL joints, PARE's
49 keypoints (pare-model-spec.md §3.4, §9) and the shaped rest joints (for per-joint TF frames).
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Mapping, NamedTuple, Optional

import numpy as np
import smplx
import torch
from smplx.utils import Struct

from .. import model_files
from ..constants import JOINT49_FROM_54
from .smpl_files import load_smpl_file, validate_smpl_arrays

GENDERS = ("neutral", "male", "female")


class BodyModelOutput(NamedTuple):
    """Posed SMPL body, in metres, in the SMPL frame rotated by the global orient (no translation)."""

    vertices: torch.Tensor      # [N, 6890, 3]
    joints: torch.Tensor        # [N, 24, 3] SMPL skeleton joints
    joints49: torch.Tensor      # [N, 49, 3] PARE's keypoints (constants.JOINT49_NAMES)
    rest_joints: torch.Tensor   # [N, 24, 3] shaped rest-pose joints J(β)


class BodyModel(torch.nn.Module):
    """SMPL via ``smplx.SMPL`` plus PARE's 49-joint selection.

    Args:
        smpl_arrays: official SMPL arrays (see :mod:`.smpl_files`), e.g. from ``load_smpl_file``.
        J_regressor_extra: [9, 6890] regressor of the extra joints (``J_regressor_extra.npy``).
        J_regressor_h36m: optional [17, 6890] Human3.6M regressor (evaluation only).
        gender: recorded for reporting.
        num_betas: shape coefficients used (PARE: 10).
    """

    def __init__(self, smpl_arrays: Mapping[str, np.ndarray], J_regressor_extra: np.ndarray,
                 J_regressor_h36m: Optional[np.ndarray] = None, gender: str = "neutral",
                 num_betas: int = 10) -> None:
        super().__init__()
        arrays = validate_smpl_arrays(smpl_arrays)
        self.gender = gender
        self.num_betas = num_betas
        # data_struct: smplx would otherwise unpickle the model file itself (needs chumpy).
        # smplx prints a warning for every SMPL file with fewer than 300 shape components.
        with contextlib.redirect_stdout(io.StringIO()):
            self.smpl = smplx.SMPL(
                model_path="", data_struct=Struct(**arrays), gender=gender, num_betas=num_betas,
                create_betas=False, create_global_orient=False, create_body_pose=False,
                create_transl=False, batch_size=1)
        self.register_buffer("J_regressor_extra", _regressor(J_regressor_extra, 9, "J_regressor_extra"))
        self.register_buffer("joint_map", torch.tensor(JOINT49_FROM_54, dtype=torch.long))
        self.register_buffer("J_regressor_h36m", None if J_regressor_h36m is None
                             else _regressor(J_regressor_h36m, 17, "J_regressor_h36m"))
        # J(β) is linear in β: rest joints = J_template + J_shapedirs · β, precomputed.
        j_reg = torch.as_tensor(arrays["J_regressor"], dtype=torch.float32)
        self.register_buffer("J_template", j_reg @ self.smpl.v_template)                     # [24,3]
        self.register_buffer("J_shapedirs", torch.einsum("jv,vkb->jkb", j_reg, self.smpl.shapedirs))

    @classmethod
    def from_dir(cls, model_dir: str | Path | None = None, gender: str = "neutral",
                 num_betas: int = 10) -> "BodyModel":
        """Load ``smpl/SMPL_{GENDER}.npz`` (preferred) or ``.pkl`` and the regressors.

        Args:
            model_dir: directory in the ``model/`` layout (``None``: ``$PARE_ROS_MODEL_DIR`` or
                the repository's ``model/``).

        Raises:
            model_files.MissingModelFileError: a required file is absent (message: expected
                path, what it is, where to get it).
        """
        if gender not in GENDERS:
            raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
        smpl_path = model_files.require(f"smpl_{gender}", model_dir)
        extra_path = model_files.require("J_regressor_extra", model_dir)
        h36m_path = model_files.resolve("J_regressor_h36m", model_dir)
        return cls(load_smpl_file(smpl_path), _load_regressor(extra_path, 9),
                   _load_regressor(h36m_path, 17) if h36m_path.is_file() else None,
                   gender=gender, num_betas=num_betas)

    # ----------------------------------------------------------------------------------------
    @property
    def faces(self) -> np.ndarray:
        """Triangle vertex indices, int64 [13776, 3]."""
        return self.smpl.faces_tensor.cpu().numpy()

    @property
    def vertex_parts(self) -> np.ndarray:
        """SMPL part (joint index, 0..23) of each vertex: its largest skinning weight, int64 [6890]."""
        return self.smpl.lbs_weights.argmax(dim=1).cpu().numpy()

    @property
    def parents(self) -> np.ndarray:
        """Parent of each of the 24 joints, int64 [24], ``parents[0] == -1``."""
        return self.smpl.parents.cpu().numpy()

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """Shaped rest-pose joints J(β) [N, 24, 3] from betas [N, num_betas]."""
        return self.J_template + torch.einsum("jkb,nb->njk", self.J_shapedirs, betas)

    def forward(self, rotmats: torch.Tensor, betas: torch.Tensor) -> BodyModelOutput:
        """Pose the body.

        Args:
            rotmats: [N, 24, 3, 3] joint rotations (global orient first), as PARE's ``pred_pose``.
            betas: [N, num_betas] shape coefficients (``pred_shape``).
        """
        dtype = self.smpl.v_template.dtype
        rotmats, betas = rotmats.to(dtype), betas.to(dtype)
        out = self.smpl(betas=betas, global_orient=rotmats[:, :1], body_pose=rotmats[:, 1:],
                        pose2rot=False)
        extra = torch.einsum("kv,nvc->nkc", self.J_regressor_extra, out.vertices)      # [N,9,3]
        joints54 = torch.cat([out.joints, extra], dim=1)                                # 24+21+9
        return BodyModelOutput(vertices=out.vertices, joints=out.joints[:, :24],
                               joints49=joints54[:, self.joint_map],
                               rest_joints=self.rest_joints(betas))

    def h36m_joints(self, vertices: torch.Tensor) -> torch.Tensor:
        """Human3.6M evaluation joints [N, 17, 3] from vertices [N, 6890, 3]."""
        if self.J_regressor_h36m is None:
            raise model_files.MissingModelFileError(
                "no Human3.6M regressor loaded: " + model_files.describe("J_regressor_h36m"))
        return torch.einsum("kv,nvc->nkc", self.J_regressor_h36m.to(vertices.dtype), vertices)


def _regressor(value: np.ndarray, rows: int, name: str) -> torch.Tensor:
    value = np.asarray(value)
    if value.shape != (rows, 6890) or value.dtype.kind != "f":
        raise ValueError(f"{name} must be a float array of shape ({rows}, 6890), "
                         f"got {value.dtype} {value.shape}")
    return torch.as_tensor(value, dtype=torch.float32)


def _load_regressor(path: Path, rows: int) -> np.ndarray:
    """Read a ``.npy`` joint regressor without pickle and check its shape [rows, 6890]."""
    try:
        value = np.load(path, allow_pickle=False)
        _regressor(value, rows, path.name)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a usable joint regressor ({exc})") from None
    return value
