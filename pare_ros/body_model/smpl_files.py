"""Reading SMPL model files (official ``.pkl`` or converted ``.npz``) into plain numpy arrays.

The official SMPL ``.pkl`` files are Python-2 pickles whose arrays are partly chumpy ``Ch``
objects and whose ``J_regressor`` is a scipy ``csc_matrix``. They are read with
:func:`pare_ros.safe_pickle.restricted_pickle_load`: chumpy is never imported and no pickled code
runs. ``.npz`` files are read with ``allow_pickle=False``.

Every loader returns the arrays under the official key names, validated and normalised:

===============  ==================  =========
key              shape               dtype
===============  ==================  =========
v_template       (6890, 3)           float64
shapedirs        (6890, 3, B≥10)     float64
posedirs         (6890, 3, 207)      float64
J_regressor      (24, 6890) dense    float64
kintree_table    (2, 24)             int64 (root parent = 4294967295, as in the official files)
weights          (6890, 24)          float64
f                (13776, 3)          int64
===============  ==================  =========
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Dict, Mapping

import numpy as np
import scipy.sparse

from ..constants import NUM_SMPL_FACES, NUM_SMPL_JOINTS, NUM_SMPL_VERTICES, SMPL_PARENTS
from ..safe_load import CorruptFileError, UnsafeFileError
from ..safe_pickle import restricted_pickle_load, to_numpy

SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")
#: "No parent" markers seen for the root in ``kintree_table[0, 0]`` (uint32 max in the official files).
NO_PARENT_VALUES = (-1, 2**32 - 1, 2**64 - 1)
NO_PARENT = 2**32 - 1

# Other body models that users mistake for SMPL: vertex count → name.
_OTHER_MODELS_BY_VERTICES = {10475: "SMPL-X", 778: "MANO (hand)", 5023: "FLAME (head)"}
_OTHER_MODELS_BY_JOINTS = {52: "SMPL-H (SMPL+H, 52 joints)", 55: "SMPL-X (55 joints)",
                           16: "MANO (16 joints)", 5: "FLAME (5 joints)"}
_HOW_TO_GET = ("PARE needs the SMPL body model (SMPL_NEUTRAL/MALE/FEMALE, 6890 vertices, 24 joints) "
               "from https://smpl.is.tue.mpg.de (registration required).")


class SmplFileError(ValueError):
    """An SMPL model file is unreadable or is not an SMPL model (message names file and problem)."""


def load_smpl_file(path: str | Path) -> Dict[str, np.ndarray]:
    """Load an SMPL ``.pkl`` or ``.npz`` file (chosen by suffix) into validated arrays.

    Raises:
        FileNotFoundError: the file does not exist.
        SmplFileError: unreadable, truncated, or not an SMPL model (wrong arrays/shapes/tree).
        UnsafeFileError: a ``.pkl`` referencing code (nothing from it is executed).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SMPL model file not found: {path}")
    if path.stat().st_size == 0:
        raise SmplFileError(f"{path}: the file is empty")
    if path.suffix.lower() == ".npz":
        raw = _read_npz(path)
    elif path.suffix.lower() == ".pkl":
        raw = _read_pkl(path)
    else:
        raise SmplFileError(f"{path}: unknown SMPL file type {path.suffix!r} (expected .pkl or .npz)")
    return validate_smpl_arrays(raw, source=str(path))


def _read_pkl(path: Path) -> Dict[str, Any]:
    try:
        data = restricted_pickle_load(path.read_bytes())
    except UnsafeFileError as exc:
        raise UnsafeFileError(f"{path}: {exc}") from None
    except CorruptFileError as exc:
        raise SmplFileError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise SmplFileError(f"{path}: not an SMPL model file: the pickle holds a "
                            f"{type(data).__name__}, not a dict of arrays. {_HOW_TO_GET}")
    out = {}
    for key in SMPL_KEYS:
        if key in data:
            try:
                out[key] = to_numpy(data[key])   # chumpy / sparse stand-ins → ndarray
            except CorruptFileError as exc:
                raise SmplFileError(f"{path}: array {key!r}: {exc}") from None
    out["_all_keys"] = sorted(str(k) for k in data)
    return out


