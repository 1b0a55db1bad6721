"""Adapters for the libraries a user would pick instead of linop.

Every adapter takes a convolution described by a :class:`benchmarks.cases.ConvSpec`
(PyTorch semantics: cross-correlation, weight ``(C_out, C_in/groups, *k)``,
per-axis ``(lo, hi)`` padding) and returns :class:`Impl` objects: a zero-argument
closure on inputs prepared once in the peer's native format, plus a function
turning its return value into a NumPy array for the agreement check.

A peer that is not importable, or that cannot express a case (multi-channel
mixing for PyLops, strides for PyLops, adjoints of padding modes for
scipy.ndimage, ...), simply contributes no implementation. Adapters do what a
user of that library would naturally write: for example a strided convolution
with scipy.ndimage is the full-resolution correlation subsampled by slicing,
and a dilated kernel has zeros inserted between its taps.

Families (used by the goals to choose the peers they compare with):
``torch``, ``scipy.ndimage``, ``scipy.signal``, ``pylops``, ``scipy.sparse``.

Besides convolutions: ``upsample_impls`` (``F.interpolate``, ``ndimage.zoom``),
``avgpool_impls`` (``F.avg_pool{n}d``), ``convfilter_impls`` (the convolution as
a function of its kernel: ``F.conv{n}d`` with a fixed input, and PyTorch's
weight gradient) and ``product_impls`` (``F.interpolate`` then ``F.conv2d``).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Impl", "available", "conv_impls", "explicit_impls", "upsample_impls",
           "avgpool_impls", "convfilter_impls", "product_impls", "torch_chunked_1d",
           "torch_threads", "import_family"]

TORCH_THREADS = 2
SETUP_ERRORS: list = []  # peers that failed to set up (reported by run.py)


@dataclass
class Impl:
    """One implementation of one operation, ready to time.

    ``run()`` performs the operation on inputs prepared beforehand; ``to_numpy``
    turns its return value into an array (or sparse matrix) for the agreement
    check; it is not timed.
    """

    name: str
    family: str
    run: Callable[[], Any]
    to_numpy: Callable[[Any], Any] = field(default=lambda r: np.asarray(r))
    note: str = ""


# -- availability -----------------------------------------------------------------

_MODULES = {}


def _try_import(name):
    if name not in _MODULES:
        try:
            _MODULES[name] = importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - ImportError, or a broken install
            _MODULES[name] = err
    mod = _MODULES[name]
    return None if isinstance(mod, Exception) else mod


def _torch():
    torch = _try_import("torch")
    if torch is not None and torch.get_num_threads() != TORCH_THREADS:
        torch.set_num_threads(TORCH_THREADS)
    return torch


def torch_threads():
    torch = _torch()
    return None if torch is None else torch.get_num_threads()


def available() -> dict:
    """Peer package -> version, or the reason it is unavailable."""
    out = {}
    for name in ("torch", "scipy", "pylops", "numpy"):
        mod = _torch() if name == "torch" else _try_import(name)
        out[name] = getattr(mod, "__version__", "?") if mod is not None else (
            f"not importable ({_MODULES[name]!r})"[:120]
        )
    return out


# -- helpers ------------------------------------------------------------------------

def _dilated(kernel: np.ndarray, dilation) -> np.ndarray:
    """The kernel with ``d - 1`` zeros between taps on each axis."""
    if all(d == 1 for d in dilation):
        return kernel
    shape = tuple(d * (k - 1) + 1 for k, d in zip(kernel.shape, dilation))
    out = np.zeros(shape, dtype=kernel.dtype)
    out[tuple(slice(None, None, d) for d in dilation)] = kernel
    return out


def _flip(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])


def _channel_pairs(spec):
    """(co, ci, weight index) for every input/output channel pair that mixes."""
    c_out, cin_g = spec.weight.shape[:2]
    cout_g = c_out // spec.groups
    return [(co, (co // cout_g) * cin_g + j, j) for co in range(c_out) for j in range(cin_g)]


# -- PyTorch ------------------------------------------------------------------------

_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
             "circular": "circular"}


def _torch_conv(spec, direction, arr):
    torch = _torch()
    if torch is None:
        return []
    F = torch.nn.functional
    nd = spec.ndim
    conv = getattr(F, f"conv{nd}d")
    conv_t = getattr(F, f"conv_transpose{nd}d")
    w = torch.from_numpy(spec.weight)
    t = torch.from_numpy(np.ascontiguousarray(arr)).unsqueeze(0)
    symmetric = all(lo == hi for lo, hi in spec.padding)
    kw = dict(stride=spec.stride, dilation=spec.dilation, groups=spec.groups)
    to_np = lambda r: r.detach().numpy()[0]  # noqa: E731

    if spec.padding_mode == "zeros" and symmetric:
        pad = tuple(lo for lo, _ in spec.padding)
        if direction == "forward":
            return [Impl(f"torch.conv{nd}d", "torch",
                         lambda: conv(t, w, padding=pad, **kw), to_np)]
        out_pad = tuple(
            n - ((m - 1) * s - 2 * p + d * (k - 1) + 1)
            for n, m, s, p, d, k in zip(spec.spatial_in, spec.spatial_out, spec.stride, pad,
                                        spec.dilation, spec.kernel_size)
        )
        return [Impl(f"torch.conv_transpose{nd}d", "torch",
                     lambda: conv_t(t, w, padding=pad, output_padding=out_pad, **kw), to_np)]

    # Asymmetric padding or a padding mode: F.pad, then an unpadded convolution.
    pad_arg = tuple(v for lo, hi in reversed(spec.padding) for v in (lo, hi))
    mode = _PAD_MODE[spec.padding_mode]

    def fwd(u):
        return conv(F.pad(u, pad_arg, mode=mode), w, padding=0, **kw)

    if direction == "forward":
        return [Impl(f"torch.conv{nd}d+F.pad({mode})", "torch", lambda: fwd(t), to_np)]
    # The adjoint as a PyTorch user gets it: the vector-Jacobian product.
    x0 = torch.zeros((1,) + tuple(spec.input_shape), dtype=w.dtype)
    _, vjp_fn = torch.func.vjp(fwd, x0)
    return [Impl(f"torch.func.vjp(conv{nd}d+F.pad)", "torch", lambda: vjp_fn(t)[0], to_np,
                 note="backward kernel via vjp")]


def torch_chunked_1d(spec, direction, arr, chunk=1 << 14):
    """PyTorch's ``conv1d`` / ``conv_transpose1d`` applied to chunks of the output.

    For the agreement check only (not a peer a user would write): one call of
    PyTorch's float64 convolution with a long kernel unfolds the whole input
    (1001 taps x 10^6 samples: 7.6 GB, about 11 s). Every output is the same
    dot product as in the single call. One channel, stride and dilation 1,
    zero padding.
    """
    torch = _torch()
    if (torch is None or spec.ndim != 1 or len(_channel_pairs(spec)) != 1
            or spec.stride != (1,) or spec.dilation != (1,) or spec.padding_mode != "zeros"):
        return []
    F = torch.nn.functional
    w = torch.from_numpy(spec.weight)
    k = spec.kernel_size[0]
    (lo, hi), = spec.padding
    n, m = spec.spatial_in[0], spec.spatial_out[0]
    a = torch.from_numpy(np.ascontiguousarray(arr)).unsqueeze(0)
    to_np = lambda r: r.numpy()[0]  # noqa: E731

    if direction == "forward":
        def run():
            xp = F.pad(a, (lo, hi))
            return torch.cat([F.conv1d(xp[..., s:min(s + chunk, m) + k - 1], w)
                              for s in range(0, m, chunk)], dim=-1)
        return [Impl("torch.conv1d in chunks (agreement only)", "torch", run, to_np)]

    def run_adjoint():
        parts = []
        for i0 in range(0, n, chunk):
            i1 = min(i0 + chunk, n)
            s, e = max(0, i0 + lo - k + 1), min(m, i1 + lo)
            z = F.conv_transpose1d(a[..., s:e], w)
            parts.append(z[..., i0 + lo - s:i1 + lo - s])
        return torch.cat(parts, dim=-1)
    return [Impl("torch.conv_transpose1d in chunks (agreement only)", "torch", run_adjoint,
                 to_np)]


def _torch_upsample(spec, direction, arr):
    torch = _torch()
    if torch is None:
        return []
    F = torch.nn.functional
    t = torch.from_numpy(np.ascontiguousarray(arr)).unsqueeze(0)
    kw = dict(mode=spec.mode)
    if spec.size is not None:
        kw["size"] = spec.size
    else:
        kw["scale_factor"] = spec.scale_factor
    if spec.align_corners is not None:
        kw["align_corners"] = spec.align_corners
    to_np = lambda r: r.detach().numpy()[0]  # noqa: E731

    def fwd(u):
        return F.interpolate(u, **kw)

    if direction == "forward":
        return [Impl("torch.interpolate", "torch", lambda: fwd(t), to_np)]
    x0 = torch.zeros((1,) + tuple(spec.input_shape), dtype=t.dtype)
    _, vjp_fn = torch.func.vjp(fwd, x0)
    return [Impl("torch.func.vjp(interpolate)", "torch", lambda: vjp_fn(t)[0], to_np,
                 note="backward kernel via vjp")]


# -- scipy.ndimage ------------------------------------------------------------------

_NDIMAGE_MODE = {"zeros": "constant", "reflect": "mirror", "replicate": "nearest",
                 "circular": "wrap"}


def _crop_slices(spec, k_eff, centre):
    """Slices taking the 'same'-sized result (centred kernel) to the strided output."""
    sl = []
    for (lo, _), s, m_full, c in zip(spec.padding, spec.stride, spec.unstrided_out, centre):
        start = c - lo
        sl.append(slice(start, start + m_full, s))
    return tuple(sl)


def _ndimage_conv(spec, direction, arr):
    ndi = _try_import("scipy.ndimage")
    if ndi is None:
        return []
    k_eff = spec.effective_kernel
    if any(k % 2 == 0 for k in k_eff):
        return []  # ndimage centres even kernels differently; not a natural fit
    centre = tuple(k // 2 for k in k_eff)
    if any(lo > c or hi > c for (lo, hi), c in zip(spec.padding, centre)):
        return []
    if direction == "adjoint" and spec.padding_mode != "zeros":
        return []
    mode = _NDIMAGE_MODE[spec.padding_mode]
    pairs = _channel_pairs(spec)
    kernels = [_dilated(spec.weight[co, j], spec.dilation) for co, _, j in pairs]
    crop = _crop_slices(spec, k_eff, centre)
    c_out, c_in = spec.weight.shape[0], spec.input_shape[0]
    a = np.ascontiguousarray(arr)
    suffix = "" if len(pairs) == 1 else f" (loop over {len(pairs)} channel pairs)"

    if direction == "forward":
        if len(pairs) == 1:
            k0 = kernels[0]
            run = lambda: ndi.correlate(a[0], k0, mode=mode)[crop]  # noqa: E731
        else:
            def run():
                out = np.zeros((c_out,) + spec.spatial_out, dtype=a.dtype)
                for (co, ci, _), k in zip(pairs, kernels):
                    out[co] += ndi.correlate(a[ci], k, mode=mode)[crop]
                return out
        return [Impl("scipy.ndimage.correlate" + suffix, "scipy.ndimage", run)]

    # Adjoint (zero padding): zero-insert the strided output into the
    # 'same'-sized grid, then convolve with the same (odd) kernel.
    def embed(y):
        z = np.zeros(spec.spatial_in, dtype=y.dtype)
        z[crop] = y
        return z

    if len(pairs) == 1:
        k0 = kernels[0]
        run = lambda: ndi.convolve(embed(a[0]), k0, mode="constant")  # noqa: E731
    else:
        def run():
            out = np.zeros((c_in,) + spec.spatial_in, dtype=a.dtype)
            embedded = [embed(a[co]) for co in range(c_out)]
            for (co, ci, _), k in zip(pairs, kernels):
                out[ci] += ndi.convolve(embedded[co], k, mode="constant")
            return out
    return [Impl("scipy.ndimage.convolve" + suffix, "scipy.ndimage", run)]


# -- scipy.signal -------------------------------------------------------------------

def _signal_conv(spec, direction, arr):
    sig = _try_import("scipy.signal")
    if sig is None or spec.padding_mode != "zeros" or len(_channel_pairs(spec)) != 1:
        return []
    k_eff = spec.effective_kernel
    w = _dilated(spec.weight[0, 0], spec.dilation)
    wf = _flip(w)
    pad = spec.padding
    if all(k % 2 == 1 and lo == hi == k // 2 for k, (lo, hi) in zip(k_eff, pad)):
        mode, adj_mode, crop = "same", "same", (slice(None),) * spec.ndim
    elif all(lo == hi == 0 for lo, hi in pad):
        mode, adj_mode, crop = "valid", "full", (slice(None),) * spec.ndim
    elif all(lo <= k - 1 and hi <= k - 1 for k, (lo, hi) in zip(k_eff, pad)):
        mode, adj_mode = "full", "valid"
        crop = tuple(slice(k - 1 - lo, k - 1 - lo + m) for k, (lo, _), m
                     in zip(k_eff, pad, spec.unstrided_out))
    else:
        return []
    stride = tuple(slice(None, None, s) for s in spec.stride)
    a = np.ascontiguousarray(arr[0])
    unit_stride = all(s == 1 for s in spec.stride)

    if direction == "forward":
        def pick(r):
            r = r[crop]
            return r if unit_stride else r[stride]
        impls = [
            Impl("scipy.signal.correlate(direct)", "scipy.signal",
                 lambda: pick(sig.correlate(a, w, mode=mode, method="direct"))),
            Impl("scipy.signal.correlate(fft)", "scipy.signal",
                 lambda: pick(sig.correlate(a, w, mode=mode, method="fft"))),
            Impl("scipy.signal.oaconvolve", "scipy.signal",
                 lambda: pick(sig.oaconvolve(a, wf, mode=mode))),
        ]
        return impls

    full_shape = tuple(n + k - 1 for n, k in zip(spec.spatial_in, k_eff))
    grid = full_shape if mode == "full" else spec.unstrided_out

    def embed(y):
        if unit_stride and mode != "full":
            return y
        z = np.zeros(grid, dtype=y.dtype)
        target = z[crop] if mode == "full" else z
        target[stride] = y
        return z

    return [
        Impl("scipy.signal.convolve(direct)", "scipy.signal",
             lambda: sig.convolve(embed(a), w, mode=adj_mode, method="direct")),
        Impl("scipy.signal.convolve(fft)", "scipy.signal",
             lambda: sig.convolve(embed(a), w, mode=adj_mode, method="fft")),
        Impl("scipy.signal.oaconvolve", "scipy.signal",
             lambda: sig.oaconvolve(embed(a), w, mode=adj_mode)),
    ]


# -- PyLops -------------------------------------------------------------------------

def _pylops_conv(spec, direction, arr):
    pylops = _try_import("pylops")
    if (pylops is None or spec.padding_mode != "zeros" or len(_channel_pairs(spec)) != 1
            or any(s != 1 for s in spec.stride)):
        return []
    k_eff = spec.effective_kernel
    if not all(k % 2 == 1 and lo == hi == k // 2 for k, (lo, hi) in zip(k_eff, spec.padding)):
        return []  # PyLops' operators are 'same'-sized with a centred filter
    from pylops import signalprocessing as psp

    h = _flip(_dilated(spec.weight[0, 0], spec.dilation))  # PyLops convolves
    offset = tuple(k // 2 for k in k_eff)
    dims = spec.spatial_in
    a = np.ascontiguousarray(arr[0]).ravel()
    impls = []
    # (Convolve1D's "overlapadd" is only allowed for multi-dimensional dims.)
    for method in ("direct", "fft"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            name = {1: "Convolve1D", 2: "Convolve2D"}.get(spec.ndim, "ConvolveND")
            try:
                op = _pylops_op(psp, spec, dims, h, offset, method)
            except Exception as err:  # noqa: BLE001 - e.g. a method this shape does not allow
                SETUP_ERRORS.append(f"pylops.{name}({method}): {err!r}"[:200])
                continue
        fn = op.matvec if direction == "forward" else op.rmatvec
        impls.append(Impl(f"pylops.{name}({method})", "pylops",
                          (lambda f: (lambda: f(a)))(fn)))
    return impls


def _pylops_op(psp, spec, dims, h, offset, method):
    dtype = spec.weight.dtype
    if spec.ndim == 1:
        return psp.Convolve1D(dims[0], h, offset=offset[0], method=method, dtype=dtype)
    if spec.ndim == 2:
        return psp.Convolve2D(dims, h, offset=offset, method=method, dtype=dtype)
    return psp.ConvolveND(dims, h, offset=offset, axes=tuple(range(spec.ndim)), method=method,
                          dtype=dtype)


# -- public entry points ----------------------------------------------------------------

_CONV_ADAPTERS = (("torch", _torch_conv), ("scipy.ndimage", _ndimage_conv),
                  ("scipy.signal", _signal_conv), ("pylops", _pylops_conv))


def import_family(family: str) -> None:
    """Import a peer family's modules (before a fresh-process timing starts)."""
    if family == "torch":
        _torch()
    elif family == "pylops":
        _try_import("pylops")
        _try_import("pylops.signalprocessing")
    elif family.startswith("scipy."):
        _try_import(family)


