"""Loading untrusted pickled files without executing code from them.

Two entry points:

* :func:`load_torch_checkpoint` reads ``.ckpt`` / ``.pth`` files with PyTorch's
  ``weights_only=True`` unpickler. The official PARE checkpoints also pickle metadata objects
  (yacs ``CfgNode`` hyper-parameters, PyTorch-Lightning callback types, mmcv/numpy values in
  ``meta``). Those names are mapped to *inert stand-ins* from this module – never to the real
  classes, which need not even be installed – so the metadata loads as plain containers. Any
  global outside a short list of metadata namespaces (``os.system``, ``builtins.eval``, ...)
  refuses the whole file before anything is unpickled.
* :func:`restricted_pickle_load` reads classic pickles (the official SMPL ``.pkl`` files) with a
  ``pickle.Unpickler`` whose ``find_class`` allows only numpy's array reconstruction and returns
  stand-ins for chumpy's ``Ch`` and scipy's sparse matrices. chumpy is never imported.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import torch


class UnsafeFileError(ValueError):
    """The file references code that is not on the allow-list; nothing from it was executed."""


class CorruptFileError(ValueError):
    """The file is not a readable checkpoint/pickle (truncated, corrupted or another format)."""


# --------------------------------------------------------------------------------------------
# Stand-ins
# --------------------------------------------------------------------------------------------
class OpaqueObject:
    """Inert placeholder for a pickled metadata object: records its arguments and state only."""

    pickled_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<stand-in for {self.pickled_name}>"


def _opaque_class(full_name: str) -> type:
    return type(full_name.rsplit(".", 1)[-1], (OpaqueObject,), {"pickled_name": full_name})


# Dict subclasses used for configuration metadata. They are rebuilt as OrderedDict, the one
# dict type whose instances PyTorch's weights-only unpickler lets receive both items and a
# __dict__ state (a CfgNode pickles its flags as instance state).
DICT_LIKE_GLOBALS = frozenset({
    "yacs.config.CfgNode",
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "lightning.fabric.utilities.data.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
    "mmcv.utils.config.ConfigDict",
    "mmcv.ConfigDict",
    "mmengine.config.config.ConfigDict",
    "addict.addict.Dict",
    "argparse.Namespace",
})

# Namespaces whose objects may appear in checkpoint metadata (callbacks, loop state, meta).
# They become inert stand-ins; weights never depend on them.
METADATA_NAMESPACES = (
    "yacs.", "pytorch_lightning.", "lightning.", "lightning_fabric.", "mmcv.", "mmengine.",
    "mmhuman3d.", "numpy.", "pathlib.", "omegaconf.", "datetime.", "collections.",
    "torch.optim.", "torch.utils.",
)


def _stand_ins_for(names: List[str]) -> List[Tuple[Any, str]]:
    allowed, refused = [], []
    for name in names:
        if name in DICT_LIKE_GLOBALS:
            allowed.append((OrderedDict, name))
        elif name.startswith(METADATA_NAMESPACES):
            allowed.append((_opaque_class(name), name))
        else:
            refused.append(name)
    if refused:
        raise UnsafeFileError(
            "refusing to load: the file references " + ", ".join(sorted(refused)) +
            ", which a model checkpoint does not need (possible code payload). Nothing from the "
            "file was executed. If you created this file yourself, re-save only its state_dict."
        )
    return allowed


# --------------------------------------------------------------------------------------------
# torch checkpoints
# --------------------------------------------------------------------------------------------
def load_torch_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a ``torch.save`` file with ``weights_only=True`` and inert metadata stand-ins.

    Raises:
        FileNotFoundError: the path does not exist.
        CorruptFileError: not a readable PyTorch file (empty, truncated, corrupted, other format).
        UnsafeFileError: the file references globals outside the metadata allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CorruptFileError(f"{path} is empty")
    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise CorruptFileError(f"{path} is a damaged zip archive ({exc})") from exc
        if bad is not None:
            raise CorruptFileError(f"{path} is corrupted: member {bad} fails its CRC check")
    # Pre-1.6 (non-zip) files get only PyTorch's default allow-list: they cannot be listed
    # in advance, and no released PARE checkpoint uses that format.
    unsafe: List[str] = []
    if is_zip:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception as exc:  # noqa: BLE001 - torch raises many types for unreadable files
            raise CorruptFileError(
                f"{path} is not a readable PyTorch checkpoint (truncated, corrupted or another "
                f"format): {exc}"
            ) from exc
    stand_ins = _stand_ins_for(unsafe)
    try:
        with torch.serialization.safe_globals(stand_ins):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeFileError(f"refusing to load {path}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - weights-only unpickling ran no code; any failure = bad file
        raise CorruptFileError(
            f"{path} could not be read as a PyTorch checkpoint (truncated, corrupted or another "
            f"format): {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Classic pickles (SMPL model files)
# --------------------------------------------------------------------------------------------
class ChumpyStandIn:
    """Holds the value of a pickled ``chumpy.ch.Ch`` leaf without importing chumpy.

    The official SMPL files store some arrays as chumpy leaves whose pickled state is a dict
    with the ndarray under ``'x'``.
    """

    pickled_name = "chumpy.ch.Ch"

    def __init__(self, *args: Any) -> None:
        self.state: Dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"x": state}

    def to_numpy(self) -> np.ndarray:
        value = self.state.get("x")
        if not isinstance(value, np.ndarray):
            raise CorruptFileError(
                f"chumpy object {self.pickled_name} holds no array under 'x' (a derived chumpy "
                "expression); convert the file on a machine with chumpy: see `pare-ros convert-smpl`"
            )
        return value


class SparseStandIn:
    """Holds a pickled ``scipy.sparse`` CSC/CSR matrix's arrays; rebuilt by scipy on demand."""

    pickled_name = "scipy.sparse"

    def __init__(self, *args: Any) -> None:
        self.state: Dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = dict(state)

    def to_numpy(self) -> np.ndarray:
        import scipy.sparse

        s = self.state
        shape = s.get("_shape", s.get("shape"))
        # Old scipy pickled ``format`` in the instance state; newer scipy does not, and then
        # the pickled class name (csc_matrix / csr_matrix) is the only record of the layout.
        fmt = s.get("format") or self.pickled_name.rsplit(".", 1)[-1][:3]
        try:
            cls = {"csc": scipy.sparse.csc_matrix, "csr": scipy.sparse.csr_matrix}[fmt]
            matrix = cls((s["data"], s["indices"], s["indptr"]), shape=shape)
        except (KeyError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"malformed sparse matrix in pickle: {exc}") from exc
        return np.asarray(matrix.todense())


