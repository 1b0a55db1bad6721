"""The torch engine and tensor inputs, against independent references.

Every operator family runs on both engines and with ``torch.Tensor`` inputs;
each result is compared with the operator's explicit matrix (``tocsr()``,
multiplied densely in double precision by NumPy), with PyTorch's golden data
(``tests/data/torch_reference.npz``), with torch's own functional calls, or
with an adjoint identity. Autograd is checked by ``torch.autograd.gradcheck``
and against ``apply_adjoint``.
"""

from __future__ import annotations

import concurrent.futures
import copy
import multiprocessing
import pickle
import subprocess
import sys
import textwrap
import types
import warnings

import numpy as np
import pytest

import golden
import linop
from conftest import RTOL, high, random_array
from linop._conv import plan as plan_module

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch_one_thread")]

TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
         np.dtype(np.complex64): torch.complex64, np.dtype(np.complex128): torch.complex128}


# -- the operators -------------------------------------------------------------------------
def _weight(rng, shape, dtype):
    return random_array(rng, shape, dtype)


def _ops(rng, dtype, engine):
    """name -> operator, one of each family, small."""
    w = lambda *s: _weight(rng, s, dtype)  # noqa: E731
    ops = {
        "conv1d": linop.Conv1d(w(3, 2, 4), (2, 13), stride=2, padding=((1, 2),), dilation=2,
                               engine=engine),
        "conv2d-groups": linop.Conv2d(w(4, 1, 3, 2), (2, 7, 8), stride=(2, 1), groups=2,
                                      padding=1, engine=engine),
        "conv2d-reflect": linop.Conv2d(w(2, 3, 3, 3), (3, 6, 7), padding=((1, 2), (2, 1)),
                                       padding_mode="reflect", engine=engine),
        "conv2d-circular": linop.Conv2d(w(2, 2, 3, 3), (2, 5, 6), padding=2, stride=2,
                                        padding_mode="circular", engine=engine),
        "conv2d-bare-replicate": linop.Conv2d(w(3, 3), (6, 6), padding="same",
                                              padding_mode="replicate", engine=engine),
        "conv3d": linop.Conv3d(w(2, 2, 2, 3, 2), (2, 4, 5, 4), padding=(1, 0, 1), stride=2,
                               engine=engine),
        "convT1d": linop.ConvTranspose1d(w(2, 3, 3), (2, 6), stride=3, padding=1,
                                         output_padding=2, engine=engine),
        "convT2d": linop.ConvTranspose2d(w(4, 1, 3, 3), (4, 4, 5), stride=2, groups=2,
                                         padding=(1, 0), output_padding=(1, 0), dilation=(1, 2),
                                         engine=engine),
        "convT3d": linop.ConvTranspose3d(w(2, 1, 2, 2, 2), (2, 3, 3, 2), stride=2,
                                         engine=engine),
        "conv2d-toeplitz": linop.Conv2d(w(2, 2, 3, 3), (2, 6, 6), padding=1, method="toeplitz",
                                        engine=engine),
        "convfilter2d": linop.ConvFilter2d(random_array(rng, (4, 7, 6), dtype), (2, 2, 3, 2),
                                           groups=2, stride=2, padding=1,
                                           padding_mode="reflect", engine=engine),
        "convfilter1d": linop.ConvFilter1d(random_array(rng, (9,), dtype), (3,), padding=1,
                                           engine=engine),
    }
    conv = linop.Conv2d(w(2, 2, 3, 3), (2, 8, 8), padding=1, engine=engine)
    ops["product"] = conv @ linop.Upsample((2, 4, 4), scale_factor=2, dtype=dtype,
                                           engine=engine)
    ops["sum"] = conv.H @ conv - 0.5 * conv.T @ conv + (2 - 1j if dtype.kind == "c" else 2) * \
        linop.Conv2d(w(2, 2, 1, 1), (2, 8, 8), engine=engine)
    ops["view"] = ops["conv2d-reflect"].conj().T
    ops["pool"] = linop.AvgPool2d((2, 6, 6), 3, stride=2, padding=1, dtype=dtype,
                                  engine=engine)
    ops["pad"] = linop.Pad((2, 4, 5), (1, 2, 0, 1), mode="reflect", dtype=dtype, engine=engine)
    ops["shuffle"] = linop.PixelShuffle((8, 3, 2), 2, dtype=dtype, engine=engine)
    return ops