def conv_impls(spec, direction: str, arr: np.ndarray, families=None) -> list[Impl]:
    """Peer implementations of a convolution (``forward``) or its adjoint.

    ``arr`` is the input with its channel axis: ``spec.input_shape`` for the
    forward direction, ``spec.output_shape`` for the adjoint. ``families``
    (default: all) limits the adapters that are set up.
    """
    impls = []
    for family, adapter in _CONV_ADAPTERS:
        if families is not None and family not in families:
            continue
        try:
            impls.extend(adapter(spec, direction, arr))
        except Exception as err:  # noqa: BLE001 - one peer's failure must not hide the others
            SETUP_ERRORS.append(f"{adapter.__name__}: {err!r}"[:200])
    return impls


def upsample_impls(spec, direction: str, arr: np.ndarray) -> list[Impl]:
    impls = list(_torch_upsample(spec, direction, arr))
    ndi = _try_import("scipy.ndimage")
    linear = spec.mode in ("linear", "bilinear", "trilinear") and not spec.align_corners
    if ndi is not None and direction == "forward" and linear and spec.scale_factor is not None:
        zoom = (1,) + tuple(spec.scale_tuple)
        a = np.ascontiguousarray(arr)
        impls.append(Impl("scipy.ndimage.zoom(order=1)", "scipy.ndimage",
                          lambda: ndi.zoom(a, zoom, order=1, mode="nearest", grid_mode=True)))
    return impls


