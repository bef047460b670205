"""One frame's TF transforms as arrays, serialised to a ``tf2_msgs/TFMessage`` without objects.

A frame with 8 people has 208 transforms; as ``TransformStamped`` objects (6 message objects
each) they cost ~1 ms to build and another ~1 ms for rclpy to serialise. :class:`TransformBundle`
keeps them as NumPy arrays and writes the CDR bytes directly (``Publisher.publish(bytes)``):
the frame names only change when the people do, so the byte layout with every string in place
is cached and each frame only scatters its stamp and its [M,7] float64 values into a copy.

CDR (classic, little endian; offsets after the 4-byte encapsulation header)::

    uint32 M
    M × { int32 sec, uint32 nanosec, string frame_id, string child_frame_id,
          (align 8) float64 translation[3], float64 rotation[4] }
    string = uint32 length (with the NUL), the bytes, NUL; each uint32 aligned to 4

The first transform starts at offset 4, every later one at a multiple of 8 (the 56 value bytes
end 8-aligned), so padding is computed per transform from its actual offset. Before the first
use :func:`fast_path_agrees` checks the writer against rclpy's own (de)serialisation (another rmw
or a big-endian host could encode differently); if they disagree, ``serialize()`` uses the
message objects. Padding bytes are zero (Fast CDR leaves them uninitialised, so the bytes equal
``serialize_message``'s everywhere but there).
"""
from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
import numpy as np

from .message_builders import bulk_builder

_ENCAPSULATION = b"\x00\x01\x00\x00"        # CDR_LE, no options


class TransformBundle(Sequence):
    """M transforms sharing one stamp, as arrays; a read-only sequence of TransformStamped.

    Args:
        sec, nanosec: the stamp of every transform (builtin_interfaces/Time).
        parents, children: M frame names (header.frame_id, child_frame_id).
        translations: [M,3] float64 m; quaternions: [M,4] float64 (x, y, z, w).

    ``serialize()`` gives the CDR bytes of ``TFMessage(transforms=self.to_msgs())``;
    ``to_msgs()`` (also ``len``, indexing, iteration) the objects, built on first use.
    """

    def __init__(self, sec: int = 0, nanosec: int = 0, parents: Sequence = (), children: Sequence = (),
                 translations=None, quaternions=None) -> None:
        self.sec, self.nanosec = int(sec), int(nanosec)
        self.parents, self.children = tuple(parents), tuple(children)
        m = len(self.parents)
        self.translations = np.zeros((0, 3)) if translations is None else np.asarray(translations, np.float64)
        self.quaternions = np.zeros((0, 4)) if quaternions is None else np.asarray(quaternions, np.float64)
        if len(self.children) != m or self.translations.shape != (m, 3) or self.quaternions.shape != (m, 4):
            raise ValueError(f"{m} parents but {len(self.children)} children, translations "
                             f"{self.translations.shape}, quaternions {self.quaternions.shape}")
        self._msgs = None

    def __len__(self) -> int:
        return len(self.parents)

    def __getitem__(self, index):
        return self.to_msgs()[index]

    def to_msgs(self) -> list:
        """The transforms as geometry_msgs/TransformStamped (built once, then cached)."""
        if self._msgs is None:
            self._msgs = _transform_msgs(self.sec, self.nanosec, self.parents, self.children,
                                         self.translations, self.quaternions)
        return self._msgs

    def to_msg(self):
        """tf2_msgs/TFMessage of the transforms."""
        from tf2_msgs.msg import TFMessage

        return TFMessage(transforms=self.to_msgs())

    def serialize(self) -> bytes:
        """CDR bytes of :meth:`to_msg` (rclpy's serialize_message up to padding bytes), for
        ``Publisher.publish(bytes)`` and rosbag2 writers."""
        if not fast_path_agrees():
            from rclpy.serialization import serialize_message

            return serialize_message(self.to_msg())
        return self.cdr()

    def cdr(self) -> bytes:
        """The NumPy writer's bytes (classic little-endian CDR), whatever the rmw."""
        template, stamp_index, value_index = _layout(self.parents, self.children)
        buf = template.copy()
        if len(self):
            buf[stamp_index] = np.frombuffer(struct.pack("<iI", self.sec, self.nanosec) * len(self), dtype=np.uint8)
            values = np.concatenate((self.translations, self.quaternions), axis=1, dtype="<f8")
            buf[value_index] = values.view(np.uint8).reshape(-1)
        return buf.tobytes()


