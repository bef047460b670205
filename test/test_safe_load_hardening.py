"""Restricted SMPL unpickler against hand-built malicious pickles (issue 10, item 6).

Each pickle is written opcode by opcode (protocol 2), so the tests do not depend on how any
library happens to pickle things. What must hold: the named error of ``pare_ros.safe_load``,
no MemoryError/RecursionError escaping, no large allocation, and nothing global changed.
"""
from __future__ import annotations

import copyreg
import pickle
import pickletools
import struct
import tracemalloc

import numpy as np
import pytest

from pare_ros import safe_pickle
from pare_ros.safe_load import CorruptFileError, UnsafeFileError
from pare_ros.safe_pickle import check_pickle_structure, restricted_pickle_load

PROTO2 = b"\x80\x02"


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _long(value: int) -> bytes:          # LONG1: little-endian two's complement
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


# numpy 2 names its core package ``numpy._core``; numpy 1.26 (Ubuntu 24.04's apt numpy) ``numpy.core``.
NP_CORE = getattr(np, "_core", None) or np.core

# Every (module, name) the unpickler hands out, with the object behind it.
ALLOWED = [
    ("copyreg", "_reconstructor", copyreg._reconstructor),
    ("copy_reg", "_reconstructor", copyreg._reconstructor),
    ("numpy.core.multiarray", "_reconstruct", NP_CORE.multiarray._reconstruct),
    ("numpy._core.multiarray", "scalar", NP_CORE.multiarray.scalar),
    ("numpy._core.numeric", "_frombuffer", NP_CORE.numeric._frombuffer),
    ("_codecs", "encode", safe_pickle._latin1_encode),
    ("numpy", "ndarray", np.ndarray),
    ("numpy", "dtype", np.dtype),
    ("builtins", "object", object),
    ("builtins", "set", set),
    ("chumpy.ch", "Ch", safe_pickle.ChumpyStandIn),
    ("scipy.sparse._csc", "csc_matrix",
     safe_pickle.RestrictedUnpickler._STAND_INS[("scipy.sparse._csc", "csc_matrix")]),
]
ATTRS = ("__name__", "__qualname__", "__module__", "__doc__", "__defaults__", "__kwdefaults__")


def _snapshot(obj):
    values = {a: getattr(obj, a, "<absent>") for a in ATTRS}
    values["__dict__"] = dict(getattr(obj, "__dict__", {}))
    return values


def build_setattr_pickle(module: str, name: str, slot_state: bool) -> bytes:
    """GLOBAL module.name; BUILD with {'__name__': 'pwned', '__defaults__': None}, either as the
    (None, slotstate) pair (→ setattr on the object) or as a plain dict (→ its __dict__)."""
    state = (b"}" + _unicode("__name__") + _unicode("pwned") + b"s"
             + _unicode("__defaults__") + b"N" + b"s")
    if slot_state:
        state = b"N" + state + b"\x86"          # TUPLE2 (None, {...})
    return PROTO2 + _global(module, name) + state + b"b" + b"."


@pytest.mark.parametrize("slot_state", [True, False], ids=["setattr", "dict"])
@pytest.mark.parametrize("module,name,obj", ALLOWED, ids=[f"{m}.{n}" for m, n, _ in ALLOWED])
def test_build_cannot_modify_allow_listed_objects(module, name, obj, slot_state):
    data = build_setattr_pickle(module, name, slot_state)
    pickletools.dis(data, out=open("/dev/null", "w"))      # a well-formed pickle
    before = _snapshot(obj)
    with pytest.raises((UnsafeFileError, CorruptFileError)):
        restricted_pickle_load(data)
    assert _snapshot(obj) == before
    assert copyreg._reconstructor.__name__ == "_reconstructor"
    # pickling in this process still works (the reported breakage)
    assert pickle.loads(pickle.dumps({"a": [1, 2]}, protocol=0)) == {"a": [1, 2]}


def test_the_130_byte_rename_pickle_is_refused_with_the_named_error():
    data = build_setattr_pickle("copyreg", "_reconstructor", slot_state=True)
    assert len(data) < 130
    with pytest.raises(UnsafeFileError, match="allow-listed function"):
        restricted_pickle_load(data)
    assert copyreg._reconstructor.__name__ == "_reconstructor"
    assert copyreg._reconstructor.__defaults__ is None


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    except (UnsafeFileError, CorruptFileError):
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_40_gib_reconstruct_is_refused_before_allocating():
    # _reconstruct(ndarray, (40 GiB,), b'b'): 72 bytes that would allocate 40 GiB.
    data = (PROTO2 + _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray")
            + _long(40 << 30) + b"\x85" + b"C\x01b" + b"\x87" + b"R" + b".")
    assert len(data) <= 72
    with pytest.raises(CorruptFileError, match="refusing to allocate 42949672960 bytes"):
        restricted_pickle_load(data)
    assert _peak_bytes(lambda: restricted_pickle_load(data)) < 1 << 20


def test_huge_object_array_state_is_refused_before_allocating():
    # a legal empty array, then BUILD (1, (10**10,), dtype('O'), False, []): numpy would
    # allocate 80 GB of pointers before noticing the list is empty.
    data = (PROTO2 + _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray")
            + b"K\x00\x85" + b"C\x01b" + b"\x87R"
            + b"(K\x01" + _long(10 ** 10) + b"\x85" + _global("numpy", "dtype") + _unicode("O")
            + b"\x85R" + b"\x89]t" + b"b.")
    with pytest.raises(CorruptFileError, match="refusing to allocate"):
        restricted_pickle_load(data)
    assert _peak_bytes(lambda: restricted_pickle_load(data)) < 1 << 20


def test_deeply_nested_key_is_refused_before_unpickling():
    # {((((0,),),)...): 1} nested 100 000 deep: hashing the key recurses in C (a crash on
    # CPython 3.11, RecursionError elsewhere).
    data = PROTO2 + b"}" + b"K\x00" + b"\x85" * 100_000 + b"K\x01" + b"s" + b"."
    with pytest.raises(CorruptFileError, match="nested deeper than 64"):
        restricted_pickle_load(data)
    # the same nesting hidden behind the memo (PUT / GET) is tracked too
    memo = PROTO2 + b"}" + b"K\x00\x85q\x00"
    for _ in range(100):
        memo += b"0h\x00\x85q\x00"             # POP; GET 0; TUPLE1; PUT 0
    memo += b"0h\x00K\x01s."
    with pytest.raises(CorruptFileError, match="nested deeper"):
        check_pickle_structure(memo)


def test_truncated_and_garbage_streams_are_corrupt_not_other_errors():
    good = pickle.dumps({"v": np.arange(6.0).reshape(2, 3)}, protocol=2)
    for bad in (good[: len(good) // 2], b"\xff" * 20, PROTO2 + b"s."):
        with pytest.raises(CorruptFileError):
            restricted_pickle_load(bad)


@pytest.mark.parametrize("protocol", [2, 5])
def test_legitimate_arrays_still_load_as_plain_ndarrays(protocol):
    value = {"f": np.random.default_rng(0).normal(size=(300, 40)),
             "o": np.array([None, "a", 3], dtype=object), "s": {1, 2}, "i": np.int64(7)}
    out = restricted_pickle_load(pickle.dumps(value, protocol=protocol))
    assert type(out["f"]) is np.ndarray and np.array_equal(out["f"], value["f"])
    assert type(out["o"]) is np.ndarray and list(out["o"]) == [None, "a", 3]
    assert out["s"] == {1, 2} and out["i"] == 7
