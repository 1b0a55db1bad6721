"""Tests of linop.ConvFilter{1,2,3}d: the convolution as a function of its kernel.

References: PyTorch live (``F.conv{n}d`` forward, autograd on the weight and
``torch.nn.grad.conv{n}d_weight`` for the adjoint; those tests are skipped
without torch, which is not a dependency of linop), ``linop.Conv{n}d`` seen
from the other side, and a naive loop construction of the explicit matrix
written here from the definition (independent of linop).
"""

from __future__ import annotations

import copy
import itertools
import math
import pickle
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import linop
import linop._conv.im2col as im2col
import linop.conv_filter as conv_filter
from linop.testing import check_operator, dottest

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))
FILTERS = {1: linop.ConvFilter1d, 2: linop.ConvFilter2d, 3: linop.ConvFilter3d}
CONVS = {1: linop.Conv1d, 2: linop.Conv2d, 3: linop.Conv3d}
#: Relative tolerance against the sum of the absolute values of the terms.
RTOL = {"f": {4: 1e-5, 8: 1e-12}, "c": {8: 1e-5, 16: 1e-12}}
MAX_SIZE = {1: 9, 2: 5, 3: 3}
SETTINGS = settings(deadline=None, derandomize=True, max_examples=40)


def rtol(dtype) -> float:
    dtype = np.dtype(dtype)
    return RTOL[dtype.kind][dtype.itemsize]


def high(dtype):
    return np.complex128 if np.dtype(dtype).kind == "c" else np.float64