def avgpool_impls(spec, direction: str, arr: np.ndarray) -> list[Impl]:
    """``F.avg_pool{n}d`` (forward) and its vector-Jacobian product (adjoint).

    ``spec`` is a :class:`benchmarks.cases.PoolSpec`; ``arr`` has the channel axis.
    """
    torch = _torch()
    if torch is None:
        return []
    F = torch.nn.functional
    nd = spec.ndim
    pool = getattr(F, f"avg_pool{nd}d")
    kw = dict(kernel_size=spec.kernel_tuple, stride=spec.stride_tuple,
              padding=spec.padding_tuple, ceil_mode=spec.ceil_mode,
              count_include_pad=spec.count_include_pad)
    if spec.divisor_override is not None:
        kw["divisor_override"] = spec.divisor_override  # (avg_pool1d has none)
    t = torch.from_numpy(np.ascontiguousarray(arr)).unsqueeze(0)
    to_np = lambda r: r.detach().numpy()[0]  # noqa: E731

    def fwd(u):
        return pool(u, **kw)

    if direction == "forward":
        return [Impl(f"torch.avg_pool{nd}d", "torch", lambda: fwd(t), to_np)]
    x0 = torch.zeros((1,) + tuple(spec.input_shape), dtype=t.dtype)
    _, vjp_fn = torch.func.vjp(fwd, x0)
    return [Impl(f"torch.func.vjp(avg_pool{nd}d)", "torch", lambda: vjp_fn(t)[0], to_np,
                 note="backward kernel via vjp")]


