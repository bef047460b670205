"""Classic pickles (the official SMPL ``.pkl`` files) read without executing code from them.

:func:`restricted_pickle_load` uses a ``pickle.Unpickler`` whose ``find_class`` allows only
numpy's array reconstruction and returns stand-ins for chumpy's ``Ch`` and scipy's sparse
matrices (chumpy is never imported). The opcode stream is checked for nesting depth before
unpickling, array allocations draw on a budget bounded by the file size, and allow-listed
callables are handed out as per-load wrappers that refuse attribute changes, so a file can
neither exhaust memory nor change anything process-wide. Every failure is a
:class:`~pare_ros.safe_load.CorruptFileError` or :class:`~pare_ros.safe_load.UnsafeFileError`.
"""
from __future__ import annotations

import importlib
import io
import pickle
import pickletools
from typing import Any, Dict, List, Tuple

import numpy as np

from .safe_load import CorruptFileError, UnsafeFileError

class _ImmutableClass(type):
    """Metaclass of the stand-ins: a pickle BUILD on the class itself cannot set attributes
    on it (which would change the class for the whole process)."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise UnsafeFileError(f"refusing to set {name!r} on {cls.__name__}: a pickle tried to "
                              "modify an allow-listed class. Nothing from the file was executed.")


class ChumpyStandIn(metaclass=_ImmutableClass):
    """Holds the value of a pickled ``chumpy.ch.Ch`` leaf without importing chumpy.

    The official SMPL files store some arrays as chumpy leaves whose pickled state is a dict
    with the ndarray under ``'x'``.
    """

    pickled_name = "chumpy.ch.Ch"

    def __init__(self, *args: Any) -> None:
        self.state: Dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"x": state}

    def to_numpy(self) -> np.ndarray:
        value = self.state.get("x")
        if not isinstance(value, np.ndarray):
            raise CorruptFileError(
                f"chumpy object {self.pickled_name} holds no array under 'x' (a derived chumpy "
                "expression); convert the file on a machine with chumpy: see `pare-ros convert-smpl`"
            )
        return value


class SparseStandIn(metaclass=_ImmutableClass):
    """Holds a pickled ``scipy.sparse`` CSC/CSR matrix's arrays; rebuilt by scipy on demand."""

    pickled_name = "scipy.sparse"

    def __init__(self, *args: Any) -> None:
        self.state: Dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = dict(state)

    def to_numpy(self) -> np.ndarray:
        import scipy.sparse

        s = self.state
        shape = s.get("_shape", s.get("shape"))
        # Old scipy pickled ``format`` in the instance state; newer scipy does not, and then
        # the pickled class name (csc_matrix / csr_matrix) is the only record of the layout.
        fmt = s.get("format") or self.pickled_name.rsplit(".", 1)[-1][:3]
        try:
            cls = {"csc": scipy.sparse.csc_matrix, "csr": scipy.sparse.csr_matrix}[fmt]
            matrix = cls((s["data"], s["indices"], s["indptr"]), shape=shape)
        except (KeyError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"malformed sparse matrix in pickle: {exc}") from exc
        return np.asarray(matrix.todense())


def _sparse_names() -> Dict[Tuple[str, str], type]:
    names = {}
    for fmt in ("csc", "csr"):
        for module in (f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}", "scipy.sparse"):
            names[(module, f"{fmt}_matrix")] = _ImmutableClass(
                f"{fmt}_matrix", (SparseStandIn,), {"pickled_name": f"scipy.sparse.{fmt}_matrix"})
    return names


def _latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeFileError(f"refusing _codecs.encode with encoding {encoding!r}: only latin1 "
                              "byte strings occur in model files. Nothing from the file was executed.")
    return text.encode("latin1")


# --------------------------------------------------------------------------------------------
# Resource limits of one restricted load
# --------------------------------------------------------------------------------------------
#: Deepest container nesting accepted (the SMPL files nest about 4 deep). CPython hashes and
#: compares nested tuples recursively in C: a key nested 10⁵ deep crashes the interpreter
#: (3.11) or raises RecursionError, so depth is checked on the opcodes before unpickling.
MAX_PICKLE_NESTING = 64
#: Allocation allowance on top of the file-size bound (small arrays in tiny files).
ALLOCATION_SLACK_BYTES = 1 << 20


