"""Ground-truth scenes: people at known poses, walking, turning, stopping, crossing and
occluding each other in front of cameras with known intrinsics and (possibly moving) poses.

ROS-free; used by the test suite and the benchmarks to measure the pipeline against truth.

- :mod:`.types`: the shared vocabulary (cameras, per-instant person states).
- :mod:`.motion`: trajectories, scene timelines, detector-like boxes (noise, misses, false
  positives, occlusion), tracking metrics.
- :mod:`.bodies`: SMPL bodies at those states in a camera (joints, keypoints, mesh, box).
- :mod:`.perfect_pare`: the output a *perfect* PARE would give for a crop (a ``Backend``).
- :mod:`.metrics`: camera-frame errors (root m, orientation °, MPJPE mm).
"""
