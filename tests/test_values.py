"""Operators are values: pickles and deep copies compute what the original computes.

Every public operator class (convolutions, transposed convolutions, Upsample),
in every method and mode, with its ``.T`` and ``.H``, is pickled or deep-copied
(also after the original is deleted and garbage-collected, so that memory
addresses get reused) and must give the same numbers, bit for bit, as the
original did before it was copied. The originals' numbers are themselves
checked against a dense matrix built column by column.
"""

from __future__ import annotations

import copy
import gc
import pickle

import numpy as np
import pytest

import linop

RNG = np.random.default_rng(2026)


def _random(shape, dtype):
    a = RNG.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        a = a + 1j * RNG.standard_normal(shape)
    return a.astype(dtype)


def _conv_cases():
    cases = []
    for nd in (1, 2, 3):
        spatial = (7, 6, 5)[:nd]
        kernel = (3, 2, 3)[:nd]
        for method in ("toeplitz", "im2col"):
            for mode in ("zeros", "reflect", "replicate", "circular"):
                dtype = np.complex64 if mode == "circular" else np.float64
                w = _random((4, 1) + kernel, dtype)
                cases.append((f"Conv{nd}d-{method}-{mode}", getattr(linop, f"Conv{nd}d"),
                              (w, (2,) + spatial),
                              dict(padding=1, padding_mode=mode, groups=2, method=method)))
            w = _random((2, 3) + kernel, np.complex128)
            cases.append((f"ConvTranspose{nd}d-{method}", getattr(linop, f"ConvTranspose{nd}d"),
                          (w, (2,) + spatial),
                          dict(stride=2, padding=1, output_padding=1, method=method)))
            cases.append((f"Conv{nd}d-bare-{method}", getattr(linop, f"Conv{nd}d"),
                          (_random(kernel, np.float32), spatial), dict(method=method)))
    return cases


def _upsample_cases():
    cases = []
    for mode, shape in [("nearest", (2, 5, 4)), ("nearest-exact", (1, 6)), ("linear", (2, 5)),
                        ("bilinear", (2, 5, 4)), ("bicubic", (1, 4, 6)),
                        ("trilinear", (1, 3, 4, 2)), ("area", (2, 9, 7))]:
        for dtype in (np.float32, np.complex128):
            kwargs = dict(scale_factor=1.5 if mode != "area" else 0.5, mode=mode, dtype=dtype)
            cases.append((f"Upsample-{mode}-{np.dtype(dtype)}", linop.Upsample, (shape,), kwargs))
    return cases


CASES = _conv_cases() + _upsample_cases()
IDS = [c[0] for c in CASES]


def _views(op):
    """The operator, its transpose and its adjoint (shaped operators all)."""
    return {"op": op, "T": op.T, "H": op.H}


def _numbers(op, seed=0):
    """Everything an operator computes, on fixed inputs: apply, adjoint, matvec, matmat."""
    rng = np.random.default_rng(seed)
    dtype = np.result_type(op.dtype, np.complex64) if np.iscomplexobj(
        np.empty(0, op.dtype)) else op.dtype
    x = rng.standard_normal((2,) + op.input_shape).astype(dtype)
    y = rng.standard_normal((2,) + op.output_shape).astype(dtype)
    return [op.apply(x), op.apply_adjoint(y), op.matvec(x[0].ravel()),
            op.rmatmat(y.reshape(2, -1).T)]


def _dense(op):
    return op.matmat(np.eye(op.shape[1], dtype=op.dtype))


@pytest.mark.parametrize("name, cls, args, kwargs", CASES, ids=IDS)
def test_pickle_and_deepcopy_give_the_same_numbers(name, cls, args, kwargs):
    op = cls(*args, **kwargs)
    for view_name, view in _views(op).items():
        # the original, independently: against its own dense matrix
        dense = _dense(view)
        x = _random(view.shape[1], view.dtype)
        np.testing.assert_allclose(view.matvec(x), dense @ x, rtol=1e-4, atol=1e-4)
        expected = _numbers(view)
        for how in (lambda o: pickle.loads(pickle.dumps(o)), copy.deepcopy, copy.copy):
            other = how(view)
            assert type(other) is type(view), (name, view_name)
            assert (other.input_shape, other.output_shape, other.dtype) == (
                view.input_shape, view.output_shape, view.dtype)
            for got, want in zip(_numbers(other), expected):
                np.testing.assert_array_equal(got, want, err_msg=f"{name}.{view_name}")


