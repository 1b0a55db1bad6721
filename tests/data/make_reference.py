#!/usr/bin/env python
"""Write ``tests/data/torch_reference.npz``: PyTorch golden data for linop.

PyTorch is *not* a dependency of linop or of its test suite.  This script is
run by hand, in an environment that has torch and numpy::

    python tests/data/make_reference.py            # writes torch_reference.npz
    python tests/data/make_reference.py --check    # also prints a summary

and its output is committed.  ``tests/golden.py`` loads the file and
``tests/test_golden.py`` compares every linop operator with it.

Contents of the ``.npz`` file
-----------------------------
``torch_version``
    ``torch.__version__`` of the generating torch (0-d unicode array).
``cases_json``
    a JSON list of dicts, one per case, with keys

    ``id``            array-key prefix, e.g. ``"c017"``
    ``name``          readable name (used as pytest id)
    ``kind``          ``"conv"``, ``"conv_transpose"`` or ``"interpolate"``
    ``ndim``          number of spatial axes
    ``dtype``         ``"float32"``, ``"float64"``, ``"complex64"``, ``"complex128"``
    ``bare``          True for a bare kernel with no channel axes
    ``batch``         leading batch size of the stored x / y arrays
    ``input_shape``   linop ``input_shape`` (without the batch axis)
    ``output_shape``  torch's output shape (without the batch axis)
    ``params``        linop keyword arguments:
                      conv: stride, padding (as given), dilation, groups, padding_mode;
                      conv_transpose: stride, padding, output_padding, dilation, groups;
                      interpolate: size, scale_factor, mode, align_corners.
                      Tuples are JSON lists.  For convolutions ``padding_pairs``
                      holds the normalised per-axis ``[lo, hi]`` pairs too.
    ``source``        ``"random"``, ``"systematic"``, ``"quirk"`` or ``"seed"``
    ``note``          free text (why the case is there), optional

``<id>_x``  input, shape ``(batch, *input_shape)``
``<id>_w``  weight (convolutions only), the torch layout or a bare kernel
``<id>_y``  torch's output, shape ``(batch, *output_shape)``
``<id>_gy`` a random output cotangent, same shape as ``y``
``<id>_gx`` the gradient of ``<y, gy>`` with respect to x from torch.autograd,
            i.e. the (Hermitian) adjoint applied to gy
``<id>_gxadj`` only when ``torch_grad_is_adjoint`` is False: the exact
            (Hermitian) adjoint of torch's forward map applied to gy.  torch's
            backward kernels for modes "nearest" / "nearest-exact" on 1-D and
            3-D inputs index like the 2-D kernels (special cases
            n_out == n_in and n_out == 2 n_in, float32 arithmetic) while the
            forward kernels do not, so in those corner cases torch's gradient
            is not the adjoint of torch's forward; linop's adjoint is the
            exact adjoint, to be compared with ``gxadj``.
``<id>_A``  (seed cases only) the dense matrix of the map, from torch

Every case also carries ``torch_grad_is_adjoint`` (bool): whether ``gx``
equals the adjoint of torch's forward (checked here on the dense matrix).

How torch realises each parameter
---------------------------------
* conv, padding int / per-axis tuple / "same" / "valid": ``F.convNd`` for
  ``padding_mode="zeros"``, otherwise ``nn.ConvNd(padding_mode=...)``'s own
  forward (``F.pad(x, reversed padding, mode)`` then a conv with padding 0).
* conv, per-side ``(lo, hi)`` pairs: an explicit ``F.pad`` (mode "constant"
  for zeros, else the padding mode) followed by a conv with ``padding=0``.
* conv_transpose, int / tuple padding: ``F.conv_transposeNd``; per-side pairs:
  ``F.conv_transposeNd`` with ``padding=0`` then cropping ``lo`` at the start
  and ``hi`` at the end of every axis (output_padding stays on the high side).
* interpolate: ``F.interpolate(x, size=..., scale_factor=..., mode=...,
  align_corners=...)`` (recompute_scale_factor None, antialias False).

The functions here are importable (``tests/test_torch_live.py`` reuses them
with fresh seeds); importing this module requires torch.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "torch_reference.npz")
SEED = 20200131

TORCH_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "complex64": torch.complex64,
    "complex128": torch.complex128,
}

INTERP_MODES = {
    1: ["nearest", "nearest-exact", "linear", "area"],
    2: ["nearest", "nearest-exact", "bilinear", "bicubic", "area"],
    3: ["nearest", "nearest-exact", "trilinear", "area"],
}
LINEAR_FAMILY = {"linear", "bilinear", "bicubic", "trilinear"}
PADDING_MODES = ["zeros", "reflect", "replicate", "circular"]
PADDING_FORMS = ["int", "tuple", "pairs", "same", "valid"]


# --------------------------------------------------------------------------- helpers
_SHORT_DTYPES = {"float32": "f32", "float64": "f64", "complex64": "c64", "complex128": "c128"}

def draw(rng, shape, dtype):
    """Standard normal data of a dtype (complex: independent real and imaginary parts)."""
    shape = tuple(int(s) for s in shape)
    a = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def as_json(v):
    """Tuples -> lists, numpy scalars -> Python scalars (recursively)."""
    if isinstance(v, (list, tuple)):
        return [as_json(u) for u in v]
    if isinstance(v, dict):
        return {k: as_json(u) for k, u in v.items()}
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def per_axis(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


def is_pairs(padding):
    return isinstance(padding, (tuple, list)) and any(isinstance(p, (tuple, list)) for p in padding)


def normalise_padding(padding, k, dilation, n):
    """Padding as per-axis (lo, hi) pairs, the normalised form linop's ``padding``
    attribute holds ("same": the total ``d*(k - 1)`` split as ``lo = total // 2``,
    ``hi = total - lo``, as torch.nn.ConvNd does)."""
    if padding == "valid":
        return tuple((0, 0) for _ in range(n))
    if padding == "same":
        out = []
        for kk, d in zip(k, per_axis(dilation, n)):
            total = d * (kk - 1)
            out.append((total // 2, total - total // 2))
        return tuple(out)
    if isinstance(padding, int):
        return tuple((padding, padding) for _ in range(n))
    if is_pairs(padding):
        return tuple((int(lo), int(hi)) for lo, hi in padding)
    return tuple((int(p), int(p)) for p in padding)


def torch_pad_arg(pairs):
    """F.pad's argument: last axis first, (lo, hi) each."""
    out = []
    for lo, hi in reversed(pairs):
        out += [lo, hi]
    return out


