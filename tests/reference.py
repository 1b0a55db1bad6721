"""A naive, independent reference for convolutions with PyTorch semantics.

Written straight from PyTorch's definitions, with plain loops, for checking
``linop`` on small sizes. It shares no code with ``linop``: the padding is done
explicitly (like ``torch.nn.functional.pad``: zeros, reflect without repeating
the edge, replicate the edge, circular wrap-around), the convolution is the
cross-correlation sum of ``torch.nn.functional.conv{1,2,3}d``, and the
transposed convolution is the scatter-add definition of
``conv_transpose{1,2,3}d`` (each input pixel scatters ``w * value`` into the
output), *not* the transpose of the convolution matrix. The output sizes are
PyTorch's formulas, per axis with input size ``n``, kernel size ``k``, stride
``s``, dilation ``d`` and padding ``p_lo``, ``p_hi``:

* convolution: ``floor((n + p_lo + p_hi - d*(k - 1) - 1) / s) + 1``;
* transposed convolution:
  ``(n - 1)*s - p_lo - p_hi + d*(k - 1) + output_padding + 1``.

Layouts (PyTorch's):

* convolution: ``x`` is ``(C_in, *spatial)``, ``w`` is ``(C_out, C_in/groups, *k)``;
* transposed convolution: ``y`` is ``(C_in, *spatial)``, ``w`` is
  ``(C_in, C_out/groups, *k)``.

Every function also accepts extra leading batch axes on ``x`` / ``y``.

Two flavours are given for both operations: ``*_scalar`` functions are the
literal scalar loops over every output (or input) pixel, every input channel
and every kernel tap; the default ones loop over channels and taps only and
handle all pixels of one tap with a strided slice, which is the same sum in
the same order per output pixel (so the two agree exactly) but fast enough for
the unit-vector matrices. The self tests at the top of ``test_conv.py`` check one
against the other and both against hand calculations and SciPy.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = [
    "PADDING_MODES",
    "normalize_tuple",
    "normalize_padding",
    "conv_output_size",
    "conv_output_shape",
    "conv_transpose_output_size",
    "conv_transpose_output_shape",
    "pad_index",
    "pad_nd",
    "conv_nd",
    "conv_nd_scalar",
    "conv_matrix_dense",
    "conv_matrix_dense_rows",
    "conv_transpose_nd",
    "conv_transpose_nd_scalar",
    "conv_transpose_matrix_dense",
    "promote_dtype",
]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


# --------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------
def normalize_tuple(value, nd):
    """An int or a length-``nd`` sequence of ints -> tuple of ``nd`` ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * nd
    value = tuple(int(v) for v in value)
    assert len(value) == nd, (value, nd)
    return value


def normalize_padding(padding, kernel_size, dilation=1, stride=1):
    """PyTorch-style padding -> tuple of per-axis ``(lo, hi)`` pairs.

    ``padding`` is an int (all axes, both sides), a tuple of ints (one per
    axis, both sides), a tuple of ``(lo, hi)`` pairs, ``"valid"`` (no
    padding) or ``"same"`` (stride 1 only; per axis the total
    ``d*(k-1)`` is split as ``lo = total // 2``, ``hi = total - lo``, exactly
    as ``torch.nn.ConvNd`` does).
    """
    nd = len(kernel_size)
    dilation = normalize_tuple(dilation, nd)
    stride = normalize_tuple(stride, nd)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            assert all(s == 1 for s in stride), "'same' needs stride 1"
            pairs = []
            for k, d in zip(kernel_size, dilation):
                total = d * (k - 1)
                lo = total // 2
                pairs.append((lo, total - lo))
            return tuple(pairs)
        raise ValueError(padding)
    if isinstance(padding, (int, np.integer)):
        return ((int(padding), int(padding)),) * nd
    padding = tuple(padding)
    assert len(padding) == nd, (padding, nd)
    pairs = []
    for p in padding:
        if isinstance(p, (int, np.integer)):
            pairs.append((int(p), int(p)))
        else:
            lo, hi = p
            pairs.append((int(lo), int(hi)))
    return tuple(pairs)


