"""Tests of linop.Pad: PyTorch live, a per-axis reference, adjoints, limits.

1. forward against ``torch.nn.functional.pad`` and the adjoint against torch's
   autograd, over the configurations of ``pad_configs`` (negative pads included)
   and over every pad of a small axis in every mode, where linop and torch must
   also accept and refuse the same pads;
2. the matrix: built column by column from ``matvec`` and ``rmatvec``, against a
   reference from the index formulas of the docstring, and ``tocsr()``;
3. dtypes, dot tests, ``check_operator``, pickles, the transpose of zero padding;
4. validation errors and the memory limit.
"""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import Phase, find, given, settings

import linop
from conftest import random_array
from linop.testing import check_operator, dottest
from linop.testing.strategies import PadConfig, pad_configs

try:
    import torch
except ImportError:  # the tests marked torch are skipped (conftest.py)
    torch = None
F = None if torch is None else torch.nn.functional

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SETTINGS = settings(deadline=None, derandomize=True, max_examples=100, database=None)
MORE = settings(SETTINGS, max_examples=200)
MODES = ("constant", "reflect", "replicate", "circular")
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def _torch_pad(x, pad, mode, grad=None):
    """F.pad of one array (its leading axes folded into one channel axis, as torch's
    non-constant modes want ``(N, C, *padded)``), and the gradient of ``<pad(x), grad>``."""
    d = len(pad) // 2
    t = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(grad is not None)
    lead = t.shape[: t.ndim - d]
    y = F.pad(t.reshape((1, math.prod(lead)) + t.shape[t.ndim - d:]), pad, mode=mode)
    y = y.reshape(lead + y.shape[2:])
    if grad is None:
        return y.detach().numpy(), None
    y.backward(torch.from_numpy(np.ascontiguousarray(grad)))
    return y.detach().numpy(), t.grad.numpy()


def source(n: int, lo: int, hi: int, mode: str) -> list[int]:
    """The input entry each output entry of one axis reads (-1: a zero), by the
    formulas of the docstring."""
    out = []
    for j in range(n + lo + hi):
        t = j - lo
        if mode == "constant":
            out.append(t if 0 <= t < n else -1)
        elif mode == "reflect":
            out.append(-t if t < 0 else (2 * (n - 1) - t if t >= n else t))
        elif mode == "replicate":
            out.append(min(max(t, 0), n - 1))
        else:
            a, m = max(-lo, 0), n - max(-lo, 0) - max(-hi, 0)
            out.append(a + (j - max(lo, 0)) % m)
    return out


def reference_matrix(config: PadConfig) -> np.ndarray:
    d = len(config.pad) // 2
    shape = config.input_shape
    m = np.ones((1, 1))
    for i, n in enumerate(shape[len(shape) - d:]):
        axis = len(shape) - d + i
        k = len(shape) - 1 - axis  # pad[2k], pad[2k + 1] belong to this axis
        src = source(n, config.pad[2 * k], config.pad[2 * k + 1], config.mode)
        p = np.zeros((len(src), n))
        for j, s in enumerate(src):
            if s >= 0:
                p[j, s] = 1
        m = np.kron(m, p)
    return np.kron(np.eye(math.prod(shape[: len(shape) - d])), m)