def run_torch(fn, x, dtype, rng):
    """torch's output of fn(x) and its input-gradient for a random cotangent.

    Returns ``(arrays, info)``: arrays ``y``, ``gy``, ``gx`` (autograd) and,
    when torch's gradient is *not* the adjoint of torch's forward map (torch's
    nearest-mode backward kernels index differently from the forward ones in
    some corner cases), ``gxadj``: the exact (Hermitian) adjoint of torch's
    forward applied to gy, computed from the dense matrix of the forward map.
    ``info["torch_grad_is_adjoint"]`` says which.
    """
    xt = torch.from_numpy(x).requires_grad_(True)
    y = fn(xt)
    gy = draw(rng, tuple(y.shape), dtype)
    y.backward(torch.from_numpy(gy))
    y = y.detach().numpy().copy()
    gx = xt.grad.detach().numpy().copy()
    # the dense matrix of torch's forward map, to check that gx is its adjoint
    A = dense_matrix(fn, x.shape[1:], np.dtype(dtype))
    batch = x.shape[0]
    yA = (x.reshape(batch, -1) @ A.T).reshape(y.shape)
    gxA = (gy.reshape(batch, -1) @ A.conj()).reshape(gx.shape)
    tol = 1e-4 if dtype in ("float32", "complex64") else 1e-10
    scale = max(np.abs(y).max(), np.abs(x).max(), 1.0)
    assert np.abs(yA - y).max() <= tol * scale, "torch forward is not linear?"
    arrays = dict(y=y, gy=gy, gx=gx)
    ok = bool(np.abs(gxA - gx).max() <= tol * max(np.abs(gxA).max(), 1.0))
    if not ok:
        arrays["gxadj"] = gxA.astype(dtype)
    return arrays, dict(torch_grad_is_adjoint=ok)


def dense_matrix(fn, x_shape, dtype):
    """Dense matrix of a linear map fn on a single (unbatched) array of x_shape."""
    n = math.prod(x_shape)
    eye = np.eye(n, dtype=dtype).reshape((n,) + tuple(x_shape))
    with torch.no_grad():
        cols = fn(torch.from_numpy(eye)).detach().numpy()
    return cols.reshape(n, -1).T.copy()


# --------------------------------------------------------------------------- torch maps
def torch_conv(x, w, ndim, stride, padding, dilation, groups, padding_mode, bare=False):
    """torch's convolution of x (batched) with weight w, linop-style parameters."""
    if bare:
        x = x.unsqueeze(1)
        w = w.reshape((1, 1) + tuple(w.shape))
    conv = getattr(F, f"conv{ndim}d")
    if is_pairs(padding):
        pairs = normalise_padding(padding, None, None, ndim)
        mode = "constant" if padding_mode == "zeros" else padding_mode
        x = F.pad(x, torch_pad_arg(pairs), mode=mode)
        y = conv(x, w, None, stride, 0, dilation, groups)
    elif padding_mode == "zeros":
        y = conv(x, w, None, stride, padding, dilation, groups)
    else:
        # nn.ConvNd's own forward: F.pad(x, reversed padding, mode) then conv.
        mod = getattr(torch.nn, f"Conv{ndim}d")(
            w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=stride,
            padding=padding, dilation=dilation, groups=groups, bias=False,
            padding_mode=padding_mode, device="meta",
        )
        y = mod._conv_forward(x, w, None)
    return y[:, 0] if bare else y