OP_NAMES = list(_ops(np.random.default_rng(0), np.dtype(np.float64), "numpy"))
DTYPES = [np.dtype(np.float32), np.dtype(np.complex128)]


def _dense(op):
    return op.tocsr().toarray().astype(high(op.dtype))


def _close(got, ref_matrix, x, dtype, what):
    """``got == M x`` within the dtype's tolerance against ``|M| |x|`` (per output)."""
    got = got.detach().cpu().numpy() if torch.is_tensor(got) else np.asarray(got)
    x = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    x = x.astype(high(dtype))
    ref = ref_matrix @ x
    bound = np.abs(ref_matrix) @ np.abs(x)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    err = np.abs(got - ref).max(initial=0)
    assert err <= 10 * RTOL[dtype] * max(bound.max(initial=0), 1e-30), (what, err)


def _products(op):
    """(name, call, matrix, kind) per entry point: kind says which operand shape it takes."""
    M = _dense(op)
    return [
        ("matvec", op.matvec, M, "vin"), ("rmatvec", op.rmatvec, M.conj().T, "vout"),
        ("matmat", op.matmat, M, "cin"), ("rmatmat", op.rmatmat, M.conj().T, "cout"),
        ("@", op.__matmul__, M, "vin"), ("dot", op.dot, M, "cin"),
        ("T.matvec", op.T.matvec, M.T, "vout"), ("H.matmat", op.H.matmat, M.conj().T, "cout"),
        ("conj.matvec", op.conj().matvec, M.conj(), "vin"),
    ]


def _operand(rng, op, kind, dtype, k=3):
    n = op.shape[1] if kind.endswith("in") else op.shape[0]
    return random_array(rng, (n,) if kind[0] == "v" else (n, k), dtype)


# -- both engines and tensors against the explicit matrix -------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", OP_NAMES)
def test_every_entry_point_on_both_engines_and_tensors(name, dtype, rng):
    seed = int(rng.integers(2**32))
    for engine in ("numpy", "torch"):
        op = _ops(np.random.default_rng(seed), dtype, engine)[name]
        for what, call, M, kind in _products(op):
            a = _operand(rng, op, kind, dtype)
            got = call(a)
            assert isinstance(got, np.ndarray) and got.dtype == dtype, (engine, what)
            _close(got, M, a, dtype, f"{name} {engine} {what}")
            t = torch.from_numpy(a)
            got = call(t)
            assert torch.is_tensor(got) and got.dtype == TORCH[dtype], (engine, what)
            assert got.shape == tuple(M.shape[:1] + a.shape[1:]), (what, got.shape)
            _close(got, M, a, dtype, f"{name} {engine} tensor {what}")


@pytest.mark.parametrize("name", OP_NAMES)
def test_shaped_apply_of_tensors_batches_and_views(name, rng):
    dtype = np.dtype(np.float64)
    op = _ops(rng, dtype, "torch")[name]
    M = _dense(op)
    x = random_array(rng, (2, 3) + op.input_shape, dtype)
    y = random_array(rng, (4,) + op.output_shape, dtype)
    got = op.apply(torch.from_numpy(x))
    assert got.shape == (2, 3) + op.output_shape
    _close(got.reshape(6, -1).T, M, x.reshape(6, -1).T, dtype, "apply")
    got = op.apply_adjoint(torch.from_numpy(y))
    _close(got.reshape(4, -1).T, M.conj().T, y.reshape(4, -1).T, dtype, "apply_adjoint")
    # a non-contiguous tensor (every other sample of a batch), and NumPy views
    big = torch.from_numpy(random_array(rng, (4,) + op.input_shape, dtype))
    view = big[::2]
    assert not view.is_contiguous()
    _close(op.apply(view).reshape(2, -1).T, M, view.reshape(2, -1).numpy().T, dtype, "view")
    flipped = x.reshape(6, -1)[::-1, ::-1]  # negative strides
    _close(op.matmat(flipped[:, ::-1].T), M, flipped[:, ::-1].T, dtype, "negative strides")
    ro = x.reshape(6, -1)[0].copy()
    ro.flags.writeable = False
    _close(op.matvec(ro), M, ro, dtype, "read-only")
    empty = op.apply(torch.zeros((0,) + op.input_shape, dtype=torch.float64))
    assert empty.shape == (0,) + op.output_shape