class _Budget:
    """Bytes that array reconstruction may still allocate for one file.

    Every element of a pickled array is stored in the file (raw bytes, or ≥ 1 opcode byte per
    object reference), so a file of n bytes needs at most 8·n bytes of arrays (object arrays
    hold 8-byte pointers). A request above what is left is refused *before* numpy allocates.
    """

    def __init__(self, file_size: int) -> None:
        self.left = 8 * file_size + ALLOCATION_SLACK_BYTES

    def take(self, nbytes: int, what: str) -> None:
        if nbytes < 0 or nbytes > self.left:
            raise CorruptFileError(
                f"refusing to allocate {nbytes} bytes for {what}: more than the file can hold "
                f"({self.left} bytes left for this file); the pickle is corrupted or malicious")
        self.left -= nbytes


def _nbytes(shape: Any, dtype: Any, what: str) -> int:
    """Size in bytes of an array of ``shape`` and ``dtype`` (Python ints: no overflow)."""
    try:
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        if not all(isinstance(d, int) and d >= 0 for d in dims):
            raise TypeError(f"shape {shape!r} is not a tuple of non-negative ints")
        dt = np.dtype(dtype)
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(f"malformed {what} in pickle: {exc}") from exc
    count = 1
    for d in dims:
        count *= d
    return count * (8 if dt.hasobject else dt.itemsize)


class _GuardedArray(np.ndarray):
    """ndarray subtype used only during a restricted load: its ``__setstate__`` (pickle BUILD)
    checks the size in the state against the budget before numpy allocates. Converted back to
    plain ndarrays before the result is returned."""

    _budget: _Budget | None = None      # set per load on a fresh subclass

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) in (4, 5)):
            raise CorruptFileError(f"malformed ndarray state in pickle ({type(state).__name__})")
        shape, dtype = state[-4], state[-3]
        type(self)._budget.take(_nbytes(shape, dtype, "ndarray state"), "an ndarray")
        super().__setstate__(state)


class _Function:
    """Fresh per-load handle on an allow-listed function. Calling it calls the function (after
    ``check``); a pickle BUILD on it is refused. Handing out the function itself would let BUILD
    ``setattr`` on it, e.g. rename ``copyreg._reconstructor`` for the whole process."""

    __slots__ = ("_fn", "_check")

    def __init__(self, fn: Any, check: Any = None) -> None:
        self._fn, self._check = fn, check

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._check is not None:
            args = self._check(*args, **kwargs)
            kwargs = {}
        return self._fn(*args, **kwargs)

    def __setstate__(self, state: Any) -> None:
        raise UnsafeFileError(
            f"refusing to set state on {getattr(self._fn, '__qualname__', self._fn)}: the pickle "
            "tried to modify an allow-listed function. Nothing from the file was executed.")


_STACK_MUTATORS = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"})
_MEMO_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_MEMO_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})


