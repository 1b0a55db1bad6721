"""Validation of parameters: every check of linop, in one place, with one wording.

Every public constructor and function parses its arguments with the helpers
here. A bad value raises `ParameterValueError` (a `ValueError`) or
`ParameterTypeError` (a `TypeError`); both are `ParameterError`s and carry
the name of the offending parameter in ``.parameter``, so that a caller (the
command line maps parameters to its flags) never has to read the message.

The rule for the two kinds: a value of the wrong *type* (a float where an
int is needed, a string, None) is a `ParameterTypeError`; a value of the
right type but out of range or inconsistent with the others is a
`ParameterValueError`. Messages name the parameter and repeat its value.

Integers are bounded by `MAX_SIZE` (``2**62``): every flat index, offset
and size that linop computes from them then fits in int64, so no later step
can overflow or silently wrap around.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

__all__ = [
    "MAX_SIZE",
    "OPERATOR_DTYPES",
    "ParameterError",
    "ParameterTypeError",
    "ParameterValueError",
    "SPARSE_OPERAND_MESSAGE",
    "as_bool",
    "as_choice",
    "as_count",
    "as_int",
    "as_nbytes",
    "as_operator_dtype",
    "as_shape",
    "as_weight",
    "check_groups",
    "check_numeric_operand",
    "index_dtype",
    "is_int",
    "is_sparse",
    "padding_pairs",
    "per_axis",
    "per_axis_real",
]

#: The largest size, stride, dilation or padding linop accepts (and the
#: largest number of elements of a shape): with it every flat index and
#: offset fits in int64.
MAX_SIZE = 2**62

#: The dtypes of linop's operators: float32, float64, complex64, complex128.
OPERATOR_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))

_INT32_MAX = np.iinfo(np.int32).max


class ParameterError(Exception):
    """A parameter of a linop function or constructor is invalid.

    Base of `ParameterValueError` and `ParameterTypeError`; ``parameter``
    names the argument at fault (for example ``"stride"``).

    Examples
    --------
    >>> import numpy as np, linop
    >>> try:
    ...     linop.Conv2d(np.ones((3, 3)), (8, 8), stride=0)
    ... except linop.ParameterError as err:
    ...     print(err.parameter, "|", err)
    stride | stride must be >= 1 on every axis, got 0
    >>> issubclass(linop.ParameterValueError, ValueError)
    True
    """

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter

    def __reduce__(self):  # pickles (e.g. from a Dask worker) with its parameter
        return type(self), (self.parameter, str(self))


class ParameterValueError(ParameterError, ValueError):
    """A parameter has the right type but a value out of range or inconsistent."""


class ParameterTypeError(ParameterError, TypeError):
    """A parameter has the wrong type."""


# Shown (in tracebacks, doctests, reprs) where users import them from.
for _cls in (ParameterError, ParameterValueError, ParameterTypeError):
    _cls.__module__ = "linop"


# -- integers -------------------------------------------------------------------------
def is_int(value) -> bool:
    """An integer (Python, NumPy, or a 0-d integer array), not a bool."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu"


def _check_range(value: int, name: str, shown, minimum, maximum) -> int:
    if minimum is not None and value < minimum:
        raise ParameterValueError(name, f"{name} must be >= {minimum}, got {shown!r}")
    if maximum is not None and value > maximum:
        raise ParameterValueError(
            name, f"{name} must be at most 2**62 = {MAX_SIZE}, got {shown!r}"
            if maximum == MAX_SIZE else f"{name} must be <= {maximum}, got {shown!r}"
        )
    return value


def as_int(value, name: str, *, minimum: int | None = None, maximum: int | None = MAX_SIZE) -> int:
    """``value`` as a Python int in ``[minimum, maximum]``."""
    if not is_int(value):
        raise ParameterTypeError(name, f"{name} must be an int, got {value!r}")
    return _check_range(operator.index(value), name, value, minimum, maximum)


