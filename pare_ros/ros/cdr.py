"""Primitives shared by the CDR writers (body_array.py, marker_cdr.py, body_points.py).

The node writes ``~/bodies``, markers and body points as CDR bytes itself; each writer checks
itself once per process against rclpy's serialiser. :class:`CdrRun` lays out a run of fields
(little-endian, alignment relative to the run's start, padding ranges recorded);
:func:`outside_padding` drops those ranges for the comparison with rclpy's bytes (Fast CDR
leaves padding uninitialised).
"""
from __future__ import annotations

import struct
from typing import List, Tuple

import numpy as np

_U32 = struct.Struct("<I")


class CdrRun:
    """CDR bytes of a run of fields that starts at a 4-aligned offset and has no field
    aligned to 8 (strings, stamps, uint8 and float32 sequences), so its bytes do not depend on
    where it starts: the building block of the cached chunks below and of body_points.py's
    PointCloud2 head. ``padding`` gets the (start, end) offsets, from the run's start, of every
    alignment padding run."""

    __slots__ = ("data", "padding")

    def __init__(self) -> None:
        self.data = bytearray()
        self.padding: List[Tuple[int, int]] = []

    def align(self, n: int) -> None:
        pad = -len(self.data) % n
        if pad:
            self.padding.append((len(self.data), len(self.data) + pad))
            self.data += bytes(pad)

    def u32(self, value: int) -> None:
        self.align(4)
        self.data += _U32.pack(value)

    def string(self, text: str) -> None:
        data = text.encode()
        if b"\x00" in data:            # rclpy hands C strings to the serialiser: it ends at a NUL
            data = data[:data.index(b"\x00")]
        self.u32(len(data) + 1)
        self.data += data + b"\x00"

    def octets(self, data) -> None:
        """sequence<uint8>."""
        data = bytes(data)
        self.u32(len(data))
        self.data += data

    def chunk(self) -> Tuple[bytes, Tuple[Tuple[int, int], ...]]:
        return bytes(self.data), tuple(self.padding)


def outside_padding(data: bytes, padding: List[Tuple[int, int]]) -> np.ndarray:
    """``data`` as uint8 with the ``padding`` ranges removed (for comparing with rclpy's bytes)."""
    keep = np.ones(len(data), dtype=bool)
    for start, end in padding:
        keep[start:end] = False
    return np.frombuffer(data, np.uint8)[keep]
