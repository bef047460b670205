"""The per-image ``pare_ros/SmplBodyArray`` as arrays, serialised to CDR without objects.

rclpy serialises a message by converting every nested object to C (~0.3 ms for one person on
a busy machine, most of it fixed cost). :class:`SmplBodyArrayBundle` keeps the frame's
:class:`.body_messages.BodyColumns` and writes the CDR bytes with NumPy for
``Publisher.publish(bytes)``, like :class:`.tf_message.TransformBundle`: the layout (every
string, sequence length and padding in place, and where each value goes) depends only on the
strings and the optional arrays, so it is cached, and each frame scatters its values into a copy
of the template. The message objects (``to_msg()``, ``bodies``) are built only when asked for.

CDR (classic, little endian; alignment counted after the 4-byte encapsulation header), per
``msg/SmplBodyArray.msg`` and ``msg/SmplBody.msg``::

    Header (int32 sec, uint32 nanosec, string frame_id), uint32 image_width, image_height,
    (align 8) float64 intrinsics[4], string smpl_model, string estimator, float32 latency,
    uint32 frames_skipped, uint32 P, then P × SmplBody:
      string body_id, uint32 track_id, uint8 tracking_state, (align 4) float32 age,
      time_since_update, detection_score, bbox[4] … transl[3], uint32 n + float32 rotmats[n],
      float32 cam_crop[3], joints_3d[72], (align 8) float64 root[7], root_velocity[3],
      string velocity_frame, bool velocity_valid, (align 4) uint32 n + float32 vertices[n],
      float32 part_visibility[24], joint_confidence[24], truncation

Padding bytes are zero (Fast CDR leaves them uninitialised: the bytes equal rclpy's everywhere
else). :func:`fast_path_agrees` checks once that rclpy reads our bytes back as the same message.
"""
from __future__ import annotations

import functools
import struct
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .body_messages import BLOCK, BLOCK_WIDTH, FIXED_FIELDS, BodyColumns, _f32, _fixed, body_msgs
from .cdr import CdrRun
from .message_builders import bulk_builder

_ENCAPSULATION = b"\x00\x01\x00\x00"        # CDR_LE, no options
#: SmplBody's fixed float32 runs between the variable parts (the [P,·] arrays written together).
_RUN_A = ("bbox", "crop", "joints_2d", "betas", "global_orient", "body_pose", "transl")
_RUN_B = ("cam_crop", "joints_3d")
_RUN_D = ("part_visibility", "joint_confidence")
_SIZE_A = 8 + 4 * (3 + sum(FIXED_FIELDS[n] for n in _RUN_A))     # ids, 3 scalars, run A
_SIZE_B = 4 * sum(FIXED_FIELDS[n] for n in _RUN_B)
_SIZE_D = 4 * (sum(FIXED_FIELDS[n] for n in _RUN_D) + 1)         # run D, truncation