def torch_conv_transpose(x, w, ndim, stride, padding, output_padding, dilation, groups, bare=False):
    if bare:
        x = x.unsqueeze(1)
        w = w.reshape((1, 1) + tuple(w.shape))
    convt = getattr(F, f"conv_transpose{ndim}d")
    if is_pairs(padding):
        pairs = normalise_padding(padding, None, None, ndim)
        y = convt(x, w, None, stride, 0, output_padding, groups, dilation)
        idx = [slice(None), slice(None)]
        for (lo, hi), n in zip(pairs, y.shape[2:]):
            idx.append(slice(lo, n - hi))
        y = y[tuple(idx)]
    else:
        y = convt(x, w, None, stride, padding, output_padding, groups, dilation)
    return y[:, 0] if bare else y


def torch_interpolate(x, size, scale_factor, mode, align_corners):
    return F.interpolate(x, size=size, scale_factor=scale_factor, mode=mode,
                         align_corners=align_corners)


# --------------------------------------------------------------------------- cases
def conv_out_size(n, pairs, k, s, d):
    return [(ni + lo + hi - di * (ki - 1) - 1) // si + 1
            for ni, (lo, hi), ki, si, di in zip(n, pairs, k, s, d)]


def _maybe_scalar(rng, vals):
    vals = tuple(int(v) for v in vals)
    if len(set(vals)) == 1 and rng.random() < 0.5:
        return vals[0]
    return vals


SIZE_RANGE = {1: (3, 13), 2: (3, 8), 3: (2, 5)}
K_MAX = {1: 5, 2: 4, 3: 3}
ELEMENT_BUDGET = {1: 120, 2: 300, 3: 400}