def _sparse_names() -> Dict[Tuple[str, str], type]:
    names = {}
    for fmt in ("csc", "csr"):
        for module in (f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}", "scipy.sparse"):
            names[(module, f"{fmt}_matrix")] = type(f"{fmt}_matrix", (SparseStandIn,),
                                                    {"pickled_name": f"scipy.sparse.{fmt}_matrix"})
    return names


def _latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeFileError(f"refusing _codecs.encode with encoding {encoding!r}: only latin1 "
                              "byte strings occur in model files. Nothing from the file was executed.")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only numpy array/scalar reconstruction and stand-ins."""

    _NUMPY = {
        ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
        ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
        # protocol-5 pickles rebuild arrays from an in-band buffer
        ("numpy.core.numeric", "_frombuffer"): np._core.numeric._frombuffer,
        ("numpy._core.numeric", "_frombuffer"): np._core.numeric._frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    _STAND_INS: Dict[Tuple[str, str], type] = {
        ("chumpy.ch", "Ch"): ChumpyStandIn,
        **_sparse_names(),
    }
    # A chumpy leaf's pickled state holds ``_dirty_vars``, a set (Python 2: ``__builtin__.set``).
    _SAFE_BUILTINS = {
        ("copy_reg", "_reconstructor"): "_reconstructor", ("copyreg", "_reconstructor"): "_reconstructor",
        ("__builtin__", "object"): object, ("builtins", "object"): object,
        ("__builtin__", "set"): set, ("builtins", "set"): set,
    }

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._NUMPY:
            return self._NUMPY[key]
        if key in self._STAND_INS:
            return self._STAND_INS[key]
        if key in self._SAFE_BUILTINS:
            import copyreg

            value = self._SAFE_BUILTINS[key]
            return copyreg._reconstructor if value == "_reconstructor" else value
        if key == ("_codecs", "encode"):
            # Python 3 writes bytes (numpy array buffers) in protocol-2 pickles as
            # _codecs.encode(str, "latin1"); only that exact use is allowed.
            return _latin1_encode
        if module.startswith("numpy") and name.startswith(("dtype", "Float", "Int", "UInt", "Bool")):
            # numpy 2 pickles dtypes as numpy.dtypes.Float64DType etc.
            import numpy.dtypes

            candidate = getattr(numpy.dtypes, name, None)
            if isinstance(candidate, type) and issubclass(candidate, np.dtype):
                return candidate
        raise UnsafeFileError(
            f"refusing to unpickle {module}.{name}: not an allowed type for a model file "
            "(only numpy arrays, chumpy arrays and scipy sparse matrices are). Nothing from "
            "the file was executed."
        )


def restricted_pickle_load(data: bytes) -> Any:
    """Unpickle ``data`` (Python 2 ``latin1`` strings allowed) with :class:`RestrictedUnpickler`."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnsafeFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as exc:
        raise CorruptFileError(f"not a readable pickle (truncated or corrupted?): {exc}") from exc


def to_numpy(value: Any) -> Any:
    """Resolve chumpy/sparse stand-ins to ndarrays; pass everything else through."""
    if isinstance(value, (ChumpyStandIn, SparseStandIn)):
        return value.to_numpy()
    return value