class SmplBodyArrayBundle:
    """One image's SmplBodyArray: ``serialize()`` → CDR bytes, ``to_msg()`` → the object.

    Args:
        header: the image header (its stamp and frame_id are copied now).
        columns: the people (:func:`.body_messages.body_columns`).
        image_size: (width, height) px; intrinsics: (fx, fy, cx, cy) or an object with
            ``as_tuple()``; smpl_model, estimator: identity strings.
        latency (s), frames_skipped: settable until serialised (the node fills them in).
    """

    def __init__(self, header, columns: BodyColumns, image_size: Tuple[int, int], intrinsics,
                 smpl_model: str, estimator: str, latency: float = 0.0, frames_skipped: int = 0) -> None:
        self.header = header
        self.columns = columns
        self.image_size = tuple(int(v) for v in image_size)
        values = intrinsics.as_tuple() if hasattr(intrinsics, "as_tuple") else intrinsics
        self.intrinsics = _fixed(values, 4, np.float64)
        self.smpl_model, self.estimator = str(smpl_model), str(estimator)
        self.latency, self.frames_skipped = latency, frames_skipped
        self._bodies: Optional[list] = None

    @property
    def bodies(self) -> list:
        """The SmplBody objects (built on first use)."""
        if self._bodies is None:
            self._bodies = body_msgs(self.columns)
        return self._bodies

    def to_msg(self):
        """pare_ros/SmplBodyArray with the current latency and frames_skipped."""
        from pare_ros.msg import SmplBodyArray

        make = bulk_builder(SmplBodyArray, ("header", "image_width", "image_height", "intrinsics", "smpl_model",
                                            "estimator", "latency", "frames_skipped", "bodies"))
        width, height = self.image_size
        return make(self.header, width, height, self.intrinsics.copy(), self.smpl_model, self.estimator,
                    _f32(self.latency), int(self.frames_skipped), list(self.bodies))

    def serialize(self) -> bytes:
        """CDR bytes of :meth:`to_msg` (rclpy's serialize_message up to padding bytes)."""
        if not fast_path_agrees():
            from rclpy.serialization import serialize_message

            return serialize_message(self.to_msg())
        return self.cdr()

    def cdr(self) -> bytes:
        """The NumPy writer's bytes (classic little-endian CDR), whatever the rmw."""
        c = self.columns
        p = len(c)
        layout = _layout(str(self.header.frame_id), self.smpl_model, self.estimator, tuple(c.body_id),
                         tuple(c.velocity_frame), c.rotmats is not None, c.vertices is not None)
        buf = layout.template.copy()
        stamp = self.header.stamp
        buf[layout.head_index] = np.frombuffer(_HEAD.pack(
            int(stamp.sec), int(stamp.nanosec), *self.image_size, *self.intrinsics.tolist(),
            float(np.float32(self.latency)), int(self.frames_skipped)), np.uint8)
        if p:
            # Each person's fixed-size values as one row of bytes (the record), written by
            # views into it and scattered into the template at once.
            rec = np.empty((p, layout.record_size), np.uint8)
            at = layout.record_at
            ids = rec[:, at["a"]:at["a"] + 8].view("<u4")
            ids[:, 0], ids[:, 1] = c.track_id, c.tracking_state       # uint8 state + 3 zero padding bytes
            for name, columns in _RECORD_RUNS:                        # float32 runs of the block
                start = at[name] + (8 if name == "a" else 0)
                rec[:, start:start + 4 * (columns.stop - columns.start)].view("<f4")[:] = c.block[:, columns]
            if c.rotmats is not None:
                rec[:, at["rotmats"]:at["rotmats"] + 4 * 216].view("<f4")[:] = c.rotmats
            c_run = rec[:, at["c"]:at["c"] + 80].view("<f8")
            c_run[:, :7], c_run[:, 7:] = c.root, c.root_velocity
            rec[:, at["valid"]] = c.velocity_valid
            buf[layout.body_index] = rec.reshape(-1)
            if c.vertices is not None:         # big: a slice each
                size = 4 * 20670
                for start, row in zip(layout.vertices_at, c.vertices.astype("<f4", copy=False)):
                    buf[start:start + size] = row.view(np.uint8)
        return buf.tobytes()


#: Header values after the encapsulation: stamp, image size, intrinsics, latency, frames_skipped.
_HEAD = struct.Struct("<iIII4dfI")
#: The record's float32 runs as columns of BodyColumns.block: (slot, columns); slot "a" after its ids.
_RECORD_RUNS = (("a", slice(0, BLOCK[_RUN_A[-1]].stop)),
                ("b", slice(BLOCK[_RUN_B[0]].start, BLOCK[_RUN_B[-1]].stop)),
                ("d", slice(BLOCK[_RUN_D[0]].start, BLOCK_WIDTH)))


