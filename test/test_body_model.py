"""SMPL files (official .pkl without chumpy, .npz), the synthetic model, BodyModel, model files."""
from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.spatial.transform import Rotation

from conftest import fake_class, registered_modules
from pare_ros import model_files
from pare_ros.body_model import (BodyModel, SmplFileError, convert_pkl_to_npz, load_smpl_file,
                                 write_synthetic_model_dir)
from pare_ros.body_model import synthetic, synthetic_mesh
from pare_ros.body_model.cli import add_subcommands
from pare_ros.constants import JOINT49_NAMES, SMPL_PARENTS
from pare_ros.safe_load import UnsafeFileError

SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")


# --------------------------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    return write_synthetic_model_dir(tmp_path_factory.mktemp("synthetic"), genders=("neutral",),
                                     formats=("pkl", "npz"))


@pytest.fixture(scope="module")
def reference():
    """The synthetic neutral model's arrays (dense float64 / int64) to compare against."""
    a = synthetic.synthetic_smpl_arrays("neutral")
    out = {k: np.asarray(a[k]) for k in SMPL_KEYS if k != "J_regressor"}
    out["J_regressor"] = a["J_regressor"].toarray()
    return out


@pytest.fixture(scope="module")
def body_model(synthetic_dir):
    return BodyModel.from_dir(synthetic_dir, gender="neutral")


def _official_style_pickle(path: Path, payload=None) -> Path:
    """Write the synthetic arrays the way the official SMPL .pkl stores them: chumpy ``Ch`` leaves
    (state dict with the array under 'x' and chumpy's bookkeeping), scipy csc regressors, and
    plain arrays, pickled with protocol 2. ``payload`` is added to the first Ch's state."""
    Ch = fake_class("chumpy.ch", "Ch")

    def ch(value):
        obj = Ch.__new__(Ch)
        obj.__dict__.update({"x": value, "_dirty_vars": set(), "_itr": None,
                             "_depends_on_deps": {}, "_make_dense": False, "_make_sparse": False})
        return obj

    a = synthetic.synthetic_smpl_arrays("neutral")
    data = {
        "J_regressor_prior": a["J_regressor"], "f": a["f"], "J_regressor": a["J_regressor"],
        "kintree_table": a["kintree_table"], "J": a["J"], "weights_prior": ch(a["weights"]),
        "weights": ch(a["weights"]), "vert_sym_idxs": np.arange(6890), "posedirs": a["posedirs"],
        "pose_training_info": {"nPoses": 1786, "nSubjects": 40}, "bs_style": "lbs",
        "v_template": ch(a["v_template"]), "shapedirs": ch(a["shapedirs"]), "bs_type": "lrotmin",
    }
    if payload is not None:
        data["v_template"].__dict__["extra"] = payload
    with registered_modules(Ch):
        raw = pickle.dumps(data, protocol=2)
    # The official files were written with scipy < 1.8 (module scipy.sparse.csc) and Python 2.
    raw = raw.replace(b"cscipy.sparse._csc\ncsc_matrix\n", b"cscipy.sparse.csc\ncsc_matrix\n")
    for name in (b"cchumpy.ch\nCh\n", b"cscipy.sparse.csc\ncsc_matrix\n", b"c__builtin__\nset\n"):
        assert name in raw
    path.write_bytes(raw)
    return path


@pytest.fixture(scope="module")
def official_pkl(tmp_path_factory):
    return _official_style_pickle(tmp_path_factory.mktemp("official") / "SMPL_NEUTRAL.pkl")


