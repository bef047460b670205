"""Outputs for human-aware planners: people_msgs, REP-155 body topics, forecasts.

Created by the node with its handle; :meth:`PlannerOutputs.publish` takes one frame's
:class:`~pare_ros.world_frame.PlannerFrame` (positions and velocities already in the fixed frame
when TF allowed it) and publishes, all stamped with the image stamp and in ``frame.frame_id``:

- ``~/people`` (``people_msgs/People``, reliable depth 10 — reaches both the best-effort UPO layer
  and the reliable CaBot subscribers): one ``Person`` per confirmed track (CONFIRMED or
  COASTING): ``name`` = track id, ``position`` = root (mid-hips), ``velocity`` (z = 0 in a fixed
  frame: nav2_social_mpc_controller reads ``velocity.z`` as a yaw rate), ``reliability``,
  ``tagnames``/``tags``: body_id (REP-155), tracking_state, velocity_valid.
- ``/humans/bodies/tracked`` (``hri_msgs/IdsList``, reliable keep-last 1): the confirmed tracks'
  body IDs, every frame (also when empty). Per body, created when it enters the list and
  destroyed when it leaves: ``/humans/bodies/<id>/roi`` (``NormalizedRegionOfInterest2D``),
  ``/skeleton2d`` (``Skeleton2D``, COCO-18 by name from PARE's OpenPose BODY_25 keypoints),
  ``/velocity`` (``geometry_msgs/TwistStamped``, linear = root velocity) and ``/forecast``
  (``nav_msgs/Path``: forecast root positions, each pose stamped with its future time).
- ``~/forecast_points`` (``sensor_msgs/PointCloud2``: x, y, z, t, sigma float32, track_id uint32),
  the region the people are forecast to sweep over the horizon, only while subscribed.
- ``~/planner_markers`` (``visualization_msgs/MarkerArray``): velocity arrows, forecast line
  strips and 2σ discs at the horizon, for RViz in the fixed frame.

people_msgs and hri_msgs are optional imports (neither is released for every distro): a missing
one is logged once at start-up and its outputs are skipped.
"""
from __future__ import annotations

import math
from typing import Dict, List

import numpy as np
from geometry_msgs.msg import Point, PoseStamped, TwistStamped
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from ..tracking.forecast import Forecast, Forecaster, ForecastParams, swept_points
from ..world_frame import PlannerFrame, PlannerTrack
from .body_points import structured_cloud_msg

try:
    from people_msgs.msg import People, Person
except ImportError:  # pragma: no cover - depends on the installation
    People = Person = None
try:
    from hri_msgs.msg import IdsList, NormalizedPointOfInterest2D, NormalizedRegionOfInterest2D, Skeleton2D
except ImportError:  # pragma: no cover - depends on the installation
    IdsList = Skeleton2D = None
try:
    from nav_msgs.msg import Path
except ImportError:  # pragma: no cover - depends on the installation
    Path = None

# hri_msgs/Skeleton2D index → index of PARE's 49 keypoints (the first 25 are OpenPose BODY_25:
# 0 nose, 1 neck, 2-4 right arm, 5-7 left arm, 8 mid-hip, 9-11 right leg, 12-14 left leg,
# 15 right eye, 16 left eye, 17 right ear, 18 left ear). Skeleton2D's own constants put
# LEFT_EYE=14, RIGHT_EYE=15, LEFT_EAR=16, RIGHT_EAR=17, so map by name.
SKELETON2D_FROM_BODY25 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 16, 15, 18, 17]
POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("t", "<f4"), ("sigma", "<f4"),
                        ("track_id", "<u4")])
STATE_NAMES = {0: "tentative", 1: "confirmed", 2: "coasting", 3: "lost"}


def _reliable(depth: int) -> QoSProfile:
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


def stamp_msg(seconds: float):
    from builtin_interfaces.msg import Time

    sec = int(math.floor(seconds))
    return Time(sec=sec, nanosec=min(int(round((seconds - sec) * 1e9)), 999_999_999))


def person_msg(track: PlannerTrack, planar: bool):
    v = track.velocity if track.velocity is not None else np.zeros(3)
    person = Person(name=str(track.track_id), reliability=float(track.reliability))
    person.position = Point(x=float(track.position[0]), y=float(track.position[1]), z=float(track.position[2]))
    person.velocity = Point(x=float(v[0]), y=float(v[1]), z=0.0 if planar else float(v[2]))
    person.tagnames = ["body_id", "tracking_state", "velocity_valid"]
    person.tags = [track.body_id, STATE_NAMES.get(track.state, str(track.state)),
                   "true" if track.velocity is not None else "false"]
    return person


def roi_msg(track: PlannerTrack, header, size):
    w, h = size
    x0, y0, x1, y1 = track.box
    c = lambda value, full: float(min(max(value / full, 0.0), 1.0))  # noqa: E731
    return NormalizedRegionOfInterest2D(header=header, xmin=c(x0, w), ymin=c(y0, h), xmax=c(x1, w), ymax=c(y1, h),
                                        c=float(track.reliability))