def promote_dtype(dtype):
    """The operator dtype linop promises for a weight dtype (ints -> float64)."""
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64, np.complex64, np.complex128):
        return dtype
    return np.dtype(np.float64)


# --------------------------------------------------------------------------
# output sizes (PyTorch's formulas, see the module docstring)
# --------------------------------------------------------------------------
def conv_output_size(n, k, stride=1, pad_lo=0, pad_hi=0, dilation=1):
    """``floor((n + p_lo + p_hi - d*(k-1) - 1) / s) + 1`` (may be < 1: invalid)."""
    return (n + pad_lo + pad_hi - dilation * (k - 1) - 1) // stride + 1


def conv_output_shape(spatial, kernel_size, stride, padding, dilation):
    """Per-axis :func:`conv_output_size`; ``padding`` as (lo, hi) pairs."""
    nd = len(spatial)
    stride = normalize_tuple(stride, nd)
    dilation = normalize_tuple(dilation, nd)
    return tuple(
        conv_output_size(n, k, s, lo, hi, d)
        for n, k, s, (lo, hi), d in zip(spatial, kernel_size, stride, padding, dilation)
    )


def conv_transpose_output_size(n, k, stride=1, pad_lo=0, pad_hi=0, dilation=1,
                               output_padding=0):
    """``(n - 1)*s - p_lo - p_hi + d*(k-1) + output_padding + 1``."""
    return (n - 1) * stride - pad_lo - pad_hi + dilation * (k - 1) + output_padding + 1


def conv_transpose_output_shape(spatial, kernel_size, stride, padding, dilation,
                                output_padding):
    """Per-axis :func:`conv_transpose_output_size`; ``padding`` as (lo, hi) pairs."""
    nd = len(spatial)
    stride = normalize_tuple(stride, nd)
    dilation = normalize_tuple(dilation, nd)
    output_padding = normalize_tuple(output_padding, nd)
    return tuple(
        conv_transpose_output_size(n, k, s, lo, hi, d, op)
        for n, k, s, (lo, hi), d, op in zip(
            spatial, kernel_size, stride, padding, dilation, output_padding
        )
    )


# --------------------------------------------------------------------------
# explicit padding, like torch.nn.functional.pad
# --------------------------------------------------------------------------
def pad_index(j, n, mode):
    """Source index in ``[0, n)`` of padded position ``j`` (relative to the
    unpadded array, so ``j`` may be negative or ``>= n``), or ``None`` for a
    zero.

    * zeros:     outside -> zero
    * reflect:   mirror without repeating the edge: -1 -> 1, n -> n - 2
    * replicate: clamp to the edge
    * circular:  wrap around: -1 -> n - 1, n -> 0
    """
    if 0 <= j < n:
        return j
    if mode == "zeros":
        return None
    if mode == "reflect":
        if j < 0:
            j = -j
        if j >= n:
            j = 2 * (n - 1) - j
        assert 0 <= j < n, "reflect padding needs pad < n"
        return j
    if mode == "replicate":
        return min(max(j, 0), n - 1)
    if mode == "circular":
        assert -n <= j < 2 * n, "circular padding needs pad <= n"
        return j % n
    raise ValueError(mode)


def pad_nd(x, pads, mode):
    """Pad the trailing ``len(pads)`` axes of ``x`` by ``pads[i] = (lo, hi)``.

    One axis at a time, like ``torch.nn.functional.pad`` (the order does not
    matter for these modes), by gathering ``x`` at :func:`pad_index`.
    """
    x = np.asarray(x)
    nd = len(pads)
    for i, (lo, hi) in enumerate(pads):
        axis = x.ndim - nd + i
        n = x.shape[axis]
        new_shape = list(x.shape)
        new_shape[axis] = n + lo + hi
        out = np.zeros(new_shape, dtype=x.dtype)
        for jp in range(n + lo + hi):
            src = pad_index(jp - lo, n, mode)
            if src is None:
                continue
            dst_sl = [slice(None)] * x.ndim
            src_sl = [slice(None)] * x.ndim
            dst_sl[axis] = jp
            src_sl[axis] = src
            out[tuple(dst_sl)] = x[tuple(src_sl)]
        x = out
    return x


