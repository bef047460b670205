"""Joint names, index maps and flip permutations shared by the body model, the estimator and the
ROS node (reference: pare-model-spec.md §9; PARE ``pare/core/constants.py``, ``kp_utils.py``)."""
from __future__ import annotations

# --------------------------------------------------------------------------------------------
# SMPL skeleton (24 joints; also the order of PARE's part attention / segmentation channels 1..24)
# --------------------------------------------------------------------------------------------
#: snake_case SMPL joint names (smplx naming); used for TF frames ``smpl_<name>_<id>``.
SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
#: The same joints under PARE's names (``kp_utils.get_smpl_joint_names``).
PARE_SMPL_JOINT_NAMES = (
    "hips", "leftUpLeg", "rightUpLeg", "spine", "leftLeg", "rightLeg", "spine1", "leftFoot",
    "rightFoot", "spine2", "leftToeBase", "rightToeBase", "neck", "leftShoulder",
    "rightShoulder", "head", "leftArm", "rightArm", "leftForeArm", "rightForeArm", "leftHand",
    "rightHand", "leftHandIndex1", "rightHandIndex1",
)
#: Parent of each SMPL joint (``kintree_table[0]`` with the root's "no parent" as -1).
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
NUM_SMPL_JOINTS = 24
NUM_SMPL_VERTICES = 6890
NUM_SMPL_FACES = 13776
#: Horizontal-flip permutation of the 24 SMPL joints (left ↔ right).
SMPL_FLIP_PERM = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20,
                  23, 22)

# --------------------------------------------------------------------------------------------
# The 54 SMPL-derived joints and PARE's 49-joint output
# --------------------------------------------------------------------------------------------
#: Rows of ``J_regressor_extra.npy`` (joints 45..53 of the 54).
J_REGRESSOR_EXTRA_NAMES = (
    "Right Hip", "Left Hip", "Neck (LSP)", "Top of Head (LSP)", "Pelvis (MPII)",
    "Thorax (MPII)", "Spine (H36M)", "Jaw (H36M)", "Head (H36M)",
)
#: smplx vertex joints (24..44 of the 54): face, feet, then finger tips (left hand first).
SMPLX_VERTEX_JOINT_NAMES = (
    "nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
    "RSmallToe", "RHeel", "lthumb", "lindex", "lmiddle", "lring", "lpinky", "rthumb", "rindex",
    "rmiddle", "rring", "rpinky",
)
JOINT49_NAMES = (
    # 25 OpenPose joints
    "OP Nose", "OP Neck", "OP RShoulder", "OP RElbow", "OP RWrist", "OP LShoulder", "OP LElbow",
    "OP LWrist", "OP MidHip", "OP RHip", "OP RKnee", "OP RAnkle", "OP LHip", "OP LKnee",
    "OP LAnkle", "OP REye", "OP LEye", "OP REar", "OP LEar", "OP LBigToe", "OP LSmallToe",
    "OP LHeel", "OP RBigToe", "OP RSmallToe", "OP RHeel",
    # 24 ground-truth joints
    "Right Ankle", "Right Knee", "Right Hip", "Left Hip", "Left Knee", "Left Ankle",
    "Right Wrist", "Right Elbow", "Right Shoulder", "Left Shoulder", "Left Elbow", "Left Wrist",
    "Neck (LSP)", "Top of Head (LSP)", "Pelvis (MPII)", "Thorax (MPII)", "Spine (H36M)",
    "Jaw (H36M)", "Head (H36M)", "Nose", "Left Eye", "Right Eye", "Left Ear", "Right Ear",
)
#: Index of each of the 49 output joints into the 54 = 24 SMPL + 21 vertex + 9 extra joints.
JOINT49_FROM_54 = (
    24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
    8, 5, 45, 46, 4, 7, 21, 19, 17, 16, 18, 20, 47, 48, 49, 50, 51, 52, 53, 24, 26, 25, 28, 27,
)
#: Horizontal-flip permutation of the 49 joints (OP part, then GT part offset by 25).
JOINT49_FLIP_PERM = (
    0, 1, 5, 6, 7, 2, 3, 4, 8, 12, 13, 14, 9, 10, 11, 16, 15, 18, 17, 22, 23, 24, 19, 20, 21,
) + tuple(25 + i for i in (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13, 14, 15, 16, 17, 18, 19,
                           21, 20, 23, 22))

# --------------------------------------------------------------------------------------------
# Human3.6M evaluation joints (J_regressor_h36m.npy, 17 rows)
# --------------------------------------------------------------------------------------------
H36M_JOINT_NAMES = (
    "hip", "lhip", "lknee", "lankle", "rhip", "rknee", "rankle", "Spine (H36M)", "neck",
    "Head (H36M)", "headtop", "lshoulder", "lelbow", "lwrist", "rshoulder", "relbow", "rwrist",
)
#: 14 LSP-order joints (R ankle, R knee, R hip, L hip, L knee, L ankle, R wrist, R elbow,
#: R shoulder, L shoulder, L elbow, L wrist, neck, head top) picked from the 17 H36M joints.
H36M_TO_LSP14 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)
#: Evaluation root: H36M joint 0 (pelvis), taken before selecting the 14 joints.
H36M_ROOT = 0