def convfilter_impls(spec, direction: str, arr: np.ndarray) -> list[Impl]:
    """The convolution as a function of its kernel, ``w -> conv(x, w)``, and its adjoint.

    ``spec`` is a :class:`benchmarks.cases.FilterSpec` (``x`` fixed). Forward
    (``arr`` is the weight): ``F.conv{n}d(x, w)``. Adjoint (``arr`` is the
    output gradient ``y``): PyTorch's weight gradient,
    ``torch.nn.grad.conv{n}d_weight(x, weight_shape, y)``, and the same through
    ``torch.func.vjp`` in ``w``. One channel, stride and dilation 1:
    ``scipy.signal.correlate(x_pad, w | y, "valid")`` too (``x_pad``, the padded
    input, is made once: ``x`` is fixed).
    """
    impls = []
    nd = spec.ndim
    torch = _torch()
    if torch is not None:
        F = torch.nn.functional
        conv = getattr(F, f"conv{nd}d")
        kw = spec.torch_kwargs()
        xt = torch.from_numpy(np.ascontiguousarray(spec.x)).unsqueeze(0)
        at = torch.from_numpy(np.ascontiguousarray(arr))
        if direction == "forward":
            impls.append(Impl(f"torch.conv{nd}d(x, w)", "torch", lambda: conv(xt, at, **kw),
                              lambda r: r.detach().numpy()[0]))
        else:
            yt = at.unsqueeze(0)
            grad = getattr(torch.nn.grad, f"conv{nd}d_weight")
            shape = tuple(spec.weight_shape)
            impls.append(Impl(f"torch.nn.grad.conv{nd}d_weight", "torch",
                              lambda: grad(xt, shape, yt, **kw), lambda r: r.numpy()))
            w0 = torch.zeros(shape, dtype=xt.dtype)
            _, vjp_fn = torch.func.vjp(lambda w: conv(xt, w, **kw), w0)
            impls.append(Impl(f"torch.func.vjp(conv{nd}d, w)", "torch", lambda: vjp_fn(yt)[0],
                              lambda r: r.detach().numpy(), note="backward kernel via vjp"))
    sig = _try_import("scipy.signal")
    one = (tuple(spec.weight_shape[:2]) == (1, 1) and spec.x.shape[0] == 1
           and all(s == 1 for s in spec.stride_tuple)
           and all(d == 1 for d in spec.dilation_tuple))
    if sig is not None and one:
        xp = np.pad(spec.x[0], spec.padding_pairs)
        a2 = np.ascontiguousarray(arr[0, 0] if direction == "forward" else arr[0])
        what = "w" if direction == "forward" else "y"
        for method in ("direct", "fft"):
            impls.append(Impl(f"scipy.signal.correlate(x_pad, {what}, valid, {method})",
                              "scipy.signal",
                              lambda m=method: sig.correlate(xp, a2, mode="valid", method=m)))
    return impls


