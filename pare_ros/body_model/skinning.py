"""SMPL's blend shapes and linear blend skinning (smplx ``lbs``) as a few large operations.

Both classes take the same per-frame inputs:

* ``features`` [N, B + F]: the betas followed by SMPL's pose feature (local rotations of joints
  1..23 minus the identity, flattened: F = 207) — the rest-pose mesh is linear in them,
  ``v_posed = v_template + shapedirs·β + posedirs·f`` (one GEMM);
* ``world`` [N, J, 4, 4]: each joint's world transform G_j (rotation R_j, posed joint p_j), as
  :class:`.kinematics.ForwardKinematics` gives it; skinning moves a rest vertex v with
  ``Σ_j w_vj (R_j (v - J_j(β)) + p_j)``, J(β) the rest joints.

All constants are contracted once, in float64, and stored in the model's dtype.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Sequence

import numpy as np
import torch


class MeshSkinning(torch.nn.Module):
    """The posed mesh (smplx's ``lbs`` with its ``vertices`` output), or a subset of its vertices.

    The constants are stored component-major ([3, V]: all x, then all y, then all z), so that
    the per-vertex work runs over long contiguous rows (broadcasting over a trailing dim of
    size 3 is ~10× slower on the CPU).

    Args:
        template: [3, V] v_template; dirs: [B+F, 3, V] shape then pose blend shapes;
        weights: [J, V] skinning weights (transposed).
    """

    def __init__(self, template: torch.Tensor, dirs: torch.Tensor, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("template", template.reshape(-1).contiguous(), persistent=False)
        self.register_buffer("blend_dirs", dirs.reshape(len(dirs), -1).contiguous(), persistent=False)
        self.register_buffer("weights", weights.contiguous(), persistent=False)

    @classmethod
    def from_smpl(cls, v_template: torch.Tensor, shapedirs: torch.Tensor, posedirs: torch.Tensor,
                  lbs_weights: torch.Tensor) -> "MeshSkinning":
        """From smplx's buffers: v_template [V,3], shapedirs [V,3,B], posedirs [F, V*3],
        lbs_weights [V,J]."""
        n_verts = v_template.shape[0]
        dirs = torch.cat([shapedirs.permute(2, 1, 0), posedirs.view(-1, n_verts, 3).transpose(1, 2)])
        return cls(v_template.T, dirs, lbs_weights.T)

    def subset(self, vertex_indices: torch.Tensor | Sequence[int]) -> "MeshSkinning":
        """The same skinning for vertices ``vertex_indices`` [V'] only (in that order).

        Gathers the constants once (a copy of V'/V of them): keep it while the indices stay.
        """
        index = torch.as_tensor(vertex_indices, dtype=torch.long, device=self.weights.device)
        n_verts = self.weights.shape[1]
        return MeshSkinning(self.template.view(3, n_verts)[:, index],
                            self.blend_dirs.view(-1, 3, n_verts)[:, :, index], self.weights[:, index])

    @property
    def num_vertices(self) -> int:
        return self.weights.shape[1]

    def forward(self, features: torch.Tensor, world: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        """Posed vertices [N, V, 3].

        Args:
            features: [N, B+F]; world: [N, J, 4, 4]; rest: [N, J, 3] rest joints J(β).
        """
        blas = None
        if (len(features) >= NUMPY_MIN_BODIES and features.device.type == "cpu"
                and not (torch.is_grad_enabled() and any(x.requires_grad for x in (features, world, rest)))):
            blas = numpy_blas()
        with blas.limit(limits=1) if blas is not None else contextlib.nullcontext():
            return self._pose(features, world, rest, on_numpy=blas is not None)

    def _pose(self, features, world, rest, on_numpy: bool) -> torch.Tensor:
        n, n_joints = world.shape[:2]
        n_verts = self.num_vertices
        v_posed = _mesh_matmul(features, self.blend_dirs, self.template, on_numpy).view(n, 3, n_verts)
        # Transforms relative to the rest pose (smplx's ``rel_transforms``): R_j, p_j - R_j J_j.
        rot = world[:, :, :3, :3]
        shift = world[:, :, :3, 3] - (rot @ rest[..., None])[..., 0]
        relative = torch.cat([rot, shift[..., None]], dim=-1)                           # [N,J,3,4]
        # Blended per-vertex transforms of all people in one GEMM: [N*12, J] @ [J, V].
        relative = relative.view(n, n_joints, 12).transpose(1, 2).reshape(n * 12, n_joints)
        blended = _mesh_matmul(relative, self.weights, on_numpy=on_numpy).view(n, 3, 4, n_verts)
        posed = torch.addcmul(blended[:, :, 3], blended[:, :, 0], v_posed[:, None, 0])
        posed = posed.addcmul_(blended[:, :, 1], v_posed[:, None, 1])
        posed = posed.addcmul_(blended[:, :, 2], v_posed[:, None, 2])                   # [N,3,V]
        return posed.transpose(1, 2).contiguous()


def _mesh_matmul(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None,
                 on_numpy: bool = False) -> torch.Tensor:
    """``bias + a @ b``; ``on_numpy``: through NumPy on zero-copy views (CPU tensors outside
    autograd only; see :func:`numpy_blas`)."""
    if not on_numpy:
        return a @ b if bias is None else torch.addmm(bias, a, b)
    out = np.matmul(a.detach().numpy(), b.detach().numpy())
    if bias is not None:
        out += bias.numpy()
    return torch.from_numpy(out)


#: From this many bodies on, the CPU mesh's products go through NumPy (:func:`numpy_blas`): for
#: 1-3 torch's (MKL) kernels were as fast here and the thread limit costs 0.05-0.2 ms a call;
#: from 4 rows on MKL took 1.3-2× NumPy's time (docs/benchmarks.md, "SMPL mesh").
NUMPY_MIN_BODIES = 4


@functools.lru_cache(maxsize=1)
def numpy_blas():
    """threadpoolctl's controller of NumPy's BLAS if it is an optimised one (OpenBLAS, MKL,
    BLIS), else None (no threadpoolctl, or Debian's reference libblas).

    The mesh's two wide products (a few rows times [217, 20 670] and [24, 6 890]: memory-bound)
    run through it on the CPU, limited to one thread: there OpenBLAS's SGEMM took 55-65 % of
    the time of torch's (MKL) here (docs/benchmarks.md, "SMPL mesh"), and its threads
    spin-wait, so with other work on the cores two threads took up to 8× longer than one.
    Both are float32 products (< 1e-6 m apart)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    controller = ThreadpoolController().select(user_api="blas")
    fast = [lib for lib in controller.lib_controllers if lib.internal_api in ("openblas", "mkl", "blis")]
    return controller if fast and len(fast) == len(controller.lib_controllers) else None


class KeypointSkinning(torch.nn.Module):
    """Points that are linear maps of the posed mesh, without posing the mesh.

    A point ``kp_k = Σ_v r_kv v_v`` (a picked vertex: r one-hot; a joint regressor row) of the
    skinned mesh is, with rw_kvj = r_kv w_vj,
    ``Σ_j G_j · (x_kj, c_kj)``, c_kj = Σ_v rw_kvj, x_kj = Σ_v rw_kvj (v_posed_v - J_j(β)):
    homogeneous points in each joint's frame, linear in the features. Only the (k, j) pairs
    with some rw_kvj ≠ 0 contribute (a vertex follows ≤ 4-5 joints): their coefficients are
    one small GEMM, and the 30 points ~150 pairs instead of 6890 vertices. The (k, j) products
    land in ``slots`` [K_out, S]: output k sums its S slots (joints and padding included, so
    that outputs come in any order without a scatter).

    Args:
        regressor: [K, V] the points' vertex weights (float64); v_template [V, 3];
        shapedirs [V, 3, B]; posedirs [F, V*3]; lbs_weights [V, J];
        rest_template [J, 3], rest_dirs [J, 3, B]: J(β) = rest_template + rest_dirs·β;
        outputs: [K_out] each output's source: 0..J-1 a joint p_j, J + k the k-th point.
    """

    def __init__(self, regressor: torch.Tensor, v_template: torch.Tensor, shapedirs: torch.Tensor,
                 posedirs: torch.Tensor, lbs_weights: torch.Tensor, rest_template: torch.Tensor,
                 rest_dirs: torch.Tensor, outputs: torch.Tensor) -> None:
        super().__init__()
        f64 = dict(dtype=torch.float64, device="cpu")
        dtype = v_template.dtype
        r, w = regressor.to(**f64), lbs_weights.to(**f64)
        n_verts, n_joints = w.shape
        n_betas = shapedirs.shape[-1]
        key, joint = torch.nonzero((r[:, :, None] * w[None] != 0).any(1), as_tuple=True)
        rw = r[key] * w[:, joint].T                                                # [P,V]
        c = rw.sum(1)                                                             # [P]
        # x_p = Σ_v rw (T + S·β + P·f) - c_p (J_template + J_dirs·β): constant and directions.
        x0 = rw @ v_template.to(**f64) - c[:, None] * rest_template.to(**f64)[joint]     # [P,3]
        xb = (torch.einsum("pv,vcb->pcb", rw, shapedirs.to(**f64))
              - c[:, None, None] * rest_dirs.to(**f64)[joint])                         # [P,3,B]
        xf = rw @ posedirs.to(**f64).view(-1, n_verts, 3).permute(1, 0, 2).reshape(n_verts, -1)
        xf = xf.view(len(key), -1, 3).permute(1, 0, 2)                                # [F,P,3]
        # Homogeneous coefficients (x_p, c_p); pair P is an all-zero pad (joint 0, contributes 0).
        const = torch.zeros(len(key) + 1, 4, **f64)
        const[:-1, :3], const[:-1, 3] = x0, c
        dirs = torch.zeros(n_betas + xf.shape[0], len(key) + 1, 4, **f64)
        dirs[:n_betas, :-1, :3], dirs[n_betas:, :-1, :3] = xb.permute(2, 0, 1), xf
        self.register_buffer("coef_const", const.reshape(-1).to(dtype), persistent=False)
        self.register_buffer("coef_dirs", dirs.reshape(len(dirs), -1).to(dtype), persistent=False)
        self.register_buffer("pair_joints", torch.cat([joint, joint.new_zeros(1)]), persistent=False)
        # Slots into [pair products (P+1), joints (J)]: output k's pairs, padded with pair P.
        pad = len(key)
        sources = [[pad + 1 + int(o)] if o < n_joints
                   else (key == o - n_joints).nonzero()[:, 0].tolist() for o in outputs]
        width = max(len(s) for s in sources)
        slots = torch.tensor([s + [pad] * (width - len(s)) for s in sources])        # [K_out,S]
        self.register_buffer("slots", slots.reshape(-1), persistent=False)
        self._slots_shape = tuple(slots.shape)

    def forward(self, features: torch.Tensor, world: torch.Tensor) -> torch.Tensor:
        """features [N, B+F], world [N, J, 4, 4] → output points [N, K_out, 3]."""
        n = features.shape[0]
        coef = torch.addmm(self.coef_const, features, self.coef_dirs)
        coef = coef.view(n, len(self.pair_joints), 4, 1)                                 # [N,P+1,4,1]
        frames = world.index_select(1, self.pair_joints)[:, :, :3]                       # [N,P+1,3,4]
        points = torch.cat([(frames @ coef)[..., 0], world[:, :, :3, 3]], dim=1)          # [N,P+1+J,3]
        return points.index_select(1, self.slots).view(n, *self._slots_shape, 3).sum(2)