@pytest.mark.parametrize("name, cls, args, kwargs", CASES, ids=IDS)
def test_copies_outlive_the_original(name, cls, args, kwargs):
    """The original is used (its caches are filled), pickled, deleted, collected."""
    op = cls(*args, **kwargs)
    expected = {k: _numbers(v) for k, v in _views(op).items()}
    data = pickle.dumps(op)
    deep = copy.deepcopy(op)
    del op
    gc.collect()
    for other in (pickle.loads(data), deep):
        for view_name, view in _views(other).items():
            for got, want in zip(_numbers(view), expected[view_name]):
                np.testing.assert_array_equal(got, want, err_msg=f"{name}.{view_name}")


def test_transposes_of_copies_are_copies_of_transposes():
    op = linop.Upsample((1, 4, 4), scale_factor=2)
    x = np.arange(16.0).reshape(1, 4, 4)
    back = pickle.loads(pickle.dumps(op))
    # the reproduction: KeyError before the fix
    np.testing.assert_array_equal(back.apply(x), op.apply(x))
    np.testing.assert_array_equal(copy.deepcopy(op).apply(x), op.apply(x))
    y = np.arange(64.0).reshape(1, 8, 8)
    np.testing.assert_array_equal(op.T.apply(y), pickle.loads(pickle.dumps(op.T)).apply(y))
    # nearest up-sampling by 2: the adjoint sums each 2x2 block
    np.testing.assert_array_equal(op.T.apply(y)[0],
                                  y[0].reshape(4, 2, 4, 2).sum(axis=(1, 3)))
    assert op.T.T is op and op.H.H is op


def test_many_rounds_with_reused_addresses():
    """Pickle, delete the original, unpickle, apply: the numbers of a fresh operator.

    Before operators were values, a table keyed by ``id()`` could find a
    stale entry once an address was reused, and return a wrong result.
    """
    modes = ["nearest", "bilinear", "bicubic", "area", "nearest-exact"]
    for i in range(120):
        shape = (1, 3 + i % 5, 4 + i % 3)
        kwargs = dict(scale_factor=(0.5, 2.0)[i % 2] if modes[i % 5] != "bicubic" else 2.0,
                      mode=modes[i % 5])
        x = np.random.default_rng(i).standard_normal(shape)
        expected = linop.Upsample(shape, **kwargs).tocsr() @ x.ravel()
        data = pickle.dumps(linop.Upsample(shape, **kwargs))
        gc.collect()
        back = pickle.loads(data)
        np.testing.assert_allclose(back.apply(x).ravel(), expected, rtol=1e-13, atol=1e-13)


def test_a_used_operator_pickles_small():
    op = linop.Conv2d(np.ones((5, 5)), (256, 256), padding=2, padding_mode="reflect",
                      method="toeplitz")
    x = np.ones((256, 256))
    before = len(pickle.dumps(op))
    op.apply(x)
    op.apply_adjoint(x)
    assert len(pickle.dumps(op)) == before < 20_000
    up = linop.Upsample((3, 64, 64), scale_factor=2, mode="bicubic")
    size = len(pickle.dumps(up))
    up.apply_adjoint(up.apply(np.ones((3, 64, 64))))
    assert len(pickle.dumps(up)) == size


def test_weights_stay_read_only_in_copies():
    op = linop.Conv2d(np.ones((2, 3, 3, 3)), (3, 5, 5))
    for original, other in ((op, pickle.loads(pickle.dumps(op))), (op, copy.deepcopy(op)),
                            (op.T, pickle.loads(pickle.dumps(op.T)))):
        assert not other.weight.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            other.weight[0, 0, 0, 0] = 5.0
        x = np.arange(other.shape[1], dtype=float)
        np.testing.assert_array_equal(other @ x, original @ x)