def product_impls(spec, direction: str, arr: np.ndarray) -> list[Impl]:
    """``F.conv{n}d(F.interpolate(x))`` and its vector-Jacobian product.

    ``spec`` is a :class:`benchmarks.cases.ProductSpec` (symmetric zero padding).
    """
    torch = _torch()
    if torch is None:
        return []
    F = torch.nn.functional
    nd = spec.conv.ndim
    conv = getattr(F, f"conv{nd}d")
    w = torch.from_numpy(spec.weight)
    pad = tuple(lo for lo, _ in spec.conv.padding)
    up_kw = dict(scale_factor=spec.scale_factor, mode=spec.mode)
    t = torch.from_numpy(np.ascontiguousarray(arr)).unsqueeze(0)
    to_np = lambda r: r.detach().numpy()[0]  # noqa: E731

    def fwd(u):
        return conv(F.interpolate(u, **up_kw), w, padding=pad)

    if direction == "forward":
        return [Impl(f"torch.conv{nd}d(interpolate(x))", "torch", lambda: fwd(t), to_np)]
    x0 = torch.zeros((1,) + tuple(spec.input_shape), dtype=w.dtype)
    _, vjp_fn = torch.func.vjp(fwd, x0)
    return [Impl(f"torch.func.vjp(conv{nd}d(interpolate))", "torch", lambda: vjp_fn(t)[0],
                 to_np, note="backward kernels via vjp")]


