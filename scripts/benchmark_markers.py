#!/usr/bin/env python3
"""Time building + serialising one person's MarkerArray (mesh, skeleton, label), plus the TF
transforms and the SmplBody message, on synthetic data (no SMPL files needed).

Two marker paths are timed: "objects" (body_markers → MarkerArray of Point objects →
rclpy serialize_message, what ``Publisher.publish(msg)`` does) and "cdr" (MarkerBundle.serialize:
the records written straight to CDR bytes for ``Publisher.publish(bytes)``, marker_cdr.py), and
``~/body_points`` as a PointCloudBundle (build + serialise).

    source scripts/env.sh && python scripts/benchmark_markers.py [--repeat 20] [--people 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def fake_body(seed: int = 0):
    """A BodyEstimate with random but self-consistent SMPL kinematics (FK computed here)."""
    from pare_ros.constants import SMPL_PARENTS
    from pare_ros.estimator import BodyEstimate
    from pare_ros.preprocessing import Crop

    rng = np.random.default_rng(seed)
    q = rng.normal(size=(24, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    x, y, z, w = q.T
    rotmats = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1).reshape(24, 3, 3)
    rest = rng.normal(scale=0.2, size=(24, 3))
    transl = np.array([0.0, 0.0, 3.0])
    glob_r, glob_t = [None] * 24, [None] * 24
    for j, p in enumerate(SMPL_PARENTS):
        if p < 0:
            glob_r[j], glob_t[j] = rotmats[0], rest[0] + transl
        else:
            glob_r[j] = glob_r[p] @ rotmats[j]
            glob_t[j] = glob_r[p] @ (rest[j] - rest[p]) + glob_t[p]
    joints = np.stack(glob_t)
    vertices = joints[rng.integers(0, 24, 6890)] + rng.normal(scale=0.05, size=(6890, 3))
    joints2d = 500 * joints[:, :2] / joints[:, 2:] + np.array([320, 240])
    return BodyEstimate(
        box=np.array([100, 50, 300, 450.0]), score=0.9, crop=Crop(200, 250, 400),
        cam_crop=np.array([0.9, 0.0, 0.2]), betas=np.zeros(10), rotmats=rotmats,
        axis_angle=np.zeros((24, 3)), transl=transl, joints3d=joints,
        keypoints3d=np.zeros((49, 3)), joints2d=joints2d, keypoints2d=np.zeros((49, 2)),
        vertices=vertices, rest_joints=rest, part_attention=np.zeros((24, 1, 1)),
        part_segm_logits=np.zeros((25, 1, 1)), part_visibility=rng.uniform(size=24),
        truncation=0.0)


def timed(fn, repeat: int):
    fn()                                            # warm-up (imports, type support)
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--people", type=int, default=1)
    args = parser.parse_args()

    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header
    from visualization_msgs.msg import MarkerArray

    from pare_ros.ros.body_messages import smpl_body_msg
    from pare_ros.ros.body_points import body_points_bundle
    from pare_ros.ros.markers import MarkerBundle, body_marker_bundle, body_markers
    from pare_ros.ros.tf_frames import body_transforms

    bodies = [fake_body(i) for i in range(args.people)]
    faces = np.random.default_rng(0).integers(0, 6890, size=(13776, 3))
    vertex_parts = np.random.default_rng(1).integers(0, 24, size=6890)
    header = Header(frame_id="camera_color_optical_frame")

    def objects(mode):
        markers = []
        for i, b in enumerate(bodies):
            markers += body_markers(b, i, header, faces, color_mode=mode, vertex_parts=vertex_parts)
        return serialize_message(MarkerArray(markers=markers))

    def cdr(mode):
        bundle = MarkerBundle()
        for i, b in enumerate(bodies):
            bundle.extend(body_marker_bundle(b, i, header, faces, color_mode=mode,
                                             vertex_parts=vertex_parts))
        return bundle.serialize()

    def naive(mode):
        # Baseline: every Point through the generated constructor (with its field checks).
        from geometry_msgs.msg import Point
        markers = []
        for i, b in enumerate(bodies):
            ms = body_markers(b, i, header, faces, include_mesh=False)
            mesh = body_markers(b, i, header, faces[:1])[0]
            pts = np.asarray(b.vertices, dtype=np.float64)[faces].reshape(-1, 3).tolist()
            mesh.points = [Point(x=x, y=y, z=z) for x, y, z in pts]
            markers += [mesh] + ms
        return serialize_message(MarkerArray(markers=markers))

    print(f"{args.people} person(s), median/min of {args.repeat} runs")
    med, best, data = timed(lambda: naive("track"), max(3, args.repeat // 4))
    print(f"markers track      naive   : {med:8.2f} ms (min {best:7.2f})  {len(data):>9,d} bytes")
    for mode in ("track", "visibility"):
        for name, fn in (("objects", objects), ("cdr", cdr)):
            med, best, data = timed(lambda: fn(mode), args.repeat)
            print(f"markers {mode:10s} {name:8s}: {med:8.2f} ms (min {best:7.2f})  "
                  f"{len(data):>9,d} bytes")
    med, best, data = timed(lambda: body_points_bundle(header, [(i, b.vertices) for i, b in enumerate(bodies)])
                            .serialize(), args.repeat)
    print(f"body points build+serialize: {med:8.2f} ms (min {best:7.2f})  {len(data):>9,d} bytes")
    med, best, tfs = timed(lambda: [body_transforms(b, f"b{i}", header)
                                    for i, b in enumerate(bodies)], args.repeat)
    print(f"tf transforms ({sum(map(len, tfs))}): {med:8.2f} ms (min {best:7.2f})")
    med, best, data = timed(lambda: [serialize_message(smpl_body_msg(
        b, image_size=(640, 480), publish_rotmats=True, publish_vertices=True)) for b in bodies],
        args.repeat)
    print(f"SmplBody build+serialize (rotmats+vertices): {med:8.2f} ms (min {best:7.2f})  "
          f"{sum(map(len, data)):,d} bytes")


if __name__ == "__main__":
    main()
