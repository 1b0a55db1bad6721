"""Compare linop with PyTorch live, on freshly drawn configurations.

Skipped unless torch is importable (torch is not a dependency of linop).
The configurations are drawn with fixed seeds, different from the ones of the
stored golden data, by the generators of ``tests/data/make_reference.py``,
and compared exactly as in ``test_golden.py``.  Run e.g. with

    PYTHONPATH=/work/main /path/to/venv-with-torch/bin/python -m pytest tests/test_torch_live.py
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import linop

torch = pytest.importorskip("torch")

try:
    import golden
except ImportError:  # tests/ imported as a package
    from tests import golden

_spec = importlib.util.spec_from_file_location(
    "linop_make_reference",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "make_reference.py"))
mr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mr)

torch.set_num_threads(1)
pytestmark = [pytest.mark.torch,
              pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")]
BASE_SEED = 777_000
REAL = ["float32", "float64"]


def _finish(case, seed):
    case = dict(golden.tuplify(mr.as_json(case[0])), **case[1])
    case["id"] = f"live{seed}"
    case["name"] = (mr.interp_name(case) if case["kind"] == "interpolate"
                    else mr.conv_name(case))
    return case


def draw_conv(seed):
    rng = np.random.default_rng(BASE_SEED + seed)
    ndim = int(rng.integers(1, 4))
    dtype = str(rng.choice(REAL + ["complex128"] if seed % 10 == 9 else REAL))
    mode = str(rng.choice(mr.PADDING_MODES))
    form = str(rng.choice(mr.PADDING_FORMS))
    return _finish(mr.make_conv_case(rng, ndim, dtype, mode, form,
                                     bare=bool(rng.random() < 0.15)), seed)


def draw_conv_transpose(seed):
    rng = np.random.default_rng(BASE_SEED + 1000 + seed)
    ndim = int(rng.integers(1, 4))
    form = str(rng.choice(["int", "tuple", "pairs"]))
    return _finish(mr.make_conv_transpose_case(rng, ndim, str(rng.choice(REAL)), form,
                                               bare=bool(rng.random() < 0.15)), seed)


def draw_interpolate(seed):
    rng = np.random.default_rng(BASE_SEED + 2000 + seed)
    ndim = int(rng.integers(1, 4))
    mode = str(rng.choice(mr.INTERP_MODES[ndim]))
    ac = None
    if mode in mr.LINEAR_FAMILY:
        ac = [None, False, True][int(rng.integers(0, 3))]
    spec = str(rng.choice(["size", "scale", "scales"] if ndim > 1 else ["size", "scale"]))
    return _finish(mr.make_interpolate_case(rng, ndim, str(rng.choice(REAL)), mode, spec, ac),
                   seed)


@pytest.mark.parametrize("method", ["toeplitz", "im2col", "fft"])
@pytest.mark.parametrize("seed", range(80))
def test_conv_live(seed, method):
    case = draw_conv(seed)
    errors = golden.compare(linop, case, method)
    assert max(errors.values()) <= golden.TOLERANCE[case["dtype"]]


@pytest.mark.parametrize("method", ["toeplitz", "im2col", "fft"])
@pytest.mark.parametrize("seed", range(40))
def test_conv_transpose_live(seed, method):
    case = draw_conv_transpose(seed)
    errors = golden.compare(linop, case, method)
    assert max(errors.values()) <= golden.TOLERANCE[case["dtype"]]


@pytest.mark.parametrize("seed", range(80))
def test_upsample_live(seed):
    case = draw_interpolate(seed)
    errors = golden.compare(linop, case)
    assert max(errors.values()) <= golden.TOLERANCE[case["dtype"]]


SWEEP_SCALES = [0.3, 0.4, 0.5, 0.65, 0.7, 0.75, 0.9, 1.1, 1.15, 1.25, 1.3, 1.35, 1.5, 1.7,
                2.0, 2.2, 2.5, 2.6, 3.0, 3.5]
SWEEP_MODES = [("nearest", d) for d in (1, 2, 3)] + [("nearest-exact", d) for d in (1, 2, 3)] + [
    ("linear", 1), ("bilinear", 2), ("bicubic", 2), ("trilinear", 3)]


@pytest.mark.parametrize("dtype", REAL)
@pytest.mark.parametrize("mode,ndim", SWEEP_MODES, ids=[f"{m}-{d}d" for m, d in SWEEP_MODES])
def test_upsample_index_sweep_live(mode, ndim, dtype):
    """Index arithmetic along each axis, swept over sizes and scale factors.

    torch's nearest / nearest-exact kernels differ between 1-D/3-D and 2-D
    (special cases n_out == n_in and 2 n_in, float32 index arithmetic) and the
    linear kernels copy when n_out == n_in: the forward must match exactly.
    """
    failures = []
    for axis in range(ndim):
        for n in range(1, 18):
            specs = [("sf", s) for s in SWEEP_SCALES] + [("size", m) for m in (1, 2, 3, 5, 7, 11,
                                                                              2 * n, 3 * n + 1)]
            for kind, v in specs:
                m = int(np.floor(n * v)) if kind == "sf" else v
                if m < 1:
                    continue
                shape = [2] * ndim
                shape[axis] = n
                x = np.random.default_rng(n).standard_normal((2,) + tuple(shape)).astype(dtype)
                if kind == "sf":
                    sf = [1.0] * ndim
                    sf[axis] = v
                    kw = dict(size=None, scale_factor=tuple(sf) if ndim > 1 else v)
                else:
                    size = list(shape)
                    size[axis] = m
                    kw = dict(size=tuple(size) if ndim > 1 else m, scale_factor=None)
                ac = False if mode in mr.LINEAR_FAMILY else None
                y = mr.torch_interpolate(torch.from_numpy(x)[None], mode=mode, align_corners=ac,
                                         **kw)[0].numpy()
                op = linop.Upsample(x.shape, mode=mode, align_corners=ac, dtype=np.dtype(dtype),
                                    **kw)
                err = golden.rel_err(op.apply(x), y) if op.output_shape == y.shape else np.inf
                if err > golden.TOLERANCE[dtype]:
                    failures.append(f"axis {axis} n={n} {kind}={v}: err {err:.2e}")
    assert not failures, f"{len(failures)} mismatches, e.g. " + "; ".join(failures[:8])


@pytest.mark.parametrize("seed", range(6))
def test_conv_matrix_is_torch_jacobian(seed):
    """``tocsr()`` equals the dense Jacobian of torch's map (small cases)."""
    case = draw_conv(100 + seed)
    op = golden.build(linop, case)
    p = case["params"]
    wt = torch.from_numpy(case["w"])
    fn = lambda t: mr.torch_conv(t, wt, case["ndim"], p["stride"], p["padding"],  # noqa: E731
                                 p["dilation"], p["groups"], p["padding_mode"], case["bare"])
    A = mr.dense_matrix(fn, case["input_shape"], np.dtype(case["dtype"]))
    got = op.tocsr().toarray()
    assert got.shape == A.shape
    assert golden.rel_err(got, A) <= golden.TOLERANCE[case["dtype"]]


def test_seed_blog_examples_live():
    """The two examples of the seed blog post, computed by torch here."""
    import torch.nn.functional as F

    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4)
    w = torch.tensor([[3, 2, 9], [-2, 1, 3], [-3, -2, 2]], dtype=torch.float32).view(1, 1, 3, 3)
    op = linop.Conv2d(w.numpy(), (1, 4, 4))
    np.testing.assert_array_equal(op.apply(x.numpy()[0]), F.conv2d(x, w).numpy()[0])
    assert op.tocsr().shape == (4, 16)

    w = torch.tensor([[1, 2, 7], [-2, 1, 0], [-3, 1, 2]], dtype=torch.float32).view(1, 1, 3, 3)
    x = torch.tensor([[1, 2], [3, 4]], dtype=torch.float32).view(1, 1, 2, 2)
    op = linop.ConvTranspose2d(w.numpy(), (1, 2, 2))
    np.testing.assert_array_equal(op.apply(x.numpy()[0]), F.conv_transpose2d(x, w).numpy()[0])
    assert op.tocsr().shape == (16, 4)