def explicit_impls(spec, dense_limit_bytes: int = 2**30) -> list[Impl]:
    """Peers that build the explicit matrix of a one-channel zero-padded convolution.

    - 1-D: ``scipy.sparse.diags_array`` (one diagonal per tap) and PyLops'
      ``convmtx`` (a dense Toeplitz matrix, then converted; skipped when the
      dense matrix would exceed ``dense_limit_bytes``).
    - 2-D/3-D: a sum over taps of Kronecker products of per-axis shift
      matrices built with ``scipy.sparse.diags_array``.
    """
    sp = _try_import("scipy.sparse")
    if (sp is None or spec.padding_mode != "zeros" or len(_channel_pairs(spec)) != 1
            or any(s != 1 for s in spec.stride)):
        return []
    impls = []
    w = spec.weight[0, 0]
    dtype = w.dtype
    to_csr = lambda r: r.tocsr()  # noqa: E731
    if spec.ndim == 1:
        n, m = spec.spatial_in[0], spec.spatial_out[0]
        (lo, _), d = spec.padding[0], spec.dilation[0]
        offsets = [j * d - lo for j in range(w.size)]
        values = [dtype.type(v) for v in w]
        impls.append(Impl("scipy.sparse.diags_array(csr)", "scipy.sparse",
                          lambda: sp.diags_array(values, offsets=offsets, shape=(m, n),
                                                 format="csr", dtype=dtype), to_csr))
        pylops = _try_import("pylops")
        dense_bytes = (n + w.size) * n * dtype.itemsize
        if pylops is not None and dense_bytes <= dense_limit_bytes:
            from pylops.utils.signalprocessing import convmtx

            h = _flip(_dilated(w, spec.dilation))
            k = h.size
            start = k - 1 - lo

            def build(sparse):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        c = convmtx(h, n, offset=start, sparse=sparse)
                    except TypeError:  # PyLops < 2.8: no sparse keyword
                        c = convmtx(h, n, offset=start)
                        sparse = False
                c = c[:m]
                return c.tocsr() if sparse else sp.csr_array(c)

            impls.append(Impl("pylops convmtx(sparse=True)", "pylops",
                              lambda: build(True), to_csr,
                              note="dense Toeplitz, then sparse"))
            impls.append(Impl("pylops convmtx -> csr_array", "pylops",
                              lambda: build(False), to_csr,
                              note="dense Toeplitz, then CSR"))
        return impls

    # N-D: sum over taps of kron(shift matrices).
    def shift(a, j):
        n, m = spec.spatial_in[a], spec.spatial_out[a]
        lo, d = spec.padding[a][0], spec.dilation[a]
        return sp.diags_array(np.ones(1, dtype=dtype), offsets=j * d - lo, shape=(m, n),
                              format="csr", dtype=dtype)

    taps = list(np.ndindex(*w.shape))

    def build_kron():
        shifts = [[shift(a, j) for j in range(k)] for a, k in enumerate(w.shape)]
        total = None
        for idx in taps:
            term = shifts[0][idx[0]]
            for a in range(1, spec.ndim):
                term = sp.kron(term, shifts[a][idx[a]], format="csr")
            term = term * w[idx]
            total = term if total is None else total + term
        return total

    impls.append(Impl("scipy.sparse kron(diags) sum", "scipy.sparse", build_kron, to_csr,
                      note=f"{len(taps)} Kronecker products summed"))
    return impls
