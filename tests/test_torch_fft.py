"""``method="fft"`` on the torch engine, against independent references.

Every result is compared with the operator's explicit matrix (``tocsr()``,
built by the sparse code and multiplied densely by NumPy), with the plain
loops of ``tests/reference.py``, with the NumPy engine's FFT method, with
torch's own direct convolution, or with an adjoint identity.
"""

from __future__ import annotations

import numpy as np
import pytest

import linop
import reference
from conftest import random_array

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch_one_thread")]

TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.complex64): 2e-5,
       np.dtype(np.float64): 1e-12, np.dtype(np.complex128): 1e-12}
CONV = {1: linop.Conv1d, 2: linop.Conv2d, 3: linop.Conv3d}
CONV_T = {1: linop.ConvTranspose1d, 2: linop.ConvTranspose2d, 3: linop.ConvTranspose3d}

# (transposed, spatial size, kernel, keywords, groups, C_in, C_out)
CASES = [
    (False, (11,), (3,), dict(padding=1), 1, 2, 3),
    (False, (13,), (4,), dict(padding=((2, 1),), stride=2, dilation=2), 1, 1, 2),
    (False, (9, 8), (3, 2), dict(padding=1, padding_mode="reflect", stride=(2, 1)), 2, 4, 2),
    (False, (7, 9), (3, 3), dict(padding=2, padding_mode="circular", dilation=(1, 2)), 1, 2, 2),
    (False, (8, 7), (3, 3), dict(padding="same", padding_mode="replicate"), 3, 3, 3),  # depthwise
    (False, (5, 6, 4), (3, 2, 3), dict(padding=(1, 0, 1), stride=(1, 2, 1)), 1, 2, 2),
    (False, (5, 4, 5), (2, 3, 3), dict(padding=1, padding_mode="reflect"), 1, 1, 2),
    (True, (7,), (3,), dict(stride=3, padding=1, output_padding=1), 1, 2, 3),
    (True, (5, 6), (3, 2), dict(stride=2, dilation=(1, 2), padding=(1, 0)), 2, 4, 2),
    (True, (3, 4, 3), (2, 3, 2), dict(stride=(2, 1, 2), padding=(0, 1, 0)), 1, 2, 2),
]
DTYPES = [np.float64, np.float32, np.complex128, np.complex64]


