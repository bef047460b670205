"""Fast construction of many small ROS message objects.

rclpy's generated message classes check every field in their setters (type, range, and on
Kilted+ a per-instance ``_check_fields`` flag); for the hundreds of ``Point``/``TransformStamped``
objects a frame needs, those checks cost more than everything else. :func:`bulk_builder` makes a
constructor that writes the private slots directly — for values the caller guarantees are
already of the right Python type (floats from ``ndarray.tolist()``, ``str``, message objects).
Serialisation reads the same slots, so the bytes are identical (test_ros_tf_markers.py).
"""
from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def bulk_builder(cls, fields):
    """``make(*values) -> cls`` setting ``fields`` (a tuple of names) without the generated
    per-field checks. Falls back to the checked constructor if ``cls`` does not have the
    private slots expected (another rosidl generator)."""
    slots = set(getattr(cls, "__slots__", ()))
    if not {"_" + f for f in fields} <= slots:
        return lambda *values: cls(**dict(zip(fields, values)))
    # A straight-line function per class (fields are our constants, not input): a loop over
    # setattr would cost as much as the checks we skip. Kilted+ has a _check_fields slot that
    # every instance must carry; Humble/Jazzy do not. Fields not named keep the defaults of a
    # fresh instance only if cls() is used, so the remaining slots are copied from a template.
    rest = sorted(slots - {"_" + f for f in fields} - {"_check_fields"})
    lines = [f"def make({', '.join(fields)}):", "    obj = new(cls)"]
    lines += [f"    obj._{f} = {f}" for f in fields]
    lines += [f"    obj.{slot} = copy(template.{slot})" for slot in rest]
    if "_check_fields" in slots:
        lines.append("    obj._check_fields = False")
    lines.append("    return obj")
    namespace = {"new": cls.__new__, "cls": cls, "template": cls(), "copy": _copy_default}
    exec("\n".join(lines), namespace)  # noqa: S102
    return namespace["make"]


def _copy_default(value):
    """Defaults of a fresh message: immutable values are shared, mutable ones copied."""
    if isinstance(value, (int, float, str, bool, bytes)) or value is None:
        return value
    import copy

    return copy.deepcopy(value)
