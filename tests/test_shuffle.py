"""Tests of linop.PixelShuffle and linop.PixelUnshuffle: PyTorch live, permutations, inverses.

1. forward against ``torch.nn.functional.pixel_shuffle``/``pixel_unshuffle`` and the
   adjoint against torch's autograd, over ``pixel_shuffle_configs``;
2. the matrix: column by column against the index formula, a permutation matrix;
3. each is the other's transpose, adjoint and inverse; dtypes, dot tests,
   ``check_operator``, pickles; validation errors and the memory limit.
"""

from __future__ import annotations

import copy
import itertools
import math
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings

import linop
from conftest import random_array
from linop.testing import check_operator, dottest
from linop.testing.strategies import PixelShuffleConfig, pixel_shuffle_configs

try:
    import torch
except ImportError:  # the tests marked torch are skipped (conftest.py)
    torch = None
F = None if torch is None else torch.nn.functional

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SETTINGS = settings(deadline=None, derandomize=True, max_examples=100, database=None)
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def reference_matrix(config: PixelShuffleConfig) -> np.ndarray:
    """The permutation matrix from y[c, h r + i, w r + j] = x[c r^2 + i r + j, h, w]."""
    shuffle = PixelShuffleConfig(config.input_shape, config.factor, False, config.dtype)
    if config.unshuffle:  # the transpose of the shuffle from the output shape
        shuffle = PixelShuffleConfig(config.expected_output_shape, config.factor, False,
                                     config.dtype)
    r = config.factor
    shape_in, shape_out = shuffle.input_shape, shuffle.expected_output_shape
    p = np.zeros((math.prod(shape_out), math.prod(shape_in)))
    *batch, c, h, w = shape_out
    for b in itertools.product(*map(range, batch)):
        for ci, hi, wi in itertools.product(range(c), range(h), range(w)):
            src = b + (ci * r * r + (hi % r) * r + wi % r, hi // r, wi // r)
            p[np.ravel_multi_index(b + (ci, hi, wi), shape_out),
              np.ravel_multi_index(src, shape_in)] = 1
    return p.T if config.unshuffle else p


def _torch(config: PixelShuffleConfig, x, grad):
    t = torch.from_numpy(x).requires_grad_()
    fn = F.pixel_unshuffle if config.unshuffle else F.pixel_shuffle
    y = fn(t, config.factor)
    y.backward(torch.from_numpy(grad))
    return y.detach().numpy(), t.grad.numpy()


# -- 1. PyTorch live ----------------------------------------------------------------------
@pytest.mark.torch
@SETTINGS
@given(pixel_shuffle_configs(dtypes=[np.float64], max_batch=2))
def test_forward_and_adjoint_match_torch(config):
    op = config.build()
    assert type(op).__name__ == config.class_name
    assert op.output_shape == config.expected_output_shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal(config.input_shape)
    g = rng.standard_normal(op.output_shape)
    want, grad = _torch(config, x, g)
    np.testing.assert_array_equal(op.apply(x), want)  # a permutation: exact
    np.testing.assert_array_equal(op.apply_adjoint(g), grad)
    np.testing.assert_array_equal(op @ x.ravel(), want.ravel())


# -- 2. the matrix ---------------------------------------------------------------------------
@SETTINGS
@given(pixel_shuffle_configs(dtypes=[np.float64], max_factor=3, max_size=2))
def test_matrix_is_the_permutation_of_the_index_formula(config):
    op = config.build()
    ref = reference_matrix(config)
    n = op.shape[1]
    a = np.stack([op.matvec(e) for e in np.eye(n)], axis=1)
    b = np.stack([op.rmatvec(e) for e in np.eye(n)], axis=1)
    np.testing.assert_array_equal(a, ref)
    np.testing.assert_array_equal(b, ref.T)
    csr = op.tocsr()
    assert isinstance(csr, sp.csr_array) and csr.has_canonical_format and csr.nnz == n
    assert csr.indices.dtype == np.int32 and csr.indptr.dtype == np.int32
    np.testing.assert_array_equal(csr.toarray(), ref)
    np.testing.assert_array_equal(np.sort(op.permutation()), np.arange(n))
    np.testing.assert_array_equal(ref @ np.arange(n), op.permutation())


# -- 3. transposes, inverses, dtypes, copies -------------------------------------------------------
@SETTINGS
@given(pixel_shuffle_configs())
def test_dottest_and_check_operator(config):
    op = config.build()
    assert op.dtype == config.dtype
    assert dottest(op, rng=0).passed
    report = check_operator(op, rng=0)
    assert report.passed and report.skipped == []


@pytest.mark.parametrize("dtype", DTYPES)
def test_each_is_the_others_transpose_adjoint_and_inverse(dtype, rng):
    op = linop.PixelShuffle((2, 18, 2, 3), 3, dtype=dtype)
    for other in (op.T, op.H):
        assert isinstance(other, linop.PixelUnshuffle)
        assert other.input_shape == op.output_shape and other.output_shape == op.input_shape
        assert other.factor == 3 and other.dtype == dtype
    assert isinstance(op.T.T, linop.PixelShuffle) and isinstance(op.H.H, linop.PixelShuffle)
    x = random_array(rng, op.input_shape, dtype)
    y = op.apply(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(op.T.apply(y), x)
    np.testing.assert_array_equal(op.apply_adjoint(y), x)
    np.testing.assert_array_equal(op.H.apply(y), x)
    u = linop.PixelUnshuffle(op.output_shape, 3, dtype=dtype)
    np.testing.assert_array_equal(u.apply(y), x)
    np.testing.assert_array_equal(op.apply(u.apply(y)), y)
    assert (op.tocsr().T != u.tocsr()).nnz == 0
    assert op.tocsr().dtype == dtype and (op @ x.ravel()).dtype == dtype
    assert isinstance(u.T, linop.PixelShuffle) and isinstance(u.H, linop.PixelShuffle)


def test_factor_one_is_the_identity(rng):
    x = rng.standard_normal((3, 4, 5))
    for op in (linop.PixelShuffle((3, 4, 5), 1), linop.PixelUnshuffle((3, 4, 5), 1)):
        y = op.apply(x)
        np.testing.assert_array_equal(y, x)
        assert not np.shares_memory(y, x)
        np.testing.assert_array_equal(op.tocsr().toarray(), np.eye(60))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pickle_and_deepcopy_give_identical_results(dtype, rng):
    op = linop.PixelUnshuffle((2, 6, 4), 2, dtype=dtype)
    x = random_array(rng, op.input_shape, dtype)
    for other in (pickle.loads(pickle.dumps(op)), copy.deepcopy(op),
                  pickle.loads(pickle.dumps(op.T)).T):
        np.testing.assert_array_equal(other.apply(x), op.apply(x))
        assert repr(other) == repr(op)


def test_attributes_and_repr():
    op = linop.PixelShuffle((8, 2, 3), 2, dtype=np.float32)
    assert op.upscale_factor == op.factor == 2
    assert (op.input_shape, op.output_shape) == ((8, 2, 3), (2, 4, 6))
    assert op.dims == (8, 2, 3) and op.dimsd == (2, 4, 6)
    assert repr(op) == "<PixelShuffle (8, 2, 3) -> (2, 4, 6), upscale_factor=2, dtype=float32>"
    u = linop.PixelUnshuffle((5, 2, 4, 6), 2)
    assert u.downscale_factor == 2 and u.output_shape == (5, 8, 2, 3)
    assert repr(u) == ("<PixelUnshuffle (5, 2, 4, 6) -> (5, 8, 2, 3), downscale_factor=2, "
                       "dtype=float64>")


# -- validation and memory ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "cls, args, kwargs, exc, parameter",
    [
        (linop.PixelShuffle, ((4, 2), 2), {}, ValueError, "input_shape"),
        (linop.PixelShuffle, ((4, 0, 2), 2), {}, ValueError, "input_shape"),
        (linop.PixelShuffle, ((6, 2, 2), 2), {}, ValueError, "upscale_factor"),
        (linop.PixelShuffle, ((4, 2, 2), 0), {}, ValueError, "upscale_factor"),
        (linop.PixelShuffle, ((4, 2, 2), 2.0), {}, TypeError, "upscale_factor"),
        (linop.PixelUnshuffle, ((1, 4, 5), 2), {}, ValueError, "downscale_factor"),
        (linop.PixelUnshuffle, ((1, 3, 4), 2), {}, ValueError, "downscale_factor"),
        (linop.PixelUnshuffle, ((1, 4, 4), -1), {}, ValueError, "downscale_factor"),
        (linop.PixelUnshuffle, ((1, 4, 4), 2), dict(dtype="float16"), TypeError, "dtype"),
    ],
)
def test_validation_errors_name_the_parameter(cls, args, kwargs, exc, parameter):
    with pytest.raises(exc) as info:
        cls(*args, **kwargs)
    assert isinstance(info.value, linop.ParameterError)
    assert info.value.parameter == parameter and parameter in str(info.value)


@pytest.mark.torch
def test_torch_refuses_the_same():
    with pytest.raises(RuntimeError, match="divisible"):
        F.pixel_shuffle(torch.ones(6, 2, 2), 2)
    with pytest.raises(RuntimeError, match="divisible"):
        F.pixel_unshuffle(torch.ones(1, 4, 5), 2)


def test_tocsr_beyond_the_memory_limit_is_refused_before_allocating():
    op = linop.PixelShuffle((256, 2048, 2048), 4)  # 1.1e9 entries
    with linop.memory_limit(2**20):
        for a in (op, op.T, op.H):
            with pytest.raises(linop.MatrixTooLargeError, match="Pixel"):
                a.tocsr()
        with pytest.raises(linop.MatrixTooLargeError):
            op.permutation()