@functools.lru_cache(maxsize=64)
def _layout(parents: tuple, children: tuple):
    """(template uint8 [N], stamp byte positions [M·8], value byte positions [M·56]) of a
    TFMessage with these frame names: the template holds everything but stamps and values."""
    body = bytearray(len(parents).to_bytes(4, "little"))     # offsets count from after the header
    stamps, values = [], []
    for parent, child in zip(parents, children):
        stamps.append(len(body))
        body += bytes(8)
        for name in (parent.encode(), child.encode()):
            body += bytes(-len(body) % 4) + (len(name) + 1).to_bytes(4, "little") + name + b"\x00"
        body += bytes(-len(body) % 8)
        values.append(len(body))
        body += bytes(56)
    template = np.frombuffer(_ENCAPSULATION + bytes(body), dtype=np.uint8)
    head = len(_ENCAPSULATION)
    stamp_index = (np.asarray(stamps, dtype=np.intp)[:, None] + head + np.arange(8)).reshape(-1)
    value_index = (np.asarray(values, dtype=np.intp)[:, None] + head + np.arange(56)).reshape(-1)
    return template, stamp_index, value_index


def _transform_msgs(sec: int, nanosec: int, parents, children, translations: np.ndarray,
                    quaternions: np.ndarray) -> list:
    """TransformStamped objects from [M,3] translations and [M,4] quaternions, built through
    :func:`.message_builders.bulk_builder` (the setters' checks cost more than the math)."""
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
    from std_msgs.msg import Header

    make_time = bulk_builder(Time, ("sec", "nanosec"))
    make_header = bulk_builder(Header, ("stamp", "frame_id"))
    make_vector = bulk_builder(Vector3, ("x", "y", "z"))
    make_quat = bulk_builder(Quaternion, ("x", "y", "z", "w"))
    make_transform = bulk_builder(Transform, ("translation", "rotation"))
    make_stamped = bulk_builder(TransformStamped, ("header", "child_frame_id", "transform"))
    t_list = np.asarray(translations, dtype=np.float64).tolist()   # Python floats for the slots
    q_list = np.asarray(quaternions, dtype=np.float64).tolist()
    return [make_stamped(make_header(make_time(sec, nanosec), str(parent)), str(child),
                         make_transform(make_vector(*t), make_quat(*q)))
            for parent, child, t, q in zip(parents, children, t_list, q_list)]


@functools.lru_cache(maxsize=1)
def fast_path_agrees() -> bool:
    """Whether rclpy (this rmw's type support) reads :meth:`TransformBundle.cdr` back as the
    same message, and its own serialisation has the same length (checked once, on names of
    every length mod 4, an empty one included, and a negative stamp). Bytes are not compared:
    Fast CDR leaves its padding bytes uninitialised."""
    from rclpy.serialization import deserialize_message, serialize_message
    from tf2_msgs.msg import TFMessage

    names = ("", "a", "ab", "abc", "abcd", "abcde")
    m = len(names)
    sample = TransformBundle(-7, 999_999_999, names, names[::-1],
                             np.arange(3 * m, dtype=np.float64).reshape(m, 3) * -0.37,
                             np.arange(4 * m, dtype=np.float64).reshape(m, 4) * 0.11)
    data, msg = sample.cdr(), sample.to_msg()
    return len(data) == len(serialize_message(msg)) and deserialize_message(data, TFMessage) == msg