def _int_items(value) -> list | None:
    """The items of a sequence of ints (tuple, list, 1-D integer array), else None."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.dtype.kind not in "iu":
            return None
        return [int(v) for v in value]
    if isinstance(value, (tuple, list)) and all(is_int(v) for v in value):
        return [operator.index(v) for v in value]
    return None


def per_axis(value, ndim: int, name: str, *, minimum: int) -> tuple[int, ...]:
    """An int, or a sequence of ``ndim`` ints, as a tuple of ``ndim`` ints >= ``minimum``."""
    if is_int(value):
        values = (operator.index(value),) * ndim
    else:
        items = _int_items(value)
        if items is None:
            raise ParameterTypeError(
                name, f"{name} must be an int or a sequence of {ndim} ints, got {value!r}"
            )
        if len(items) != ndim:
            raise ParameterValueError(
                name, f"{name} must be an int or a sequence of {ndim} ints, got {value!r}"
            )
        values = tuple(items)
    if any(v < minimum for v in values):
        raise ParameterValueError(name, f"{name} must be >= {minimum} on every axis, got {value!r}")
    if any(v > MAX_SIZE for v in values):
        raise ParameterValueError(name, f"{name} must be at most 2**62 = {MAX_SIZE}, got {value!r}")
    return values


def per_axis_real(value, ndim: int, name: str) -> tuple[float, ...]:
    """A positive finite real, or a sequence of ``ndim`` of them, as ``ndim`` floats."""
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        items = tuple(value)
        if len(items) != ndim:
            raise ParameterValueError(
                name, f"{name} must have one entry per spatial axis ({ndim}), got {name}={value!r}"
            )
    else:
        items = (value,) * ndim
    if not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in items):
        raise ParameterTypeError(
            name, f"{name} must be a real number or a tuple of them, got {name}={value!r}"
        )
    values = tuple(float(v) for v in items)
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ParameterValueError(
            name, f"{name} must be positive and finite, got {name}={value!r}"
        )
    return values


def as_shape(value, name: str = "input_shape", *, ndims: Sequence[int] | None = None,
             what: str = "a tuple of ints") -> tuple[int, ...]:
    """A shape: a sequence of positive ints whose product is at most `MAX_SIZE`.

    ``ndims`` lists the accepted lengths (any when None); ``what`` describes
    the expected form in messages.
    """
    items = None if isinstance(value, (str, bytes)) else _int_items(value)
    if items is None:
        raise ParameterTypeError(name, f"{name} must be {what}, got {value!r}")
    shape = tuple(items)
    if ndims is not None and len(shape) not in ndims:
        raise ParameterValueError(name, f"{name} must be {what}, got {value!r}")
    if any(n < 1 for n in shape):
        raise ParameterValueError(name, f"{name} must hold positive sizes, got {value!r}")
    if math.prod(shape) > MAX_SIZE:
        raise ParameterValueError(
            name, f"{name} {value!r} has {math.prod(shape)} elements, more than 2**62"
        )
    return shape


def as_count(value, name: str) -> int:
    """A positive int (a number of trials, of samples, ...)."""
    return as_int(value, name, minimum=1)


def as_nbytes(value, name: str = "nbytes", *, allow_none: bool = False) -> int | None:
    """A number of bytes: an int >= 0 (or None where that means the default)."""
    if value is None and allow_none:
        return None
    if not is_int(value):
        kind = "an int or None" if allow_none else "an int"
        raise ParameterTypeError(name, f"{name} must be {kind}, got {value!r}")
    return as_int(value, name, minimum=0, maximum=None)


def as_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterTypeError(name, f"{name} must be a bool, got {value!r}")
    return bool(value)


def as_choice(value, name: str, options: Sequence[str]) -> str:
    """One of the strings ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ParameterValueError(
            name, f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}"
        )
    return value


# -- padding ----------------------------------------------------------------------------
def padding_pairs(padding, kernel_size, dilation, stride, *,
                  allow_same: bool = True) -> tuple[tuple[int, int], ...]:
    """PyTorch's padding forms -> one ``(lo, hi)`` pair per axis.

    Accepted forms: an int; one int per axis; one ``(lo, hi)`` pair per axis;
    ``"valid"`` (no padding); ``"same"`` (stride 1 only), which pads a total
    of ``dilation * (k - 1)`` per axis, ``lo = total // 2`` and the rest after.
    """
    ndim = len(kernel_size)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * ndim
        if padding == "same":
            if not allow_same:
                raise ParameterValueError(
                    "padding", "padding='same' is not supported by transposed convolutions"
                )
            if any(s != 1 for s in stride):
                raise ParameterValueError(
                    "padding", f"padding='same' requires stride 1 on every axis, got "
                    f"stride={stride}"
                )
            totals = [d * (k - 1) for d, k in zip(dilation, kernel_size)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ParameterValueError(
            "padding", f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}"
        )
    is_pairs = (
        isinstance(padding, (tuple, list))
        and len(padding) > 0
        and all(isinstance(p, (tuple, list, np.ndarray)) for p in padding)
    )
    if is_pairs:
        if len(padding) != ndim or any(len(p) != 2 or not all(map(is_int, p)) for p in padding):
            raise ParameterValueError(
                "padding", f"padding given as pairs must hold {ndim} (lo, hi) pairs of ints, "
                f"got {padding!r}"
            )
        pairs = tuple((operator.index(lo), operator.index(hi)) for lo, hi in padding)
        if any(v < 0 for pair in pairs for v in pair):
            raise ParameterValueError(
                "padding", f"padding must be >= 0 on every side, got {padding!r}"
            )
        if any(v > MAX_SIZE for pair in pairs for v in pair):
            raise ParameterValueError(
                "padding", f"padding must be at most 2**62 = {MAX_SIZE}, got {padding!r}"
            )
        return pairs
    return tuple((p, p) for p in per_axis(padding, ndim, "padding", minimum=0))


# -- channels ----------------------------------------------------------------------------
def check_groups(groups, channel_counts: dict[str, int]) -> int:
    """``groups`` as an int >= 1 that divides every count of ``channel_counts``."""
    groups = as_int(groups, "groups", minimum=1)
    for what, count in channel_counts.items():
        if count % groups:
            raise ParameterValueError("groups", f"groups={groups} must divide {what}={count}")
    return groups


