"""Step 3 of :func:`pare_ros.camera.crop_to_camera`: the translation refinement on the keypoints.

Two parts, both per person on the K keypoints (coordinate-major [N,3,K] arrays):

* :func:`refine_translation` — the weighted linear least-squares translation that makes the
  ray-turned keypoints project, with the real intrinsics, onto PARE's own 2D keypoints
  (reweighted Gauss-Newton passes on the reprojection error);
* :func:`match_crop_camera` — Newton steps to the translation for which PARE's camera model,
  fitted to the real image of the body, returns PARE's own (s, tx, ty).

The sums over the keypoints run in NumPy, what is per person (assembling the 3×3 systems,
acceptance tests, the stop rule) in Python floats, and the 3×3 systems of all people in one
LAPACK call per step through NumPy's solve gufunc itself (:func:`_solve`).
"""
from __future__ import annotations

import math

import numpy as np

# PARE's crop camera (reference spec §3.4): perspective, f = 5000 px for the 224-px crop, principal
# point at the crop centre, body at depth 2·5000/(224·s); 2D keypoints divided by 112.
PARE_FOCAL = 5000.0
PARE_CROP = 224.0


try:                                   # NumPy's batched LAPACK solve, without np.linalg.solve's wrapper
    from numpy.linalg._umath_linalg import solve1 as _lapack_solve
except ImportError:                    # (a private module: should a NumPy version lack it)
    _lapack_solve = None


