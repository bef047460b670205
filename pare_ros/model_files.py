"""Where the model files users bring are expected, what they are and where they come from.

The list lives in ``model/manifest.yaml``. Paths there are relative to a *model directory*:

1. an explicit directory (node parameter ``model.dir``, command-line ``--model-dir``), else
2. ``$PARE_ROS_MODEL_DIR``, else
3. the per-user data directory ``$XDG_DATA_HOME/pare_ros/model`` (``~/.local/share/pare_ros/model``).

The third is *the* documented place (model/README.md, docs/install.md): it is the same for a
source checkout, a colcon install (plain or symlink) and a pip install, and no rebuild, clean
or re-clone touches it. A missing file raises :class:`MissingModelFileError` naming the exact
expected path, the file's source and the parameter / option / variable that moves the directory.
"""
from __future__ import annotations

import functools
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

ENV_VAR = "PARE_ROS_MODEL_DIR"
NODE_PARAMETER = "model.dir"
CLI_OPTION = "--model-dir"
HOW_TO_CHOOSE = (f"node parameter {NODE_PARAMETER} (ros2 run pare_ros pare_node --ros-args -p "
                 f"{NODE_PARAMETER}:=DIR, or config/pare.yaml), command-line option {CLI_OPTION} DIR, "
                 f"or environment variable {ENV_VAR}=DIR")


def _manifest_dir() -> Path:
    """Where ``manifest.yaml`` and the README are: ``model/`` of a source checkout, else of a
    colcon install (share/pare_ros/model), else of a pip install (<prefix>/share/pare_ros/model).
    Only these two files are installed: the model files themselves live in the model directory."""
    checkout = Path(__file__).resolve().parents[1] / "model"
    if (checkout / "manifest.yaml").is_file():
        return checkout
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("pare_ros")) / "model"
        if (share / "manifest.yaml").is_file():
            return share
    except Exception:  # noqa: BLE001 - no ament index: not a colcon install
        pass
    return Path(sys.prefix) / "share" / "pare_ros" / "model"


MANIFEST_DIR = _manifest_dir()
MANIFEST_PATH = MANIFEST_DIR / "manifest.yaml"
README_PATH = MANIFEST_DIR / "README.md"


def user_model_dir() -> Path:
    """The per-user model directory: ``$XDG_DATA_HOME/pare_ros/model``, by default
    ``~/.local/share/pare_ros/model``."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "pare_ros" / "model"


class MissingModelFileError(FileNotFoundError):
    """A model file is not where it is expected; the message says where and how to get it."""


class ModelFileHashError(ValueError):
    """A model file's SHA-256 differs from the manifest's."""


@dataclass(frozen=True)
class ModelFile:
    """One manifest entry (see the field list at the top of ``model/manifest.yaml``)."""

    key: str
    path: str
    description: str
    source: str
    license: str
    accepted: Tuple[str, ...] = ()
    kind: str = "file"
    url: Optional[str] = None
    sha256: Optional[str] = None
    needed_by: Tuple[str, ...] = field(default_factory=tuple)
    produced_by: Optional[str] = None

    @property
    def lookup_paths(self) -> Tuple[str, ...]:
        return self.accepted or (self.path,)


@functools.lru_cache(maxsize=4)
def load_manifest(path: str | Path = MANIFEST_PATH) -> Dict[str, ModelFile]:
    """Manifest entries by key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file manifest not found: {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = {}
    for item in data["files"]:
        item = dict(item)
        for name in ("accepted", "needed_by"):
            item[name] = tuple(item.get(name) or ())
        entry = ModelFile(**item)
        if entry.key in entries:
            raise ValueError(f"{path}: duplicate key {entry.key!r}")
        entries[entry.key] = entry
    return entries


def entry(key: str) -> ModelFile:
    manifest = load_manifest()
    if key not in manifest:
        raise KeyError(f"unknown model file key {key!r}; known: {', '.join(manifest)}")
    return manifest[key]


def default_model_dir() -> Path:
    """``$PARE_ROS_MODEL_DIR`` if set, else the per-user directory (:func:`user_model_dir`)."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else user_model_dir()


def model_root(root: str | Path | None = None) -> Path:
    return Path(root).expanduser() if root is not None else default_model_dir()


def model_root_origin(root: str | Path | None = None) -> str:
    """How the model directory was chosen, for messages."""
    if root is not None:
        return f"given explicitly ({NODE_PARAMETER} / {CLI_OPTION} / smpl.model_dir)"
    if os.environ.get(ENV_VAR):
        return f"from ${ENV_VAR}"
    return "the default per-user directory, $XDG_DATA_HOME/pare_ros/model"


def candidates(key: str, root: str | Path | None = None) -> List[Path]:
    """Every accepted location of ``key`` under the model root, in lookup order."""
    base = model_root(root)
    return [base / rel for rel in entry(key).lookup_paths]


def resolve(key: str, root: str | Path | None = None) -> Path:
    """The first existing accepted location, else the expected path (which does not exist)."""
    for path in candidates(key, root):
        if path.exists():
            return path
    return model_root(root) / entry(key).path


def describe(key: str, root: str | Path | None = None) -> str:
    """One line: what the file is, where it is expected, where it comes from."""
    e = entry(key)
    paths = " or ".join(str(p) for p in candidates(key, root))
    text = f"{key}: expected at {paths} — {e.description.rstrip('.')}. Source: {e.source}"
    if e.url:
        text += f" Download: {e.url}"
    return text


def require(key: str, root: str | Path | None = None) -> Path:
    """Path of an existing model file, else :class:`MissingModelFileError` explaining it."""
    path = resolve(key, root)
    if path.exists():
        return path
    e = entry(key)
    lines = [
        f"missing model file {key!r}: expected {model_root(root) / e.path}",
        f"  what: {e.description}",
        f"  source: {e.source}",
    ]
    if e.url:
        lines.append(f"  download: {e.url}")
    if len(e.lookup_paths) > 1:
        lines.append("  also accepted: " + ", ".join(str(p) for p in candidates(key, root)
                                                    if p.name != Path(e.path).name))
    if key.startswith("smpl_"):
        lines.append("  the official .pkl works as is (chumpy is not needed); `pare-ros convert-smpl "
                     "SRC DST` turns it into an .npz, which is accepted too")
    lines.append(f"  licence: {e.license}")
    lines.append(f"  model directory: {model_root(root)} ({model_root_origin(root)})")
    lines.append(f"  put the file there, or choose another model directory: {HOW_TO_CHOOSE}")
    if key.startswith("smpl_") or key == "J_regressor_extra":
        lines.append("  (the body model files alone can come from another directory: node parameter "
                     "smpl.model_dir, command-line option --smpl-dir)")
    lines.append(f"  layout and downloads: {README_PATH}")
    raise MissingModelFileError("\n".join(lines))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (model files are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(key: str, path: str | Path) -> Optional[bool]:
    """Check ``path`` against the manifest's SHA-256 of ``key``.

    Returns None when the manifest has no hash for ``key``, True when it matches; raises
    :class:`ModelFileHashError` when it does not.
    """
    expected = entry(key).sha256
    if not expected:
        return None
    found = sha256_file(path)
    if found.lower() != expected.lower():
        raise ModelFileHashError(f"{path}: SHA-256 {found} differs from the expected "
                                 f"{expected} for {key!r} (wrong version or damaged download)")
    return True


def status(root: str | Path | None = None) -> List[Tuple[ModelFile, Path, bool]]:
    """(entry, resolved path, present) for every manifest entry, in manifest order."""
    return [(e, resolve(e.key, root), resolve(e.key, root).exists()) for e in load_manifest().values()]
