"""Convolution geometry: parameters -> validated per-axis sizes.

Everything here is independent of channels and weights. A `ConvGeometry`
says, per spatial axis, how many input pixels there are, how many output
pixels, and where each tap of each output pixel reads.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PADDING_MODES",
    "ConvGeometry",
    "as_per_axis",
    "conv_geometry",
    "conv_output_size",
    "normalize_padding",
    "transpose_geometry",
]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


@dataclass(frozen=True)
class ConvGeometry:
    """Per-axis geometry of a convolution, normalised and validated.

    Attributes
    ----------
    input_size, output_size, kernel_size : tuple of int
        Spatial sizes of the input, the output and the kernel.
    stride, dilation : tuple of int
    padding : tuple of (int, int)
        ``(lo, hi)`` padding per axis.
    padding_mode : str
        One of `PADDING_MODES`.
    """

    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    padding_mode: str = "zeros"

    @property
    def ndim(self) -> int:
        return len(self.input_size)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def as_per_axis(value, ndim: int, name: str, *, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of ``ndim`` ints, as a tuple of ``ndim`` ints >= minimum."""
    if _is_int(value):
        values = (int(value),) * ndim
    elif isinstance(value, (tuple, list, np.ndarray)) and all(_is_int(v) for v in value):
        values = tuple(int(v) for v in value)
        if len(values) != ndim:
            raise ValueError(
                f"{name} must be an int or a sequence of {ndim} ints, got {value!r}"
            )
    else:
        raise TypeError(f"{name} must be an int or a sequence of {ndim} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum} on every axis, got {value!r}")
    return values


def normalize_padding(
    padding, kernel_size, dilation, stride, *, allow_same: bool = True
) -> tuple[tuple[int, int], ...]:
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
                raise ValueError("padding='same' is not supported by transposed convolutions")
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"padding='same' requires stride 1 on every axis, got stride={stride}"
                )
            totals = [d * (k - 1) for d, k in zip(dilation, kernel_size)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ValueError(
            f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}"
        )
    is_pairs = (
        isinstance(padding, (tuple, list))
        and len(padding) > 0
        and all(isinstance(p, (tuple, list, np.ndarray)) for p in padding)
    )
    if is_pairs:
        if len(padding) != ndim or any(len(p) != 2 or not all(map(_is_int, p)) for p in padding):
            raise ValueError(
                f"padding given as pairs must hold {ndim} (lo, hi) pairs of ints, got {padding!r}"
            )
        pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
        if any(v < 0 for pair in pairs for v in pair):
            raise ValueError(f"padding must be >= 0 on every side, got {padding!r}")
        return pairs
    per_axis = as_per_axis(padding, ndim, "padding", minimum=0)
    return tuple((p, p) for p in per_axis)


def conv_output_size(n: int, k: int, stride: int, lo: int, hi: int, dilation: int) -> int:
    """``floor((n + lo + hi - dilation*(k-1) - 1) / stride) + 1`` (may be < 1)."""
    return (n + lo + hi - dilation * (k - 1) - 1) // stride + 1


def _check_padding_mode(padding_mode, padding, input_size):
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    for axis, ((lo, hi), n) in enumerate(zip(padding, input_size)):
        if padding_mode == "reflect" and max(lo, hi) >= n:
            raise ValueError(
                f"padding_mode='reflect' needs padding < input size on every axis; "
                f"axis {axis} has padding {(lo, hi)} and size {n}"
            )
        if padding_mode == "circular" and max(lo, hi) > n:
            raise ValueError(
                f"padding_mode='circular' needs padding <= input size on every axis; "
                f"axis {axis} has padding {(lo, hi)} and size {n}"
            )


def conv_geometry(
    input_size, kernel_size, *, stride=1, padding=0, dilation=1, padding_mode="zeros"
) -> ConvGeometry:
    """Validate the parameters of a convolution and compute its output size.

    Raises
    ------
    TypeError, ValueError
        With a message naming the offending parameter and its value.
    """
    ndim = len(kernel_size)
    stride = as_per_axis(stride, ndim, "stride", minimum=1)
    dilation = as_per_axis(dilation, ndim, "dilation", minimum=1)
    pairs = normalize_padding(padding, kernel_size, dilation, stride)
    _check_padding_mode(padding_mode, pairs, input_size)
    output_size = tuple(
        conv_output_size(n, k, s, lo, hi, d)
        for n, k, s, (lo, hi), d in zip(input_size, kernel_size, stride, pairs, dilation)
    )
    if any(m < 1 for m in output_size):
        raise ValueError(
            f"the kernel (size {tuple(kernel_size)}, dilation {dilation}) does not fit the "
            f"padded input (size {tuple(input_size)}, padding {pairs}): "
            f"output size would be {output_size}"
        )
    return ConvGeometry(
        tuple(input_size), output_size, tuple(kernel_size), stride, pairs, dilation, padding_mode
    )


def transpose_geometry(
    input_size, kernel_size, *, stride=1, padding=0, output_padding=0, dilation=1
) -> tuple[ConvGeometry, tuple[int, ...]]:
    """The convolution whose transpose is a transposed convolution.

    A transposed convolution with input size ``n`` per axis has output size
    ``N = (n - 1)*s - lo - hi + d*(k - 1) + output_padding + 1``. It is the
    transpose of the convolution from size ``N`` to size ``n`` with the same
    stride, padding and dilation. When ``output_padding >= stride`` (allowed
    while ``output_padding < dilation``), that convolution would produce more
    than ``n`` outputs; the extra ones are cut, as PyTorch does.

    Returns
    -------
    geometry : ConvGeometry
        The convolution's geometry (its ``output_size`` is ``input_size`` here).
    output_padding : tuple of int
    """
    ndim = len(kernel_size)
    stride = as_per_axis(stride, ndim, "stride", minimum=1)
    dilation = as_per_axis(dilation, ndim, "dilation", minimum=1)
    pairs = normalize_padding(padding, kernel_size, dilation, stride, allow_same=False)
    output_padding = as_per_axis(output_padding, ndim, "output_padding", minimum=0)
    for axis, (op, s, d) in enumerate(zip(output_padding, stride, dilation)):
        if op >= max(s, d):
            raise ValueError(
                f"output_padding must be smaller than max(stride, dilation) on every axis; "
                f"axis {axis} has output_padding={op}, stride={s}, dilation={d}"
            )
    conv_input_size = tuple(
        (n - 1) * s - lo - hi + d * (k - 1) + op + 1
        for n, k, s, (lo, hi), d, op in zip(
            input_size, kernel_size, stride, pairs, dilation, output_padding
        )
    )
    if any(m < 1 for m in conv_input_size):
        raise ValueError(
            f"the transposed convolution's output size would be {conv_input_size}: padding "
            f"{pairs} is too large for input size {tuple(input_size)} and kernel size "
            f"{tuple(kernel_size)}"
        )
    geometry = ConvGeometry(
        conv_input_size, tuple(input_size), tuple(kernel_size), stride, pairs, dilation, "zeros"
    )
    return geometry, output_padding
