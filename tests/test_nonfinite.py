"""Non-finite values follow PyTorch's rule, in every method and in linop.dask.

The rule: the padded zeros and the interpolation weights are multiplied like
any other number, so ``inf * 0`` and ``nan * w`` are NaN wherever PyTorch
computes such a term, and nowhere else. No method warns about it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import linop

INF, NAN = np.inf, np.nan


def _torch():
    return pytest.importorskip("torch")


def assert_same_nan_inf(got, want):
    """Equal as IEEE values: NaN where NaN, the same infinities, close elsewhere."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-12)


METHODS = ["toeplitz", "im2col"]


@pytest.mark.parametrize("method", METHODS)
def test_infinite_weight_on_zero_padding_is_nan(method):
    # torch: conv1d(ones(3), [inf, 1, 1], padding=1) = [inf*0 + 1 + 1, ...] = [nan, inf, inf]
    y = linop.Conv1d([INF, 1.0, 1.0], (3,), padding=1, method=method).apply(np.ones(3))
    assert_same_nan_inf(y, [NAN, INF, INF])
    # a NaN weight reaches every output (each reads a padded zero or a pixel with it)
    y = linop.Conv1d([1.0, NAN, 1.0], (5,), padding=1, method=method).apply(np.arange(5.0))
    assert np.isnan(y).all()
    # reflect padding has no zeros: the infinite tap reads a real pixel
    y = linop.Conv1d([INF, 1.0, 1.0], (3,), padding=1, padding_mode="reflect",
                     method=method).apply(np.array([1.0, 0.0, 1.0]))
    assert_same_nan_inf(y, [NAN, INF, NAN])  # inf*0 at o=0 (x[1]) and o=2 (x[1])


@pytest.mark.parametrize("method", METHODS)
def test_zero_weight_times_infinite_input_is_nan_also_on_repeated_taps(method):
    # replicate padding: output 0 reads x[0] twice (taps 0 and 1); weight 0 on tap 1
    w = np.array([1.0, 0.0, 1.0])
    x = np.array([INF, 1.0, 2.0])
    y = linop.Conv1d(w, (3,), padding=1, padding_mode="replicate", method=method).apply(x)
    # o=0: 1*inf + 0*inf + 1*1 = nan; o=1: 1*inf + 0*1 + 1*2 = inf; o=2: 1 + 0 + 2 = 3
    assert_same_nan_inf(y, [NAN, INF, 3.0])


@pytest.mark.torch
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_methods_match_torch_on_non_finite_data(method, mode):
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    for trial in range(12):
        w = rng.standard_normal((3, 2, 3, 2))
        x = rng.standard_normal((2, 6, 5))
        w.flat[rng.integers(w.size)] = (INF, -INF, NAN)[trial % 3]
        x.flat[rng.integers(x.size, size=2)] = (INF, NAN, -INF)[trial % 3]
        if trial % 4 == 0:
            w.flat[rng.integers(w.size)] = 0.0
        op = linop.Conv2d(w, (2, 6, 5), padding=(1, 2), padding_mode=mode, stride=(1, 2),
                          method=method)
        xt = torch.from_numpy(x)[None]
        if mode != "zeros":
            xt = F.pad(xt, (2, 2, 1, 1), mode={"reflect": "reflect", "replicate": "replicate",
                                              "circular": "circular"}[mode])
            want = F.conv2d(xt, torch.from_numpy(w), stride=(1, 2))[0].numpy()
        else:
            want = F.conv2d(xt, torch.from_numpy(w), stride=(1, 2), padding=(1, 2))[0].numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = op.apply(x)
        assert_same_nan_inf(got, want)