# --------------------------------------------------------------------------
# convolution (cross-correlation)
# --------------------------------------------------------------------------
def _conv_params(w, x, stride, padding, dilation):
    nd = w.ndim - 2
    assert nd >= 1
    assert x.ndim >= nd + 1, "x must be (*batch, C_in, *spatial)"
    kernel_size = w.shape[2:]
    stride = normalize_tuple(stride, nd)
    dilation = normalize_tuple(dilation, nd)
    padding = normalize_padding(padding, kernel_size, dilation, stride)
    return nd, kernel_size, stride, padding, dilation


def _result_dtype(*arrays):
    dt = np.result_type(*arrays)
    if not np.issubdtype(dt, np.inexact):
        dt = np.dtype(np.float64)
    return dt


def conv_nd(x, w, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """``torch.nn.functional.conv{1,2,3}d`` (with ``nn.ConvNd``'s padding_mode).

    ``x``: ``(*batch, C_in, *spatial)``; ``w``: ``(C_out, C_in/groups, *k)``.
    ``y[co, o] = sum_{ci in group(co)} sum_k w[co, ci - g0, k] * xpad[ci, o*s + k*d]``;
    the sum over ``o`` is done with one strided slice per (co, ci, k).
    """
    x = np.asarray(x)
    w = np.asarray(w)
    nd, ks, stride, padding, dilation = _conv_params(w, x, stride, padding, dilation)
    c_out, cig = w.shape[:2]
    c_in = x.shape[-nd - 1]
    assert c_in == cig * groups and c_out % groups == 0
    cog = c_out // groups
    xpad = pad_nd(x, padding, padding_mode)
    out_sp = conv_output_shape(x.shape[x.ndim - nd:], ks, stride, padding, dilation)
    assert all(n >= 1 for n in out_sp), out_sp
    batch = x.shape[: x.ndim - nd - 1]
    dtype = _result_dtype(x, w)
    y = np.zeros(batch + (c_out,) + out_sp, dtype=dtype)
    for co in range(c_out):
        g = co // cog
        for cl in range(cig):
            ci = g * cig + cl
            for k in itertools.product(*(range(kk) for kk in ks)):
                # xpad[ci, o*s + k*d] for all o: a strided slice per axis
                sl = tuple(
                    slice(kj * d, kj * d + s * (no - 1) + 1, s)
                    for kj, d, s, no in zip(k, dilation, stride, out_sp)
                )
                y[(..., co) + (slice(None),) * nd] += w[(co, cl) + k] * xpad[(..., ci) + sl]
    return y


def conv_nd_scalar(x, w, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """:func:`conv_nd` as literal scalar loops (one output pixel at a time).

    No explicit padded array: the padded value ``xpad[ci, o*s + k*d]`` is
    read through :func:`pad_index`. ``x``: ``(C_in, *spatial)`` only.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    nd, ks, stride, padding, dilation = _conv_params(w, x, stride, padding, dilation)
    assert x.ndim == nd + 1
    c_out, cig = w.shape[:2]
    cog = c_out // groups
    spatial = x.shape[1:]
    out_sp = conv_output_shape(spatial, ks, stride, padding, dilation)
    y = np.zeros((c_out,) + out_sp, dtype=_result_dtype(x, w))
    for co in range(c_out):
        g = co // cog
        for o in itertools.product(*(range(n) for n in out_sp)):
            total = 0
            for cl in range(cig):
                ci = g * cig + cl
                for k in itertools.product(*(range(kk) for kk in ks)):
                    src = []
                    for a in range(nd):
                        jp = o[a] * stride[a] + k[a] * dilation[a]   # in padded coords
                        j = pad_index(jp - padding[a][0], spatial[a], padding_mode)
                        if j is None:
                            break
                        src.append(j)
                    else:
                        total = total + w[(co, cl) + k] * x[(ci,) + tuple(src)]
            y[(co,) + o] = total
    return y


def conv_matrix_dense(w, input_shape, stride=1, padding=0, dilation=1, groups=1,
                      padding_mode="zeros"):
    """The dense matrix of :func:`conv_nd`, column by column from unit vectors.

    ``input_shape`` is ``(C_in, *spatial)``; columns index the C-order
    flattened input, rows the C-order flattened output.
    """
    w = np.asarray(w)
    n_in = math.prod(input_shape)
    eye = np.eye(n_in, dtype=_result_dtype(w)).reshape((n_in,) + tuple(input_shape))
    cols = conv_nd(eye, w, stride, padding, dilation, groups, padding_mode)
    return cols.reshape(n_in, -1).T.copy()


def conv_matrix_dense_rows(w, input_shape, stride=1, padding=0, dilation=1, groups=1,
                           padding_mode="zeros"):
    """The same dense matrix row by row from the definition (via :func:`pad_index`)."""
    w = np.asarray(w)
    nd = w.ndim - 2
    ks = w.shape[2:]
    stride = normalize_tuple(stride, nd)
    dilation = normalize_tuple(dilation, nd)
    padding = normalize_padding(padding, ks, dilation, stride)
    spatial = tuple(input_shape[1:])
    c_out, cig = w.shape[:2]
    cog = c_out // groups
    out_sp = conv_output_shape(spatial, ks, stride, padding, dilation)
    out_shape = (c_out,) + out_sp
    M = np.zeros((math.prod(out_shape), math.prod(input_shape)), dtype=_result_dtype(w))
    for co in range(c_out):
        g = co // cog
        for o in itertools.product(*(range(n) for n in out_sp)):
            row = np.ravel_multi_index((co,) + o, out_shape)
            for cl in range(cig):
                ci = g * cig + cl
                for k in itertools.product(*(range(kk) for kk in ks)):
                    src = []
                    for a in range(nd):
                        jp = o[a] * stride[a] + k[a] * dilation[a]
                        j = pad_index(jp - padding[a][0], spatial[a], padding_mode)
                        if j is None:
                            break
                        src.append(j)
                    else:
                        col = np.ravel_multi_index((ci,) + tuple(src), tuple(input_shape))
                        M[row, col] += w[(co, cl) + k]
    return M


# --------------------------------------------------------------------------
# transposed convolution: the scatter-add definition
# --------------------------------------------------------------------------
def _tconv_params(w, y, stride, padding, output_padding, dilation):
    nd = w.ndim - 2
    ks = w.shape[2:]
    stride = normalize_tuple(stride, nd)
    dilation = normalize_tuple(dilation, nd)
    output_padding = normalize_tuple(output_padding, nd)
    assert not isinstance(padding, str) or padding == "valid"
    padding = normalize_padding(padding, ks, dilation, stride)
    for op, s, d in zip(output_padding, stride, dilation):
        assert 0 <= op < max(s, d)
    return nd, ks, stride, padding, dilation, output_padding


def conv_transpose_nd(y, w, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """``torch.nn.functional.conv_transpose{1,2,3}d`` as a scatter-add.

    ``y``: ``(*batch, C_in, *spatial)``; ``w``: ``(C_in, C_out/groups, *k)``.
    Input pixel ``i`` of channel ``c`` (group ``g``) adds ``w[c, b, k] * y[c, i]``
    to output channel ``g*C_out/groups + b`` at full position ``i*s + k*d``;
    the full (uncropped) output has length ``(n-1)*s + d*(k-1) + 1 +
    output_padding`` per axis and the result is that cropped by ``p_lo`` in
    front and ``p_hi`` at the back. One strided slice per (c, b, k) scatters
    all input pixels of that tap.
    """
    y = np.asarray(y)
    w = np.asarray(w)
    nd, ks, stride, padding, dilation, output_padding = _tconv_params(
        w, y, stride, padding, output_padding, dilation)
    c_in, cog = w.shape[:2]
    assert y.shape[y.ndim - nd - 1] == c_in and c_in % groups == 0
    cig = c_in // groups
    c_out = cog * groups
    spatial = y.shape[y.ndim - nd:]
    batch = y.shape[: y.ndim - nd - 1]
    full_sp = tuple(
        (n - 1) * s + d * (k - 1) + 1 + op
        for n, s, d, k, op in zip(spatial, stride, dilation, ks, output_padding)
    )
    full = np.zeros(batch + (c_out,) + full_sp, dtype=_result_dtype(y, w))
    for c in range(c_in):
        g = c // cig
        for b in range(cog):
            co = g * cog + b
            for k in itertools.product(*(range(kk) for kk in ks)):
                sl = tuple(
                    slice(kj * d, kj * d + s * (n - 1) + 1, s)
                    for kj, d, s, n in zip(k, dilation, stride, spatial)
                )
                full[(..., co) + sl] += w[(c, b) + k] * y[(..., c) + (slice(None),) * nd]
    crop = tuple(slice(lo, f - hi) for (lo, hi), f in zip(padding, full_sp))
    out = full[(Ellipsis, slice(None)) + crop]
    expected = conv_transpose_output_shape(spatial, ks, stride, padding, dilation,
                                           output_padding)
    assert out.shape[out.ndim - nd:] == expected, (out.shape, expected)
    return np.ascontiguousarray(out)


def conv_transpose_nd_scalar(y, w, stride=1, padding=0, output_padding=0, dilation=1,
                             groups=1):
    """:func:`conv_transpose_nd` as literal scalar loops: every input pixel of
    every channel scatters ``w * value`` into the output, one tap at a time.
    ``y``: ``(C_in, *spatial)`` only."""
    y = np.asarray(y)
    w = np.asarray(w)
    nd, ks, stride, padding, dilation, output_padding = _tconv_params(
        w, y, stride, padding, output_padding, dilation)
    assert y.ndim == nd + 1
    c_in, cog = w.shape[:2]
    cig = c_in // groups
    spatial = y.shape[1:]
    out_sp = conv_transpose_output_shape(spatial, ks, stride, padding, dilation,
                                         output_padding)
    out = np.zeros((cog * groups,) + out_sp, dtype=_result_dtype(y, w))
    for c in range(c_in):
        g = c // cig
        for i in itertools.product(*(range(n) for n in spatial)):
            value = y[(c,) + i]
            for b in range(cog):
                co = g * cog + b
                for k in itertools.product(*(range(kk) for kk in ks)):
                    dst = tuple(
                        i[a] * stride[a] + k[a] * dilation[a] - padding[a][0]
                        for a in range(nd)
                    )
                    if all(0 <= dst[a] < out_sp[a] for a in range(nd)):
                        out[(co,) + dst] += w[(c, b) + k] * value
    return out


def conv_transpose_matrix_dense(w, input_shape, stride=1, padding=0, output_padding=0,
                                dilation=1, groups=1):
    """The dense matrix of :func:`conv_transpose_nd`, column by column."""
    w = np.asarray(w)
    n_in = math.prod(input_shape)
    eye = np.eye(n_in, dtype=_result_dtype(w)).reshape((n_in,) + tuple(input_shape))
    cols = conv_transpose_nd(eye, w, stride, padding, output_padding, dilation, groups)
    return cols.reshape(n_in, -1).T.copy()