def _solve(m: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched solve of m [N,3,3] · x = b [N,3] → x [N,3] (LAPACK); NaN for a singular m (which
    callers reject, leaving that person as it was).

    The gufunc under ``np.linalg.solve`` called directly: the same LAPACK call and results, a
    fifth of the cost for a handful of systems (the wrapper's checks and error-state switching
    cost more than the solve). With invalid operations ignored (``crop_to_camera``'s error
    state) it returns NaN for a singular system rather than raising, the others solved as usual.
    """
    if _lapack_solve is not None:
        return _lapack_solve(m, b, signature="dd->d")
    try:
        return np.linalg.solve(m, b[..., None])[..., 0]
    except np.linalg.LinAlgError:                # rare (degenerate inputs): find which one(s)
        if len(m) == 1:
            return np.full_like(b, np.nan)
        return np.concatenate([_solve(m[i:i + 1], b[i:i + 1]) for i in range(len(m))])


def refine_translation(points, turned, cam, centres, sides, intrinsics, transl, iterations):
    """Translation [N,3] whose real-camera projection of the ray-turned keypoints ``turned``
    [N,3,K] best matches PARE's own 2D keypoints (of the crop-frame ``points`` [N,3,K]), from
    the start ``transl`` [N,3]; cam [N,3], centres [N,2], sides [N] as in ``crop_to_camera``.

    For a point P + T and its target pixel (u, v): fx·(X+Tx) − (u−cx)·(Z+Tz) = 0 and
    fy·(Y+Ty) − (v−cy)·(Z+Tz) = 0 are linear in T; weighting each by 1/(Z+Tz) of the previous
    estimate makes the residual a pixel error (Gauss-Newton on the reprojection error). A tiny
    pull towards the previous estimate keeps the 3×3 system regular for degenerate inputs.

    With rows (fx, 0, −du), (0, fy, −dv) and right-hand sides b = (du·Z − fx·X, dv·Z − fy·Y), the
    normal equations are AᵀA = [[fx²·S, 0, −fx·Su], [0, fy²·S, −fy·Sv], [−fx·Su, −fy·Sv, Sd]],
    Aᵀb = (fx·Sbu, fy·Sbv, −Sdb) with S = Σw², Su = Σw²·du, Sd = Σw²·(du² + dv²), Sbu = Σw²·b_u,
    Sdb = Σw²·(du·b_u + dv·b_v), …: seven weighted sums over the keypoints per pass (one NumPy
    product and sum), the systems assembled per person in Python floats and solved by LAPACK.

    That system is ill-conditioned for a small, far body (its keypoints nearly on one ray): its
    solution there moves with rounding, by as much as a 1-ulp change of the keypoints moves it
    (up to ~1e-5 m for bodies kilometres away). So the sums are the operations, in the order, of
    the former array form, and the solve is the same LAPACK call: the results are the same to
    the bit (a 3×3 elimination in Python floats, not much cheaper, would not be).
    """
    fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    # PARE's own 2D keypoints in pixels from (cx, cy): d = (u − cx) + side/2 · crop_xy with
    # crop_xy = 5000/112 · (P_xy + t) / (P_z + tz) (pare_crop_projection); per person t, tz,
    # u − cx, v − cy and side/2 as columns [N,6,1].
    columns = np.array([(tx, ty, 2 * PARE_FOCAL / (PARE_CROP * max(abs(s), 1e-4)), u - cx, v - cy, side / 2)
                        for (s, tx, ty), (u, v), side in zip(cam.tolist(), centres.tolist(), sides.tolist())])
    columns = columns.reshape(-1, 6)[..., None]
    crop_xy = PARE_FOCAL / (PARE_CROP / 2) * (points[:, :2] + columns[:, :2]) \
        / np.maximum(points[:, 2:] + columns[:, 2:3], 1e-6)                     # [N,2,K]
    d = columns[:, 3:5] + columns[:, 5:] * crop_xy
    z = turned[:, 2:]                                                           # [N,1,K]
    b = d * z - np.array(((fx,), (fy,))) * turned[:, :2]                        # [N,2,K]
    dd, db = d * d, d * b
    terms = np.concatenate((np.ones(z.shape), d, dd[:, :1] + dd[:, 1:], b, db[:, :1] + db[:, 1:]),
                           axis=1)                                              # [N,7,K]
    nearest = np.minimum.reduce(z, -1).tolist()                                 # [N][1]
    ffx, ffy = fx * fx, fy * fy
    transl = transl.tolist()
    for _ in range(iterations):
        w2 = 1.0 / np.maximum(z + np.array([t[2] for t in transl])[:, None, None], 1e-3) ** 2   # [N,1,K]
        systems = []                                 # per person AᵀA (row-major) then Aᵀb
        for (s, su, sv, sd, sbu, sbv, sdb), t in zip(np.add.reduce(terms * w2, -1).tolist(), transl):
            a, e, p, q = s * ffx, s * ffy, su * -fx, sv * -fy
            ridge = 1e-9 * max(a + e + sd, 1e-12)                                  # 1e-9 · trace
            systems.append((a + ridge, 0.0, p, 0.0, e + ridge, q, p, q, sd + ridge,
                            sbu * fx + ridge * t[0], sbv * fy + ridge * t[1], -sdb + ridge * t[2]))
        systems = np.array(systems).reshape(-1, 12)
        solved = _solve(systems[:, :9].reshape(-1, 3, 3), systems[:, 9:]).tolist()
        # Keep the body in front of the camera whatever the inputs (untrained weights).
        transl = [new if math.isfinite(new[0]) and math.isfinite(new[1]) and math.isfinite(new[2])
                  and new[2] + near > 1e-2 else t for new, t, (near,) in zip(solved, transl, nearest)]
    return np.array(transl).reshape(-1, 3)


def fit_crop_camera(points_xy: np.ndarray, points_z: np.ndarray, crop_xy: np.ndarray) -> np.ndarray:
    """(log s, tx, ty) [...,3] of PARE's crop camera that best explains crop coordinates
    ``crop_xy`` [...,2,K] ([-1, 1]) of crop-frame points (``points_xy`` [...,2,K], ``points_z``
    [...,1,K] divided by k = 5000/112; coordinate-major, leading dimensions broadcast).

    PARE's camera gives x = s·(X + tx) / (1 + s·Z/k); multiplied out, s·(X − x·Z/k) + s·tx = x
    is linear in (s, s·tx, s·ty). Its least-squares solution in closed form: s·tx, s·ty are the
    means of x − s·a (a = X − x·Z/k, likewise for y), and s the slope of crop_xy on a about their
    means (the 3×3 normal equations with those two eliminated).
    """
    k = crop_xy.shape[-1]
    a = points_xy - crop_xy * points_z                                          # [...,2,K]
    a_mean = np.add.reduce(a, -1) / k                                           # [...,2]
    a_c = a - a_mean[..., None]
    lead = a.shape[:-2]
    s = np.add.reduce((a_c * crop_xy).reshape(*lead, -1), -1) / np.add.reduce((a_c * a_c).reshape(*lead, -1), -1)
    out = np.empty(lead + (3,))
    out[..., 0] = np.log(np.maximum(np.abs(s), 1e-6))
    out[..., 1:] = np.add.reduce(crop_xy, -1) / (k * s[..., None]) - a_mean
    return out


# Forward-difference offsets of T for the match's Jacobian: the base point and one per axis.
_FD_EPS = 1e-5
_FD_OFFSETS = np.concatenate((np.zeros((1, 1, 3)), _FD_EPS * np.eye(3)[:, None]))   # [4,1,3]
# A Newton step below this (m) for everyone ends the match early.
_CONVERGED = 1e-4


def match_crop_camera(points, turned, cam, centres, sides, intrinsics, transl, iterations):
    """Translation [N,3] for which PARE's own camera, fitted to the real projection of the body,
    is the camera PARE predicted (at most ``iterations`` Newton steps on T, forward-difference
    Jacobian). ``points``, ``turned``: [N,3,K] as in :func:`refine_translation`.

    PARE was trained to output the crop camera that best explains the keypoints it sees, and
    the real crop shows the body through the real perspective camera (stretched off the axis,
    nearer parts larger). So the right T is the one whose real image, explained by PARE's
    camera model, gives back PARE's (s, tx, ty): three equations for three unknowns. The
    least-squares refinement before it is the start (within centimetres). The base point and
    its three perturbations are evaluated as one batch [4,N]; each person's step is accepted,
    and the stop rule read, in Python floats.

    The Newton steps end by a threshold, so the arrays are the operations, in the order, of the
    array form this replaced (the same steps, bit for bit); only per-person scalars moved.
    """
    # Pixel → crop coordinates: (uv − centre)/(side/2), with uv = f·xy/z + c folded in.
    half = sides[:, None, None] / 2
    scale = np.array(((intrinsics.fx,), (intrinsics.fy,))) / half               # [N,2,1]
    shift = (np.array(((intrinsics.cx,), (intrinsics.cy,))) - centres[..., None]) / half  # [N,2,1]
    points_xy, points_z = points[:, :2], points[:, 2:] / (PARE_FOCAL / (PARE_CROP / 2))
    nearest = np.minimum.reduce(turned[:, 2], -1).tolist()
    target = np.empty_like(cam)
    target[:, 0] = np.log(np.maximum(np.abs(cam[:, 0]), 1e-6))
    target[:, 1:] = cam[:, 1:]
    transl = np.asarray(transl)
    for _ in range(iterations):
        p = turned + (transl + _FD_OFFSETS)[..., None]
        crop_xy = p[:, :, :2] / np.maximum(p[:, :, 2:], 1e-6) * scale + shift
        res = fit_crop_camera(points_xy, points_z, crop_xy) - target            # [4,N,3]
        steps = _solve(((res[1:] - res[0]) / _FD_EPS).transpose(1, 2, 0), res[0]).tolist()
        kept, converged = [], True
        for t, (sx, sy, sz), near in zip(transl.tolist(), steps, nearest):
            step2 = sx * sx + sy * sy + sz * sz
            # Accept steps that keep the body in front and do not jump (untrained weights): a
            # non-finite step fails the second test, as a NaN/inf translation does.
            if t[2] - sz + near > 1e-2 and step2 < 0.25 * max(t[2] * t[2], 0.01):   # |step| < max(|Tz|, 0.1)/2
                t = [t[0] - sx, t[1] - sy, t[2] - sz]
            kept.append(t)
            # Converged: Newton's next step would be ~|step|² (< 1e-8 m here), far below 1e-6 m
            # (written so that a NaN step does not count as converged).
            converged = converged and step2 < _CONVERGED ** 2
        transl = np.array(kept).reshape(-1, 3)
        if converged:
            break
    return transl