# -- dtypes ----------------------------------------------------------------------------
def _operator_dtype_of(dtype: np.dtype) -> np.dtype:
    """The policy for data: integers and bools -> float64, half -> float32, extended -> 64 bit."""
    if dtype.kind == "c":
        return np.dtype(np.complex64 if dtype.itemsize <= 8 else np.complex128)
    if dtype.kind == "f":
        return np.dtype(np.float32 if dtype.itemsize <= 4 else np.float64)
    return np.dtype(np.float64)


def as_weight(weight, name: str = "weight") -> np.ndarray:
    """The weight as a read-only copy in one of the `OPERATOR_DTYPES`.

    Weights are data: integers and booleans become float64, half precision
    float32, extended precision float64/complex128. Anything with an
    ``__array__`` method works, and so does an object with ``detach()`` (a
    torch tensor that requires grad), which is detached first; torch is never
    imported. The copy is read-only, so that neither the caller's array nor
    ``op.weight`` can change an operator after the fact.
    """
    if callable(getattr(weight, "detach", None)) and hasattr(weight, "requires_grad"):
        weight = weight.detach()
        if callable(getattr(weight, "cpu", None)):
            weight = weight.cpu()
    try:
        w = np.asarray(weight)
    except (TypeError, ValueError) as err:  # ragged nested sequences
        raise ParameterTypeError(name, f"{name} must be an array of numbers: {err}") from None
    if w.dtype.kind not in "biufc":
        raise ParameterTypeError(name, f"{name} must be a numeric array, got dtype {w.dtype}")
    if w.size == 0:
        raise ParameterValueError(name, f"{name} must not be empty, got shape {w.shape}")
    w = np.array(w, dtype=_operator_dtype_of(w.dtype), copy=True)
    w.flags.writeable = False
    return w


def as_operator_dtype(dtype, name: str = "dtype") -> np.dtype:
    """A requested operator dtype: exactly one of `OPERATOR_DTYPES`.

    A dtype asked for by name is not converted (unlike data, see `as_weight`):
    ``dtype=int`` or ``"float16"`` is refused rather than silently widened.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in OPERATOR_DTYPES:
        raise ParameterTypeError(
            name, f"{name} must be float32, float64, complex64 or complex128, got {name}={dtype!r}"
        )
    return dt


# -- index arrays --------------------------------------------------------------------------
def index_dtype(*extents: int) -> np.dtype:
    """int32 when every extent (sizes, stored entries) fits in it, else int64."""
    return np.dtype(np.int32 if max(extents, default=0) <= _INT32_MAX else np.int64)


# -- operands of an operator ---------------------------------------------------------------
#: SciPy's own words (``scipy.sparse.linalg.LinearOperator.matmat``) for a sparse operand.
SPARSE_OPERAND_MESSAGE = ("Unable to multiply a LinearOperator with a sparse matrix. "
                          "Wrap the matrix in aslinearoperator first.")


def is_sparse(value) -> bool:
    """A SciPy sparse matrix or array, or a PyData ``sparse`` array."""
    if sp.issparse(value):
        return True
    return type(value).__module__.partition(".")[0] == "sparse" and hasattr(value, "shape")


def check_numeric_operand(value, name: str) -> None:
    """Refuse what an operator cannot multiply, before it is converted to an array.

    A sparse matrix or array (which `numpy.asarray` would wrap into a 0-d object
    array) raises a `ParameterTypeError` with SciPy's message and advice
    (`SPARSE_OPERAND_MESSAGE`); an array or a string of a non-numeric dtype
    (object, str, bytes, datetime, ...: anything but numbers and bools) raises one
    that names the dtype. Anything else (lists, other array types) passes: its
    dtype is checked once it is an array.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> check_numeric_operand(np.ones(3), "x")
    >>> check_numeric_operand(sp.eye_array(3), "x")
    Traceback (most recent call last):
    ...
    linop.ParameterTypeError: Unable to multiply a LinearOperator with a sparse matrix. \
Wrap the matrix in aslinearoperator first. Got x: a 3x3 dia_array of float64.
    >>> check_numeric_operand(np.array([None, 1.0]), "x")
    Traceback (most recent call last):
    ...
    linop.ParameterTypeError: x is an array of dtype object, which is not numeric: an operator \
multiplies numbers (or bools)
    """
    if is_sparse(value):
        shape = "x".join(str(int(n)) for n in value.shape)
        raise ParameterTypeError(
            name, f"{SPARSE_OPERAND_MESSAGE} Got {name}: a {shape} {type(value).__name__} of "
            f"{np.dtype(value.dtype)}.")
    if isinstance(value, (str, bytes)):
        dtype = np.asarray(value).dtype
    else:
        dtype = getattr(value, "dtype", None)
        if not isinstance(dtype, np.dtype):
            return
    if dtype.kind not in "biufc":  # timedelta64 would pass np.issubdtype(dtype, np.number)
        what = "a string" if isinstance(value, (str, bytes)) else "an array"
        raise ParameterTypeError(
            name, f"{name} is {what} of dtype {dtype}, which is not numeric: an operator "
            f"multiplies numbers (or bools)")