def skeleton_msg(track: PlannerTrack, header, size):
    w, h = size
    msg = Skeleton2D(header=header)
    points = []
    for k in SKELETON2D_FROM_BODY25:
        u, v = track.keypoints2d[k]
        points.append(NormalizedPointOfInterest2D(x=float(min(max(u / w, 0.0), 1.0)),
                                                  y=float(min(max(v / h, 0.0), 1.0)),
                                                  c=float(track.keypoint_conf[k])))
    msg.skeleton = points
    return msg


def path_msg(forecast: Forecast, header):
    path = Path(header=header)
    v = forecast.velocity
    yaw = math.atan2(v[1], v[0]) if np.linalg.norm(v[:2]) > 1e-6 else 0.0
    for t, p in zip(forecast.times, forecast.positions):
        pose = PoseStamped()
        pose.header.frame_id = header.frame_id
        pose.header.stamp = stamp_msg(forecast.stamp + float(t))
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(x) for x in p)
        pose.pose.orientation.z, pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        path.poses.append(pose)
    return path


def swept_cloud_msg(header, tracks: List[PlannerTrack], forecasts: List[Forecast], stride: int = 1):
    """PointCloud2 of :func:`~pare_ros.tracking.forecast.swept_points` with the track id per point."""
    chunks = []
    for track, fc in zip(tracks, forecasts):
        pts = swept_points([fc], [track.body_offsets] if track.body_offsets is not None else None, stride)
        chunk = np.empty(len(pts), POINT_DTYPE)
        for i, name in enumerate(("x", "y", "z", "t", "sigma")):
            chunk[name] = pts[:, i]
        chunk["track_id"] = track.track_id
        chunks.append(chunk)
    points = np.concatenate(chunks) if chunks else np.empty(0, POINT_DTYPE)
    return structured_cloud_msg(header, points)


def planner_markers(header, tracks: List[PlannerTrack], forecasts: List[Forecast], removed: List[int]):
    """Velocity arrow (id 4k), forecast line strip (4k+1), 2σ disc at the horizon (4k+2)."""
    array = MarkerArray()
    for tid in removed:
        for j in range(3):
            array.markers.append(Marker(header=header, ns="pare_planner", id=4 * tid + j, action=Marker.DELETE))
    for track, fc in zip(tracks, forecasts):
        k = 4 * track.track_id
        p = track.position
        arrow = Marker(header=header, ns="pare_planner", id=k, type=Marker.ARROW, action=Marker.ADD)
        v = track.velocity if track.velocity is not None else np.zeros(3)
        arrow.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])),
                        Point(x=float(p[0] + v[0]), y=float(p[1] + v[1]), z=float(p[2] + v[2]))]
        arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.05, 0.1, 0.1
        arrow.color.r, arrow.color.g, arrow.color.a = 1.0, 0.5, 1.0
        strip = Marker(header=header, ns="pare_planner", id=k + 1, type=Marker.LINE_STRIP, action=Marker.ADD)
        strip.points = [Point(x=float(q[0]), y=float(q[1]), z=float(q[2])) for q in fc.positions]
        strip.scale.x = 0.03
        strip.color.g, strip.color.b, strip.color.a = 0.8, 1.0, 1.0
        disc = Marker(header=header, ns="pare_planner", id=k + 2, type=Marker.CYLINDER, action=Marker.ADD)
        end = fc.positions[-1]
        disc.pose.position.x, disc.pose.position.y, disc.pose.position.z = float(end[0]), float(end[1]), float(end[2])
        disc.pose.orientation.w = 1.0
        disc.scale.x = disc.scale.y = float(4 * fc.sigma[-1])
        disc.scale.z = 0.02
        disc.color.g, disc.color.b, disc.color.a = 0.8, 1.0, 0.3
        array.markers += [arrow, strip, disc]
    return array