def random_array(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def assert_close(got, ref, bound, dtype, what=""):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    scale = float(np.max(np.abs(bound))) if np.size(bound) else 0.0
    err = float(np.max(np.abs(got - ref))) if got.size else 0.0
    tol = rtol(dtype) * max(scale, 1e-300)
    assert err <= tol, f"{what}: max error {err:.3e} > tolerance {tol:.3e}"


# -- the configurations ------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    nd: int
    x_shape: tuple
    weight_shape: tuple
    stride: object
    padding: object
    dilation: object
    groups: int
    padding_mode: str
    pairs: tuple  # (lo, hi) per axis, computed here from PyTorch's rules
    dtype: np.dtype
    seed: int

    @property
    def bare(self) -> bool:
        return len(self.x_shape) == self.nd

    @property
    def kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def per_axis(self, value):
        return (value,) * self.nd if isinstance(value, int) else tuple(value)

    def build(self):
        rng = np.random.default_rng(self.seed)
        x = random_array(rng, self.x_shape, self.dtype)
        return FILTERS[self.nd](x, self.weight_shape, **self.kwargs), x, rng

    @property
    def output_shape(self) -> tuple:
        spatial = self.x_shape[-self.nd:]
        k = self.weight_shape[-self.nd:]
        out = tuple(
            (n + lo + hi - d * (kk - 1) - 1) // s + 1
            for n, kk, s, d, (lo, hi) in zip(spatial, k, self.per_axis(self.stride),
                                             self.per_axis(self.dilation), self.pairs))
        return out if self.bare else (self.weight_shape[0],) + out


@st.composite
def configs(draw, ndims=(1, 2, 3), dtypes=DTYPES, bares=(False, True)):
    nd = draw(st.sampled_from(ndims))
    bare = draw(st.sampled_from(bares))
    dtype = draw(st.sampled_from(dtypes))
    if bare:
        groups, cin_g, cout_g = 1, 1, 1
    else:
        groups = draw(st.integers(1, 3))
        cin_g = draw(st.integers(1, 2))
        cout_g = draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    form = draw(st.sampled_from(["int", "tuple", "pairs", "valid", "same"]))

    def per_axis(lo, hi):
        if draw(st.booleans()):
            v = draw(st.integers(lo, hi))
            return v if draw(st.booleans()) else (v,) * nd
        return tuple(draw(st.integers(lo, hi)) for _ in range(nd))

    stride = 1 if form == "same" else per_axis(1, 3)
    dilation = per_axis(1, 2)
    d = (dilation,) * nd if isinstance(dilation, int) else dilation
    if form == "int":
        padding = draw(st.integers(0, 2))
        pairs = ((padding, padding),) * nd
    elif form == "tuple":
        padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
        pairs = tuple((p, p) for p in padding)
    elif form == "pairs":
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
        pairs = padding
    elif form == "valid":
        padding, pairs = "valid", ((0, 0),) * nd
    else:
        totals = [di * (ki - 1) for di, ki in zip(d, k)]
        padding, pairs = "same", tuple((t // 2, t - t // 2) for t in totals)
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    spatial = []
    for ki, di, (lo, hi) in zip(k, d, pairs):
        least = max(1, di * (ki - 1) + 1 - lo - hi)  # output size >= 1
        if mode == "reflect":
            least = max(least, max(lo, hi) + 1)
        elif mode == "circular":
            least = max(least, lo, hi)
        spatial.append(draw(st.integers(least, max(least, MAX_SIZE[nd]))))
    spatial = tuple(spatial)
    if bare:
        x_shape, weight_shape = spatial, k
    else:
        x_shape, weight_shape = (cin_g * groups,) + spatial, (cout_g * groups, cin_g) + k
    return Config(nd, x_shape, weight_shape, stride, padding, dilation, groups, mode, pairs,
                  np.dtype(dtype), draw(st.integers(0, 2**32 - 1)))


# -- PyTorch -------------------------------------------------------------------------------
def needs_torch():
    """PyTorch, or skip the test that asks (torch is not a dependency of linop)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


def torch_pad(xt, config: Config):
    """``xt`` (1, C, *spatial) padded by the mode; F.pad's widths go last axis first."""
    F = needs_torch().nn.functional
    widths = [v for lo, hi in reversed(config.pairs) for v in (lo, hi)]
    mode = "constant" if config.padding_mode == "zeros" else config.padding_mode
    return F.pad(xt, widths, mode=mode)


def torch_forward(config: Config, x, w, dtype=None):
    """conv(x, w) in double precision, with the weight's gradient available."""
    torch = needs_torch()
    conv = getattr(torch.nn.functional, f"conv{config.nd}d")
    nd, dt = config.nd, high(config.dtype) if dtype is None else dtype
    xt = torch.from_numpy(np.asarray(x, dtype=dt).reshape((1, -1) + x.shape[-nd:]))
    wt = torch.from_numpy(np.asarray(w, dtype=dt).reshape(
        (-1, xt.shape[1] // config.groups) + w.shape[-nd:])).requires_grad_(True)
    stride, dilation = config.per_axis(config.stride), config.per_axis(config.dilation)
    pairs = isinstance(config.padding, tuple) and isinstance(config.padding[0], tuple)
    if config.padding_mode == "zeros" and not pairs:
        # PyTorch's own padding (int, per axis, "valid", "same")
        padding = config.padding if isinstance(config.padding, str) else config.per_axis(
            config.padding)
        yt = conv(xt, wt, stride=stride, padding=padding, dilation=dilation,
                            groups=config.groups)
    else:
        yt = conv(torch_pad(xt, config), wt, stride=stride, dilation=dilation,
                            groups=config.groups)
    return xt, wt, yt


@pytest.mark.torch
@SETTINGS
@given(configs())
def test_forward_and_weight_gradient_match_pytorch(config):
    torch = needs_torch()
    A, x, rng = config.build()
    assert A.input_shape == config.weight_shape
    assert A.output_shape == config.output_shape
    assert A.dtype == config.dtype
    w = random_array(rng, config.weight_shape, config.dtype)
    _, wt, yt = torch_forward(config, x, w)
    y = A.apply(w)
    assert y.dtype == config.dtype
    _, _, bound = torch_forward(config, np.abs(x), np.abs(w), np.float64)
    assert_close(y, yt.detach().numpy().reshape(y.shape), bound.detach().numpy(),
                 config.dtype, "forward")

    g = random_array(rng, config.output_shape, config.dtype)
    yt.backward(torch.from_numpy(g.astype(high(config.dtype)).reshape(yt.shape)))
    grad = A.apply_adjoint(g)
    assert grad.dtype == config.dtype
    # the bound: the same gradient on absolute values
    _, wabs, yabs = torch_forward(config, np.abs(x), np.abs(w), np.float64)
    yabs.backward(torch.from_numpy(np.abs(g).astype(np.float64).reshape(yabs.shape)))
    assert_close(grad, wt.grad.numpy().reshape(grad.shape), wabs.grad.numpy(),
                 config.dtype, "adjoint vs autograd")
    # the transpose (no conjugation): A^T g = conj(A^H conj(g)), A^H from autograd again
    _, wt2, yt2 = torch_forward(config, x, w)
    yt2.backward(torch.from_numpy(np.conj(g).astype(high(config.dtype)).reshape(yt2.shape)))
    assert_close(A.T.apply(g), np.conj(wt2.grad.numpy()).reshape(grad.shape),
                 wabs.grad.numpy(), config.dtype, "transpose vs autograd")


@pytest.mark.torch
@settings(deadline=None, derandomize=True, max_examples=25)
@given(configs(dtypes=DTYPES[:2]))
def test_adjoint_is_torch_conv_weight(config):
    """rmatvec is ``torch.nn.grad.conv{n}d_weight`` (real dtypes)."""
    torch = needs_torch()
    A, x, rng = config.build()
    nd = config.nd
    g = random_array(rng, config.output_shape, config.dtype)
    xt = torch_pad(torch.from_numpy(x.astype(np.float64).reshape((1, -1) + x.shape[-nd:])),
                   config)
    full_shape = config.weight_shape if not config.bare else (1, 1) + config.weight_shape
    conv_weight = getattr(torch.nn.grad, f"conv{nd}d_weight")
    ref = conv_weight(
        xt, full_shape, torch.from_numpy(g.astype(np.float64).reshape((1, -1) + g.shape[-nd:])),
        stride=config.per_axis(config.stride), padding=0,
        dilation=config.per_axis(config.dilation), groups=config.groups)
    bound = conv_weight(
        xt.abs(), full_shape,
        torch.from_numpy(np.abs(g).astype(np.float64).reshape((1, -1) + g.shape[-nd:])),
        stride=config.per_axis(config.stride), padding=0,
        dilation=config.per_axis(config.dilation), groups=config.groups)
    got = A.H @ g.ravel()
    assert_close(got, ref.numpy().reshape(-1), bound.numpy().reshape(-1), config.dtype,
                 "rmatvec vs conv_weight")


# -- the other side: linop.Conv{n}d ------------------------------------------------------
@SETTINGS
@given(configs())
def test_equals_conv_of_x(config):
    """``ConvFilter(x, w.shape).apply(w) == Conv(w, x.shape).apply(x)`` for random w."""
    A, x, rng = config.build()
    w = random_array(rng, (3,) + config.weight_shape, config.dtype)  # three weights at once
    got = A.apply(w)
    assert got.shape == (3,) + config.output_shape
    for i in range(3):
        B = CONVS[config.nd](w[i], x.shape, **config.kwargs)
        ref = B.apply(x)
        bound = CONVS[config.nd](np.abs(w[i]), x.shape, **config.kwargs).apply(np.abs(x))
        assert_close(got[i], ref, bound, config.dtype, f"weight {i}")
        assert_close(A @ w[i].ravel(), ref.ravel(), bound.ravel(), config.dtype, "matvec")


# -- the explicit matrix -----------------------------------------------------------------
def naive_matrix(config: Config, x):
    """Loops over the definition: row (co, o), column (co, ci, k) <- padded x, or absent."""
    nd = config.nd
    x = x.reshape((-1,) + x.shape[-nd:])
    c_in = x.shape[0]
    full = config.weight_shape if not config.bare else (1, 1) + config.weight_shape
    c_out, cin_g, kernel = full[0], full[1], full[2:]
    stride, dilation = config.per_axis(config.stride), config.per_axis(config.dilation)
    out = config.output_shape[-nd:]
    n_taps, n_out = math.prod(kernel), math.prod(out)
    rows, cols, vals = [], [], []
    for co in range(c_out):
        g = co // (c_out // config.groups)
        for o_i, o in enumerate(itertools.product(*map(range, out))):
            for ci in range(cin_g):
                for k_i, k in enumerate(itertools.product(*map(range, kernel))):
                    idx = []
                    for a in range(nd):
                        i = o[a] * stride[a] + k[a] * dilation[a] - config.pairs[a][0]
                        n = x.shape[1 + a]
                        if config.padding_mode == "zeros":
                            if not 0 <= i < n:
                                break
                        elif config.padding_mode == "reflect":
                            i = -i if i < 0 else (2 * (n - 1) - i if i >= n else i)
                        elif config.padding_mode == "replicate":
                            i = min(max(i, 0), n - 1)
                        else:
                            i %= n
                        idx.append(i)
                    else:
                        rows.append(co * n_out + o_i)
                        cols.append(co * cin_g * n_taps + ci * n_taps + k_i)
                        vals.append(x[(g * cin_g + ci,) + tuple(idx)])
    assert c_in == config.groups * cin_g
    shape = (c_out * n_out, c_out * cin_g * n_taps)
    return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(
        vals, dtype=config.dtype), shape


@SETTINGS
@given(configs())
def test_tocsr_entries_and_format(config):
    A, x, _ = config.build()
    M = A.tocsr()
    assert isinstance(M, sp.csr_array)
    assert M.shape == A.shape and M.dtype == A.dtype
    assert M.indices.dtype == np.int32 and M.indptr.dtype == np.int32
    assert M.has_sorted_indices
    for r in range(M.shape[0]):
        assert np.all(np.diff(M.indices[M.indptr[r]:M.indptr[r + 1]]) > 0)
    rows, cols, vals, shape = naive_matrix(config, x)
    assert M.shape == shape
    assert M.nnz == len(vals)  # zero padding reads absent, nothing else
    coo = M.tocoo()
    order = np.lexsort((coo.col, coo.row))
    np.testing.assert_array_equal(coo.row[order], rows)
    np.testing.assert_array_equal(coo.col[order], cols)
    np.testing.assert_array_equal(coo.data[order], vals)  # copies of x: exact
    # column by column, the operator is its matrix (one unit weight at a time)
    dense = A.matmat(np.eye(A.shape[1], dtype=A.dtype))
    np.testing.assert_array_equal(dense, M.toarray())


def test_tocsr_keeps_zeros_of_x_and_refuses_when_too_large():
    x = np.array([[0.0, 1.0, 0.0, 2.0]])
    A = linop.ConvFilter1d(x, (2, 1, 2))
    M = A.tocsr()
    assert M.nnz == 2 * 3 * 2  # the pattern does not depend on the values
    with linop.memory_limit(100):
        with pytest.raises(linop.MatrixTooLargeError, match="as a function of its kernel"):
            A.tocsr()
        with pytest.raises(linop.MatrixTooLargeError):
            A.T.tocsr()
    np.testing.assert_array_equal(A.T.tocsr().toarray(), M.toarray().T)
    big = linop.ConvFilter2d(np.ones((16, 128, 128), np.float32), (16, 16, 3, 3), padding=1)
    with linop.memory_limit(2**26), pytest.raises(linop.MatrixTooLargeError):
        big.tocsr()  # about 300 MB: refused before anything is allocated


# -- operator checks ---------------------------------------------------------------------
@settings(deadline=None, derandomize=True, max_examples=30)
@given(configs())
def test_check_operator_and_dottest(config):
    A, _, _ = config.build()
    assert dottest(A, rng=config.seed % 1000).passed
    check_operator(A, rng=config.seed % 1000)


@pytest.mark.parametrize("dtype", DTYPES)
def test_complex_adjoint_transpose_conjugate(dtype):
    rng = np.random.default_rng(3)
    x = random_array(rng, (4, 6, 5), dtype)
    A = linop.ConvFilter2d(x, (4, 2, 2, 3), groups=2, padding=1, stride=(2, 1))
    M = A.tocsr().toarray()
    w = random_array(rng, A.shape[1], dtype)
    y = random_array(rng, A.shape[0], dtype)
    tol = 50 * np.finfo(dtype).eps * np.abs(M).sum()
    assert np.abs(A @ w - M @ w).max() <= tol
    assert np.abs(A.H @ y - M.conj().T @ y).max() <= tol
    assert np.abs(A.T @ y - M.T @ y).max() <= tol
    assert np.abs(A.conj() @ w - M.conj() @ w).max() <= tol
    assert np.abs(A.T.H @ w - M.conj() @ w).max() <= tol
    if dtype.kind == "c":
        assert np.abs(A.T @ y - A.H @ y).max() > tol  # not conjugated


# -- values: pickling, copies, read-only x ---------------------------------------------
def test_pickle_and_copy_are_values():
    rng = np.random.default_rng(1)
    x = random_array(rng, (2, 7, 7), np.complex64)
    A = linop.ConvFilter2d(x, (3, 2, 3, 3), padding=1, padding_mode="circular")
    w = random_array(rng, (4,) + A.input_shape, np.complex64)
    y = A.apply(w)  # builds the memo
    assert A._memo.peek("patches") is not None
    for B in (pickle.loads(pickle.dumps(A)), copy.deepcopy(A), copy.copy(A)):
        assert repr(B) == repr(A)
        np.testing.assert_array_equal(B.apply(w), y)
        np.testing.assert_array_equal(B.apply_adjoint(y), A.apply_adjoint(y))
        assert not B.x.flags.writeable
        assert B.geometry == A.geometry and B.weight_shape == A.weight_shape
    assert pickle.loads(pickle.dumps(A))._memo.peek("patches") is None
    assert copy.deepcopy(A)._memo.peek("xpad") is None
    # x is copied at construction, and read-only
    x[...] = 0
    np.testing.assert_array_equal(A.apply(w), y)
    assert not A.x.flags.writeable
    with pytest.raises(ValueError):
        A.x[0, 0, 0] = 1
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(A)).apply(w), y)
    # the memo does not travel with a pickle
    assert len(pickle.dumps(A)) < 2 * len(pickle.dumps(A.x)) + 2000


def test_attributes_and_repr():
    A = linop.ConvFilter2d(np.ones((4, 9, 8), np.float32), (6, 2, 3, 3), stride=2,
                           padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2,
                           padding_mode="replicate")
    assert A.dtype == np.float32 and A.x.dtype == np.float32
    assert A.weight_shape == A.input_shape == (6, 2, 3, 3)
    assert A.output_shape == (6, 4, 4)
    assert A.stride == (2, 2) and A.dilation == (1, 2) and A.groups == 2
    assert A.padding == ((1, 0), (2, 1)) and A.padding_mode == "replicate"
    assert A.geometry.input_size == (9, 8) and A.geometry.kernel_size == (3, 3)
    assert A.dims == A.input_shape and A.dimsd == A.output_shape
    assert repr(A) == ("<ConvFilter2d: (6, 2, 3, 3) -> (6, 4, 4), dtype=float32, "
                       "x.shape=(4, 9, 8)>")
    assert type(A).__module__ == "linop.conv_filter"
    bare = linop.ConvFilter1d(np.arange(5), (2,))
    assert bare.dtype == np.float64 and bare.output_shape == (4,) and bare.x.shape == (5,)


@pytest.mark.parametrize(("x_dtype", "dtype", "expected"), [
    (np.float32, None, np.float32),
    (np.int64, None, np.float64),
    (np.bool_, None, np.float64),
    (np.float16, None, np.float32),
    (np.complex64, None, np.complex64),
    (np.float32, np.float64, np.float64),
    (np.float64, np.float32, np.float64),  # never narrower than x
    (np.float32, np.complex64, np.complex64),
    (np.float64, np.complex64, np.complex128),
])
def test_dtype_policy(x_dtype, dtype, expected):
    A = linop.ConvFilter1d(np.ones(6, dtype=x_dtype), (3,), dtype=dtype)
    assert A.dtype == expected and A.x.dtype == expected
    assert A.tocsr().dtype == expected
    assert (A @ np.ones(3, np.float32)).dtype == expected


@pytest.mark.torch
def test_complex_weights_on_a_real_input():
    torch = needs_torch()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 8))
    A = linop.ConvFilter1d(x, (1, 2, 3), dtype=np.complex128)
    w = random_array(rng, A.input_shape, np.complex128)
    xt = torch.from_numpy(x.astype(np.complex128))[None]
    ref = torch.nn.functional.conv1d(xt, torch.from_numpy(w))[0]
    np.testing.assert_allclose(A.apply(w), ref.numpy(), rtol=1e-12, atol=1e-12)
    # a real operator promotes a complex weight too (the result type)
    B = linop.ConvFilter1d(x, (1, 2, 3))
    np.testing.assert_allclose(B.apply(w), ref.numpy(), rtol=1e-12, atol=1e-12)


# -- tiles ----------------------------------------------------------------------------------
@pytest.mark.parametrize("budget", [1, 100, 3000])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_tiles_agree_with_cached_patches(monkeypatch, budget, dtype):
    rng = np.random.default_rng(budget)
    x = random_array(rng, (4, 5, 6, 7), dtype)
    kwargs = dict(stride=(1, 2, 1), padding=((1, 2), (1, 1), (0, 2)), dilation=(2, 1, 1), groups=2,
                  padding_mode="reflect")
    A = linop.ConvFilter3d(x, (6, 2, 2, 3, 2), **kwargs)
    w = random_array(rng, (3,) + A.input_shape, dtype)
    y = random_array(rng, (3,) + A.output_shape, dtype)
    ref = (A.apply(w), A.apply_adjoint(y), A.T.apply(y), A.conj().apply(w), A @ w[0].ravel(),
           A.H @ y[0].ravel())
    assert A._memo.peek("patches") is not None  # small: the patches were kept

    monkeypatch.setattr(im2col, "PATCH_BUFFER_BYTES", budget)
    B = linop.ConvFilter3d(x, (6, 2, 2, 3, 2), **kwargs)
    seen = []
    original = conv_filter.tiles

    def counting_tiles(*args):
        for tile in original(*args):
            seen.append(tile)
            yield tile

    monkeypatch.setattr(conv_filter, "tiles", counting_tiles)
    got = (B.apply(w), B.apply_adjoint(y), B.T.apply(y), B.conj().apply(w), B @ w[0].ravel(),
           B.H @ y[0].ravel())
    assert B._memo.peek("patches") is None and len(seen) > 6
    tol = 100 * np.finfo(dtype).eps
    for name, a, b in zip(["forward", "adjoint", "transpose", "conjugate", "matvec", "rmatvec"],
                          got, ref):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max(), err_msg=name)
    check_operator(B, rng=0)


def test_non_contiguous_tiles(monkeypatch):
    """Tiles that are not a range of the flattened outputs (one column of a 2-D grid)."""
    rng = np.random.default_rng(7)
    x = random_array(rng, (2, 6, 5), np.float64)
    A = linop.ConvFilter2d(x, (3, 2, 3, 2), padding=1)
    w = random_array(rng, (2,) + A.input_shape, np.float64)
    y = random_array(rng, (2,) + A.output_shape, np.float64)
    ref = A.apply(w), A.apply_adjoint(y)

    def column_tiles(sizes, k, unit, budget):
        for j in range(sizes[1]):
            yield (slice(0, sizes[0]), slice(j, j + 1)), slice(0, k)

    monkeypatch.setattr(im2col, "PATCH_BUFFER_BYTES", 1)
    monkeypatch.setattr(conv_filter, "tiles", column_tiles)
    B = linop.ConvFilter2d(x, (3, 2, 3, 2), padding=1)
    np.testing.assert_allclose(B.apply(w), ref[0], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(B.apply_adjoint(y), ref[1], rtol=1e-13, atol=1e-13)


# -- non-finite input -------------------------------------------------------------------
@pytest.mark.torch
def test_non_finite_x_follows_pytorch_without_warnings():
    torch = needs_torch()
    x = np.array([[1.0, np.inf, 2.0, np.nan, -np.inf, 3.0]])
    A = linop.ConvFilter1d(x, (2, 1, 2), padding=1)
    w = np.array([[[0.0, 1.0]], [[2.0, 0.0]]])
    y = np.array([[np.inf, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 2.0]])
    xt = torch.from_numpy(x)[None]
    wt = torch.from_numpy(w).requires_grad_(True)
    yt = torch.nn.functional.conv1d(xt, wt, padding=1)
    yt.backward(torch.from_numpy(y)[None])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, grad = A.apply(w), A.apply_adjoint(y)
    np.testing.assert_array_equal(got, yt[0].detach().numpy())  # NaN where inf * 0
    np.testing.assert_array_equal(grad, wt.grad.numpy())
    assert np.isnan(got).any() and np.isnan(grad).any()


# -- validation -------------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "x", "weight_shape", "kwargs", "parameter"), [
    (linop.ConvFilter2d, "abc", (3, 3), {}, "x"),
    (linop.ConvFilter2d, np.ones((0, 4)), (3, 3), {}, "x"),
    (linop.ConvFilter2d, [[1, 2], [3]], (1, 1), {}, "x"),
    (linop.ConvFilter2d, np.ones(5), (3, 3), {}, "x"),
    (linop.ConvFilter2d, np.ones((1, 2, 5, 5)), (1, 1, 3, 3), {}, "x"),
    (linop.ConvFilter2d, np.ones((5, 5)), 3, {}, "weight_shape"),
    (linop.ConvFilter2d, np.ones((5, 5)), (3, 0), {}, "weight_shape"),
    (linop.ConvFilter2d, np.ones((5, 5)), (3, 3.0), {}, "weight_shape"),
    (linop.ConvFilter2d, np.ones((5, 5)), (1, 1, 3, 3), {}, "weight_shape"),
    (linop.ConvFilter2d, np.ones((2, 5, 5)), (3, 3), {}, "weight_shape"),
    (linop.ConvFilter2d, np.ones((4, 5, 5)), (2, 3, 3, 3), {}, "weight_shape"),
    (linop.ConvFilter2d, np.ones((4, 5, 5)), (3, 2, 3, 3), {"groups": 2}, "groups"),
    (linop.ConvFilter2d, np.ones((4, 5, 5)), (2, 2, 3, 3), {"groups": 0}, "groups"),
    (linop.ConvFilter2d, np.ones((4, 5, 5)), (2, 2, 3, 3), {"groups": 2.0}, "groups"),
    (linop.ConvFilter2d, np.ones((5, 5)), (6, 3), {}, "weight_shape"),
    (linop.ConvFilter2d, np.ones((5, 5)), (3, 3), {"stride": 0}, "stride"),
    (linop.ConvFilter2d, np.ones((5, 5)), (3, 3), {"stride": (1, 2, 3)}, "stride"),
    (linop.ConvFilter2d, np.ones((5, 5)), (3, 3), {"dilation": 0}, "dilation"),
    (linop.ConvFilter2d, np.ones((5, 5)), (3, 3), {"padding": -1}, "padding"),
    (linop.ConvFilter2d, np.ones((5, 5)), (3, 3), {"padding": "full"}, "padding"),
    (linop.ConvFilter2d, np.ones((5, 5)), (3, 3), {"padding": "same", "stride": 2}, "padding"),
    (linop.ConvFilter2d, np.ones((5, 5)), (3, 3), {"padding_mode": "mirror"}, "padding_mode"),
    (linop.ConvFilter2d, np.ones((5, 5)), (3, 3), {"padding": 5, "padding_mode": "reflect"},
     "padding_mode"),
    (linop.ConvFilter2d, np.ones((5, 5)), (3, 3), {"dtype": np.int32}, "dtype"),
    (linop.ConvFilter2d, np.ones((5, 5)), (3, 3), {"dtype": "float16"}, "dtype"),
    (linop.ConvFilter1d, np.ones(4), (3,), {"dilation": 2}, "weight_shape"),
    (linop.ConvFilter3d, np.ones((1, 3, 3, 3)), (1, 1, 3, 3), {}, "weight_shape"),
])
def test_validation_names_the_parameter(cls, x, weight_shape, kwargs, parameter):
    with pytest.raises(linop.ParameterError) as info:
        cls(x, weight_shape, **kwargs)
    assert info.value.parameter == parameter, (info.value.parameter, str(info.value))
    assert isinstance(info.value, (ValueError, TypeError))


@pytest.mark.torch
def test_a_tensor_x_is_detached():
    torch = needs_torch()
    xt = torch.randn(2, 6, requires_grad=True)
    A = linop.ConvFilter1d(xt, (1, 2, 3))
    assert A.dtype == np.float32
    np.testing.assert_array_equal(A.x, xt.detach().numpy())