@pytest.mark.parametrize("name", OP_NAMES)
def test_read_only_memory_and_a_second_dtype_on_one_operator(name, rng):
    """Memory nobody may write is shared without a warning; each input dtype gets its own
    prebuilt kernels, and the first ones stay right after the second dtype has run."""
    op = _ops(rng, np.dtype(np.float32), "torch")[name]
    M = _dense(op)
    x = random_array(rng, (op.shape[1],), np.float32)
    y = random_array(rng, (op.shape[0],), np.float32)
    frozen_x = np.frombuffer(x.tobytes(), np.float32)
    frozen_y = np.frombuffer(y.tobytes(), np.float32)
    assert not frozen_x.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.from_numpy warns on read-only arrays
        _close(op.matvec(frozen_x), M, x, np.dtype(np.float32), "read-only matvec")
        _close(op.rmatvec(frozen_y), M.conj().T, y, np.dtype(np.float32), "read-only rmatvec")
    # promoted: float64 kernels of their own. The operator's coefficients are float32 (its
    # matrix folds padded taps into sums rounded to float32), so the product is float32-exact
    wide = op.matvec(x.astype(np.float64))
    assert wide.dtype == np.float64
    _close(wide, M, x, np.dtype(np.float32), "float64 input")
    narrow = op.matvec(x)
    assert narrow.dtype == np.float32
    _close(narrow, M, x, np.dtype(np.float32), "float32 after float64")
    assert np.array_equal(narrow, op.matvec(frozen_x))


# -- PyTorch's golden data on the torch engine -----------------------------------------------
_CONV_CASES = [c for c in golden.load_cases() if c["kind"] in ("conv", "conv_transpose")]


@pytest.mark.parametrize("case", [pytest.param(c, id=golden.case_id(c)) for c in _CONV_CASES])
def test_golden_data_on_the_torch_engine_and_with_tensors(case):
    name, args, kwargs = golden.linop_call(case)
    op = getattr(linop, name)(*args, engine="torch", **kwargs)
    assert op.engine == "torch"
    tol = golden.TOLERANCE[case["dtype"]]
    assert golden.rel_err(op.apply(case["x"]), case["y"]) <= tol
    assert golden.rel_err(op.apply_adjoint(case["gy"]), golden.expected_adjoint(case)) <= tol
    numpy_op = getattr(linop, name)(*args, engine="numpy", **kwargs)
    y = numpy_op.apply(torch.from_numpy(case["x"]))
    assert torch.is_tensor(y) and golden.rel_err(y.numpy(), case["y"]) <= tol