def check_pickle_structure(data: bytes, max_nesting: int = MAX_PICKLE_NESTING) -> None:
    """Walk the opcodes of ``data`` without building anything; raise CorruptFileError when the
    stream is truncated/invalid or nests containers deeper than ``max_nesting``.

    The depth of each stack item is tracked (memo included): a container built from items is
    1 + their deepest; APPEND/SETITEM/BUILD raise the target's depth in place. Tuples and
    frozensets — the hashable, recursively hashed kinds — are immutable, so their depth is exact.
    """
    mark = object()
    stack: List[Any] = []
    memo: Dict[Any, int] = {}

    def pop() -> int:
        if not stack or stack[-1] is mark:
            raise CorruptFileError("not a readable pickle (truncated or corrupted?): stack underflow")
        return stack.pop()

    try:
        for op, arg, _pos in pickletools.genops(data):
            name = op.name
            if name == "MARK":
                stack.append(mark)
                continue
            if name in _MEMO_PUT or name == "MEMOIZE":
                if not stack or stack[-1] is mark:
                    raise CorruptFileError("not a readable pickle (corrupted?): memo of nothing")
                memo[arg if name in _MEMO_PUT else len(memo)] = stack[-1]
                continue
            if name in _MEMO_GET:
                stack.append(memo.get(arg, 0))
                continue
            if name == "DUP":
                stack.append(stack[-1] if stack and stack[-1] is not mark else 0)
                continue
            before = op.stack_before
            items: List[int] = []
            if pickletools.markobject in before:
                while stack and stack[-1] is not mark:
                    items.append(stack.pop())
                if not stack:
                    raise CorruptFileError("not a readable pickle (truncated or corrupted?): "
                                           "MARK missing")
                stack.pop()
                below = [pop() for _ in range(before.index(pickletools.markobject))]
            else:
                below = [pop() for _ in range(len(before))][::-1]
            if name in _STACK_MUTATORS:
                target, others = below[0], below[1:] + items
                depth = max(target, 1 + max(others, default=0))
            else:
                children = below + items
                depth = 1 + max(children) if children else 0
            if depth > max_nesting:
                raise CorruptFileError(
                    f"refusing a pickle nested deeper than {max_nesting} levels (at opcode "
                    f"{name}); model files nest a few levels, the file is corrupted or malicious")
            stack.extend([depth] * len(op.stack_after))
    except ValueError as exc:        # pickletools: truncated argument, unknown opcode, no STOP
        raise CorruptFileError(f"not a readable pickle (truncated or corrupted?): {exc}") from exc


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only numpy array/scalar reconstruction and stand-ins.

    Nothing global can change: functions are handed out as fresh :class:`_Function` handles
    (BUILD refused), classes are immutable types, and array reconstruction draws on a per-file
    :class:`_Budget` before numpy allocates.
    """

    _STAND_INS: Dict[Tuple[str, str], type] = {
        ("chumpy.ch", "Ch"): ChumpyStandIn,
        **_sparse_names(),
    }
    # A chumpy leaf's pickled state holds ``_dirty_vars``, a set (Python 2: ``__builtin__.set``).
    _TYPES = {
        ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
        ("__builtin__", "object"): object, ("builtins", "object"): object,
        ("__builtin__", "set"): set, ("builtins", "set"): set,
    }

    def __init__(self, file: Any, *, file_size: int, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.budget = _Budget(file_size)
        self._array_type = type("ndarray", (_GuardedArray,), {"_budget": self.budget})
        self._function_table = self._functions()

    # -- checked entry points -----------------------------------------------------------------
    def _check_reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> tuple:
        if subtype is not np.ndarray:
            raise UnsafeFileError(f"refusing _reconstruct of {subtype!r}: only numpy.ndarray")
        self.budget.take(_nbytes(shape, dtype, "array shape"), "an array")
        return (self._array_type, shape, dtype)

    def _check_scalar(self, dtype: Any, *rest: Any) -> tuple:
        if not isinstance(dtype, np.dtype):
            raise CorruptFileError(f"malformed numpy scalar in pickle: dtype {type(dtype).__name__}")
        self.budget.take(dtype.itemsize, "a numpy scalar")
        return (dtype, *rest)

    def _functions(self) -> Dict[Tuple[str, str], Any]:
        import copyreg

        mods = ("numpy.core", "numpy._core")
        # numpy 2 names the package numpy._core; numpy 1.26 (Ubuntu 24.04, apt ROS 2) has
        # only numpy.core (no np._core attribute), so the modules are imported by name.
        try:
            multiarray = importlib.import_module("numpy._core.multiarray")
            numeric = importlib.import_module("numpy._core.numeric")
        except ImportError:
            multiarray = importlib.import_module("numpy.core.multiarray")
            numeric = importlib.import_module("numpy.core.numeric")
        out: Dict[Tuple[str, str], Any] = {}
        for m in mods:
            out[(f"{m}.multiarray", "_reconstruct")] = _Function(
                multiarray._reconstruct, self._check_reconstruct)
            out[(f"{m}.multiarray", "scalar")] = _Function(multiarray.scalar, self._check_scalar)
            # protocol-5 pickles rebuild arrays from an in-band buffer (a view: no allocation)
            out[(f"{m}.numeric", "_frombuffer")] = _Function(numeric._frombuffer)
        out[("copy_reg", "_reconstructor")] = out[("copyreg", "_reconstructor")] = \
            _Function(copyreg._reconstructor, self._check_reconstructor)
        # Python 3 writes bytes (numpy array buffers) in protocol-2 pickles as
        # _codecs.encode(str, "latin1"); only that exact use is allowed.
        out[("_codecs", "encode")] = _Function(_latin1_encode)
        return out

    def _check_reconstructor(self, cls: Any, base: Any, state: Any) -> tuple:
        # copyreg._reconstructor(cls, base, state) = base.__new__(cls, state) (+ __init__):
        # only the stand-ins on plain object, or sets.
        if not ((isinstance(cls, type) and issubclass(cls, (ChumpyStandIn, SparseStandIn))
                 and base is object) or (cls is set and base is set)):
            raise UnsafeFileError(f"refusing copyreg._reconstructor({cls!r}, {base!r}): not a "
                                  "model-file type. Nothing from the file was executed.")
        return (cls, base, state)

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._function_table:
            return self._function_table[key]
        if key in self._STAND_INS:
            return self._STAND_INS[key]
        if key in self._TYPES:
            return self._TYPES[key]
        if module.startswith("numpy") and name.startswith(("dtype", "Float", "Int", "UInt", "Bool")):
            # numpy 2 pickles dtypes as numpy.dtypes.Float64DType etc. (immutable types)
            import numpy.dtypes

            candidate = getattr(numpy.dtypes, name, None)
            if isinstance(candidate, type) and issubclass(candidate, np.dtype):
                return candidate
        raise UnsafeFileError(
            f"refusing to unpickle {module}.{name}: not an allowed type for a model file "
            "(only numpy arrays, chumpy arrays and scipy sparse matrices are). Nothing from "
            "the file was executed."
        )


def _plain_arrays(value: Any, depth: int = 0) -> Any:
    """Replace the load-time :class:`_GuardedArray` subtype by plain ndarrays (in containers and
    stand-in states; depth is bounded by :func:`check_pickle_structure`)."""
    if isinstance(value, _GuardedArray):
        return value.view(np.ndarray)
    if depth > MAX_PICKLE_NESTING:
        return value
    if isinstance(value, dict):
        for k in list(value):
            value[k] = _plain_arrays(value[k], depth + 1)
    elif isinstance(value, list):
        value[:] = [_plain_arrays(v, depth + 1) for v in value]
    elif isinstance(value, tuple):
        return tuple(_plain_arrays(v, depth + 1) for v in value)
    elif isinstance(value, (ChumpyStandIn, SparseStandIn)):
        value.state = _plain_arrays(value.state, depth + 1)
    return value


def restricted_pickle_load(data: bytes) -> Any:
    """Unpickle ``data`` (Python 2 ``latin1`` strings allowed) with :class:`RestrictedUnpickler`.

    The opcodes are checked first (:func:`check_pickle_structure`); allocations are bounded by
    the file size. Raises UnsafeFileError (code or modification of allow-listed objects
    requested) or CorruptFileError (truncated, malformed, too deep, or too large); no other
    exception (MemoryError, RecursionError included) escapes.
    """
    check_pickle_structure(data)
    try:
        unpickler = RestrictedUnpickler(io.BytesIO(data), file_size=len(data), encoding="latin1")
        return _plain_arrays(unpickler.load())
    except (UnsafeFileError, CorruptFileError):
        raise
    except (MemoryError, RecursionError) as exc:
        raise CorruptFileError(f"not a readable pickle (corrupted or malicious?): "
                               f"{type(exc).__name__}") from None
    except Exception as exc:  # noqa: BLE001 - no code from the file ran; any failure = bad file
        raise CorruptFileError(f"not a readable pickle (truncated or corrupted?): "
                               f"{type(exc).__name__}: {exc}") from exc


def to_numpy(value: Any) -> Any:
    """Resolve chumpy/sparse stand-ins to ndarrays; pass everything else through."""
    if isinstance(value, (ChumpyStandIn, SparseStandIn)):
        return value.to_numpy()
    return value