def _read_npz(path: Path) -> Dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            out: Dict[str, Any] = {k: npz[k] for k in SMPL_KEYS if k in keys}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise SmplFileError(
                f"{path}: the .npz holds pickled Python objects, which are refused (they could run "
                "code). Convert the official .pkl with `pare-ros convert-smpl SRC DST`.") from None
        raise SmplFileError(f"{path}: not a readable .npz file ({exc})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SmplFileError(f"{path}: not a readable .npz file (truncated or corrupted?): {exc}") from None
    out["_all_keys"] = sorted(keys)
    return out


def validate_smpl_arrays(raw: Mapping[str, Any], source: str = "<arrays>") -> Dict[str, np.ndarray]:
    """Check names, shapes, dtypes and the kinematic tree; return normalised copies.

    Args:
        raw: arrays under the official key names (extra keys are ignored).
        source: file name used in error messages.
    """
    missing = [k for k in SMPL_KEYS if k not in raw]
    if missing:
        found = raw.get("_all_keys", sorted(raw))
        hint = ""
        if "hands_componentsl" in found or "lmk_faces_idx" in found:
            hint = " It looks like an SMPL-X/SMPL-H/FLAME file."
        raise SmplFileError(f"{source}: not an SMPL model file: missing array(s) {', '.join(missing)} "
                            f"(found: {', '.join(map(str, found)) or 'nothing'}).{hint} {_HOW_TO_GET}")

    arrays = {k: _dense(raw[k]) for k in SMPL_KEYS}
    for key, value in arrays.items():
        if value.dtype == object:
            raise SmplFileError(f"{source}: array {key!r} holds Python objects, not numbers")
    _check_model_kind(arrays, source)

    v, j = NUM_SMPL_VERTICES, NUM_SMPL_JOINTS
    _check(arrays["v_template"], (v, 3), "v_template", source)
    _check(arrays["posedirs"], (v, 3, (j - 1) * 9), "posedirs", source)
    _check(arrays["J_regressor"], (j, v), "J_regressor", source)
    _check(arrays["weights"], (v, j), "weights", source)
    _check(arrays["kintree_table"], (2, j), "kintree_table", source, integer=True)
    _check(arrays["f"], (NUM_SMPL_FACES, 3), "f", source, integer=True)
    shapedirs = arrays["shapedirs"]
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (v, 3) or shapedirs.shape[2] < 10:
        raise SmplFileError(f"{source}: shapedirs has shape {shapedirs.shape}, expected "
                            f"({v}, 3, B) with B ≥ 10 shape components")
    _check(shapedirs, shapedirs.shape, "shapedirs", source)

    faces = arrays["f"].astype(np.int64)
    if faces.min() < 0 or faces.max() >= v:
        raise SmplFileError(f"{source}: face indices f span [{faces.min()}, {faces.max()}], "
                            f"outside the {v} vertices")
    kintree = _check_kinematic_tree(arrays["kintree_table"], source)

    out = {k: arrays[k].astype(np.float64) for k in
           ("v_template", "shapedirs", "posedirs", "J_regressor", "weights")}
    out["kintree_table"] = kintree
    out["f"] = faces
    return out


def _dense(value: Any) -> np.ndarray:
    """ndarray from an array, a chumpy/sparse stand-in or a scipy sparse matrix."""
    value = to_numpy(value)
    if scipy.sparse.issparse(value):
        value = value.toarray()
    return np.asarray(value)


def _check_model_kind(arrays: Mapping[str, np.ndarray], source: str) -> None:
    """Name the body model when the file is a different one (the most common user mistake)."""
    n_verts = arrays["v_template"].shape[0] if arrays["v_template"].ndim == 2 else None
    n_joints = arrays["kintree_table"].shape[-1] if arrays["kintree_table"].ndim == 2 else None
    kind = None
    if n_verts in _OTHER_MODELS_BY_VERTICES:
        kind = _OTHER_MODELS_BY_VERTICES[n_verts]
    elif n_joints in _OTHER_MODELS_BY_JOINTS:
        kind = _OTHER_MODELS_BY_JOINTS[n_joints]
    if kind is not None:
        raise SmplFileError(f"{source}: this is not an SMPL model: it has {n_verts} vertices and "
                            f"{n_joints} joints, which looks like {kind}. {_HOW_TO_GET}")


def _check(a: np.ndarray, shape: tuple, key: str, source: str, integer: bool = False) -> None:
    if a.shape != tuple(shape):
        raise SmplFileError(f"{source}: {key} has shape {a.shape}, expected {tuple(shape)}")
    if a.dtype.kind not in ("iu" if integer else "f"):
        raise SmplFileError(f"{source}: {key} has dtype {a.dtype}, expected "
                            f"{'integers' if integer else 'floating point'}")
    if not integer and not np.all(np.isfinite(a)):
        raise SmplFileError(f"{source}: {key} contains NaN or infinite values")


def _check_kinematic_tree(kintree: np.ndarray, source: str) -> np.ndarray:
    """Validate ``kintree_table`` (row 0 parents, row 1 joint ids); return it as int64."""
    kintree = kintree.astype(np.uint64 if kintree.dtype.kind == "u" else np.int64)
    root_parent = int(kintree[0, 0])
    if root_parent not in NO_PARENT_VALUES:
        raise SmplFileError(f"{source}: kintree_table: the root joint 0 has parent {root_parent}; "
                            f"expected a 'no parent' marker ({NO_PARENT} or -1)")
    parents = kintree[0, 1:].astype(np.int64)
    children = np.arange(1, NUM_SMPL_JOINTS)
    bad = np.nonzero((parents < 0) | (parents >= children))[0]
    if len(bad):
        j = int(bad[0]) + 1
        raise SmplFileError(f"{source}: kintree_table: joint {j} has parent {int(parents[j - 1])}; "
                            "every parent must precede its child (0 ≤ parent < joint)")
    if not np.array_equal(kintree[1].astype(np.int64), np.arange(NUM_SMPL_JOINTS)):
        raise SmplFileError(f"{source}: kintree_table row 1 must list joint ids 0..23, "
                            f"got {kintree[1].tolist()}")
    if tuple(parents.tolist()) != SMPL_PARENTS[1:]:
        raise SmplFileError(f"{source}: kintree_table parents {[-1] + parents.tolist()} differ from "
                            f"the SMPL skeleton {list(SMPL_PARENTS)}")
    out = kintree.astype(np.int64)
    out[0, 0] = NO_PARENT
    return out


def save_smpl_npz(arrays: Mapping[str, np.ndarray], dst: str | Path, **extra: np.ndarray) -> Path:
    """Write validated SMPL arrays (and optional extra arrays) as an uncompressed ``.npz``."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    arrays = validate_smpl_arrays(arrays, source=str(dst))
    tmp = dst.with_name(dst.name + ".tmp.npz")   # write-then-rename: no half-written model file
    np.savez(tmp, **arrays, **extra)
    tmp.replace(dst)
    return dst


def convert_pkl_to_npz(src: str | Path, dst: str | Path) -> Path:
    """Convert an official SMPL ``.pkl`` (chumpy not needed) into an ``.npz`` of the needed arrays.

    ``dst`` may be a directory; the file is then named after ``src`` (``SMPL_NEUTRAL.npz``).
    Returns the written path.
    """
    src, dst = Path(src), Path(dst)
    if dst.is_dir():
        dst = dst / (src.stem + ".npz")
    if dst.suffix.lower() != ".npz":
        raise SmplFileError(f"{dst}: the converted file must end in .npz")
    if src.resolve() == dst.resolve():
        raise SmplFileError(f"{src}: source and destination are the same file")
    return save_smpl_npz(load_smpl_file(src), dst)