# -- against torch's functional calls and autograd --------------------------------------------
def test_tensor_results_equal_torch_functional_calls(rng):
    w = random_array(rng, (6, 2, 3, 3), np.float32)
    x = torch.from_numpy(random_array(rng, (5, 4, 9, 9), np.float32))
    for engine in ("numpy", "torch"):
        A = linop.Conv2d(w, (4, 9, 9), stride=2, padding=1, groups=2, engine=engine)
        ref = F.conv2d(x, torch.from_numpy(w), stride=2, padding=1, groups=2)
        torch.testing.assert_close(A.apply(x), ref, rtol=1e-5, atol=1e-5)
        T = linop.ConvTranspose2d(w, (6, 5, 5), stride=2, padding=1, output_padding=1,
                                  groups=2, engine=engine)
        y = torch.from_numpy(random_array(rng, (3, 6, 5, 5), np.float32))
        ref = F.conv_transpose2d(y, torch.from_numpy(w), stride=2, padding=1, output_padding=1,
                                 groups=2)
        torch.testing.assert_close(T.apply(y), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", OP_NAMES)
def test_gradcheck(name, rng):
    for dtype in (np.dtype(np.float64), np.dtype(np.complex128)):
        op = _ops(rng, dtype, "numpy")[name]
        x = torch.from_numpy(random_array(rng, (2,) + op.input_shape, dtype)).requires_grad_()
        y = torch.from_numpy(random_array(rng, op.shape[:1], dtype)).requires_grad_()
        assert torch.autograd.gradcheck(op.apply, (x,), fast_mode=True)
        assert torch.autograd.gradcheck(op.rmatvec, (y,), fast_mode=True)


def test_the_gradient_of_apply_is_apply_adjoint_and_flows_through_torch(rng):
    w = random_array(rng, (3, 2, 3, 3), np.float32)
    A = linop.Conv2d(w, (2, 8, 8), padding=1, padding_mode="circular")
    x = torch.from_numpy(random_array(rng, (4, 2, 8, 8), np.float32)).requires_grad_()
    g = torch.from_numpy(random_array(rng, (4, 3, 8, 8), np.float32))
    y = A.apply(torch.tanh(x) * 2)  # linop in the middle of a torch graph
    assert y.requires_grad and y.grad_fn is not None
    (y * g).sum().backward()
    # by hand: d/dx sum(g * A(2 tanh x)) = 2 (1 - tanh^2 x) * A^H g, A^H g by torch's autograd
    xx = (torch.tanh(x) * 2).detach().requires_grad_()
    ref = F.conv2d(F.pad(xx, (1, 1, 1, 1), mode="circular"), torch.from_numpy(w))
    (ref * g).sum().backward()
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    expected = xx.grad * 2 * (1 - torch.tanh(x.detach()) ** 2)
    torch.testing.assert_close(x.grad, expected, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        assert not A.apply(x).requires_grad
    assert not A.apply(x.detach()).requires_grad


def test_second_derivatives_flow(rng):
    A = linop.Conv1d(random_array(rng, (2, 1, 3), np.float64), (1, 7), padding=1)
    x = torch.from_numpy(random_array(rng, (1, 7), np.float64)).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda v: A.apply(v) ** 2, (x,))


def test_dot_test_on_the_torch_engine(rng):
    for dtype in (np.float32, np.complex64, np.float64):
        for op in _ops(rng, np.dtype(dtype), "torch").values():
            assert linop.dottest(op, rng=rng).passed


# -- dtypes, devices, errors ----------------------------------------------------------------
def test_dtype_promotion_of_tensors(rng):
    A = linop.Conv1d(random_array(rng, (3,), np.float32), (8,))
    M = _dense(A)
    x64 = torch.from_numpy(random_array(rng, (8,), np.float64))
    assert A.matvec(x64).dtype == torch.float64  # as NumPy promotes
    _close(A.matvec(x64), M, x64, np.dtype(np.float64), "float64 input")
    xc = torch.from_numpy(random_array(rng, (8,), np.complex64))
    assert A.matvec(xc).dtype == torch.complex64
    _close(A.matvec(xc), M, xc, np.dtype(np.complex64), "complex input")
    xi = torch.arange(8)
    assert A.matvec(xi).dtype == torch.float64
    _close(A.matvec(xi), M, xi, np.dtype(np.float32), "int input")
    # a real input into a complex operator: the gradient is real again
    B = linop.Conv1d(random_array(rng, (3,), np.complex128), (8,))
    xr = torch.from_numpy(random_array(rng, (8,), np.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: B.matvec(v).abs().sum(), (xr,))


def test_tensors_linop_cannot_serve_are_refused_clearly():
    A = linop.Conv1d(np.ones(3), (8,))
    with pytest.raises(TypeError, match="bfloat16"):
        A.matvec(torch.ones(8, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="meta"):
        A.matvec(torch.ones(8, device="meta"))
    with pytest.raises(ValueError, match=r"\(8,\) or \(8, 1\)"):
        A.matvec(torch.ones(9))
    with pytest.raises(ValueError, match=r"x must have shape \(\*batch, 8\)"):
        A.apply(torch.ones(2, 9))

    class NumpyOnly(linop.ShapedLinearOperator):  # no torch kernels: CPU tensors only
        def __init__(self):
            super().__init__((3,), (3,), np.float64)

        def _apply_cols(self, x):
            return 2 * x

        def _apply_adjoint_cols(self, y):
            return 2 * y

    op = NumpyOnly()
    assert torch.equal(op.matvec(torch.ones(3, dtype=torch.float64)),
                       torch.full((3,), 2.0, dtype=torch.float64))
    fake = types.SimpleNamespace(device=types.SimpleNamespace(type="cuda"))
    from linop._torch_engine.tensors import _numpy_kernel

    with pytest.raises(TypeError, match="no torch kernels"):
        _numpy_kernel(op, "A", types.SimpleNamespace(device=fake.device))


def test_engine_parameter_is_validated():
    with pytest.raises(linop.ParameterValueError, match="engine"):
        linop.Conv1d(np.ones(3), (8,), engine="jax")
    with pytest.raises(linop.ParameterValueError, match="engine"):
        linop.Upsample((1, 4), scale_factor=2, engine="cuda")


# -- auto ---------------------------------------------------------------------------------
def test_auto_takes_the_engine_with_the_least_expected_time():
    cases = [((32, 16, 3, 3), (16, 64, 64), np.float32), ((3, 3), (64, 64), np.float64),
             ((8, 8, 1, 1), (8, 32, 32), np.float64), ((16, 1, 3, 3), (16, 32, 32), np.float32)]
    for wshape, shape, dtype in cases:
        op = linop.Conv2d(np.ones(wshape, dtype), shape, padding=wshape[-1] // 2,
                          groups=16 if wshape[1] == 1 else 1)
        plan = op.plan
        assert plan.engine == op.engine and plan.engine_chosen_by == "auto"

        def best(engine, plan=plan):
            return min((e for e in plan.estimates if e.engine == engine and e.eligible),
                       key=lambda e: e.expected())

        gain = best("numpy").expected() - best("torch").expected()
        takes_torch = gain >= max(plan_module.TORCH_MIN_GAIN,
                                  plan_module.TORCH_MIN_RATIO * best("numpy").expected())
        expected = "torch" if takes_torch else "numpy"
        assert op.engine == expected, str(plan)
        assert (op.method, op.engine) == (best(expected).method, expected)
        forced = linop.Conv2d(np.ones(wshape, dtype), shape, engine="numpy",
                              groups=16 if wshape[1] == 1 else 1)
        assert forced.engine == "numpy" and forced.plan.engine_chosen_by == "user"


def test_auto_on_layers_takes_torch_where_their_cost_model_expects_the_gain(rng):
    from linop import _layer_costs

    f32 = np.float32
    makers = {
        "nearest": lambda e: linop.Upsample((16, 128, 128), scale_factor=2, dtype=f32, engine=e),
        "bilinear-1ch": lambda e: linop.Upsample((1, 512, 512), scale_factor=2,
                                                 mode="bilinear", dtype=f32, engine=e),
        "trilinear": lambda e: linop.Upsample((4, 32, 32, 32), scale_factor=2,
                                              mode="trilinear", dtype=f32, engine=e),
        "pool": lambda e: linop.AvgPool2d((16, 256, 256), 3, 2, 1, dtype=f32, engine=e),
        "tiny pad": lambda e: linop.Pad((2, 8, 8), (1,) * 4, engine=e),
        "unshuffle": lambda e: linop.PixelUnshuffle((16, 128, 128), 2, dtype=f32, engine=e),
    }
    engines = {}
    for name, make in makers.items():
        op, numpy_op = make("auto"), make("numpy")
        times = _layer_costs.expected_times(op)
        assert 0 < times["numpy"] < np.inf and 0 < times["torch"] < np.inf, (name, times)
        takes_torch = plan_module.torch_gains(plan_module.APPLICATIONS * times["numpy"],
                                              plan_module.APPLICATIONS * times["torch"])
        assert op.engine == ("torch" if takes_torch else "numpy"), (name, times)
        engines[name] = op.engine
        x = random_array(rng, op.input_shape, op.dtype)
        y = random_array(rng, op.output_shape, op.dtype)
        for got, ref in ((op.apply(x), numpy_op.apply(x)),
                         (op.apply_adjoint(y), numpy_op.apply_adjoint(y))):
            assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max(), name
    # nearest up-sampling of 16 planes: torch's kernels measured 2-4x faster than NumPy's;
    # a tiny Pad gains nothing worth the switch
    assert engines["nearest"] == "torch" and engines["tiny pad"] == "numpy", engines
    with pytest.raises(TypeError, match="cost model"):
        _layer_costs.layer_family(linop.Conv1d(np.ones(3), (8,)))


def test_importing_linop_never_imports_torch():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import linop, linop.dask, linop.testing
        ops = [linop.Conv2d(np.ones((4, 2, 3, 3), np.float32), (2, 16, 16), padding=1),
               linop.ConvTranspose1d(np.ones(3), (8,), stride=2),
               linop.ConvFilter2d(np.ones((2, 8, 8)), (3, 2, 3, 3)),
               linop.Upsample((1, 4, 4), scale_factor=2), linop.AvgPool1d((1, 8), 2),
               linop.Upsample((16, 128, 128), scale_factor=2, dtype=np.float32),
               linop.Pad((3, 3), (1, 1)), linop.PixelShuffle((4, 2, 2), 2)]
        for op in ops:
            assert op.engine == "numpy", op
            op.apply(np.ones(op.input_shape))
            op.H.apply(np.ones(op.output_shape))
            str(getattr(op, "plan", ""))
        (ops[0].H @ ops[0]).apply(np.ones((2, 16, 16), np.float32))
        assert "torch" not in sys.modules, "torch imported"
        linop.Conv1d(np.ones(3), (8,), engine="torch")
        assert "torch" in sys.modules
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# -- operators stay values; torch's settings stay the user's --------------------------------
def _torch_op(rng):
    return linop.Conv2d(random_array(rng, (4, 2, 3, 3), np.float64), (2, 10, 10), padding=1,
                        padding_mode="reflect", engine="torch")


def test_pickle_and_copies_of_torch_engine_operators(rng):
    op = _torch_op(rng)
    x = random_array(rng, op.input_shape, np.float64)
    y = op.apply(x)
    op.apply(torch.from_numpy(x))  # tensors cached on the CPU
    M = _dense(op)
    for other in (pickle.loads(pickle.dumps(op)), copy.deepcopy(op), copy.copy(op),
                  pickle.loads(pickle.dumps(op.H @ op))):
        assert other.engine == "torch"
        if other.shape == op.shape:
            np.testing.assert_array_equal(other.apply(x), y)
            _close(other.matvec(x.ravel()), M, x.ravel(), np.dtype(np.float64), "copy")


def test_threads_share_a_torch_engine_operator(rng):
    op = _torch_op(rng)
    xs = [random_array(rng, op.input_shape, np.float64) for _ in range(8)]
    expected = [op.apply(x) for x in xs]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda x: op.apply(torch.from_numpy(x)).numpy(), xs))
        got_np = list(pool.map(op.apply, xs))
    for a, b, c in zip(got, got_np, expected):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(b, c)


def _child_apply(op, x, queue):
    queue.put(op.apply(x))


@pytest.mark.skipif(sys.platform != "linux", reason="fork")
def test_fork_after_torch_was_used(rng):
    op = _torch_op(rng)
    x = random_array(rng, op.input_shape, np.float64)
    expected = op.apply(x)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_apply, args=(op, x, queue))
    child.start()
    got = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, expected)