def make_conv_case(rng, ndim, dtype, padding_mode, padding_form, *, bare=False,
                   groups_kind=None, max_tries=2000):
    """A random convolution case (dict, arrays) that torch accepts, or raise."""
    for _ in range(max_tries):
        k = [int(rng.integers(1, K_MAX[ndim] + 1)) for _ in range(ndim)]
        d = [int(rng.choice([1, 1, 2] if ndim > 1 else [1, 1, 2, 3])) for _ in range(ndim)]
        if padding_form == "same" or rng.random() < 0.4:
            s = [1] * ndim
        else:
            s = [int(rng.integers(1, 4)) for _ in range(ndim)]
        lo_n, hi_n = SIZE_RANGE[ndim]
        n = [int(rng.integers(lo_n, hi_n + 1)) for _ in range(ndim)]
        pmax = 3 if ndim < 3 else 2
        if padding_form == "int":
            padding = int(rng.integers(0, pmax + 1))
        elif padding_form == "tuple":
            padding = tuple(int(rng.integers(0, pmax + 1)) for _ in range(ndim))
        elif padding_form == "pairs":
            padding = tuple((int(rng.integers(0, pmax + 1)), int(rng.integers(0, pmax + 1)))
                            for _ in range(ndim))
        else:
            padding = padding_form
        pairs = normalise_padding(padding, k, d, ndim)
        # padding-mode limits (torch's and linop's)
        if padding_mode == "reflect" and any(max(p) >= ni for p, ni in zip(pairs, n)):
            continue
        if padding_mode == "circular" and any(max(p) > ni for p, ni in zip(pairs, n)):
            continue
        out = conv_out_size(n, pairs, k, s, d)
        if min(out) < 1:
            continue
        if bare:
            groups, c_in, c_out = 1, None, None
        else:
            gk = groups_kind or rng.choice(["one", "one", "grouped", "depthwise"])
            if gk == "one":
                groups, c_in, c_out = 1, int(rng.integers(1, 4)), int(rng.integers(1, 4))
            elif gk == "grouped":
                groups = int(rng.choice([2, 3]))
                c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
            else:  # depthwise
                c_in = int(rng.integers(2, 5))
                groups, c_out = c_in, c_in * int(rng.integers(1, 3))
        batch = int(rng.integers(1, 3))
        in_shape = tuple(n) if bare else (c_in,) + tuple(n)
        if batch * math.prod(in_shape) > ELEMENT_BUDGET[ndim] * (2 if bare else 1):
            continue
        if not bare and batch * c_out * math.prod(out) > ELEMENT_BUDGET[ndim]:
            continue
        w_shape = tuple(k) if bare else (c_out, c_in // groups) + tuple(k)
        stride = _maybe_scalar(rng, s)
        dilation = _maybe_scalar(rng, d)
        x = draw(rng, (batch,) + in_shape, dtype)
        w = draw(rng, w_shape, dtype)
        wt = torch.from_numpy(w)
        fn = functools.partial(torch_conv, w=wt, ndim=ndim, stride=stride, padding=padding,
                               dilation=dilation, groups=groups, padding_mode=padding_mode,
                               bare=bare)
        try:
            arrays, info = run_torch(fn, x, dtype, rng)
        except (RuntimeError, ValueError):
            continue
        y = arrays["y"]
        if not np.any(y):
            continue
        params = dict(stride=stride, padding=padding, padding_pairs=pairs, dilation=dilation,
                      groups=groups, padding_mode=padding_mode)
        case = dict(kind="conv", ndim=ndim, dtype=dtype, bare=bare, batch=batch,
                    input_shape=in_shape, output_shape=tuple(y.shape[1:]), params=params,
                    **info)
        assert tuple(y.shape[1 if bare else 2:]) == tuple(out), (y.shape, out)
        return case, dict(x=x, w=w, **arrays)
    raise RuntimeError(f"no valid conv case for {ndim}, {padding_mode}, {padding_form}")


def make_conv_transpose_case(rng, ndim, dtype, padding_form, *, bare=False, max_tries=2000):
    for _ in range(max_tries):
        k = [int(rng.integers(1, K_MAX[ndim] + 1)) for _ in range(ndim)]
        d = [int(rng.choice([1, 1, 2])) for _ in range(ndim)]
        s = [int(rng.choice([1, 2, 2, 3])) for _ in range(ndim)]
        lo_n, hi_n = {1: (2, 8), 2: (2, 5), 3: (2, 3)}[ndim]
        n = [int(rng.integers(lo_n, hi_n + 1)) for _ in range(ndim)]
        op = [int(rng.integers(0, max(si, di))) if rng.random() < 0.6 else 0
              for si, di in zip(s, d)]
        pmax = 3 if ndim < 3 else 2
        if padding_form == "int":
            padding = int(rng.integers(0, pmax + 1))
        elif padding_form == "tuple":
            padding = tuple(int(rng.integers(0, pmax + 1)) for _ in range(ndim))
        else:
            padding = tuple((int(rng.integers(0, pmax + 1)), int(rng.integers(0, pmax + 1)))
                            for _ in range(ndim))
        pairs = normalise_padding(padding, k, d, ndim)
        out = [(ni - 1) * si - lo - hi + di * (ki - 1) + opi + 1
               for ni, si, (lo, hi), di, ki, opi in zip(n, s, pairs, d, k, op)]
        if min(out) < 1:
            continue
        if bare:
            groups, c_in, c_out = 1, None, None
        else:
            gk = rng.choice(["one", "one", "grouped", "depthwise"])
            if gk == "one":
                groups, c_in, c_out = 1, int(rng.integers(1, 4)), int(rng.integers(1, 4))
            elif gk == "grouped":
                groups = int(rng.choice([2, 3]))
                c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
            else:
                c_in = int(rng.integers(2, 4))
                groups, c_out = c_in, c_in * int(rng.integers(1, 3))
        batch = int(rng.integers(1, 3))
        in_shape = tuple(n) if bare else (c_in,) + tuple(n)
        out_elems = batch * math.prod(out) * (1 if bare else c_out)
        if out_elems > ELEMENT_BUDGET[ndim] * (2 if bare else 1):
            continue
        w_shape = tuple(k) if bare else (c_in, c_out // groups) + tuple(k)
        stride = _maybe_scalar(rng, s)
        dilation = _maybe_scalar(rng, d)
        output_padding = _maybe_scalar(rng, op)
        x = draw(rng, (batch,) + in_shape, dtype)
        w = draw(rng, w_shape, dtype)
        wt = torch.from_numpy(w)
        fn = functools.partial(torch_conv_transpose, w=wt, ndim=ndim, stride=stride,
                               padding=padding, output_padding=output_padding,
                               dilation=dilation, groups=groups, bare=bare)
        try:
            arrays, info = run_torch(fn, x, dtype, rng)
        except (RuntimeError, ValueError):
            continue
        y = arrays["y"]
        if not np.any(y):  # only padding holes are read: a useless case
            continue
        assert tuple(y.shape[1 if bare else 2:]) == tuple(out), (y.shape, out)
        params = dict(stride=stride, padding=padding, padding_pairs=pairs,
                      output_padding=output_padding, dilation=dilation, groups=groups)
        case = dict(kind="conv_transpose", ndim=ndim, dtype=dtype, bare=bare, batch=batch,
                    input_shape=in_shape, output_shape=tuple(y.shape[1:]), params=params,
                    **info)
        return case, dict(x=x, w=w, **arrays)
    raise RuntimeError(f"no valid conv_transpose case for {ndim}, {padding_form}")


SCALES = [0.5, 1.5, 2.0, 2.5, 3.0, 0.75, 1.25, 1.7, 0.4, 2.2, 1.1, 0.3, 1.35]


def interpolate_case(x, dtype, size, scale_factor, mode, align_corners, rng, **extra):
    fn = lambda t: torch_interpolate(t, size, scale_factor, mode, align_corners)  # noqa: E731
    arrays, info = run_torch(fn, x, dtype, rng)
    y = arrays["y"]
    params = dict(size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners)
    case = dict(kind="interpolate", ndim=x.ndim - 2, dtype=dtype, bare=False,
                batch=x.shape[0], input_shape=tuple(x.shape[1:]),
                output_shape=tuple(y.shape[1:]), params=params, **info, **extra)
    return case, dict(x=x, **arrays)


def make_interpolate_case(rng, ndim, dtype, mode, spec, align_corners, max_tries=2000):
    """spec: "size", "scale" (one float) or "scales" (per-axis floats)."""
    lo_n, hi_n = {1: (1, 12), 2: (1, 7), 3: (1, 4)}[ndim]
    for _ in range(max_tries):
        n = [int(rng.integers(lo_n, hi_n + 1)) for _ in range(ndim)]
        if spec == "size":
            hi_o = {1: 20, 2: 11, 3: 6}[ndim]
            out = [int(rng.integers(1, hi_o + 1)) for _ in range(ndim)]
            same = ndim == 1 or (len(set(out)) == 1 and rng.random() < 0.5)
            size = out[0] if same else tuple(out)
            scale_factor = None
            if isinstance(size, int):
                out = [size] * ndim
        else:
            if spec == "scale":
                sf = float(rng.choice(SCALES))
                scale_factor = sf
                sfs = [sf] * ndim
            else:
                sfs = [float(rng.choice(SCALES)) for _ in range(ndim)]
                scale_factor = tuple(sfs)
            size = None
            out = [math.floor(ni * si) for ni, si in zip(n, sfs)]
        if min(out) < 1:
            continue
        c = int(rng.integers(1, 4))
        batch = int(rng.integers(1, 3))
        if batch * c * max(math.prod(n), math.prod(out)) > {1: 80, 2: 200, 3: 250}[ndim]:
            continue
        x = draw(rng, (batch, c) + tuple(n), dtype)
        try:
            return interpolate_case(x, dtype, size, scale_factor, mode, align_corners, rng)
        except (RuntimeError, ValueError):
            continue
    raise RuntimeError(f"no interpolate case for {ndim} {mode} {spec}")


# --------------------------------------------------------------------------- the case list
def conv_name(case):
    p = case["params"]
    pad = p["padding"]
    form = (pad if isinstance(pad, str) else "int" if isinstance(pad, int)
            else "pairs" if is_pairs(pad) else "tuple")
    dt = _SHORT_DTYPES[case["dtype"]]
    kind = "conv" if case["kind"] == "conv" else "convT"
    parts = [f"{kind}{case['ndim']}d", dt]
    if case["bare"]:
        parts.append("bare")
    if case["kind"] == "conv":
        parts.append(p["padding_mode"])
    parts.append(f"pad-{form}")
    def tag(v):
        return "x".join(map(str, per_axis(v, case["ndim"])))
    if p["stride"] not in (1, [1] * case["ndim"], (1,) * case["ndim"]):
        parts.append("s" + tag(p["stride"]))
    if p["dilation"] not in (1, [1] * case["ndim"], (1,) * case["ndim"]):
        parts.append("d" + tag(p["dilation"]))
    if case["kind"] == "conv_transpose" and p["output_padding"] not in (0, (0,) * case["ndim"]):
        parts.append("op" + tag(p["output_padding"]))
    if p["groups"] > 1:
        c_in = case["input_shape"][0]
        parts.append("dw" if p["groups"] == c_in else f"g{p['groups']}")
    return "-".join(parts)


def interp_name(case):
    p = case["params"]
    dt = _SHORT_DTYPES[case["dtype"]]
    parts = [f"interp{case['ndim']}d", dt, p["mode"]]
    n = "x".join(map(str, case["input_shape"][1:]))
    if p["size"] is not None:
        parts.append(f"{n}-size" + "x".join(map(str, per_axis(p["size"], case["ndim"]))))
    else:
        sf = p["scale_factor"]
        parts.append(f"{n}-sf" + ("x".join(f"{v:g}" for v in sf) if isinstance(sf, (tuple, list))
                                 else f"{sf:g}"))
    if p["align_corners"] is not None:
        parts.append(f"ac{int(p['align_corners'])}")
    return "-".join(parts)


def seed_cases():
    """The two examples of the seed blog, the post that started the project (a Korean
    post on transposed convolution for up-sampling, "[ML/DL] Transposed Convolution
    연산을 이용한 Up-sampling"), in float32 as there: F.conv2d of the 4x4 input
    arange(1, 17) with a 3x3 filter, and F.conv_transpose2d of [[1, 2], [3, 4]] with
    another 3x3 filter, each with its explicit matrix (4x16, 16x4)."""
    out = []
    rng = np.random.default_rng(0)
    # 1. F.conv2d of arange(1, 17).view(4, 4) with a 3x3 filter: [[26, 39], [78, 91]].
    x = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
    w = np.array([[3, 2, 9], [-2, 1, 3], [-3, -2, 2]], dtype=np.float32).reshape(1, 1, 3, 3)
    for bare in (False, True):
        xx = x[:, 0] if bare else x
        ww = w[0, 0] if bare else w
        wt = torch.from_numpy(ww)
        fn = lambda t, b=bare, wt=wt: torch_conv(t, wt, 2, 1, 0, 1, 1, "zeros", b)  # noqa: E731
        arrays, info = run_torch(fn, xx, "float32", rng)
        y = arrays["y"]
        expected = np.array([[26, 39], [78, 91]], dtype=np.float32)
        assert np.array_equal(y.reshape(2, 2), expected), y
        A = dense_matrix(fn, xx.shape[1:], np.float32)
        assert A.shape == (4, 16)
        params = dict(stride=1, padding=0, padding_pairs=((0, 0), (0, 0)), dilation=1, groups=1,
                      padding_mode="zeros")
        case = dict(kind="conv", ndim=2, dtype="float32", bare=bare, batch=1,
                    input_shape=xx.shape[1:], output_shape=y.shape[1:], params=params,
                    source="seed", note="seed blog: F.conv2d 4x4 input, 3x3 filter -> 2x2; "
                                        "A is the 4x16 convolution matrix", **info)
        out.append((case, dict(x=xx, w=ww, A=A, **arrays)))
    # 2. F.conv_transpose2d of [[1, 2], [3, 4]] with a 3x3 filter -> 4x4.
    x = np.array([[1, 2], [3, 4]], dtype=np.float32).reshape(1, 1, 2, 2)
    w = np.array([[1, 2, 7], [-2, 1, 0], [-3, 1, 2]], dtype=np.float32).reshape(1, 1, 3, 3)
    expected = np.array([[1, 4, 11, 14], [1, 7, 31, 28], [-9, -10, 8, 4], [-9, -9, 10, 8]],
                        dtype=np.float32)
    for bare in (False, True):
        xx = x[:, 0] if bare else x
        ww = w[0, 0] if bare else w
        wt = torch.from_numpy(ww)
        fn = lambda t, b=bare, wt=wt: torch_conv_transpose(t, wt, 2, 1, 0, 0, 1, 1, b)  # noqa: E731
        arrays, info = run_torch(fn, xx, "float32", rng)
        y = arrays["y"]
        assert np.array_equal(y.reshape(4, 4), expected), y
        A = dense_matrix(fn, xx.shape[1:], np.float32)
        assert A.shape == (16, 4)
        params = dict(stride=1, padding=0, padding_pairs=((0, 0), (0, 0)), output_padding=0,
                      dilation=1, groups=1)
        case = dict(kind="conv_transpose", ndim=2, dtype="float32", bare=bare, batch=1,
                    input_shape=xx.shape[1:], output_shape=y.shape[1:], params=params,
                    source="seed", note="seed blog: F.conv_transpose2d 2x2 -> 4x4; "
                                        "A is the 16x4 transposed convolution matrix", **info)
        out.append((case, dict(x=xx, w=ww, A=A, **arrays)))
    return out


def interpolate_quirk_cases(rng):
    """Cases where torch's index arithmetic is easy to get wrong.

    Measured on torch 2.13 CPU:

    * nearest, 2-D: ``n_out == n_in`` -> identity and ``n_out == 2 n_in`` ->
      ``dst >> 1`` whatever the scale_factor; otherwise
      ``floor(float32(dst) * float32(scale))`` in float32 arithmetic, for
      float64 data too (scale = float32(1/sf), or float32(n_in) / n_out).
    * nearest, 1-D and 3-D (forward): no special cases;
      ``floor(float32(dst * scale))`` with scale and product in the data's
      precision (float64 for float64 data), rounded to float32 before floor.
      Their *backward* uses the 2-D rule, so torch's gradient is not the
      adjoint of its forward when ``n_out == n_in`` or ``2 n_in`` with a
      non-trivial scale_factor (e.g. n=5, sf=1.1; n=4, sf=2.2) or where the
      float32 and float64 roundings differ (n=14, size=46, float64).
    * nearest-exact, 2-D: ``floor(float32((dst + 0.5) * float32(scale)))``
      (product in float64); 1-D and 3-D: ``v = max(scale*(dst + 0.5) - 0.5, 0)``
      in the data's precision (float32: a fused multiply-add), then
      ``floor(float32(v + 0.5))``; the backward uses the 2-D rule again
      (n=2, size=41 differs).
    * linear / bilinear / trilinear: ``n_out == n_in`` -> identity along
      that axis whatever the scale_factor; bicubic has no such shortcut.
    * sizes 1 (in or out) with align_corners True; downsampling by sizes.
    """
    out = []
    specs = [
        (1, "nearest", (5,), None, 1.1, None),
        (1, "nearest", (4,), None, 2.2, None),
        (1, "nearest", (7,), None, 2.0, None),
        (2, "nearest", (4, 5), None, (2.2, 1.1), None),
        (3, "nearest", (4, 1, 5), None, (2.2, 1.0, 1.1), None),
        (1, "nearest", (32,), None, 1.3, None),
        (1, "nearest", (31,), None, 2.6, None),
        (1, "nearest", (14,), 46, None, None),
        (2, "nearest", (14, 2), (46, 3), None, None),
        (3, "nearest", (1, 2, 14), (1, 3, 46), None, None),
        (1, "nearest", (16,), None, 2.6, None),
        (1, "nearest-exact", (2,), 41, None, None),
        (1, "nearest-exact", (16,), None, 1.3, None),
        (1, "nearest-exact", (10,), None, 0.3, None),
        (1, "nearest-exact", (20,), None, 0.3, None),
        (1, "nearest-exact", (12,), None, 1.15, None),
        (1, "nearest-exact", (11,), None, 1.35, None),
        (2, "nearest-exact", (10, 3), None, (0.3, 1.5), None),
        (3, "nearest-exact", (2, 2, 12), None, (1.5, 1.0, 1.15), None),
        (1, "nearest", (10,), 3, None, None),
        (1, "nearest", (3,), 10, None, None),
        (1, "nearest-exact", (7,), 3, None, None),
        (1, "linear", (3,), None, 1.25, False),
        (2, "bilinear", (3, 4), None, (1.25, 1.5), False),
        (2, "bicubic", (3, 4), None, (1.25, 1.5), False),
        (3, "trilinear", (3, 2, 2), None, (1.25, 1.5, 0.5), False),
        (1, "linear", (1,), 5, None, True),
        (1, "linear", (1,), 5, None, False),
        (1, "linear", (6,), 1, None, True),
        (1, "linear", (6,), 1, None, False),
        (1, "linear", (9,), 4, None, True),
        (1, "linear", (9,), 4, None, False),
        (1, "linear", (5,), None, 0.5, False),
        (1, "linear", (5,), None, 2.5, True),
        (1, "linear", (5,), 8, None, None),
        (2, "bilinear", (1, 3), (4, 1), None, True),
        (2, "bicubic", (1, 4), (3, 7), None, False),
        (2, "bicubic", (1, 4), (3, 7), None, True),
        (2, "bicubic", (7, 6), (3, 4), None, False),
        (2, "bicubic", (5, 5), None, 2.5, False),
        (2, "bicubic", (3, 4), None, (1.5, 0.5), True),
        (2, "bicubic", (2, 2), (9, 9), None, False),
        (2, "bilinear", (4, 4), None, 0.5, None),
        (3, "trilinear", (1, 2, 3), (2, 1, 4), None, True),
        (1, "area", (7,), 3, None, None),
        (1, "area", (10,), 4, None, None),
        (1, "area", (3,), 7, None, None),
        (1, "area", (9,), None, 0.4, None),
        (2, "area", (7, 5), (3, 2), None, None),
        (3, "area", (5, 3, 4), (2, 3, 3), None, None),
    ]
    for dtype in ("float64", "float32"):
        for _, mode, n, size, sf, ac in specs:
            x = draw(rng, (1, 1) + n, dtype)
            case, arrays = interpolate_case(x, dtype, size, sf, mode, ac, rng, source="quirk")
            out.append((case, arrays))
    return out


def build_cases(seed=SEED, scale=1):
    """The list of (case, arrays).  ``scale`` multiplies the random repetitions."""
    rng = np.random.default_rng(seed)
    cases = []
    # convolutions: every (ndim, padding_mode, padding_form) in both real dtypes,
    # groups kind cycling, plus bare kernels and a few complex cases.
    gkinds = ["one", "grouped", "depthwise"]
    i = 0
    for _ in range(scale):
        for ndim in (1, 2, 3):
            for mode in PADDING_MODES:
                for form in PADDING_FORMS:
                    for dtype in ("float32", "float64"):
                        c = make_conv_case(rng, ndim, dtype, mode, form,
                                           groups_kind=gkinds[i % 3])
                        i += 1
                        c[0]["source"] = "systematic"
                        cases.append(c)
        for ndim in (1, 2, 3):
            for mode in PADDING_MODES:
                form = PADDING_FORMS[i % 5]
                dtype = ("float32", "float64")[i % 2]
                i += 1
                c = make_conv_case(rng, ndim, dtype, mode, form, bare=True)
                c[0]["source"] = "systematic"
                cases.append(c)
        for ndim in (1, 2, 3):
            for dtype in ("complex64", "complex128"):
                mode = PADDING_MODES[i % 4]
                form = PADDING_FORMS[i % 5]
                i += 1
                c = make_conv_case(rng, ndim, dtype, mode, form)
                c[0]["source"] = "systematic"
                cases.append(c)
        # extra random convolutions
        for _ in range(60):
            ndim = int(rng.integers(1, 4))
            c = make_conv_case(rng, ndim, str(rng.choice(["float32", "float64"])),
                               str(rng.choice(PADDING_MODES)), str(rng.choice(PADDING_FORMS)),
                               bare=bool(rng.random() < 0.15))
            c[0]["source"] = "random"
            cases.append(c)
        # transposed convolutions
        for ndim in (1, 2, 3):
            for form in ("int", "tuple", "pairs"):
                for dtype in ("float32", "float64"):
                    for rep in range(3 if ndim < 3 else 2):
                        c = make_conv_transpose_case(rng, ndim, dtype, form,
                                                     bare=(rep == 2))
                        c[0]["source"] = "systematic"
                        cases.append(c)
        for _ in range(20):
            ndim = int(rng.integers(1, 4))
            c = make_conv_transpose_case(rng, ndim, str(rng.choice(["float32", "float64"])),
                                         str(rng.choice(["int", "tuple", "pairs"])),
                                         bare=bool(rng.random() < 0.15))
            c[0]["source"] = "random"
            cases.append(c)
        for ndim in (1, 2):
            for dtype in ("complex64", "complex128"):
                c = make_conv_transpose_case(rng, ndim, dtype, ("int", "pairs")[ndim - 1])
                c[0]["source"] = "systematic"
                cases.append(c)
        # interpolation: every (ndim, mode, spec, align_corners) in both dtypes
        for ndim in (1, 2, 3):
            for mode in INTERP_MODES[ndim]:
                acs = [False, True] if mode in LINEAR_FAMILY else [None]
                for spec in ("size", "scale", "scales") if ndim > 1 else ("size", "scale"):
                    for ac in acs:
                        for dtype in ("float32", "float64"):
                            c = make_interpolate_case(rng, ndim, dtype, mode, spec, ac)
                            c[0]["source"] = "systematic"
                            cases.append(c)
        for _ in range(30):
            ndim = int(rng.integers(1, 4))
            mode = str(rng.choice(INTERP_MODES[ndim]))
            ac = (None if mode not in LINEAR_FAMILY else
                  [None, False, True][int(rng.integers(0, 3))])
            spec = str(rng.choice(["size", "scale", "scales"] if ndim > 1 else ["size", "scale"]))
            c = make_interpolate_case(rng, ndim, str(rng.choice(["float32", "float64"])),
                                      mode, spec, ac)
            c[0]["source"] = "random"
            cases.append(c)
    return cases


def finish(cases):
    """Assign ids and names; return (list of case dicts, dict of arrays)."""
    meta, arrays = [], {}
    for j, (case, arr) in enumerate(cases):
        cid = f"c{j:03d}"
        case = dict(case)
        case["id"] = cid
        case.setdefault("source", "random")
        case["name"] = (interp_name(case) if case["kind"] == "interpolate" else conv_name(case))
        if case.get("source") in ("seed", "quirk"):
            case["name"] = case["source"] + "-" + case["name"]
        meta.append(as_json(case))
        for key, a in arr.items():
            arrays[f"{cid}_{key}"] = np.ascontiguousarray(a)
    return meta, arrays


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--check", action="store_true", help="print a summary")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Using padding='same'")
    cases = seed_cases() + build_cases() + interpolate_quirk_cases(np.random.default_rng(SEED + 1))
    meta, arrays = finish(cases)
    names = [c["name"] for c in meta]
    assert len({c["id"] for c in meta}) == len(meta)
    np.savez_compressed(
        args.out,
        torch_version=np.array(torch.__version__),
        numpy_version=np.array(np.__version__),
        generator=np.array("tests/data/make_reference.py"),
        cases_json=np.array(json.dumps(meta)),
        **arrays,
    )
    size = os.path.getsize(args.out)
    counts = {}
    for c in meta:
        key = c["kind"] if c["kind"] != "interpolate" else "interpolate:" + c["params"]["mode"]
        counts[key] = counts.get(key, 0) + 1
    print(f"wrote {args.out}: {len(meta)} cases, {size / 1e6:.3f} MB, torch {torch.__version__}")
    for k, v in sorted(counts.items()):
        print(f"  {k:28s} {v}")
    if args.check:
        for n in names:
            print(" ", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