class PlannerOutputs:
    """Args: node (rclpy Node), params (ForecastParams without ``up``: set per frame),
    people / rep155 / markers: which outputs to create, points_stride: mesh vertex stride of
    the swept region (0 = roots only)."""

    def __init__(self, node, params: ForecastParams, people: bool = True, rep155: bool = True,
                 markers: bool = True, points_stride: int = 100) -> None:
        self.node = node
        self.params = params
        self.forecaster = Forecaster()          # per-track previous speed (the speed-drop test)
        self.points_stride = int(points_stride)
        log = node.get_logger()
        self.people_pub = self.tracked_pub = None
        if people and People is None:
            log.warning("people.enable: people_msgs is not installed, ~/people is not published "
                        "(build it from source: docs/planners.md)")
        elif people:
            self.people_pub = node.create_publisher(People, "~/people", _reliable(10))
        if rep155 and IdsList is None:
            log.warning("rep155.enable: hri_msgs is not installed, /humans/bodies/* is not published "
                        "(apt install ros-$ROS_DISTRO-hri-msgs, or build it: docs/planners.md)")
        elif rep155:
            self.tracked_pub = node.create_publisher(IdsList, "/humans/bodies/tracked", _reliable(1))
        self.points_pub = node.create_publisher(PointCloud2, "~/forecast_points", _reliable(1))
        self.markers_pub = node.create_publisher(MarkerArray, "~/planner_markers", _reliable(1)) if markers else None
        self._bodies: Dict[str, dict] = {}     # body_id → per-body publishers
        self._marked: Dict[int, str] = {}      # track_id → body_id of tracks with markers

    @property
    def wants_offsets(self) -> bool:
        """True while someone listens to the swept region (then the frame should carry mesh offsets)."""
        return self.points_stride > 0 and self.points_pub.get_subscription_count() > 0

    def _body_pubs(self, body_id: str) -> dict:
        pubs = self._bodies.get(body_id)
        if pubs is None:
            base = f"/humans/bodies/{body_id}"
            n = self.node
            pubs = {"roi": n.create_publisher(NormalizedRegionOfInterest2D, f"{base}/roi", _reliable(1)),
                    "skeleton2d": n.create_publisher(Skeleton2D, f"{base}/skeleton2d", _reliable(1)),
                    "velocity": n.create_publisher(TwistStamped, f"{base}/velocity", _reliable(1))}
            if Path is not None:
                pubs["forecast"] = n.create_publisher(Path, f"{base}/forecast", _reliable(1))
            self._bodies[body_id] = pubs
        return pubs

    def _drop_body(self, body_id: str) -> None:
        for pub in self._bodies.pop(body_id, {}).values():
            self.node.destroy_publisher(pub)

    def forecasts(self, frame: PlannerFrame, tracks: List[PlannerTrack]) -> List[Forecast]:
        from dataclasses import replace

        fixed = frame.frame_id != frame.camera_frame
        params = replace(self.params, up=(0.0, 0.0, 1.0) if fixed else None)
        self.forecaster.retain([t.track_id for t in tracks])
        return [self.forecaster.forecast(t.track_id, frame.stamp, t.position, t.velocity, params,
                                         t.velocity is not None, t.velocity_cov)
                for t in tracks]

    def publish(self, frame: PlannerFrame) -> None:
        header = Header(frame_id=frame.frame_id, stamp=stamp_msg(frame.stamp))
        tracks = [t for t in frame.tracks if t.confirmed]
        fixed = frame.frame_id != frame.camera_frame
        forecasts = self.forecasts(frame, tracks)
        if self.people_pub is not None:
            self.people_pub.publish(People(header=header, people=[person_msg(t, fixed) for t in tracks]))
        if self.tracked_pub is not None:
            live = {t.body_id for t in tracks}
            for body_id in [b for b in self._bodies if b not in live]:
                self._drop_body(body_id)
            image_header = Header(frame_id=frame.camera_frame, stamp=header.stamp)
            for track, fc in zip(tracks, forecasts):
                pubs = self._body_pubs(track.body_id)
                pubs["roi"].publish(roi_msg(track, image_header, frame.image_size))
                pubs["skeleton2d"].publish(skeleton_msg(track, image_header, frame.image_size))
                twist = TwistStamped(header=header)
                if track.velocity is not None:
                    twist.twist.linear.x, twist.twist.linear.y, twist.twist.linear.z = (float(x) for x in track.velocity)
                pubs["velocity"].publish(twist)
                if "forecast" in pubs:
                    pubs["forecast"].publish(path_msg(fc, header))
            self.tracked_pub.publish(IdsList(header=header, ids=[t.body_id for t in tracks]))
        if self.points_pub.get_subscription_count() > 0:
            self.points_pub.publish(swept_cloud_msg(header, tracks, forecasts))
        if self.markers_pub is not None and (self.markers_pub.get_subscription_count() > 0 or self._marked):
            live_ids = {t.track_id for t in tracks}
            removed = [tid for tid in self._marked if tid not in live_ids]
            self.markers_pub.publish(planner_markers(header, tracks, forecasts, removed))
            self._marked = {t.track_id: t.body_id for t in tracks}

    def reset(self) -> None:
        """All tracks dropped (``~/reset_tracks``): their body topics go with them."""
        self.forecaster.reset()
        for body_id in list(self._bodies):
            self._drop_body(body_id)
        if self.tracked_pub is not None:
            self.tracked_pub.publish(IdsList(header=Header(stamp=self.node.get_clock().now().to_msg()), ids=[]))

    def destroy(self) -> None:
        for body_id in list(self._bodies):
            self._drop_body(body_id)
        for pub in (self.people_pub, self.tracked_pub, self.points_pub, self.markers_pub):
            if pub is not None:
                self.node.destroy_publisher(pub)