@pytest.fixture
def no_chumpy(monkeypatch):
    """chumpy is not importable while the test runs."""
    for name in [m for m in sys.modules if m == "chumpy" or m.startswith("chumpy.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "chumpy", None)      # `import chumpy` → ImportError
    monkeypatch.setitem(sys.modules, "chumpy.ch", None)
    with pytest.raises(ImportError):
        import chumpy  # noqa: F401


def _write_npz(path: Path, arrays: dict) -> Path:
    np.savez(path, **arrays)
    return path


def _random_pose(n, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    rot = Rotation.from_rotvec(rng.normal(scale=scale, size=(n * 24, 3))).as_matrix()
    return (torch.tensor(rot, dtype=torch.float32).view(n, 24, 3, 3),
            torch.tensor(rng.normal(size=(n, 10)), dtype=torch.float32))


# --------------------------------------------------------------------------------------------
# (a) official .pkl layout without chumpy, (b) code payloads refused
# --------------------------------------------------------------------------------------------
def test_official_pkl_loads_without_chumpy(official_pkl, reference, no_chumpy):
    arrays = load_smpl_file(official_pkl)
    assert set(arrays) == set(SMPL_KEYS)
    for key in SMPL_KEYS:
        np.testing.assert_array_equal(arrays[key], reference[key], err_msg=key)
    assert arrays["v_template"].dtype == np.float64 and arrays["f"].dtype == np.int64
    assert arrays["J_regressor"].shape == (24, 6890) and isinstance(arrays["J_regressor"], np.ndarray)
    assert "chumpy" not in sys.modules or sys.modules["chumpy"] is None


@pytest.mark.parametrize("where", ["top level", "inside a chumpy object's state"])
def test_pickle_with_code_payload_is_refused(tmp_path, where):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "SMPL_NEUTRAL.pkl"
    if where == "top level":
        path.write_bytes(pickle.dumps({"v_template": Payload()}, protocol=2))
    else:
        _official_style_pickle(path, payload=Payload())
    with pytest.raises(UnsafeFileError, match=r"system.*Nothing from the file was executed") as err:
        load_smpl_file(path)
    assert str(path) in str(err.value)
    assert not marker.exists()


# --------------------------------------------------------------------------------------------
# (c) clear errors for bad files
# --------------------------------------------------------------------------------------------
def test_truncated_and_empty_files(official_pkl, synthetic_dir, tmp_path):
    data = official_pkl.read_bytes()
    (tmp_path / "cut.pkl").write_bytes(data[: len(data) // 3])
    with pytest.raises(SmplFileError, match=r"cut\.pkl.*truncated"):
        load_smpl_file(tmp_path / "cut.pkl")
    npz = (synthetic_dir / "smpl" / "SMPL_NEUTRAL.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(npz[: len(npz) // 2])
    with pytest.raises(SmplFileError, match=r"cut\.npz.*truncated or corrupted"):
        load_smpl_file(tmp_path / "cut.npz")
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(SmplFileError, match="empty"):
        load_smpl_file(tmp_path / "empty.pkl")
    with pytest.raises(FileNotFoundError):
        load_smpl_file(tmp_path / "absent.pkl")


def _variant(reference, **changes):
    out = {k: v.copy() for k, v in reference.items()}
    out.update(changes)
    return out


@pytest.mark.parametrize("name, change, message", [
    ("short_vertices", lambda r: {"v_template": r["v_template"][:-1]},
     r"v_template has shape \(6889, 3\), expected \(6890, 3\)"),
    ("smplx", lambda r: {"v_template": np.zeros((10475, 3))}, r"10475 vertices.*SMPL-X"),
    ("smplh", lambda r: {"J_regressor": np.zeros((52, 6890)), "weights": np.zeros((6890, 52)),
                         "kintree_table": np.zeros((2, 52), np.int64)}, r"52 joints.*SMPL-H"),
    ("few_betas", lambda r: {"shapedirs": r["shapedirs"][..., :5]}, r"shapedirs.*B ≥ 10"),
    ("float_faces", lambda r: {"f": r["f"].astype(np.float32)}, r"f has dtype float32"),
    ("face_range", lambda r: {"f": r["f"] + 10}, r"face indices"),
    ("nan", lambda r: {"weights": np.full((6890, 24), np.nan)}, r"weights contains NaN"),
    ("root_parent", lambda r: {"kintree_table": np.array([[0] + list(SMPL_PARENTS[1:]), range(24)])},
     r"root joint 0 has parent 0"),
    ("parent_order", lambda r: {"kintree_table": np.array(
        [[-1, 0, 0, 0, 1, 7] + list(SMPL_PARENTS[6:]), range(24)])},
     r"joint 5 has parent 7; every parent must precede its child"),
    ("other_tree", lambda r: {"kintree_table": np.array(
        [[-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 20], range(24)])},
     r"differ from the SMPL skeleton"),
])
def test_wrong_arrays_are_named(reference, tmp_path, name, change, message):
    path = _write_npz(tmp_path / f"{name}.npz", _variant(reference, **change(reference)))
    with pytest.raises(SmplFileError, match=message) as err:
        load_smpl_file(path)
    assert str(path) in str(err.value)


def test_not_smpl_files(reference, tmp_path):
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(SmplFileError, match=r"list\.pkl.*not an SMPL model file.*holds a list"):
        load_smpl_file(tmp_path / "list.pkl")
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"weights": np.zeros(3)}, protocol=2))
    with pytest.raises(SmplFileError, match=r"missing array\(s\) v_template.*smpl\.is\.tue\.mpg\.de"):
        load_smpl_file(tmp_path / "dict.pkl")
    path = _write_npz(tmp_path / "objects.npz", _variant(reference, J_regressor=np.array([{}], dtype=object)))
    with pytest.raises(SmplFileError, match="pickled Python objects"):
        load_smpl_file(path)
    (tmp_path / "model.txt").write_text("hello")
    with pytest.raises(SmplFileError, match="unknown SMPL file type"):
        load_smpl_file(tmp_path / "model.txt")


def test_minus_one_root_parent_is_accepted(reference, tmp_path):
    kintree = np.array([SMPL_PARENTS, range(24)], dtype=np.int32)
    arrays = load_smpl_file(_write_npz(tmp_path / "m1.npz", _variant(reference, kintree_table=kintree)))
    np.testing.assert_array_equal(arrays["kintree_table"], reference["kintree_table"])


# --------------------------------------------------------------------------------------------
# (d) pkl → npz
# --------------------------------------------------------------------------------------------
def test_pkl_to_npz_round_trip(official_pkl, reference, tmp_path, no_chumpy):
    dst = convert_pkl_to_npz(official_pkl, tmp_path)
    assert dst == tmp_path / "SMPL_NEUTRAL.npz"
    with np.load(dst, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(SMPL_KEYS)          # only what the model needs
    converted, original = load_smpl_file(dst), load_smpl_file(official_pkl)
    for key in SMPL_KEYS:
        np.testing.assert_array_equal(converted[key], original[key], err_msg=key)
        assert converted[key].dtype == original[key].dtype


def test_cli_subcommands(official_pkl, tmp_path):
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["convert-smpl", str(official_pkl), str(tmp_path / "out.npz")])
    assert args.func(args) == 0 and (tmp_path / "out.npz").is_file()
    args = parser.parse_args(["make-synthetic-smpl", str(tmp_path / "syn"), "--genders", "female",
                              "--format", "npz"])
    assert args.func(args) == 0
    assert (tmp_path / "syn" / "smpl" / "SMPL_FEMALE.npz").is_file()
    assert not (tmp_path / "syn" / "smpl" / "SMPL_FEMALE.pkl").exists()


# --------------------------------------------------------------------------------------------
# (e) the synthetic model
# --------------------------------------------------------------------------------------------
def test_synthetic_files_have_the_official_format(synthetic_dir):
    # plain pickle: this file was written by the test itself (real classes, to check types)
    raw = pickle.loads((synthetic_dir / "smpl" / "SMPL_NEUTRAL.pkl").read_bytes(), encoding="latin1")
    expected = {"v_template": ((6890, 3), np.float64), "shapedirs": ((6890, 3, 10), np.float64),
                "posedirs": ((6890, 3, 207), np.float64), "weights": ((6890, 24), np.float64),
                "f": ((13776, 3), np.uint32), "kintree_table": ((2, 24), np.int64),
                "J": ((24, 3), np.float64)}
    for key, (shape, dtype) in expected.items():
        assert raw[key].shape == shape and raw[key].dtype == dtype, key
    assert scipy.sparse.issparse(raw["J_regressor"]) and raw["J_regressor"].format == "csc"
    assert raw["J_regressor"].shape == (24, 6890)
    assert raw["kintree_table"][0, 0] == 4294967295
    np.testing.assert_array_equal(raw["kintree_table"][0, 1:], SMPL_PARENTS[1:])
    np.testing.assert_allclose(raw["J"], raw["J_regressor"] @ raw["v_template"], atol=1e-12)

    for name, rows in (("J_regressor_extra.npy", 9), ("J_regressor_h36m.npy", 17)):
        reg = np.load(synthetic_dir / name, allow_pickle=False)
        assert reg.shape == (rows, 6890) and reg.dtype == np.float64
        assert reg.min() >= 0 and np.allclose(reg.sum(1), 1)
    jreg = raw["J_regressor"].toarray()
    assert jreg.min() >= 0 and np.allclose(jreg.sum(1), 1)
    np.testing.assert_allclose(jreg @ raw["v_template"], synthetic.rest_joints(), atol=1e-9)
    assert np.allclose(raw["weights"].sum(1), 1) and raw["weights"].min() >= 0

    with np.load(synthetic_dir / "smpl_mean_params.npz", allow_pickle=False) as mean:
        assert mean["pose"].shape == (144,) and mean["shape"].shape == (10,)
        np.testing.assert_array_equal(mean["pose"][:6], [1, 0, 0, 1, 0, 0])
        np.testing.assert_allclose(mean["cam"], [0.9, 0, 0])


def test_synthetic_mesh_is_a_closed_oriented_sphere(reference):
    v, f = reference["v_template"], reference["f"].astype(np.int64)
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    undirected, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert np.all(counts == 2)                                   # closed 2-manifold
    assert len(np.unique(directed, axis=0)) == len(directed)      # consistent orientation
    assert len(v) - len(undirected) + len(f) == 2                 # Euler characteristic: sphere
    assert len(np.unique(f)) == len(v)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6
    assert 0.04 < volume < 0.12                                   # m³, outward normals
    assert np.linalg.norm(np.cross(b - a, c - a), axis=1).min() > 1e-7   # no degenerate faces
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.6 < height < 1.9
    span = v[:, 0].max() - v[:, 0].min()
    assert 1.5 < span < 1.9                                       # T-pose arm span


def test_synthetic_landmarks_are_in_place(reference, synthetic_dir):
    v = reference["v_template"]
    joints = synthetic.rest_joints()
    assert joints[15, 1] > joints[12, 1] > joints[9, 1] > joints[0, 1] > joints[4, 1] > joints[7, 1]
    assert joints[16, 0] > 0 > joints[17, 0]                      # left is +x
    assert v[332, 2] > 0.05 and abs(v[332, 0]) < 0.02             # nose: front of the head
    assert v[2800, 0] > 0 > v[6260, 0]                            # left / right eye
    assert v[3216, 2] > 0.1 > -0.05 > v[3387, 2]                  # big toe in front, heel behind
    assert v[2746, 0] > 0.67 and v[6191, 0] < -0.67               # thumb tips on the hands
    assert v[2445, 0] > 0.78 and v[5905, 0] < -0.78               # middle finger tips
    h36m = np.load(synthetic_dir / "J_regressor_h36m.npy") @ v
    assert h36m[10, 1] > h36m[9, 1] > h36m[8, 1] > h36m[0, 1] > h36m[2, 1] > h36m[3, 1]
    assert h36m[13, 0] > 0.6 and h36m[16, 0] < -0.6 and h36m[1, 0] > 0 > h36m[4, 0]


def test_synthetic_model_is_deterministic_and_gendered():
    first = synthetic.synthetic_smpl_arrays("neutral")["v_template"]
    synthetic_mesh.neutral_surface.cache_clear()
    synthetic._neutral_model.cache_clear()
    np.testing.assert_array_equal(synthetic.synthetic_smpl_arrays("neutral")["v_template"], first)
    male = synthetic.synthetic_smpl_arrays("male")["v_template"]
    female = synthetic.synthetic_smpl_arrays("female")["v_template"]
    height = lambda x: np.ptp(x[:, 1])  # noqa: E731
    assert height(male) > height(first) > height(female)


# --------------------------------------------------------------------------------------------
# (f) BodyModel
# --------------------------------------------------------------------------------------------
def _shaped(reference, betas):
    return reference["v_template"] + reference["shapedirs"] @ betas.double().numpy()


def test_zero_pose_gives_regressed_joints(body_model, reference):
    _, betas = _random_pose(2)
    eye = torch.eye(3).expand(2, 24, 3, 3)
    out = body_model(eye, betas)
    for i in range(2):
        v_shaped = _shaped(reference, betas[i])
        np.testing.assert_allclose(out.vertices[i].numpy(), v_shaped, atol=2e-5)
        np.testing.assert_allclose(out.joints[i].numpy(), reference["J_regressor"] @ v_shaped, atol=2e-5)
        np.testing.assert_allclose(out.rest_joints[i].numpy(), reference["J_regressor"] @ v_shaped, atol=2e-5)
    assert out.vertices.shape == (2, 6890, 3) and out.joints49.shape == (2, 49, 3)


def test_root_rotation_rotates_about_the_pelvis(body_model):
    _, betas = _random_pose(1, seed=3)
    rest = body_model(torch.eye(3).expand(1, 24, 3, 3), betas)
    R = torch.tensor(Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix(), dtype=torch.float32)
    rot = torch.eye(3).repeat(1, 24, 1, 1)
    rot[:, 0] = R
    out = body_model(rot, betas)
    pelvis = rest.rest_joints[:, :1]
    for posed, unposed in ((out.vertices, rest.vertices), (out.joints, rest.joints),
                           (out.joints49, rest.joints49)):
        expected = (unposed - pelvis) @ R.T + pelvis
        torch.testing.assert_close(posed, expected, atol=2e-5, rtol=0)


def test_joints49_sources(body_model, synthetic_dir):
    rot, betas = _random_pose(2, seed=5)
    out = body_model(rot, betas)
    extra = torch.tensor(np.load(synthetic_dir / "J_regressor_extra.npy"), dtype=torch.float32)
    by_name = dict(zip(JOINT49_NAMES, range(49)))
    checks = {  # spec §9: output name → source
        "OP MidHip": out.joints[:, 0], "OP Neck": out.joints[:, 12], "OP RShoulder": out.joints[:, 17],
        "OP LAnkle": out.joints[:, 7], "Right Knee": out.joints[:, 5], "Left Wrist": out.joints[:, 20],
        "OP Nose": out.vertices[:, 332], "OP REye": out.vertices[:, 6260], "OP LEar": out.vertices[:, 583],
        "OP LBigToe": out.vertices[:, 3216], "OP RHeel": out.vertices[:, 6787],
        "Nose": out.vertices[:, 332], "Left Eye": out.vertices[:, 2800],
        "Right Hip": extra[0] @ out.vertices, "Left Hip": extra[1] @ out.vertices,
        "Top of Head (LSP)": extra[3] @ out.vertices, "Head (H36M)": extra[8] @ out.vertices,
    }
    for name, expected in checks.items():
        torch.testing.assert_close(out.joints49[:, by_name[name]], expected, atol=1e-5, rtol=0, msg=name)
    assert by_name["Right Hip"] == 27
    torch.testing.assert_close(out.joints49[:, 27], extra[0] @ out.vertices, atol=1e-5, rtol=0)


def test_forward_kinematics_of_rest_joints_reproduces_joints(body_model):
    rot, betas = _random_pose(3, seed=7, scale=0.8)
    out = body_model(rot, betas)
    parents = body_model.parents
    glob = [None] * 24
    pos = [None] * 24
    for j in range(24):
        p = parents[j]
        if p < 0:
            glob[j], pos[j] = rot[:, 0], out.rest_joints[:, 0]
        else:
            glob[j] = glob[p] @ rot[:, j]
            offset = out.rest_joints[:, j] - out.rest_joints[:, p]
            pos[j] = pos[p] + (glob[p] @ offset[..., None])[..., 0]
    torch.testing.assert_close(torch.stack(pos, 1), out.joints, atol=2e-5, rtol=0)


@pytest.mark.parametrize("scale", [0.3, 1.5])
def test_joints_only_path_equals_the_full_smplx_forward(body_model, scale):
    """vertices=False (kinematic chain + contracted keypoint skinning) against smplx's full
    forward: joints, PARE's 49 keypoints and rest joints to 1e-6 m, for mild and extreme poses."""
    rot, betas = _random_pose(6, seed=11, scale=scale)
    betas = betas * 2.0
    full = body_model(rot, betas)
    fast = body_model(rot, betas, vertices=False)
    assert fast.vertices is None
    for name in ("joints", "joints49", "rest_joints"):
        torch.testing.assert_close(getattr(fast, name), getattr(full, name), atol=1e-6, rtol=0, msg=name)
    # Not trivially equal: the pose blend shapes move the regressed keypoints by millimetres.
    pose_rows = body_model.keypoints.coef_dirs[body_model.num_betas:]
    saved = pose_rows.clone()
    try:
        pose_rows.zero_()
        assert (body_model(rot, betas, vertices=False).joints49 - full.joints49).abs().max() > 1e-4
    finally:
        pose_rows.copy_(saved)


def test_kinematic_chain_gives_the_product_of_local_rotations(body_model):
    rot, betas = _random_pose(2, seed=13, scale=0.8)
    glob, _ = body_model.kinematic_chain(rot, body_model.rest_joints(betas))
    for j in (0, 4, 15, 22, 23):
        expected = torch.eye(3).expand(2, 3, 3)
        chain = []
        k = j
        while k >= 0:
            chain.append(k)
            k = int(body_model.parents[k])
        for k in reversed(chain):
            expected = expected @ rot[:, k]
        torch.testing.assert_close(glob[:, j], expected, atol=1e-6, rtol=0)


def test_body_model_properties_and_h36m(body_model, synthetic_dir, reference):
    assert body_model.faces.dtype == np.int64 and body_model.faces.shape == (13776, 3)
    np.testing.assert_array_equal(body_model.faces, reference["f"])
    assert body_model.parents.dtype == np.int64 and tuple(body_model.parents) == SMPL_PARENTS
    rot, betas = _random_pose(2, seed=9)
    out = body_model(rot, betas)
    h36m = torch.tensor(np.load(synthetic_dir / "J_regressor_h36m.npy"), dtype=torch.float32)
    torch.testing.assert_close(body_model.h36m_joints(out.vertices), h36m @ out.vertices,
                               atol=1e-5, rtol=0)
    single = body_model(rot[1:], betas[1:])                       # batch items are independent
    torch.testing.assert_close(single.vertices[0], out.vertices[1], atol=1e-5, rtol=0)


def test_pkl_and_npz_give_the_same_model(synthetic_dir, body_model, tmp_path):
    (tmp_path / "smpl").mkdir()
    os.symlink(synthetic_dir / "smpl" / "SMPL_NEUTRAL.pkl", tmp_path / "smpl" / "SMPL_NEUTRAL.pkl")
    os.symlink(synthetic_dir / "J_regressor_extra.npy", tmp_path / "J_regressor_extra.npy")
    assert model_files.resolve("smpl_neutral", synthetic_dir).suffix == ".npz"
    assert model_files.resolve("smpl_neutral", tmp_path).suffix == ".pkl"
    from_pkl = BodyModel.from_dir(tmp_path)
    assert from_pkl.J_regressor_h36m is None
    rot, betas = _random_pose(1, seed=11)
    torch.testing.assert_close(from_pkl(rot, betas).joints49, body_model(rot, betas).joints49)
    with pytest.raises(model_files.MissingModelFileError, match="J_regressor_h36m.npy"):
        from_pkl.h36m_joints(torch.zeros(1, 6890, 3))


# --------------------------------------------------------------------------------------------
# (g) missing files and the manifest
# --------------------------------------------------------------------------------------------
def test_missing_smpl_file_names_path_and_source(tmp_path):
    with pytest.raises(model_files.MissingModelFileError) as err:
        BodyModel.from_dir(tmp_path, gender="female")
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert str(tmp_path / "smpl" / "SMPL_FEMALE.pkl") in message
    assert str(tmp_path / "smpl" / "SMPL_FEMALE.npz") in message
    assert "https://smpl.is.tue.mpg.de" in message and "pare-ros convert-smpl" in message


def test_missing_regressor_and_checkpoint(synthetic_dir, tmp_path, monkeypatch):
    (tmp_path / "smpl").mkdir()
    os.symlink(synthetic_dir / "smpl" / "SMPL_NEUTRAL.npz", tmp_path / "smpl" / "SMPL_NEUTRAL.npz")
    with pytest.raises(model_files.MissingModelFileError) as err:
        BodyModel.from_dir(tmp_path)
    assert str(tmp_path / "J_regressor_extra.npy") in str(err.value)
    assert "https://openmmlab-share.oss-cn-hangzhou.aliyuncs.com/mmhuman3d/models/J_regressor_extra.npy" \
        in str(err.value)

    monkeypatch.setenv(model_files.ENV_VAR, str(tmp_path))         # default root from the env
    assert model_files.default_model_dir() == tmp_path
    with pytest.raises(model_files.MissingModelFileError) as err:
        model_files.require("pare_w_3dpw_checkpoint")
    assert str(tmp_path / "checkpoints" / "pare_w_3dpw_checkpoint.ckpt") in str(err.value)
    assert "https://github.com/mkocabas/PARE" in str(err.value)
    assert str(tmp_path) in model_files.describe("pascal_occluders")


def test_manifest_entries():
    manifest = model_files.load_manifest()
    needed = {"smpl_neutral", "smpl_male", "smpl_female", "J_regressor_extra", "J_regressor_h36m",
              "smpl_mean_params", "pare_checkpoint", "pare_config", "pare_w_3dpw_checkpoint",
              "pare_w_3dpw_config", "hrnet_w32_conv_pare", "hrnet_w32_conv_pare_mosh",
              "hrnet_w32_conv_pare_coco", "pascal_occluders", "pare_onnx", "tensorrt_engines",
              "person_detector"}
    assert needed <= set(manifest)
    for key, e in manifest.items():
        assert e.description and e.source and e.license and e.needed_by, key
        assert not e.path.startswith("/") and ".." not in Path(e.path).parts, key
        assert e.sha256 is None or (len(e.sha256) == 64 and int(e.sha256, 16) >= 0), key
        assert e.path in e.lookup_paths, key
    assert manifest["smpl_neutral"].lookup_paths == ("smpl/SMPL_NEUTRAL.npz", "smpl/SMPL_NEUTRAL.pkl")


def test_verify_sha256(tmp_path, monkeypatch):
    path = tmp_path / "file.bin"
    path.write_bytes(b"pare")
    assert model_files.verify_sha256("smpl_neutral", path) is None     # no hash known
    digest = "a" * 64
    import hashlib
    digest = hashlib.sha256(b"pare").hexdigest()
    real_entry = model_files.entry
    patched = lambda key: model_files.ModelFile(**{**real_entry(key).__dict__, "sha256": digest})  # noqa: E731
    monkeypatch.setattr(model_files, "entry", patched)
    assert model_files.verify_sha256("smpl_neutral", path) is True
    path.write_bytes(b"other")
    with pytest.raises(model_files.ModelFileHashError, match="differs"):
        model_files.verify_sha256("smpl_neutral", path)


def test_mesh_products_through_numpy_equal_torch_s(body_model, monkeypatch):
    """The CPU mesh products through NumPy's BLAS (where it is an optimised one) against
    torch's, and the mesh with NumPy on and off; under autograd torch's, gradients flow."""
    from pare_ros.body_model import skinning

    g = torch.Generator().manual_seed(3)
    a, b, bias = torch.randn(5, 217, generator=g), torch.randn(217, 300, generator=g), torch.randn(300, generator=g)
    torch.testing.assert_close(skinning._mesh_matmul(a, b, bias, on_numpy=True), torch.addmm(bias, a, b),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(skinning._mesh_matmul(a, b, on_numpy=True), a @ b, rtol=1e-5, atol=1e-5)
    n = max(3, skinning.NUMPY_MIN_BODIES)
    rotmats = torch.from_numpy(Rotation.random(n * 24, random_state=4).as_matrix()).float().view(n, 24, 3, 3)
    betas = torch.randn(n, 10, generator=g)
    with torch.inference_mode():
        fast = body_model(rotmats, betas).vertices
        with monkeypatch.context() as patch:
            patch.setattr(skinning, "numpy_blas", lambda: None)            # torch everywhere
            reference = body_model(rotmats, betas).vertices
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-6)
    rotmats.requires_grad_(True)
    body_model(rotmats, betas).vertices.sum().backward()
    assert rotmats.grad is not None and torch.isfinite(rotmats.grad).all()