def test_torch_settings_are_left_as_the_user_had_them(rng):
    from linop._torch_engine.runtime import precise

    op = _torch_op(rng)
    x = torch.from_numpy(random_array(rng, op.input_shape, np.float64))
    threads, grad = torch.get_num_threads(), torch.is_grad_enabled()
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True
    try:
        op.apply(x.numpy())
        op.apply(x.requires_grad_())
        cuda = types.SimpleNamespace(type="cuda")
        with precise(cuda):  # what a CUDA call runs under
            assert not torch.backends.cuda.matmul.allow_tf32
            assert not torch.backends.cudnn.allow_tf32
            with precise(cuda):  # a second call at the same time (another thread)
                pass
            assert not torch.backends.cudnn.allow_tf32  # still off for the first
        assert torch.backends.cudnn.allow_tf32
        assert torch.get_num_threads() == threads and torch.is_grad_enabled() == grad
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def test_dask_process_scheduler_with_the_torch_engine(rng):
    da = pytest.importorskip("dask.array")
    import dask

    import linop.dask

    op = _torch_op(rng)
    x = random_array(rng, (4,) + op.input_shape, np.float64)
    with dask.config.set(scheduler="processes", num_workers=2,
                         **{"multiprocessing.context": "fork"}):
        got = linop.dask.apply(op, da.from_array(x, chunks=(2,) + op.input_shape)).compute()
    np.testing.assert_allclose(got, linop.Conv2d(op.weight, op.input_shape, padding=1,
                                                 padding_mode="reflect",
                                                 engine="numpy").apply(x),
                               rtol=1e-12, atol=1e-12)