def _make(case, dtype, rng, method="fft", engine="torch"):
    transposed, size, kernel, kw, groups, c_in, c_out = case
    nd = len(size)
    shape = (c_in, c_out // groups) if transposed else (c_out, c_in // groups)
    w = random_array(rng, shape + kernel, dtype)
    cls = (CONV_T if transposed else CONV)[nd]
    return w, cls(w, (c_in,) + size, groups=groups, method=method, engine=engine, **kw)


def _close(actual, expected, dtype):
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOL[np.dtype(dtype)] * scale * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_against_the_explicit_matrix(case, dtype):
    rng = np.random.default_rng(len(str(case)))
    _, op = _make(case, dtype, rng)
    assert (op.method, op.engine) == ("fft", "torch")
    m = op.tocsr().toarray().astype(np.complex128)
    x = random_array(rng, (op.shape[1], 3), dtype)
    y = random_array(rng, (op.shape[0], 3), dtype)
    _close(op @ x, m @ x, dtype)
    _close(op.matvec(x[:, 0]), m @ x[:, 0], dtype)
    _close(op.H @ y, m.conj().T @ y, dtype)
    _close(op.T @ y, m.T @ y, dtype)
    _close(op.T.H @ x, m.conj() @ x, dtype)
    # tensors (batch-first, the operator's shapes) go through the same method
    t = torch.from_numpy(x.T.reshape((3,) + op.input_shape).copy())
    out = op.apply(t)
    assert out.dtype == t.dtype
    _close(out.reshape(3, -1).numpy().T, m @ x, dtype)
    u = torch.from_numpy(y.T.reshape((3,) + op.output_shape).copy())
    _close(op.apply_adjoint(u).reshape(3, -1).numpy().T, m.conj().T @ y, dtype)


@pytest.mark.parametrize("case", [CASES[3], CASES[5], CASES[8]])
def test_against_the_reference_loops_and_numpys_fft(case):
    rng = np.random.default_rng(5)
    w, op = _make(case, np.float64, rng)
    numpy_fft = _make(case, np.float64, np.random.default_rng(5), engine="numpy")[1]
    transposed, _, _, kw, groups, *_ = case
    x = rng.standard_normal((2,) + op.input_shape)
    if transposed:
        expected = reference.conv_transpose_nd(x, w, groups=groups, **kw)
    else:
        expected = reference.conv_nd(x, w, groups=groups, **kw)
    np.testing.assert_allclose(op.apply(x), expected, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(op.apply(x), numpy_fft.apply(x), rtol=1e-11, atol=1e-11)
    y = rng.standard_normal((2,) + op.output_shape)
    np.testing.assert_allclose(op.apply_adjoint(y), numpy_fft.apply_adjoint(y), rtol=1e-11,
                               atol=1e-11)


@pytest.mark.parametrize("dtype", [np.complex128, np.float32])
def test_dot_test(dtype):
    rng = np.random.default_rng(1)
    _, op = _make(CASES[2], dtype, rng)
    x = random_array(rng, op.shape[1], dtype)
    y = random_array(rng, op.shape[0], dtype)
    lhs = np.vdot(y.astype(np.complex128), op @ x)
    rhs = np.vdot(op.H @ y, x.astype(np.complex128))
    assert abs(lhs - rhs) <= 1e3 * TOL[np.dtype(dtype)] * abs(lhs)


@pytest.mark.parametrize("case", [CASES[1], CASES[4], CASES[9]])
def test_gradient_is_the_adjoint(case):
    rng = np.random.default_rng(2)
    _, op = _make(case, np.float64, rng)
    x = torch.from_numpy(rng.standard_normal((2,) + op.input_shape)).requires_grad_()
    v = torch.from_numpy(rng.standard_normal((2,) + op.output_shape))
    (op.apply(x) * v).sum().backward()
    m = op.tocsr().toarray()
    expected = (m.T @ v.reshape(2, -1).numpy().T).T.reshape(x.shape)
    _close(x.grad.numpy(), expected, np.float64)
    assert torch.autograd.gradcheck(lambda t: op.apply(t), (x.detach().requires_grad_(),))


def test_non_finite_input_is_applied_directly():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((2, 1, 5))
    op = linop.Conv1d(w, (1, 16), padding=2, method="fft", engine="torch")
    x = rng.standard_normal((1, 1, 16))
    x[0, 0, 7] = np.nan
    x[0, 0, 2] = np.inf
    expected = F.conv1d(torch.from_numpy(x), torch.from_numpy(w), padding=2).numpy()
    np.testing.assert_allclose(op.apply(x[0]), expected[0], rtol=1e-12, atol=1e-12)
    assert np.isnan(op.apply(x[0])).any() and np.isfinite(op.apply(x[0])[:, 12:]).all()
    y = rng.standard_normal((1, 2, 16))
    y[0, 1, 3] = np.nan
    expected = F.conv_transpose1d(torch.from_numpy(y), torch.from_numpy(w), padding=2).numpy()
    np.testing.assert_allclose(op.apply_adjoint(y[0]), expected[0], rtol=1e-12, atol=1e-12)


def test_non_finite_weight_is_refused():
    with pytest.raises(linop.ParameterValueError, match="finite weights"):
        linop.Conv1d(np.array([1.0, np.inf, 1.0]), (8,), method="fft", engine="torch")


def test_exact_zeros_where_the_matrix_has_empty_rows_and_columns():
    rng = np.random.default_rng(4)
    op = linop.Conv1d(rng.standard_normal(3), (12,), padding=4, method="fft", engine="torch")
    m = op.tocsr().toarray()
    out = op @ rng.standard_normal(12)
    dead = ~m.any(axis=1)
    assert dead.sum() == 4 and np.all(out[dead] == 0.0)
    op = linop.Conv2d(rng.standard_normal((1, 2)), (9, 9), stride=3, method="fft",
                      engine="torch")
    m = op.tocsr().toarray()
    y = rng.standard_normal(op.shape[0])
    back = op.H @ y
    unread = ~m.any(axis=0)
    assert unread.sum() > 0 and np.all(back[unread] == 0.0)
    _close(back, m.T @ y, np.float64)


def test_tiles_of_a_long_signal():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((2, 1, 31))
    op = linop.Conv1d(w, (1, 20000), padding=15, stride=2, method="fft", engine="torch")
    from linop._conv.fft import fft_tile_shape

    tile = fft_tile_shape(op.definition.geometry, 1, 2, 1, 8)[0]
    assert tile[0] < op.output_shape[1]  # several segments
    x = rng.standard_normal(op.input_shape)
    _close(op.apply(x), reference.conv_nd(x, w, stride=2, padding=15), np.float64)
    y = rng.standard_normal(op.output_shape)
    _close(op.apply_adjoint(y), reference.conv_transpose_nd(y, w, stride=2, padding=15,
                                                             output_padding=1), np.float64)


def test_tiles_of_the_first_axis_under_a_small_buffer(monkeypatch):
    from linop._conv import fft as numpy_fft

    monkeypatch.setattr(numpy_fft, "FFT_BUFFER_BYTES", 20_000)
    rng = np.random.default_rng(7)
    case = (False, (23, 10), (3, 4), dict(padding=(2, 1), stride=(2, 1), dilation=(2, 1)),
            1, 2, 3)
    _, op = _make(case, np.float64, rng)
    tile, _, rows = numpy_fft.fft_tile_shape(op.definition.geometry, 2, 3, 2, 8)
    assert tile[0] < op.output_shape[1] and rows < -(-op.output_shape[1] // tile[0])
    m = op.tocsr().toarray()
    x = rng.standard_normal((op.shape[1], 2))
    y = rng.standard_normal((op.shape[0], 2))
    _close(op @ x, m @ x, np.float64)
    _close(op.H @ y, m.T @ y, np.float64)


def test_workspace_beyond_the_memory_limit_is_refused():
    op = linop.Conv2d(np.ones((5, 5)), (64, 64), padding=2, method="fft", engine="torch")
    x = np.ones(op.shape[1])
    with linop.memory_limit(10_000):
        with pytest.raises(linop.MatrixTooLargeError, match="method='fft'"):
            op @ x
        with pytest.raises(linop.MatrixTooLargeError, match="method='fft'"):
            op.apply_adjoint(torch.ones(op.output_shape, dtype=torch.float64))
    np.testing.assert_allclose(op @ x, op.tocsr() @ x, rtol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("case", [CASES[2], CASES[5], CASES[8]])
def test_cuda_tensors_equal_the_matrix(case):
    rng = np.random.default_rng(8)
    for dtype in (np.float32, np.complex128):
        _, op = _make(case, dtype, rng)
        m = op.tocsr().toarray().astype(np.complex128)
        x = random_array(rng, (2,) + op.input_shape, dtype)
        out = op.apply(torch.from_numpy(x).cuda())
        assert out.device.type == "cuda"
        _close(out.cpu().numpy().reshape(2, -1), (m @ x.reshape(2, -1).T).T, dtype)
        y = random_array(rng, (2,) + op.output_shape, dtype)
        back = op.apply_adjoint(torch.from_numpy(y).cuda())
        _close(back.cpu().numpy().reshape(2, -1), (m.conj().T @ y.reshape(2, -1).T).T, dtype)


def test_the_plan_has_a_torch_fft_row_and_auto_takes_it_by_the_rule():
    rng = np.random.default_rng(9)
    w = rng.standard_normal((21, 21))
    op = linop.Conv2d(w, (200, 200), padding=10, engine="torch")
    row = op.plan["torch", "fft"]
    assert row.eligible and row.note.startswith("torch.fft")
    torch_rows = [e for e in op.plan.estimates if e.engine == "torch" and e.eligible]
    assert op.method == min(torch_rows, key=lambda e: e.expected()).method == "fft"
    x = rng.standard_normal(op.shape[1])
    _close(op @ x, op.tocsr() @ x, np.float64)
    bad = linop.Conv2d(np.full((3, 3), np.nan), (8, 8), engine="torch")
    assert not bad.plan["torch", "fft"].eligible and bad.method != "fft"


def test_promoted_tensors_real_weights_with_complex_input():
    rng = np.random.default_rng(10)
    op = linop.Conv2d(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), (3, 9, 10),
                      padding=1, stride=(1, 2), method="fft", engine="torch")
    m = op.tocsr().toarray().astype(np.complex128)
    x = random_array(rng, (2,) + op.input_shape, np.complex128)
    out = op.apply(torch.from_numpy(x))
    assert out.dtype == torch.complex128
    _close(out.numpy().reshape(2, -1), (m @ x.reshape(2, -1).T).T, np.complex128)
    y = random_array(rng, (2,) + op.output_shape, np.complex128)
    back = op.apply_adjoint(torch.from_numpy(y))
    _close(back.numpy().reshape(2, -1), (m.conj().T @ y.reshape(2, -1).T).T, np.complex128)