# -- 1. PyTorch live ----------------------------------------------------------------------
@pytest.mark.torch
@MORE
@given(pad_configs(dtypes=[np.float64]))
def test_forward_and_adjoint_match_torch(config):
    op = config.build()
    assert op.output_shape == config.expected_output_shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal(config.input_shape)
    g = rng.standard_normal(op.output_shape)
    want, grad = _torch_pad(x, config.pad, config.mode, grad=g)
    np.testing.assert_array_equal(op.apply(x), want)
    np.testing.assert_allclose(op.apply_adjoint(g), grad, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(op.apply(np.stack([x, 2 * x])), np.stack([want, 2 * want]))


@pytest.mark.torch
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_every_pad_of_one_axis_is_accepted_exactly_when_torch_gives_a_result(mode, n, rng):
    """All pads in [-n-2, n+2]^2: where linop refuses, torch raises or returns an empty
    or undefined (uninitialised) array; where linop accepts, both agree."""
    accepted = 0
    for lo in range(-n - 2, n + 3):
        for hi in range(-n - 2, n + 3):
            x = rng.standard_normal((2, n))
            try:
                op = linop.Pad((2, n), (lo, hi), mode)
            except linop.ParameterValueError as err:
                assert err.parameter == "pad"
                kept = n - max(-lo, 0) - max(-hi, 0)
                if mode == "circular" and n + lo + hi >= 1 and max(lo, hi) <= n:
                    assert max(lo, hi) > kept or kept < 1  # torch reads garbage here
                    continue
                try:
                    y = F.pad(torch.from_numpy(x)[None], (lo, hi), mode=mode)
                except (RuntimeError, ValueError):
                    continue
                assert y.numel() == 0, (lo, hi)  # only empty outputs left
                continue
            accepted += 1
            g = rng.standard_normal(op.output_shape)
            want, grad = _torch_pad(x, (lo, hi), mode, grad=g)
            np.testing.assert_array_equal(op.apply(x), want)
            np.testing.assert_allclose(op.apply_adjoint(g), grad, rtol=1e-14, atol=1e-14)
            assert np.array_equal(op.tocsr() @ x.ravel(), want.ravel())
    assert accepted > 0


@pytest.mark.torch
@pytest.mark.parametrize("mode, pad, want", [
    # reflect and replicate pad the whole axis, then crop
    ("reflect", (-3, 4), [3, 4, 3, 2, 1, 0]),
    ("replicate", (-5, 6), [4, 4, 4, 4, 4, 4]),
    ("replicate", (6, -3), [0, 0, 0, 0, 0, 0, 0, 1]),
    # circular crops, then wraps what is left
    ("circular", (2, -1), [2, 3, 0, 1, 2, 3]),
    ("circular", (-2, 3), [2, 3, 4, 2, 3, 4]),
    ("constant", (-5, 6), [-1] * 6),
    ("constant", (2, -4), [-1, -1, 0]),
])
def test_mixed_signs_follow_torch(mode, pad, want):
    x = np.arange(5.0)
    got = linop.Pad((5,), pad, mode).apply(x)
    np.testing.assert_array_equal(got, [x[i] if i >= 0 else 0.0 for i in want])
    t = F.pad(torch.arange(5.0)[None, None], pad, mode=mode)[0, 0].numpy()
    np.testing.assert_array_equal(got, t)


@pytest.mark.torch
def test_non_finite_values_are_copied_and_the_adjoint_adds_them(rng):
    x = np.array([[1.0, np.inf, 2.0, np.nan]])
    op = linop.Pad((1, 4), (2, 2), "reflect")
    np.testing.assert_array_equal(op.apply(x), _torch_pad(x, (2, 2), "reflect")[0])
    y = np.ones(op.output_shape)
    y[0, 0] = np.inf
    np.testing.assert_array_equal(op.apply_adjoint(y), [[1.0, 3.0, np.inf, 1.0]])


@pytest.mark.parametrize("predicate", [
    lambda c: c.mode == "circular" and min(c.pad) < 0 < max(c.pad),
    lambda c: c.mode == "reflect" and any(
        c.pad[2 * i + side] < 0 and c.pad[2 * i + 1 - side] > 0
        for i in range(len(c.pad) // 2) for side in (0, 1)),
    lambda c: c.mode == "replicate" and any(
        -v > c.input_shape[-1 - i // 2] for i, v in enumerate(c.pad)),
    lambda c: c.mode == "constant" and len(c.pad) == 2 * len(c.input_shape),
    lambda c: len(c.input_shape) == 4 and len(c.pad) == 6,
], ids=["circular-mixed", "reflect-mixed", "replicate-crop-beyond", "constant-all-axes",
        "3-padded-1-leading"])
def test_strategy_covers_the_corners(predicate):
    found = find(pad_configs(), predicate, settings=settings(
        max_examples=2000, database=None, derandomize=True, phases=[Phase.generate]))
    assert found.build().output_shape == found.expected_output_shape


# -- 2. the matrix, column by column --------------------------------------------------------
@SETTINGS
@given(pad_configs(dtypes=[np.float64], max_size=4, max_ndim=3))
def test_matrix_against_index_formulas(config):
    op = config.build()
    ref = reference_matrix(config)
    m, n = op.shape
    a = np.stack([op.matvec(e) for e in np.eye(n)], axis=1)
    b = np.stack([op.rmatvec(e) for e in np.eye(m)], axis=1)
    np.testing.assert_array_equal(a, ref)
    np.testing.assert_array_equal(b, ref.T)
    csr = op.tocsr()
    assert isinstance(csr, sp.csr_array) and csr.has_canonical_format
    assert csr.indices.dtype == np.int32 and csr.indptr.dtype == np.int32
    assert np.all(np.diff(csr.indptr) <= 1)  # at most one entry per row
    np.testing.assert_array_equal(csr.toarray(), ref)
    assert csr.nnz == np.count_nonzero(ref)
    kron = np.ones((1, 1))
    for mat in op.matrices:
        kron = np.kron(kron, mat.toarray())
    lead = math.prod(config.input_shape[: len(config.input_shape) - len(op.matrices)])
    np.testing.assert_array_equal(np.kron(np.eye(lead), kron), ref)


# -- 3. dtypes, adjoints, copies ---------------------------------------------------------------
@SETTINGS
@given(pad_configs())
def test_dottest_and_check_operator(config):
    op = config.build()
    assert op.dtype == config.dtype
    assert dottest(op, rng=0).passed
    report = check_operator(op, rng=0)
    assert report.passed and report.skipped == []


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_dtypes_are_kept_and_complex_pads_both_parts(dtype, mode, rng):
    op = linop.Pad((2, 4, 5), (1, 2, 3, -1), mode, dtype=dtype)
    x = random_array(rng, op.input_shape, dtype)
    y = op.apply(x)
    assert y.dtype == dtype and op.apply_adjoint(y).dtype == dtype
    assert (op @ x.ravel()).dtype == dtype and op.tocsr().dtype == dtype
    real = linop.Pad((2, 4, 5), (1, 2, 3, -1), mode)
    np.testing.assert_array_equal(y.real, real.apply(x.real))
    if np.iscomplexobj(x):
        np.testing.assert_array_equal(y.imag, real.apply(x.imag))
        np.testing.assert_array_equal(op.H.apply(y), op.T.apply(y))  # real coefficients


def test_transpose_of_zero_padding_is_a_crop():
    op = linop.Pad((3, 4, 5), (1, -2, 0, 3), dtype=np.complex64)
    t = op.T
    assert isinstance(t, linop.Pad) and t.pad == (-1, 2, 0, -3)
    assert (t.input_shape, t.output_shape) == (op.output_shape, op.input_shape)
    assert isinstance(op.H, linop.Pad) and op.H.dtype == np.complex64
    assert (op.tocsr().T != t.tocsr()).nnz == 0
    assert op.T.T.pad == op.pad
    # the other modes are not crops: their transposes are views that add the copies
    refl = linop.Pad((4,), (2, 1), "reflect")
    assert not isinstance(refl.T, linop.Pad)
    assert (refl.tocsr().T != refl.T.tocsr()).nnz == 0


@pytest.mark.parametrize("mode", MODES)
def test_pickle_and_deepcopy_give_identical_results(mode, rng):
    op = linop.Pad((2, 3, 4, 5), (2, -1, 1, 2, 0, 1), mode, dtype=np.float32)
    x = random_array(rng, op.input_shape, np.float32)
    y = op.apply(x)
    for other in (pickle.loads(pickle.dumps(op)), copy.deepcopy(op)):
        np.testing.assert_array_equal(other.apply(x), y)
        np.testing.assert_array_equal(other.apply_adjoint(y), op.apply_adjoint(y))
        assert repr(other) == repr(op)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(op.H)).apply(y),
                                  op.apply_adjoint(y))


def test_attributes_and_repr():
    op = linop.Pad((2, 4, 5), [1, 2, -1, 0], "replicate")
    assert op.pad == (1, 2, -1, 0) and op.mode == "replicate"
    assert op.padding == ((0, 0), (-1, 0), (1, 2))
    assert op.output_shape == (2, 3, 8) and op.dims == (2, 4, 5) and op.dimsd == (2, 3, 8)
    assert [m.shape for m in op.matrices] == [(3, 4), (8, 5)]
    assert repr(op) == ("<Pad (2, 4, 5) -> (2, 3, 8), pad=(1, 2, -1, 0), mode='replicate', "
                        "dtype=float64>")
    empty = linop.Pad((3, 2), ())  # no pads: the identity
    np.testing.assert_array_equal(empty.tocsr().toarray(), np.eye(6))


def test_results_never_share_memory_with_the_input(rng):
    x = rng.standard_normal((3, 4))
    for op in (linop.Pad((3, 4), (0, 0)), linop.Pad((3, 4), (0, 0), "reflect"),
               linop.Pad((3, 4), (-1, 0), "circular")):
        assert not np.shares_memory(op.apply(x), x)
        y = op.apply(x)
        assert not np.shares_memory(op.apply_adjoint(y), y)


# -- 4. validation and memory ---------------------------------------------------------------
@pytest.mark.parametrize(
    "args, kwargs, exc, parameter, match",
    [
        (((4, 5), (1, 1, 1)), {}, ValueError, "pad", "even number"),
        (((5,), (1, 1, 1, 1)), {}, ValueError, "pad", "pads 2 axes"),
        (((5,), (1.0, 1)), {}, TypeError, "pad", "tuple of ints"),
        (((5,), 1), {}, TypeError, "pad", "tuple of ints"),
        (((5,), (-3, -2)), {}, ValueError, "pad", "output size 0"),
        (((5,), (-6, 2)), {}, ValueError, "pad", "crops 6"),
        (((5,), (5, 0), "reflect"), {}, ValueError, "pad", "smaller than the size"),
        (((5,), (-6, 5), "reflect"), {}, ValueError, "pad", "smaller than the size"),
        (((5,), (6, 0), "circular"), {}, ValueError, "pad", "wraps around at most once"),
        (((5,), (-3, 3), "circular"), {}, ValueError, "pad", "wraps around at most once"),
        (((5,), (2**62 + 1, 0)), {}, ValueError, "pad", "2\\*\\*62"),
        (((5,), (1, 1), "zeros"), {}, ValueError, "mode", "mode"),
        (((5, 0), (1, 1)), {}, ValueError, "input_shape", "input_shape"),
        (((5,), (1, 1)), dict(dtype=np.int32), TypeError, "dtype", "dtype"),
    ],
)
def test_validation_errors_name_the_parameter(args, kwargs, exc, parameter, match):
    with pytest.raises(exc, match=match) as info:
        linop.Pad(*args, **kwargs)
    assert isinstance(info.value, linop.ParameterError)
    assert info.value.parameter == parameter


def test_output_larger_than_2_62_is_refused():
    with pytest.raises(linop.ParameterValueError, match="2\\*\\*62"):
        linop.Pad((2**31, 2**31), (0, 2**31))


def test_tocsr_beyond_the_memory_limit_is_refused_before_allocating():
    op = linop.Pad((64, 4096, 4096), (1, 1, 1, 1), "reflect")  # 1.1e9 stored entries
    with linop.memory_limit(2**20):
        with pytest.raises(linop.MatrixTooLargeError, match="Pad"):
            op.tocsr()
        with pytest.raises(linop.MatrixTooLargeError):
            op.H.tocsr()
