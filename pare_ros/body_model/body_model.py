"""The SMPL layer PARE uses (smplx 0.1.28 ``SMPL``, pose2rot=False), built from plain arrays.

``BodyModel`` turns PARE's rotation matrices and betas into the mesh, the 24 SMPL joints, PARE's
49 keypoints (pare-model-spec.md §3.4, §9) and the shaped rest joints (for per-joint TF frames).

smplx loads the official files and holds the model's data (``self.smpl``); the per-frame
arithmetic is smplx's ``lbs`` regrouped into few, large operations (one GEMM for both blend
shapes, forward kinematics by pointer jumping, skinning as one GEMM of the weights with all
people's transforms; :mod:`.kinematics`, :mod:`.skinning`): equal to smplx's forward to float
rounding (< 1e-6 m, test_body_model_smplx.py) at a fraction of its cost. ``forward(...,
vertices=False)`` skips the mesh (what a frame costs when nobody subscribes to it): joints and
keypoints do not need it (:class:`.skinning.KeypointSkinning`), and are the same numbers with
or without it.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Mapping, NamedTuple, Optional, Sequence

import numpy as np
import smplx
import torch
from smplx.utils import Struct

from .. import model_files
from ..constants import JOINT49_FROM_54
from .host_joints import HostJoints
from .kinematics import ForwardKinematics
from .skinning import KeypointSkinning, MeshSkinning
from .smpl_files import load_smpl_file, validate_smpl_arrays

GENDERS = ("neutral", "male", "female")


class BodyModelOutput(NamedTuple):
    """Posed SMPL body, in metres, in the SMPL frame rotated by the global orient (no translation)."""

    vertices: Optional[torch.Tensor]  # [N, 6890, 3]; None from forward(..., vertices=False)
    joints: torch.Tensor        # [N, 24, 3] SMPL skeleton joints
    joints49: torch.Tensor      # [N, 49, 3] PARE's keypoints (constants.JOINT49_NAMES)
    rest_joints: torch.Tensor   # [N, 24, 3] shaped rest-pose joints J(β)


class Skeleton(NamedTuple):
    """:class:`BodyModelOutput` without the mesh, as host arrays (the model's dtype), from
    :meth:`BodyModel.skeleton`."""

    joints: np.ndarray          # [N, 24, 3] SMPL skeleton joints
    joints49: np.ndarray        # [N, 49, 3] PARE's keypoints
    rest_joints: np.ndarray     # [N, 24, 3] shaped rest-pose joints J(β)


class BodyModel(torch.nn.Module):
    """SMPL (loaded by ``smplx.SMPL``, posed by :mod:`.kinematics`/:mod:`.skinning`) plus PARE's
    49-joint selection.

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
        self.register_buffer("J_regressor_h36m", None if J_regressor_h36m is None
                             else _regressor(J_regressor_h36m, 17, "J_regressor_h36m"))
        smpl, dtype = self.smpl, self.smpl.v_template.dtype
        parents = smpl.parents.tolist()
        # smplx's data, contracted in float64 (the same float32 numbers smplx computes with).
        template, shapedirs = smpl.v_template.double(), smpl.shapedirs.double()    # [V,3], [V,3,B]
        j_reg = smpl.J_regressor.double()                                            # [24,V]
        # J(β) is linear in β, and so are the parent-relative joints the chain starts from:
        # [J(β), J(β) - J(β)_parent] = const + dirs·β, one addmm.
        rest_template = j_reg @ template                                             # [24,3]
        rest_dirs = torch.einsum("jv,vcb->jcb", j_reg, shapedirs)                    # [24,3,B]
        const = torch.stack([rest_template, _minus_parent(rest_template, parents)])   # [2,24,3]
        dirs = torch.stack([rest_dirs, _minus_parent(rest_dirs, parents)]).permute(3, 0, 1, 2)
        self.register_buffer("_joints_const", const.reshape(-1).to(dtype), persistent=False)
        self.register_buffer("_joints_dirs", dirs.reshape(num_betas, -1).to(dtype), persistent=False)
        self.register_buffer("_identity", torch.eye(3, dtype=dtype), persistent=False)
        self.forward_kinematics = ForwardKinematics(parents)
        self.mesh = MeshSkinning.from_smpl(smpl.v_template, smpl.shapedirs, smpl.posedirs,
                                           smpl.lbs_weights)
        # PARE's 30 vertex-based keypoints: the 21 vertices smplx picks as extra joints, then the
        # 9 rows of J_regressor_extra; the 49 outputs follow JOINT49_FROM_54 over [24 joints, 30].
        picks = smpl.vertex_joint_selector.extra_joints_idxs
        regressor = torch.cat([torch.zeros(len(picks), template.shape[0], dtype=torch.float64),
                               self.J_regressor_extra.double()])                     # [30,V]
        regressor[torch.arange(len(picks)), picks] = 1.0
        self.keypoints = KeypointSkinning(
            regressor, smpl.v_template, smpl.shapedirs, smpl.posedirs, smpl.lbs_weights,
            rest_template, rest_dirs, torch.tensor(JOINT49_FROM_54))

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
        return self._shaped_joints(betas)[:, 0].contiguous()

    def forward(self, rotmats: torch.Tensor, betas: torch.Tensor,
                vertices: bool | MeshSkinning = True) -> BodyModelOutput:
        """Pose the body.

        Args:
            rotmats: [N, 24, 3, 3] joint rotations (global orient first), as PARE's ``pred_pose``.
            betas: [N, num_betas] shape coefficients (``pred_shape``).
            vertices: True: the mesh [N, 6890, 3]; a :meth:`vertex_subset`: only its vertices
                [N, V', 3], at V'/6890 of the cost; False: joints, keypoints and rest joints only
                (``vertices`` None), the same numbers (they do not need the mesh). On CPU
                tensors outside autograd the skeleton is posed with NumPy (:mod:`.host_joints`).
        """
        dtype = self.smpl.v_template.dtype
        rotmats, betas = rotmats.to(dtype), betas.to(dtype)
        if rotmats.device.type == "cpu" and not (
                torch.is_grad_enabled() and (rotmats.requires_grad or betas.requires_grad)):
            world, features, rest, joints49 = (torch.from_numpy(x) for x in
                                               self._host_joints()(rotmats.detach().numpy(), betas.detach().numpy()))
        else:
            shaped = self._shaped_joints(betas)                                       # [N,2,24,3]
            world = self.forward_kinematics(rotmats, shaped[:, 1])                   # [N,24,4,4]
            # Features of the blend shapes: betas and SMPL's pose feature (R_j - I, joints 1..23).
            features = torch.cat([betas, (rotmats[:, 1:] - self._identity).flatten(1)], dim=1)
            rest = shaped[:, 0].contiguous()
            joints49 = self.keypoints(features, world)
        skinning = vertices if isinstance(vertices, MeshSkinning) else self.mesh if vertices else None
        mesh = None if skinning is None else skinning(features, world, rest)
        return BodyModelOutput(vertices=mesh, joints=world[:, :, :3, 3].contiguous(), joints49=joints49,
                               rest_joints=rest)

    def skeleton(self, rotmats: np.ndarray, betas: np.ndarray) -> Skeleton:
        """The mesh-free pose of host arrays, posed on the host (:mod:`.host_joints`) whatever
        the module's device: rotmats [N,24,3,3], betas [N,num_betas] → :class:`Skeleton`. The
        same numbers as ``forward(..., vertices=False)`` on CPU tensors, without the tensors:
        for callers whose parameters are already on the host (the estimator after its one
        device→host copy, smoothed parameters)."""
        host = self._host_joints()
        world, _, rest, joints49 = host(np.asarray(rotmats, host.joints_dirs.dtype),
                                        np.asarray(betas, host.joints_dirs.dtype))
        return Skeleton(world[:, :, :3, 3], joints49, rest)

    def _host_joints(self) -> HostJoints:
        """The skeleton posed with NumPy (:mod:`.host_joints`) for the current CPU buffers
        (made again after ``.to()`` gave the module new ones)."""
        key = (self._joints_dirs.data_ptr(), self._joints_dirs.dtype)
        if getattr(self, "_host_key", None) != key:
            self._host, self._host_key = HostJoints(self), key
        return self._host

    def vertex_subset(self, vertex_indices: torch.Tensor | Sequence[int]) -> MeshSkinning:
        """Skinning of vertices ``vertex_indices`` [V'] only, for ``forward(..., vertices=subset)``
        (e.g. ``torch.arange(0, 6890, k)``: every k-th vertex, the same values as the full mesh's
        rows). Holds a V'/6890 copy of the mesh constants: build it once, keep it while the
        indices stay; it follows ``.to(device)`` like any module."""
        return self.mesh.subset(vertex_indices)

    def kinematic_chain(self, rotmats: torch.Tensor, rest: torch.Tensor):
        """SMPL forward kinematics (smplx ``batch_rigid_transform``).

        rotmats [N,24,3,3] local rotations, rest [N,24,3] J(β) → (global rotations [N,24,3,3],
        posed joints [N,24,3]); the body is posed about the origin like smplx (no translation).
        """
        relative = rest.clone()
        relative[:, 1:] -= rest[:, self.smpl.parents[1:]]
        world = self.forward_kinematics(rotmats, relative)                               # [N,24,4,4]
        return world[..., :3, :3].contiguous(), world[..., :3, 3].contiguous()

    def _shaped_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """[N, 2, 24, 3]: the rest joints J(β) and J(β) relative to each joint's parent."""
        return torch.addmm(self._joints_const, betas, self._joints_dirs).view(len(betas), 2, 24, 3)

    def h36m_joints(self, vertices: torch.Tensor) -> torch.Tensor:
        """Human3.6M evaluation joints [N, 17, 3] from vertices [N, 6890, 3]."""
        if self.J_regressor_h36m is None:
            raise model_files.MissingModelFileError(
                "no Human3.6M regressor loaded: " + model_files.describe("J_regressor_h36m"))
        return torch.einsum("kv,nvc->nkc", self.J_regressor_h36m.to(vertices.dtype), vertices)


def _minus_parent(x: torch.Tensor, parents: Sequence[int]) -> torch.Tensor:
    """Per-joint rows [J, ...] minus their parent's row (the root, joint 0, stays): smplx's rel_joints."""
    out = x.clone()
    out[1:] -= x[list(parents[1:])]
    return out


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
