"""One camera frame → the node's output messages, without a ROS node.

:class:`FrameProcessor` holds the pipeline state that lives across frames (tracker, smoother,
last estimate per track, marker rate limit) and turns an image message and its CameraInfo into
``SmplBodyArray``, ``TFMessage``, ``MarkerArray`` and the debug image: the first three as bundles
of arrays whose ``serialize()`` gives the CDR bytes that are published (message objects only on
request). ``pare_node`` runs it in its worker thread; ``process_bag`` runs it over a rosbag2
file, so both produce identical output.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Optional

import numpy as np

from ..camera import Intrinsics
from ..estimator import rebuild_bodies, vertex_rows, with_vertices
from ..finite_check import finite_mask
from ..overlay import render_overlay
from ..world_frame import move_smpl_params, planner_frame
from .body_array import SmplBodyArrayBundle
from .body_messages import body_columns
from .body_points import body_points_bundle
from .camera_info import (CameraInfoError, check_image_size, distortion_warning, expected_image_size,
                          fallback_intrinsics, fallback_warning, intrinsics_from_camera_info,
                          is_uncalibrated)
from .frame_types import FrameError, FrameOutputs, ProcessorSettings, stamp_seconds
from .image_conversion import compressed_msg_to_rgb, image_msg_to_rgb, rgb_to_image_msg
from .markers import body_marker_bundle, delete_markers, MarkerBundle
from .tf_frames import bodies_transforms, body_roots
from .tf_message import TransformBundle


def _accepts(function, names) -> bool:
    """Whether ``function`` takes all keyword arguments ``names``."""
    import inspect

    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return all(name in parameters for name in names)


class FrameProcessor:
    """Args:
        estimator: :class:`pare_ros.estimator.BodyEstimator`.
        detector: ``detect(rgb) -> Detections`` (boxes [K,4] xyxy, scores [K]).
        tracker: ``update(boxes, scores, stamp) -> list[TrackView]`` and ``reset()``.
        smpl_model / estimator_name: identity strings for ``SmplBodyArray``.
    """

    def __init__(self, estimator, detector, tracker, settings: ProcessorSettings,
                 smpl_model: str = "neutral", estimator_name: str = "pare-hrnet_w32/pytorch-cpu-fp32",
                 smoother=None) -> None:
        self.estimator = estimator
        self.detector = detector
        self.tracker = tracker
        self.smoother = smoother
        self.settings = settings
        self.smpl_model = smpl_model
        self.estimator_name = estimator_name
        body_model = estimator.body_model
        self.faces = body_model.faces
        self.parents = body_model.parents
        self.vertex_parts = body_model.vertex_parts
        # BodyEstimator can skip the mesh and the part maps; stand-ins (tests, benchmarks) may
        # not. Checked per estimator object (callers may swap it after construction).
        self._fast_estimates = (None, False)
        self._last_mesh_time = -np.inf
        self._points_subset = (None, 0, None)         # (body model, step, its vertex_subset)
        self._last_estimate: Dict[int, object] = {}   # track_id → BodyEstimate (for coasting)
        self._velocity: Dict[int, Optional[np.ndarray]] = {}
        self._shown: set = set()                       # track_ids published in the last frame
        self._smooth_frame: Optional[str] = None   # frame the smoother state is in
        self._velocity_cov: Dict[int, np.ndarray] = {}   # (3,3) (m/s)² from the batched smoother
        self._dropped_by_reset: List[int] = []   # their markers are deleted with the next frame
        self.warned_distortion = False
        self._warned_fallback: set = set()     # frame_ids told about fallback intrinsics
        self._pending_warnings: List[str] = []

    # ------------------------------------------------------------------------------------
    def decode(self, image_msg, info=None) -> np.ndarray:
        """Image or CompressedImage → uint8 RGB [H, W, 3] (for an unpadded ``rgb8`` Image a
        read-only view of its data). Sizes are checked against ``settings.image_limits`` and
        the size ``info`` describes *before* decoding.
        Raises ImageConversionError (a ValueError with ``reason``), FrameError
        ("missing_camera_info") when ``info`` is None."""
        if info is None:
            # Before decoding: a compressed image is only decoded once it is known to be usable
            # (its size is checked against the CameraInfo's first).
            raise FrameError("missing_camera_info", "no CameraInfo for this image")
        expected = expected_image_size(info)
        limits = self.settings.image_limits
        if hasattr(image_msg, "format") and not hasattr(image_msg, "encoding"):
            return compressed_msg_to_rgb(image_msg, limits, expected)
        # A read-only view where the encoding allows (nothing here writes into the frame; the
        # debug overlay draws on its own copy).
        return image_msg_to_rgb(image_msg, limits, expected, copy=False)

    def intrinsics(self, info, width: int, height: int) -> Intrinsics:
        """Validated intrinsics of a width×height image; K = 0 (uncalibrated) gives fallback
        intrinsics from ``settings.fallback_hfov_deg`` with a one-time warning per frame_id.
        Raises FrameError (missing_camera_info, zero_k, implausible_k, size_mismatch)."""
        if info is None:
            raise FrameError("missing_camera_info", "no CameraInfo for this image")
        s = self.settings
        try:
            check_image_size(info, width, height)
            if is_uncalibrated(info, s.intrinsics_source) and s.fallback_hfov_deg > 0:
                frame = info.header.frame_id
                if frame not in self._warned_fallback:
                    self._warned_fallback.add(frame)
                    self._pending_warnings.append(fallback_warning(frame, width, height, s.fallback_hfov_deg))
                return fallback_intrinsics(width, height, s.fallback_hfov_deg)
            return intrinsics_from_camera_info(info, s.intrinsics_source, image_size=(width, height))
        except CameraInfoError as exc:
            hint = (" (set camera_info.fallback_hfov_deg, e.g. 60, to run an uncalibrated camera "
                    "with guessed intrinsics)" if is_uncalibrated(info, s.intrinsics_source) else "")
            raise FrameError(exc.reason, str(exc) + hint) from exc

    def _input_warnings(self, info) -> List[str]:
        """One-time notes about this frame's input (fallback intrinsics, distortion)."""
        warnings, self._pending_warnings = self._pending_warnings, []
        note = distortion_warning(info, self.settings.intrinsics_source)
        if note and not self.warned_distortion:
            self.warned_distortion = True
            warnings.append(note)
        return warnings

    def _drop_track_state(self, track_id: int) -> None:
        """Forget one track's smoothing/coasting state (the tracker keeps its box track)."""
        self._last_estimate.pop(track_id, None)
        self._velocity.pop(track_id, None)
        if self.smoother is not None:
            self.smoother.drop(track_id)

    def reset(self) -> None:
        """Forget every track (new IDs from the next frame on); the dropped tracks' markers
        are deleted with the next frame's output."""
        self.tracker.reset()
        self._dropped_by_reset += [tid for tid in self._last_estimate if tid not in self._dropped_by_reset]
        self._last_estimate.clear()
        self._velocity.clear()
        if self.smoother is not None:
            self.smoother.reset()

    def _points_skinning(self):
        """(stride, its ``vertex_subset``) when SMPL can skin only the body points' vertices (a
        smoother poses the bodies again, a BodyModel has :meth:`vertex_subset`), else (1, None):
        the whole mesh, then every stride-th row of it. The subset is kept while model and
        stride stay."""
        step, model = int(self.settings.body_points_stride), self.estimator.body_model
        if step <= 1 or self.smoother is None or not hasattr(model, "vertex_subset"):
            return 1, None
        if self._points_subset[:2] != (model, step):
            self._points_subset = (model, step, model.vertex_subset(np.arange(0, model.mesh.num_vertices, step)))
        return step, self._points_subset[2]

    def _smooth(self, fresh, stamp: float, intrinsics: Intrinsics, world_transform=None,
                vertices: bool = True) -> list:
        """Temporal smoothing of the matched people; SMPL is re-run on the smoothed
        parameters so that joints, TF frames and mesh stay exactly consistent. With
        ``world_transform`` (camera → fixed frame at the stamp) smoothing and velocity happen in
        the fixed frame, so the robot's own motion never shows up as human motion."""
        bodies = [body for _, body in fresh]
        if self.smoother is None or not bodies:
            return bodies
        rotmats, transl, betas, velocity, valid, cov = self._smooth_batched(fresh, stamp, world_transform)
        self._velocity_cov.update((view.track_id, c) for (view, _), c in zip(fresh, cov))
        # The frame's one SMPL evaluation on the final parameters (the estimator's was mesh-free).
        rebuilt = rebuild_bodies(self.estimator.body_model, bodies, rotmats, betas, transl, intrinsics,
                                 vertices=vertices)
        for (view, _), v, ok in zip(fresh, velocity, valid):
            self._velocity[view.track_id] = np.asarray(v, dtype=np.float64) if ok else None
        return rebuilt

    def _smooth_batched(self, fresh, stamp: float, world_transform):
        """BodySmoother.update for all people at once; in ``world_transform``'s frame when
        given (viewing rays turned with it), results mapped back into the camera frame.
        Returns (rotmats, transl, betas, velocity, velocity_valid, velocity_cov), the last two
        in the smoothing frame."""
        bodies = [body for _, body in fresh]
        ids = [view.track_id for view, _ in fresh]
        rotmats, transl = np.stack([b.rotmats for b in bodies]), np.stack([b.transl for b in bodies])
        j0 = np.stack([b.rest_joints[0] for b in bodies]).astype(np.float64)   # rest pelvis of each shape
        vis = (np.stack([b.part_visibility for b in bodies])
               if all(getattr(b, "part_visibility", None) is not None for b in bodies) else None)
        weights = np.array([float(getattr(b, "score", 1.0)) for b in bodies])
        rays = transl + j0                                           # camera → pelvis
        if world_transform is not None:
            rotmats, transl = move_smpl_params(world_transform, rotmats, transl, j0)
            rays = world_transform.rotate(rays)
        out = self.smoother.update(ids, stamp, rotmats, transl, np.stack([b.betas for b in bodies]), vis,
                                   weights, camera_to_person=rays)
        rotmats, transl = out.rotmats, out.transl
        if world_transform is not None:
            rotmats, transl = move_smpl_params(world_transform.inverse(), rotmats, transl, j0)
        return rotmats, transl, out.betas, out.velocity, out.velocity_valid, out.velocity_cov

    # ------------------------------------------------------------------------------------
    def process(self, image_msg, info, want_markers: bool = True, want_debug: bool = False,
                now: Optional[float] = None, detections=None, want_points: bool = False,
                world_frame: str = "", world_transform=None, world_fallback: str = "",
                planner_offsets: int = 0) -> FrameOutputs:
        """Run the pipeline on one frame. ``detections`` (boxes/scores from an upstream
        detector topic) replace the built-in detector. ``world_transform``: the camera →
        ``world_frame`` RigidTransform at the image stamp (None: track in the camera frame;
        ``world_fallback`` says why, for the planner outputs). Raises :class:`FrameError` for
        bad input (nothing is published for that frame; the caller counts ``reason``)."""
        s = self.settings
        timings: Dict[str, float] = {}
        t = time.perf_counter()
        try:
            rgb = self.decode(image_msg, info)
        except ValueError as exc:
            raise FrameError(getattr(exc, "reason", "decode"), str(exc)) from exc
        height, width = rgb.shape[:2]
        intrinsics = self.intrinsics(info, width, height)
        warnings = self._input_warnings(info)
        timings["decode"] = time.perf_counter() - t
        header = image_msg.header
        stamp = stamp_seconds(header.stamp)

        t = time.perf_counter()
        if detections is None:
            detections = self.detector.detect(rgb)
        timings["detect"] = time.perf_counter() - t

        # Track first, then run PARE only on the detections that belong to a track: low-score
        # boxes (ByteTrack's second stage) extend tracks but never start one, and unmatched
        # false positives cost no inference.
        t = time.perf_counter()
        tracks = self.tracker.update(detections.boxes, detections.scores, stamp, image_size=(width, height))
        timings["track"] = time.perf_counter() - t
        matched = sorted({view.detection_index for view in tracks if view.detection_index is not None})
        # The mesh is computed only for a frame that publishes it (mesh markers due, body
        # points, vertices in SmplBody, debug image, planner body offsets); without a smoother
        # the estimator's SMPL run is the frame's only one, else the smoothed parameters' is.
        now = time.monotonic() if now is None else now
        with_mesh = (s.publish_markers and want_markers and s.markers_mesh
                     and (now - self._last_mesh_time) >= 1.0 / max(s.markers_max_rate, 1e-6))
        whole_mesh = bool(with_mesh or s.publish_vertices or (s.publish_debug_image and want_debug)
                          or planner_offsets > 0)
        need_vertices = whole_mesh or bool(s.publish_body_points and want_points)
        # Body points at a stride alone: SMPL skins only their vertices (a frame's own rows,
        # never kept as a body's mesh).
        points_step, points_mesh = (1, None) if whole_mesh or not need_vertices else self._points_skinning()
        if self._fast_estimates[0] is not self.estimator:
            self._fast_estimates = (self.estimator, _accepts(self.estimator.estimate, ("vertices", "part_maps", "points")))
        # With a smoother, the bodies are posed again on the smoothed parameters: the estimate
        # only needs the parameters (no points, no mesh).
        options = (dict(vertices=need_vertices and self.smoother is None, part_maps=False,
                        points=self.smoother is None) if self._fast_estimates[1] else {})
        estimates = self.estimator.estimate(rgb, detections.boxes[matched], intrinsics, color_order="rgb",
                                            scores=detections.scores[matched], **options)
        timings.update({k: v for k, v in estimates.timings.items() if k != "total"})
        by_detection = dict(zip(matched, estimates.bodies))

        t = time.perf_counter()
        live = {view.track_id for view in tracks}
        removed = [tid for tid in self._last_estimate if tid not in live] + self._dropped_by_reset
        self._dropped_by_reset = []
        for tid in removed:
            self._last_estimate.pop(tid, None)
            self._velocity.pop(tid, None)
            if self.smoother is not None:
                self.smoother.drop(tid)
        fresh = [(view, by_detection[view.detection_index]) for view in tracks
                 if view.detection_index is not None]
        # Nothing non-finite may enter the smoother or the coasting state: one such value
        # would poison the track for good (and TF refuses it). Drop that track's state and
        # its body for this frame; the frame's output and the other people are unaffected.
        finite = finite_mask([body for _, body in fresh])
        for (view, _), ok in zip(fresh, finite):
            if not ok:
                self._drop_track_state(view.track_id)
                warnings.append(f"track {view.track_id}: non-finite estimate, its state was dropped")
        fresh = [pair for pair, ok in zip(fresh, finite) if ok]
        # Smoother state and velocities belong to one frame: on a switch (TF lost or back)
        # start them afresh rather than mixing camera- and world-frame positions.
        smooth_frame = world_frame if world_transform is not None else header.frame_id
        if self._smooth_frame not in (None, smooth_frame):
            self._velocity.clear()
            if self.smoother is not None:
                self.smoother.reset()
        self._smooth_frame = smooth_frame
        mesh = need_vertices if points_mesh is None else points_mesh
        smoothed = self._smooth(fresh, stamp, intrinsics, world_transform, vertices=mesh)
        rows = {}
        if points_step > 1:
            rows = {view.track_id: body.vertices for (view, _), body in zip(fresh, smoothed)}
            smoothed = [dataclasses.replace(body, vertices=None) for body in smoothed]
        for (view, _), body, ok in zip(fresh, smoothed, finite_mask(smoothed)):
            velocity = self._velocity.get(view.track_id)
            if ok and (velocity is None or np.isfinite(velocity).all()):
                self._last_estimate[view.track_id] = body
            else:
                self._drop_track_state(view.track_id)
                warnings.append(f"track {view.track_id}: non-finite smoothed estimate, its state was dropped")
        # Published: matched tracks, and COASTING ones with their last (smoothed) estimate and a
        # decaying confidence. LOST tracks are kept by the tracker for re-identification but
        # not published (their markers are deleted); nor is an unmatched TENTATIVE track.
        people = [(view, self._last_estimate[view.track_id]) for view in tracks
                  if view.track_id in self._last_estimate and getattr(view, "published", True)
                  and (view.detection_index is not None or int(view.state) != 0)]
        shown = {view.track_id for view, _ in people}
        hidden = [tid for tid in self._shown if tid not in shown and tid not in removed]
        self._shown = shown
        if points_step > 1:            # coasting tracks: their mesh's rows, or SMPL on those rows
            lacking = [(view, body) for view, body in people if view.track_id not in rows]
            rows.update((view.track_id, r) for (view, _), r in zip(lacking, vertex_rows(
                self.estimator.body_model, [body for _, body in lacking], points_step, mesh)))
        elif need_vertices and any(body.vertices is None for _, body in people):
            # Coasting tracks' estimates from frames without mesh: SMPL on their own parameters.
            people = [(view, body) for (view, _), body in
                      zip(people, with_vertices(self.estimator.body_model, [body for _, body in people]))]
            self._last_estimate.update((view.track_id, body) for view, body in people)
        timings["smooth"] = time.perf_counter() - t

        t = time.perf_counter()
        bodies = [body for _, body in people]
        transforms = (bodies_transforms(bodies, [view.body_id for view, _ in people], header, prefix=s.tf_prefix,
                                        parents=self.parents, joint_frames=s.joint_frames)
                      if s.publish_tf else TransformBundle())
        columns = body_columns(bodies, [view for view, _ in people], publish_rotmats=s.publish_rotmats,
                               publish_vertices=s.publish_vertices, image_size=(width, height),
                               velocities=[self._velocity.get(view.track_id) for view, _ in people],
                               velocity_frame=smooth_frame, roots=body_roots(transforms, len(people)))
        array = SmplBodyArrayBundle(header, columns, (width, height), intrinsics, self.smpl_model, self.estimator_name)
        outputs = FrameOutputs(array, transforms, people=len(people), tracks_removed=removed, warnings=warnings)
        self._velocity_cov = {tid: c for tid, c in self._velocity_cov.items() if self._velocity.get(tid) is not None}
        outputs.planner = planner_frame(people, self._velocity, stamp, header.frame_id, (width, height),
                                        world_transform, world_frame, world_fallback, planner_offsets,
                                        velocity_covs=self._velocity_cov)
        if s.publish_markers and want_markers:
            bundle = MarkerBundle()
            for tid in removed + hidden:
                for marker in delete_markers(tid, header):
                    bundle.append(marker)
            for view, body in people:
                bundle.extend(body_marker_bundle(
                    body, view.track_id, header, self.faces, self.parents, include_mesh=with_mesh,
                    alpha=s.markers_alpha, color_mode=s.markers_color_mode,
                    vertex_parts=self.vertex_parts, body_id=view.body_id, state=view.state,
                    lifetime=s.markers_lifetime))
            if with_mesh and people:
                self._last_mesh_time = now
            outputs.markers = bundle
        if s.publish_body_points and want_points:
            clouds = ([(view.track_id, rows[view.track_id]) for view, _ in people] if points_step > 1
                      else [(view.track_id, body.vertices) for view, body in people])
            outputs.body_points = body_points_bundle(header, clouds, stride=1 if points_step > 1 else s.body_points_stride)
        timings["messages"] = time.perf_counter() - t

        if s.publish_debug_image and want_debug:
            t = time.perf_counter()
            overlay = render_overlay(rgb, [b for _, b in people], self.faces, self.parents, intrinsics)
            outputs.debug_image = rgb_to_image_msg(overlay, header)
            timings["debug_image"] = time.perf_counter() - t
        outputs.timings = timings
        return outputs
