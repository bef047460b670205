"""Which BodyEstimates are entirely finite (the fields that reach messages, TF and the smoother).

One NaN entering the smoother or a track's coasting state would poison that track for good, so
the frame pipeline checks every estimate, twice per frame (raw and smoothed). Checking field by
field costs ~2 µs per NumPy call × 7 fields × P people, and casting everything to one float64
buffer costs a copy of each 6890×3 mesh; :func:`finite_mask` instead answers for all people at
once with one ``isfinite`` over the small arrays (cast to float64, a few hundred values each) and
one per mesh-sized array in its own dtype. Only when that finds a non-finite value (rare) are the
people checked one by one, to say which.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

#: The BodyEstimate fields that reach messages, TF and the smoother (None fields are skipped).
FINITE_FIELDS = ("betas", "rotmats", "transl", "joints3d", "keypoints3d", "joints2d", "vertices")

#: Arrays with more elements than this are checked on their own rather than copied into the
#: shared float64 buffer (a mesh is 20 670 values; the other fields at most 216).
_OWN_CHECK_SIZE = 4096


def finite_mask(bodies: Sequence, fields: Sequence[str] = FINITE_FIELDS) -> List[bool]:
    """[P] bools: True where every ``fields`` array of the body (array-like, any shape) is finite."""
    if _all_finite(bodies, fields):
        return [True] * len(bodies)
    return [_all_finite((body,), fields) for body in bodies]


def _all_finite(bodies: Sequence, fields: Sequence[str]) -> bool:
    """True when no element of the bodies' non-None ``fields`` is NaN or ±inf (none: True).

    ``isfinite`` after an exact cast to float64 or in the array's own dtype, so exactly the
    per-array check: no sums or products, which large finite values could overflow.
    """
    small, large = [], []
    for body in bodies:
        for name in fields:
            value = getattr(body, name, None)
            if value is not None:
                value = np.asarray(value)
                (small if value.size <= _OWN_CHECK_SIZE else large).append(value)
    if small:
        large.append(np.concatenate(small, axis=None, dtype=np.float64))
    # (The ufunc's reduce directly: ndarray.all's Python wrapper costs as much again here.)
    return all(np.logical_and.reduce(np.isfinite(a), axis=None) for a in large)
