"""Loading untrusted pickled files without executing code from them.

Two entry points:

* :func:`load_torch_checkpoint` reads ``.ckpt`` / ``.pth`` files with PyTorch's
  ``weights_only=True`` unpickler. The official PARE checkpoints also pickle metadata objects
  (yacs ``CfgNode`` hyper-parameters, PyTorch-Lightning callback types, mmcv/numpy values in
  ``meta``). Those names are mapped to *inert stand-ins* from this module – never to the real
  classes, which need not even be installed – so the metadata loads as plain containers. Any
  global outside a short list of metadata namespaces (``os.system``, ``builtins.eval``, ...)
  refuses the whole file before anything is unpickled.
* :func:`pare_ros.safe_pickle.restricted_pickle_load` reads classic pickles (the official SMPL
  ``.pkl`` files) with a restricted ``pickle.Unpickler`` (its own module).
"""
from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, List, Tuple

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