class _Layout(CdrRun):
    """A CDR message being laid out: constants go into ``template``; named slots (fixed size,
    one or more occurrences) are the per-frame values, gathered by :meth:`finish` into the
    header's byte positions (``head_index``) and each person's record (``body_index``)."""

    _HEAD_SLOTS = ("stamp", "size", "intrinsics", "tail")

    def __init__(self) -> None:
        super().__init__()
        self.slots: Dict[str, List[int]] = {}     # name → offsets after the encapsulation header
        self.sizes: Dict[str, int] = {}

    def slot(self, name: str, size: int, align: int) -> None:
        self.align(align)
        self.slots.setdefault(name, []).append(len(_ENCAPSULATION) + len(self.data))
        self.sizes[name] = size
        self.data += bytes(size)

    def finish(self) -> "_Layout":
        self.template = np.frombuffer(_ENCAPSULATION + bytes(self.data), dtype=np.uint8)
        self.head_index = np.concatenate([np.arange(self.slots[n][0], self.slots[n][0] + self.sizes[n])
                                          for n in self._HEAD_SLOTS])
        names = [n for n in ("a", "rotmats", "b", "c", "valid", "d") if n in self.slots]
        self.record_at, self.record_size = {}, 0
        for name in names:
            self.record_at[name] = self.record_size
            self.record_size += self.sizes[name]
        people = len(self.slots.get("a", ()))
        starts = np.array([self.slots[n] for n in names], dtype=np.intp).reshape(len(names), people)
        self.body_index = np.concatenate(
            [starts[k][:, None] + np.arange(self.sizes[n]) for k, n in enumerate(names)], axis=1).reshape(-1) \
            if people else np.zeros(0, np.intp)
        self.vertices_at = self.slots.get("vertices", [])
        return self


@functools.lru_cache(maxsize=64)
def _layout(frame_id: str, smpl_model: str, estimator: str, body_ids: Tuple[str, ...],
            velocity_frames: Tuple[str, ...], rotmats: bool, vertices: bool) -> _Layout:
    """The byte layout of a SmplBodyArray with these strings and optional arrays."""
    out = _Layout()
    out.slot("stamp", 8, 4)
    out.string(frame_id)
    out.slot("size", 8, 4)
    out.slot("intrinsics", 32, 8)
    out.string(smpl_model)
    out.string(estimator)
    out.slot("tail", 8, 4)         # latency, frames_skipped
    out.u32(len(body_ids))
    for body_id, velocity_frame in zip(body_ids, velocity_frames):
        out.string(body_id)
        out.slot("a", _SIZE_A, 4)
        out.u32(216 if rotmats else 0)
        if rotmats:
            out.slot("rotmats", 4 * 216, 4)
        out.slot("b", _SIZE_B, 4)
        out.slot("c", 80, 8)
        out.string(velocity_frame)
        out.slot("valid", 1, 1)
        out.u32(20670 if vertices else 0)
        if vertices:
            out.slot("vertices", 4 * 20670, 4)
        out.slot("d", _SIZE_D, 4)
    return out.finish()


@functools.lru_cache(maxsize=1)
def fast_path_agrees() -> bool:
    """Whether rclpy (this rmw's type support) reads :meth:`SmplBodyArrayBundle.cdr` back as
    the same message, and its own serialisation has the same length (checked once, on names of
    every length mod 4, with and without the optional arrays). Bytes are not compared: Fast CDR
    leaves its padding bytes uninitialised."""
    from rclpy.serialization import deserialize_message, serialize_message
    from std_msgs.msg import Header
    from pare_ros.msg import SmplBodyArray

    for optional in (False, True):
        columns = _sample_columns(("", "a", "ab", "abc", "abcd"), optional)
        bundle = SmplBodyArrayBundle(Header(frame_id="cam"), columns, (640, 480), (1.0, 2.0, 3.0, 4.0), "neutral",
                                     "est", 0.25, 3)
        data, msg = bundle.cdr(), bundle.to_msg()
        if len(data) != len(serialize_message(msg)) or deserialize_message(data, SmplBodyArray) != msg:
            return False
    return True


def _sample_columns(body_ids: Sequence[str], optional: bool) -> BodyColumns:
    """Distinct, float32-exact values in every field, for :func:`fast_path_agrees`."""
    p = len(body_ids)
    counter = iter(range(1, 10 ** 7))

    def values(n, dtype=np.float32):
        return (np.array([next(counter) for _ in range(p * n)], dtype=np.float64) / 8).astype(dtype).reshape(p, n)

    return BodyColumns(values(BLOCK_WIDTH), list(body_ids),
                       [2 ** 32 - 1 - i for i in range(p)], [i % 3 for i in range(p)], values(7, np.float64),
                       values(3, np.float64), [i % 2 == 0 for i in range(p)], [name[::-1] for name in body_ids],
                       values(216) if optional else None, values(20670) if optional else None)