@pytest.mark.torch
@pytest.mark.parametrize("method", METHODS)
def test_transposed_convolution_matches_torch_on_non_finite_data(method):
    torch = _torch()
    rng = np.random.default_rng(4)
    for trial in range(9):
        w = rng.standard_normal((2, 3, 3, 3))
        y = rng.standard_normal((2, 4, 5))
        w.flat[rng.integers(w.size)] = (INF, NAN, 0.0)[trial % 3]
        y.flat[rng.integers(y.size)] = (NAN, -INF, INF)[trial % 3]
        op = linop.ConvTranspose2d(w, (2, 4, 5), stride=2, padding=1, output_padding=1,
                                   method=method)
        want = torch.nn.functional.conv_transpose2d(
            torch.from_numpy(y)[None], torch.from_numpy(w), stride=2, padding=1,
            output_padding=1)[0].numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = op.apply(y)
        assert_same_nan_inf(got, want)


def test_no_method_warns_on_nan_input():
    x = np.full((3, 16, 16), NAN)
    for method in METHODS:
        op = linop.Conv2d(np.ones((4, 3, 3, 3)), (3, 16, 16), padding=1, method=method)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert np.isnan(op.apply(x)).all()
            assert np.isnan(op.apply_adjoint(op.apply(x))).all()


@pytest.mark.torch
@pytest.mark.parametrize("mode, kwargs", [
    ("nearest", {}), ("nearest-exact", {}), ("area", {}),
    ("linear", {"align_corners": False}), ("linear", {"align_corners": True}),
])
@pytest.mark.parametrize("size", [4, 7, 9, 2])
def test_upsample_matches_torch_on_non_finite_data_1d(mode, kwargs, size):
    torch = _torch()
    for position, value in [(1, INF), (0, NAN), (3, -INF), (2, INF)]:
        x = np.array([[1.0, 2.0, 3.0, 4.0]])
        x[0, position] = value
        want = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=size, mode=mode,
                                               **kwargs)[0].numpy()
        op = linop.Upsample((1, 4), size=size, mode=mode, **kwargs)
        assert_same_nan_inf(op.apply(x), want)


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest"])
def test_upsample_matches_torch_on_non_finite_data_2d(mode):
    torch = _torch()
    rng = np.random.default_rng(9)
    for size in [(4, 4), (7, 5), (3, 8), (2, 2)]:
        x = rng.standard_normal((2, 3, 4))
        x[0, 1, 2], x[1, 0, 0] = INF, NAN
        kwargs = {} if mode == "nearest" else {"align_corners": False}
        want = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=size, mode=mode,
                                               **kwargs)[0].numpy()
        got = linop.Upsample((2, 3, 4), size=size, mode=mode, **kwargs).apply(x)
        assert_same_nan_inf(got, want)


def test_upsample_same_size_linear_is_torchs_copy_with_a_zero_weight():
    # torch computes x[o]*1 + x[o]*0 when the size does not change: inf -> nan
    x = np.array([[1.0, INF, 3.0, 4.0]])
    assert_same_nan_inf(linop.Upsample((1, 4), size=4, mode="linear").apply(x), [[1, NAN, 3, 4]])
    # while the matrix (the canonical form) is the identity
    np.testing.assert_array_equal(
        linop.Upsample((1, 4), size=4, mode="linear").tocsr().toarray(), np.eye(4))


def test_dask_follows_the_same_rule():
    pytest.importorskip("dask")
    import dask.array as da

    import linop.dask

    for method in METHODS:
        op = linop.Conv2d(np.array([[INF, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]),
                          (12, 10), padding=1, method=method)
        x = np.ones((12, 10))
        x[5, 5] = INF
        expected = op.apply(x)
        got = linop.dask.apply(op, da.from_array(x, chunks=(4, 5))).compute(scheduler="sync")
        assert_same_nan_inf(got, expected)
        assert np.isnan(expected[0]).all()  # the first row meets the padding with inf
    up = linop.Upsample((1, 6, 6), scale_factor=2, mode="bilinear")
    x = np.ones((1, 6, 6))
    x[0, 2, 1] = INF  # output column 0 reads columns 0 and 1 with weights 1 and 0
    got = linop.dask.apply(up, da.from_array(x, chunks=(1, 3, 2))).compute(scheduler="sync")
    assert_same_nan_inf(got, up.apply(x))
    assert np.isnan(got[0, 4:6, 0]).all() and np.isinf(got[0, 4:6, 2]).all()
