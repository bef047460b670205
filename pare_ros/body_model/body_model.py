"""The SMPL layer PARE uses (smplx 0.1.28 ``SMPL``, pose2rot=False), built from plain arrays.

``BodyModel`` turns PARE's rotation matrices and betas into the mesh, the 24 SMPL joints, PARE's
49 keypoints (pare-model-spec.md §3.4, §9) and the shaped rest joints (for per-joint TF frames).

``forward(..., vertices=False)`` skips the mesh (what a frame costs when nobody subscribes to
it): the 24 joints follow exactly from the kinematic chain of the shaped rest joints J(β), and
the 49 keypoints need only the vertices that PARE's keypoints read (the ones smplx picks as
extra joints and the support of ``J_regressor_extra``), skinned with SMPL's own blend shapes and
weights — the same arithmetic as the full forward on a subset of the mesh.
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

    vertices: Optional[torch.Tensor]  # [N, 6890, 3]; None from forward(..., vertices=False)
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
        self._init_joints_path()

    def _init_joints_path(self) -> None:
        """Buffers of the mesh-free path.

        PARE's 30 vertex-based keypoints (21 vertices smplx picks as extra joints, 9 rows of
        ``J_regressor_extra``) are linear maps r_k of the posed vertices. With linear blend
        skinning, v = Σ_j w_vj (R_j v_posed + o_j) and v_posed = T + S·β + P·f (template, shape
        and pose blend shapes, f = pose feature), so
        ``kp_k = Σ_j R_j (M_kj + S_kj·β + P_kj·f) + Σ_j c_kj o_j`` with c_kj = Σ_v r_kv w_vj and
        M, S, P the r·w-weighted sums of T, S, P: contracted here once in float64, evaluated per
        frame in float64 (447 k multiply-adds per person instead of the 16 M of the full mesh).
        """
        smpl = self.smpl
        n_verts = smpl.v_template.shape[0]
        selector = smpl.vertex_joint_selector.extra_joints_idxs.cpu()
        picks = torch.zeros(len(selector), n_verts, dtype=torch.float64)
        picks[torch.arange(len(selector)), selector] = 1.0
        r = torch.cat([picks, self.J_regressor_extra.cpu().double()])                  # [30,V]
        rw = r[:, :, None] * smpl.lbs_weights.cpu().double()[None]                      # [30,V,24]
        posedirs = smpl.posedirs.cpu().double().reshape(-1, n_verts, 3)                 # [207,V,3]
        self.register_buffer("_kp_c", rw.sum(1))                                        # [30,24]
        self.register_buffer("_kp_m", torch.einsum("kvj,vc->kjc", rw, smpl.v_template.cpu().double()))
        self.register_buffer("_kp_s", torch.einsum("kvj,vcb->kjcb", rw,
                                                   smpl.shapedirs.cpu().double()[..., :self.num_betas]))
        self.register_buffer("_kp_p", torch.einsum("kvj,pvc->pkjc", rw, posedirs).reshape(posedirs.shape[0], -1))
        parents = smpl.parents.cpu().tolist()
        depth = [0] * len(parents)
        for j in range(1, len(parents)):
            depth[j] = depth[parents[j]] + 1
        # One batched step per tree depth (8 for SMPL) instead of one per joint (23).
        # Buffers, so that they move with the model (no host→device index copy per frame).
        self._depths = max(depth)
        for d in range(1, self._depths + 1):
            joints = [j for j in range(len(parents)) if depth[j] == d]
            self.register_buffer(f"_level{d}", torch.tensor(joints), persistent=False)
            self.register_buffer(f"_level{d}_parents", torch.tensor([parents[j] for j in joints]),
                                 persistent=False)
        self.register_buffer("_parents", torch.tensor(parents[1:], dtype=torch.long))

    @classmethod
    def from_dir(cls, model_dir: str | Path | None = None, gender: str = "neutral",
                 num_betas: int = 10) -> "BodyModel":
        """Load ``smpl/SMPL_{GENDER}.npz`` (preferred) or ``.pkl`` and the regressors.

        Args:
            model_dir: directory in the ``model/`` layout (``None``: ``$PARE_ROS_MODEL_DIR``, else
                ``~/.local/share/pare_ros/model``).

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

    def forward(self, rotmats: torch.Tensor, betas: torch.Tensor, vertices: bool = True) -> BodyModelOutput:
        """Pose the body.

        Args:
            rotmats: [N, 24, 3, 3] joint rotations (global orient first), as PARE's ``pred_pose``.
            betas: [N, num_betas] shape coefficients (``pred_shape``).
            vertices: compute the mesh (smplx's full forward); False: joints, keypoints and rest
                joints only (``vertices`` None), equal to the full forward's to float rounding.
        """
        dtype = self.smpl.v_template.dtype
        rotmats, betas = rotmats.to(dtype), betas.to(dtype)
        if not vertices:
            return self._joints_only(rotmats, betas)
        out = self.smpl(betas=betas, global_orient=rotmats[:, :1], body_pose=rotmats[:, 1:],
                        pose2rot=False)
        extra = torch.einsum("kv,nvc->nkc", self.J_regressor_extra, out.vertices)      # [N,9,3]
        joints54 = torch.cat([out.joints, extra], dim=1)                                # 24+21+9
        return BodyModelOutput(vertices=out.vertices, joints=out.joints[:, :24],
                               joints49=joints54[:, self.joint_map],
                               rest_joints=self.rest_joints(betas))

    def kinematic_chain(self, rotmats: torch.Tensor, rest: torch.Tensor):
        """SMPL forward kinematics (smplx ``batch_rigid_transform``) one tree depth at a time.

        rotmats [N,24,3,3] local rotations, rest [N,24,3] J(β) → (global rotations [N,24,3,3],
        posed joints [N,24,3]); the body is posed about the origin like smplx (no translation).
        """
        rel = rest.clone()
        rel[:, 1:] -= rest[:, self._parents]
        rot = rotmats.clone()
        pos = rel.clone()
        for d in range(1, self._depths + 1):
            idx, par = getattr(self, f"_level{d}"), getattr(self, f"_level{d}_parents")
            parent_rot = rot[:, par]
            pos[:, idx] = (parent_rot @ rel[:, idx, :, None])[..., 0] + pos[:, par]
            rot[:, idx] = parent_rot @ rotmats[:, idx]
        return rot, pos

    def _joints_only(self, rotmats: torch.Tensor, betas: torch.Tensor) -> BodyModelOutput:
        n = rotmats.shape[0]
        rest = self.rest_joints(betas)                                                   # [N,24,3]
        rot, joints = self.kinematic_chain(rotmats, rest)
        r64, b64 = rot.double(), betas.double()
        ident = torch.eye(3, dtype=torch.float64, device=rotmats.device)
        pose_feature = (rotmats[:, 1:].double() - ident).reshape(n, -1)                  # [N,207]
        x = (self._kp_m + torch.einsum("kjcb,nb->nkjc", self._kp_s, b64)
             + (pose_feature @ self._kp_p).reshape(n, *self._kp_m.shape))                # [N,30,24,3]
        offset = joints.double() - (r64 @ rest.double()[..., None])[..., 0]              # o_j [N,24,3]
        keypoints = torch.einsum("njcd,nkjd->nkc", r64, x) + torch.einsum("kj,njc->nkc", self._kp_c, offset)
        joints54 = torch.cat([joints, keypoints.to(joints.dtype)], dim=1)                # 24+21+9
        return BodyModelOutput(vertices=None, joints=joints, joints49=joints54[:, self.joint_map],
                               rest_joints=rest)

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
