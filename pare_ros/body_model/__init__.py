"""SMPL body model: reading the (licensed) SMPL files safely, a synthetic stand-in, and the
smplx-based layer that turns PARE's outputs into meshes, joints and keypoints."""
from .body_model import GENDERS, BodyModel, BodyModelOutput, Skeleton
from .smpl_files import (SMPL_KEYS, SmplFileError, convert_pkl_to_npz, load_smpl_file,
                         save_smpl_npz, validate_smpl_arrays)
from .synthetic import write_synthetic_model_dir

__all__ = [
    "GENDERS", "BodyModel", "BodyModelOutput", "Skeleton", "SMPL_KEYS", "SmplFileError", "convert_pkl_to_npz",
    "load_smpl_file", "save_smpl_npz", "validate_smpl_arrays", "write_synthetic_model_dir",
]
