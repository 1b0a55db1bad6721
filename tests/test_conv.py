"""Convolution and transposed-convolution operators against the naive reference.

Layout of this module:

1. self tests of the reference (tests/reference.py) against hand calculations,
   SciPy (signal.correlate/convolve, ndimage.correlate, np.pad) and against itself
   (scalar loops vs sliced loops, column vs row construction);
2. ``linop.Conv{1,2,3}d`` on configurations drawn by hypothesis from
   :func:`linop.testing.strategies.conv_configs`, one stratum (a parametrization of
   ``test_conv_matches_reference``) per number of axes and padding mode; every drawn
   configuration goes through every check, with both methods: matvec, rmatvec,
   matmat, rmatmat, apply/apply_adjoint with batch axes, tocsr, the adjoint identity,
   ``.T``/``.H``, attributes, and the reference's own self-consistency; then
   hand-picked corner cases through the same checks;
3. the same for ``linop.ConvTranspose{1,2,3}d`` (one stratum per number of axes and
   dtype) against the scatter-add reference, including output_padding, and
   ``ConvTranspose(w).tocsr() == conv_matrix(w).T``;
4. special cases (padding-mode limits, "same", dtypes end to end) and validation;
5. property tests over the whole space of the strategies (bare kernels and every
   method, "auto" included) against the scalar loops of the reference.

The drawn configurations are the same on every run: ``derandomize=True`` seeds
hypothesis from each test's id (the parametrization included), and no example
database is kept. A failing example is reported as the ``ConvConfig`` that builds it
(``config.build()``), shrunk. ``test_strata_cover_the_parameter_space`` checks that
as many draws as a stratum makes cover every combination these tests promise
(dimensions x padding modes, padding modes x padding forms, dimensions x dtypes,
bare/dense/grouped/depthwise weights, stride and dilation in 3-D, output_padding
>= stride).

Tolerances scale with the dtype's epsilon and with ``|M| @ |x|`` (the sum of the absolute
values of the terms of each output), so they are tight yet independent of the order of
summation (``conftest.assert_close``).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
from hypothesis import HealthCheck, Phase, given, note, seed, settings
from hypothesis import strategies as st

import golden
import linop
import reference as R
from conftest import DTYPES, METHODS, assert_close, assert_csr, high, random_array
from linop.testing.strategies import METHODS as ACCEPTED_METHODS
from linop.testing.strategies import ConvConfig, conv_configs

MODES = ("zeros", "reflect", "replicate", "circular")
FORMS = ("int", "axis", "pairs", "same", "valid")
KINDS = ("bare", "dense", "grouped", "depthwise")
#: What method="auto" may resolve to: every method linop accepts but "auto" (the
#: checks themselves run with both of conftest.METHODS).
RESOLVED_METHODS = tuple(m for m in ACCEPTED_METHODS if m != "auto")


def conv_cls(nd):
    return getattr(linop, f"Conv{nd}d")


def tconv_cls(nd):
    return getattr(linop, f"ConvTranspose{nd}d")


# ============================================================================
# 1. the reference itself
# ============================================================================
def test_reference_output_size_formulas_by_hand():
    assert R.conv_output_size(4, 3) == 2  # the seed blog's 4x4 input, 3x3 filter (test_seed)
    assert R.conv_output_size(7, 3, stride=2, pad_lo=1, pad_hi=1) == 4
    assert R.conv_output_size(5, 3, stride=2, pad_lo=1, pad_hi=1) == 3
    assert R.conv_output_size(10, 3, stride=3, dilation=2) == 2  # span 5: starts 0, 3
    assert R.conv_output_size(2, 3) == 0  # invalid
    assert R.conv_output_size(6, 2, stride=4, pad_lo=0, pad_hi=1) == 2
    assert R.conv_transpose_output_size(2, 3) == 4  # the seed blog's up-sampling 2x2 -> 4x4
    assert R.conv_transpose_output_size(3, 3, stride=2, pad_lo=1, pad_hi=1) == 5
    assert R.conv_transpose_output_size(3, 3, stride=2, pad_lo=1, pad_hi=1,
                                        output_padding=1) == 6
    assert R.conv_transpose_output_size(4, 2, stride=1, dilation=3) == 7
    assert R.normalize_padding("same", (3, 4), dilation=(1, 3)) == ((1, 1), (4, 5))
    assert R.normalize_padding("valid", (3, 3)) == ((0, 0), (0, 0))
    assert R.normalize_padding(2, (3, 3)) == ((2, 2), (2, 2))
    assert R.normalize_padding((1, 2), (3, 3)) == ((1, 1), (2, 2))
    assert R.normalize_padding(((0, 1), 2), (3, 3)) == ((0, 1), (2, 2))


def test_reference_padding_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(R.pad_nd(x, [(2, 2)], "zeros"), [0, 0, 1, 2, 3, 4, 0, 0])
    np.testing.assert_array_equal(R.pad_nd(x, [(2, 2)], "reflect"), [3, 2, 1, 2, 3, 4, 3, 2])
    np.testing.assert_array_equal(R.pad_nd(x, [(2, 3)], "replicate"),
                                  [1, 1, 1, 2, 3, 4, 4, 4, 4])
    np.testing.assert_array_equal(R.pad_nd(x, [(2, 2)], "circular"), [3, 4, 1, 2, 3, 4, 1, 2])
    np.testing.assert_array_equal(R.pad_nd(x, [(4, 4)], "circular"), np.tile(x, 3))
    np.testing.assert_array_equal(R.pad_nd(x, [(3, 0)], "reflect"), [4, 3, 2, 1, 2, 3, 4])


@pytest.mark.parametrize("mode,np_mode", [("zeros", "constant"), ("reflect", "reflect"),
                                          ("replicate", "edge"), ("circular", "wrap")])
def test_reference_padding_matches_np_pad(mode, np_mode, rng):
    x = rng.standard_normal((2, 4, 5, 3))
    pads = [(1, 3), (4, 0), (2, 2)]
    np.testing.assert_array_equal(R.pad_nd(x, pads, mode),
                                  np.pad(x, [(0, 0)] + pads, mode=np_mode))


def test_reference_conv_by_hand():
    # x = [1..5], w = [1, 0, -1], stride 2, padding 1: xpad = [0, 1, 2, 3, 4, 5, 0]
    # o=0: 0 - 2 = -2;  o=1: 2 - 4 = -2;  o=2: 4 - 0 = 4
    x = np.arange(1.0, 6.0)[None]
    w = np.array([1.0, 0.0, -1.0])[None, None]
    np.testing.assert_array_equal(R.conv_nd(x, w, stride=2, padding=1), [[-2, -2, 4]])
    np.testing.assert_array_equal(R.conv_nd_scalar(x, w, stride=2, padding=1), [[-2, -2, 4]])
    # dilation 2, no padding: y[o] = x[o] - x[o+4] = -4
    np.testing.assert_array_equal(R.conv_nd(x, w, dilation=2), [[-4]])
    # reflect 1: xpad = [2, 1, 2, 3, 4, 5, 4]; y = [2-2, 1-3, 2-4, 3-5, 4-4] (stride 1)
    np.testing.assert_array_equal(R.conv_nd(x, w, padding=1, padding_mode="reflect"),
                                  [[0, -2, -2, -2, 0]])
    # circular 1: xpad = [5, 1, 2, 3, 4, 5, 1]
    np.testing.assert_array_equal(R.conv_nd(x, w, padding=1, padding_mode="circular"),
                                  [[3, -2, -2, -2, 3]])
    # replicate 1: xpad = [1, 1, 2, 3, 4, 5, 5]
    np.testing.assert_array_equal(R.conv_nd(x, w, padding=1, padding_mode="replicate"),
                                  [[-1, -2, -2, -2, -1]])
    # two channels in, one out: sum of the channels' correlations
    x2 = np.stack([np.arange(1.0, 6.0), np.ones(5)])
    w2 = np.array([[[1.0, 1.0], [2.0, 0.0]]])
    np.testing.assert_array_equal(R.conv_nd(x2, w2), [[5, 7, 9, 11]])
    # transposed, by hand: y = [1, 2], w = [1, 10, 100], stride 2 -> full length 6
    # [1, 10, 100 + 2, 20, 200, 0(output_padding)], then crop padding 1 on both sides
    yt = np.array([[1.0, 2.0]])
    wt = np.array([[[1.0, 10.0, 100.0]]])
    np.testing.assert_array_equal(R.conv_transpose_nd(yt, wt, stride=2), [[1, 10, 102, 20, 200]])
    np.testing.assert_array_equal(
        R.conv_transpose_nd(yt, wt, stride=2, padding=1, output_padding=1), [[10, 102, 20, 200]])
    np.testing.assert_array_equal(
        R.conv_transpose_nd_scalar(yt, wt, stride=2, padding=1, output_padding=1),
        [[10, 102, 20, 200]])


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_reference_matches_scipy_signal(nd, rng):
    """Single channel: correlate 'valid' (subsampled for stride, kernel dilated by
    inserting zeros) and the grouped multi-channel sum."""
    x = rng.standard_normal((7, 6, 5)[:nd])
    k = rng.standard_normal((3, 2, 2)[:nd])
    np.testing.assert_allclose(R.conv_nd(x[None], k[None, None])[0],
                               scipy.signal.correlate(x, k, mode="valid"), atol=1e-12)
    stride = (2, 3, 1)[:nd]
    dil = (2, 1, 2)[:nd]
    kd = np.zeros(tuple(d * (n - 1) + 1 for d, n in zip(dil, k.shape)))
    kd[tuple(slice(None, None, d) for d in dil)] = k
    full = scipy.signal.correlate(x, kd, mode="valid")
    np.testing.assert_allclose(
        R.conv_nd(x[None], k[None, None], stride=stride, dilation=dil)[0],
        full[tuple(slice(None, None, s) for s in stride)], atol=1e-12)
    # groups: 4 in, 6 out, groups 2
    xc = rng.standard_normal((4,) + x.shape)
    w = rng.standard_normal((6, 2) + k.shape)
    got = R.conv_nd(xc, w, groups=2)
    for co in range(6):
        g = co // 3
        exp = sum(scipy.signal.correlate(xc[2 * g + cl], w[co, cl], mode="valid")
                  for cl in range(2))
        np.testing.assert_allclose(got[co], exp, atol=1e-12)
    # transposed, stride 1: full convolution; stride/dilation: zero-stuffed input,
    # dilated kernel
    y = rng.standard_normal((3, 4, 2)[:nd])
    np.testing.assert_allclose(R.conv_transpose_nd(y[None], k[None, None])[0],
                               scipy.signal.convolve(y, k, mode="full"), atol=1e-12)
    up = np.zeros(tuple((n - 1) * s + 1 for n, s in zip(y.shape, stride)))
    up[tuple(slice(None, None, s) for s in stride)] = y
    np.testing.assert_allclose(
        R.conv_transpose_nd(y[None], k[None, None], stride=stride, dilation=dil)[0],
        scipy.signal.convolve(up, kd, mode="full"), atol=1e-12)


@pytest.mark.parametrize("mode,nd_mode", [("zeros", "constant"), ("reflect", "mirror"),
                                          ("replicate", "nearest"), ("circular", "wrap")])
def test_reference_same_matches_ndimage(mode, nd_mode, rng):
    """Odd kernels, padding 'same': scipy.ndimage.correlate with the matching mode."""
    x = rng.standard_normal((6, 5))
    k = rng.standard_normal((3, 5))
    got = R.conv_nd(x[None], k[None, None], padding="same", padding_mode=mode)[0]
    exp = scipy.ndimage.correlate(x, k, mode=nd_mode, cval=0.0)
    np.testing.assert_allclose(got, exp, atol=1e-12)


def test_reference_matches_torch_golden_data():
    """The reference against PyTorch itself: every conv / conv_transpose case of the golden
    file written by torch (tests/data/torch_reference.npz, via tests/golden.py)."""
    try:
        cases = golden.load_cases()
    except Exception as exc:  # noqa: BLE001  # pragma: no cover - optional for this module
        pytest.skip(f"no golden data: {exc}")
    n = 0
    for c in cases:
        if c["kind"] not in ("conv", "conv_transpose"):
            continue
        p, x, w, y = c["params"], c["x"], c["w"], c["y"]
        if c["bare"]:
            w = w[None, None]
            x = np.expand_dims(x, -c["ndim"] - 1)
            y = np.expand_dims(y, -c["ndim"] - 1)
        hi = high(np.dtype(c["dtype"]))
        if c["kind"] == "conv":
            kw = dict(stride=p["stride"], padding=p["padding_pairs"], dilation=p["dilation"],
                      groups=p["groups"], padding_mode=p["padding_mode"])
            f = R.conv_nd
        else:
            pairs = p.get("padding_pairs") or R.normalize_padding(p["padding"], w.shape[2:])
            kw = dict(stride=p["stride"], padding=pairs, output_padding=p["output_padding"],
                      dilation=p["dilation"], groups=p["groups"])
            f = R.conv_transpose_nd
        ref = f(x.astype(hi), w.astype(hi), **kw)
        bound = f(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64), **kw)
        assert_close(y, ref, bound, np.dtype(c["dtype"]), c["name"])
        n += 1
    assert n >= 100, n


# ============================================================================
# drawn configurations and what the reference says about them
# ============================================================================
#: Hypothesis settings of the property tests: reproducible draws (seeded from the
#: test's id), no example database, no deadline (the references are plain loops).
DRAWN = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Examples per stratum: 12 strata (dimensions x padding modes) for convolutions,
#: 12 (dimensions x dtypes) for transposed convolutions; hypothesis makes the first
#: example of each the simplest (1-sized kernel, no padding, float32 in a convolution
#: stratum). Every example is checked with both methods.
CONV_EXAMPLES = 10
TCONV_EXAMPLES = 4

#: Limits per number of axes (kernel, stride, channels per group, spatial size):
#: larger in 1-D, smaller in 3-D so that the dense references stay small.
CONV_LIMITS = {
    1: dict(max_kernel=5, max_stride=3, max_channels=3, max_groups=3, max_size=8),
    2: dict(max_kernel=4, max_stride=3, max_channels=3, max_groups=3, max_size=5),
    3: dict(max_kernel=3, max_stride=2, max_channels=2, max_groups=2, max_size=3),
}
TCONV_LIMITS = {
    1: dict(max_kernel=4, max_stride=3, max_channels=2, max_groups=3, max_size=5),
    2: dict(max_kernel=3, max_stride=3, max_channels=2, max_groups=3, max_size=3),
    3: dict(max_kernel=2, max_stride=2, max_channels=2, max_groups=2, max_size=2),
}


def _mostly_channels(**kwargs):
    """conv_configs with a bare kernel one time in four (it draws one in two)."""
    return st.sampled_from([False, False, False, True]).flatmap(
        lambda bare: conv_configs(bare=bare, **kwargs))


CONV_STRATEGIES = {
    (nd, mode): _mostly_channels(ndim=nd, transpose=False, padding_modes=[mode], max_dilation=2,
                                 max_padding=2, **CONV_LIMITS[nd])
    for nd in (1, 2, 3) for mode in MODES
}
TCONV_STRATEGIES = {
    (nd, dtype): _mostly_channels(ndim=nd, transpose=True, dtypes=[dtype], max_dilation=2,
                                  max_padding=2, **TCONV_LIMITS[nd])
    for nd in (1, 2, 3) for dtype in DTYPES
}
CONV_STRATA = [pytest.param(nd, mode, id=f"{nd}d-{mode}") for nd, mode in CONV_STRATEGIES]
TCONV_STRATA = [pytest.param(nd, dtype, id=f"{nd}d-{dtype}") for nd, dtype in TCONV_STRATEGIES]


def padding_form(padding):
    """How ``padding`` was given: int, axis (one int per axis), pairs, same or valid."""
    if isinstance(padding, str):
        return padding
    if isinstance(padding, (int, np.integer)):
        return "int"
    return "pairs" if any(isinstance(p, (tuple, list)) for p in padding) else "axis"


class Case:
    """A configuration (a :class:`ConvConfig`) and the naive reference of its operator.

    Everything the checks compare with is computed here by ``tests/reference.py`` in
    the high precision of the dtype, from the parameters as given: the configuration's
    own normalised properties (``padding_pairs``, ``expected_output_shape``, computed
    by linop.testing) are only cross-checked (see ``check_conv_attributes``).
    """

    def __init__(self, config: ConvConfig):
        self.config = c = config
        nd = self.nd = c.ndim
        self.transpose = c.transpose
        self.dtype = np.dtype(c.dtype)
        self.weight = c.weight()
        self.ks = tuple(self.weight.shape[-nd:])
        self.w_full = self.weight.reshape((1, 1) + self.ks) if c.bare else self.weight
        self.groups = c.groups
        self.mode = c.padding_mode
        self.form = padding_form(c.padding)
        self.stride = R.normalize_tuple(c.stride, nd)
        self.dilation = R.normalize_tuple(c.dilation, nd)
        self.pairs = R.normalize_padding(c.padding, self.ks, self.dilation, self.stride)
        self.input_shape = tuple(c.input_shape)
        self.spatial = self.input_shape[-nd:]
        self.in_shape_c = (1,) + self.spatial if c.bare else self.input_shape
        # channels per group of the input: C_in/groups is axis 1 of a conv weight,
        # axis 0 of a transposed one holds all C_in
        cig = self.w_full.shape[0] // self.groups if c.transpose else self.w_full.shape[1]
        if c.bare:
            self.kind = "bare"
        elif self.groups == 1:
            self.kind = "dense"
        else:
            self.kind = "depthwise" if cig == 1 else "grouped"
        if c.transpose:
            self.op = R.normalize_tuple(c.output_padding, nd)
            self.out_sp = R.conv_transpose_output_shape(self.spatial, self.ks, self.stride,
                                                        self.pairs, self.dilation, self.op)
            c_out = self.w_full.shape[1] * self.groups
            self.ref_kwargs = dict(stride=self.stride, padding=self.pairs, output_padding=self.op,
                                   dilation=self.dilation, groups=self.groups)
            self._apply, self._matrix = R.conv_transpose_nd, R.conv_transpose_matrix_dense
        else:
            self.op = (0,) * nd
            self.out_sp = R.conv_output_shape(self.spatial, self.ks, self.stride, self.pairs,
                                              self.dilation)
            c_out = self.w_full.shape[0]
            self.ref_kwargs = dict(stride=self.stride, padding=self.pairs,
                                   dilation=self.dilation, groups=self.groups,
                                   padding_mode=self.mode)
            self._apply, self._matrix = R.conv_nd, R.conv_matrix_dense
        self.out_shape_c = (c_out,) + self.out_sp
        self.output_shape = self.out_sp if c.bare else self.out_shape_c
        # the constructor's keywords as drawn (int, per-axis or pairs), without the method
        self.kwargs = c.kwargs()
        del self.kwargs["method"]

    def __repr__(self):
        return repr(self.config)

    def rng(self, salt):
        """A generator for the test data of one check, seeded by the weight's seed."""
        return np.random.default_rng((self.config.seed, salt))

    def build(self, method=None):
        """The linop operator (``method`` None: the constructor's default, "auto")."""
        cls = tconv_cls(self.nd) if self.transpose else conv_cls(self.nd)
        kwargs = dict(self.kwargs) if method is None else dict(self.kwargs, method=method)
        return cls(self.weight, self.input_shape, **kwargs)

    @functools.cached_property
    def dense(self):
        """Reference dense matrix in high precision."""
        return self._matrix(self.w_full.astype(high(self.dtype)), self.in_shape_c,
                            **self.ref_kwargs)

    @functools.cached_property
    def dense_abs(self):
        return self._matrix(np.abs(self.w_full).astype(np.float64), self.in_shape_c,
                            **self.ref_kwargs)

    def _ref(self, x, w):
        if self.config.bare:
            return self._apply(np.expand_dims(x, -self.nd - 1), w,
                               **self.ref_kwargs).squeeze(-self.nd - 1)
        return self._apply(x, w, **self.ref_kwargs)

    def ref_apply(self, x):
        """conv_nd / conv_transpose_nd on (*batch, *input_shape) in high precision."""
        return self._ref(np.asarray(x).astype(high(self.dtype)),
                         self.w_full.astype(high(self.dtype)))

    def ref_apply_abs(self, x):
        return self._ref(np.abs(np.asarray(x)).astype(np.float64),
                         np.abs(self.w_full).astype(np.float64))


def draw_conv(data, nd, mode):
    return Case(data.draw(CONV_STRATEGIES[nd, mode], label="config"))


def draw_tconv(data, nd, dtype):
    return Case(data.draw(TCONV_STRATEGIES[nd, dtype], label="config"))


def _sample(strategy, n, key):
    """``n`` configurations drawn from ``strategy`` as the property tests draw them
    (same settings), seeded by ``key``."""
    drawn = []

    @seed(key)
    @settings(DRAWN, max_examples=n, phases=[Phase.generate])
    @given(strategy)
    def collect(config):
        drawn.append(Case(config))

    collect()
    return drawn


def test_strata_cover_the_parameter_space():
    """As many draws per stratum as the property tests make cover every combination
    the tests promise.

    The property tests draw their own examples (seeded from their ids): this checks
    the strata, their limits and their number of examples (a stratum too narrow, a
    limit too low, too few examples), with the same strategies and settings.
    """
    conv = [c for i, strategy in enumerate(CONV_STRATEGIES.values())
            for c in _sample(strategy, CONV_EXAMPLES, i)]
    assert {(c.nd, c.mode) for c in conv} == {(nd, m) for nd in (1, 2, 3) for m in MODES}
    assert {(c.mode, c.form) for c in conv} >= {(m, f) for m in MODES for f in FORMS}
    assert {c.dtype for c in conv} == set(DTYPES)
    assert {c.kind for c in conv} >= set(KINDS)
    assert {(c.nd, c.dtype) for c in conv} == {(nd, d) for nd in (1, 2, 3) for d in DTYPES}
    assert any(max(c.stride) > 1 for c in conv if c.nd == 3)
    assert any(max(c.dilation) > 1 for c in conv if c.nd == 3)
    tconv = [c for i, strategy in enumerate(TCONV_STRATEGIES.values())
             for c in _sample(strategy, TCONV_EXAMPLES, 100 + i)]
    assert {(c.nd, c.dtype) for c in tconv} == {(nd, d) for nd in (1, 2, 3) for d in DTYPES}
    assert {c.kind for c in tconv} == set(KINDS)
    assert {c.form for c in tconv} == {"int", "axis", "pairs"}
    assert any(max(c.op) > 0 for c in tconv)
    # output_padding >= stride (allowed because dilation > stride) is covered
    assert any(o >= s for c in tconv for o, s in zip(c.op, c.stride))


# ============================================================================
# 2. convolution operators vs the reference
# ============================================================================
def check_reference_self_consistency(cfg):
    """Reference vs itself: sliced vs scalar loops, column vs row construction."""
    w = cfg.w_full.astype(high(cfg.dtype))
    x = random_array(cfg.rng(0), cfg.in_shape_c, high(cfg.dtype))
    fast = R.conv_nd(x, w, **cfg.ref_kwargs)
    slow = R.conv_nd_scalar(x, w, **cfg.ref_kwargs)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
    rows = R.conv_matrix_dense_rows(w, cfg.in_shape_c, **cfg.ref_kwargs)
    np.testing.assert_allclose(cfg.dense, rows, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(cfg.dense @ x.ravel(), fast.ravel(), rtol=1e-12, atol=1e-12)


def check_conv_matvec_rmatvec(cfg, method):
    A = cfg.build(method)
    rng = cfg.rng(1)
    x = random_array(rng, cfg.input_shape, cfg.dtype)
    y = random_array(rng, cfg.output_shape, cfg.dtype)
    M = cfg.dense
    assert A.shape == M.shape
    assert A.dtype == cfg.dtype
    got = A.matvec(x.ravel())
    assert got.dtype == cfg.dtype
    ref = M @ x.ravel().astype(M.dtype)
    assert_close(got, ref, cfg.dense_abs @ np.abs(x.ravel()), cfg.dtype, "matvec")
    assert_close(A @ x.ravel(), ref, cfg.dense_abs @ np.abs(x.ravel()), cfg.dtype, "A @ x")
    got = A.rmatvec(y.ravel())
    assert got.dtype == cfg.dtype
    ref = M.conj().T @ y.ravel().astype(M.dtype)
    assert_close(got, ref, cfg.dense_abs.T @ np.abs(y.ravel()), cfg.dtype, "rmatvec")


def check_conv_matmat_rmatmat(cfg, method):
    A = cfg.build(method)
    rng = cfg.rng(2)
    X = random_array(rng, (A.shape[1], 3), cfg.dtype)
    Y = random_array(rng, (A.shape[0], 4), cfg.dtype)
    M = cfg.dense
    ref = M @ X.astype(M.dtype)
    bound = cfg.dense_abs @ np.abs(X)
    assert_close(A.matmat(X), ref, bound, cfg.dtype, "matmat")
    assert_close(A @ X, ref, bound, cfg.dtype, "A @ X")
    ref = M.conj().T @ Y.astype(M.dtype)
    bound = cfg.dense_abs.T @ np.abs(Y)
    assert_close(A.rmatmat(Y), ref, bound, cfg.dtype, "rmatmat")
    assert_close(A.H @ Y, ref, bound, cfg.dtype, "A.H @ Y")
    # a Fortran-ordered and a non-contiguous block give the same
    assert_close(A.matmat(np.asfortranarray(X)), M @ X.astype(M.dtype),
                 cfg.dense_abs @ np.abs(X), cfg.dtype, "matmat F-order")
    Xs = random_array(rng, (A.shape[1], 6), cfg.dtype)[:, ::2]
    assert_close(A.matmat(Xs), M @ Xs.astype(M.dtype), cfg.dense_abs @ np.abs(Xs),
                 cfg.dtype, "matmat strided")


def check_conv_apply_batch(cfg, method):
    """apply on (*batch, *input_shape) against conv_nd directly (not the matrix)."""
    A = cfg.build(method)
    rng = cfg.rng(3)
    x = random_array(rng, (2, 3) + cfg.input_shape, cfg.dtype)
    got = A.apply(x)
    assert got.shape == (2, 3) + cfg.output_shape
    assert got.dtype == cfg.dtype
    assert_close(got, cfg.ref_apply(x), cfg.ref_apply_abs(x), cfg.dtype, "apply")
    got1 = A.apply(x[1, 2])
    assert got1.shape == cfg.output_shape
    assert_close(got1, cfg.ref_apply(x[1, 2]), cfg.ref_apply_abs(x[1, 2]), cfg.dtype, "apply 1")
    y = random_array(rng, (3,) + cfg.output_shape, cfg.dtype)
    got = A.apply_adjoint(y)
    assert got.shape == (3,) + cfg.input_shape
    ref = (cfg.dense.conj().T @ y.reshape(3, -1).T.astype(cfg.dense.dtype)).T
    bound = (cfg.dense_abs.T @ np.abs(y.reshape(3, -1)).T).T
    assert_close(got.reshape(3, -1), ref, bound, cfg.dtype, "apply_adjoint")


def check_conv_tocsr(cfg, method):
    A = cfg.build(method)
    S = A.tocsr()
    assert_csr(S, cfg.dtype)
    assert S.shape == A.shape
    D = S.toarray()
    if cfg.mode == "zeros":
        # every entry is one weight: exact
        np.testing.assert_array_equal(D, cfg.dense.astype(cfg.dtype))
    else:
        # reflect/replicate/circular: several taps may sum into one entry
        assert_close(D, cfg.dense, cfg.dense_abs, cfg.dtype, "tocsr")
    S2 = linop.conv_matrix(cfg.weight, cfg.input_shape, method=method, **cfg.kwargs)
    assert_csr(S2, cfg.dtype)
    np.testing.assert_array_equal(S2.toarray(), D)


def check_conv_adjoint_identity(cfg, method):
    A = cfg.build(method)
    rng = cfg.rng(4)
    for _ in range(2):
        x = random_array(rng, A.shape[1], cfg.dtype)
        y = random_array(rng, A.shape[0], cfg.dtype)
        lhs = np.vdot(y, A.matvec(x))  # <Ax, y>
        rhs = np.vdot(A.rmatvec(y), x)  # <x, A^H y>
        scale = np.abs(y) @ (cfg.dense_abs @ np.abs(x))
        eps = np.finfo(cfg.dtype).eps
        assert abs(lhs - rhs) <= 100 * eps * max(scale, 1e-300) * math.sqrt(A.shape[0]), (
            lhs, rhs)


def check_conv_transpose_views(cfg, method):
    """A.T is the plain transpose, A.H the conjugate transpose, A.T.T is A again."""
    A = cfg.build(method)
    M = cfg.dense
    rng = cfg.rng(5)
    y = random_array(rng, A.shape[0], cfg.dtype)
    At, Ah = A.T, A.H
    assert At.shape == Ah.shape == (A.shape[1], A.shape[0])
    assert At.dtype == Ah.dtype == cfg.dtype
    bound = cfg.dense_abs.T @ np.abs(y)
    assert_close(At @ y, M.T @ y.astype(M.dtype), bound, cfg.dtype, "A.T @ y")
    assert_close(Ah @ y, M.conj().T @ y.astype(M.dtype), bound, cfg.dtype, "A.H @ y")
    assert_close(At.tocsr().toarray(), M.T, cfg.dense_abs.T, cfg.dtype, "A.T.tocsr()")
    assert_close(Ah.tocsr().toarray(), M.conj().T, cfg.dense_abs.T, cfg.dtype, "A.H.tocsr()")
    for back in (At.T, Ah.H):
        assert back.shape == A.shape
        assert back.input_shape == A.input_shape and back.output_shape == A.output_shape
        assert_close(back.tocsr().toarray(), M, cfg.dense_abs, cfg.dtype, "A.T.T")
    # shapes of the views
    assert At.input_shape == A.output_shape and At.output_shape == A.input_shape
    if cfg.mode == "zeros":
        # a zero-padded conv transposes to a ConvTranspose and back to a conv, exactly
        np.testing.assert_array_equal(At.tocsr().toarray(), A.tocsr().toarray().T)
        assert type(At.T) is type(A)
        assert "Transpose" in type(At).__name__, type(At)


def check_conv_attributes(cfg):
    A = cfg.build()
    assert A.input_shape == cfg.input_shape
    assert A.output_shape == cfg.output_shape
    # linop.testing's own output-shape formula agrees with the reference's
    assert cfg.config.expected_output_shape == cfg.output_shape
    assert A.stride == cfg.stride
    assert A.dilation == cfg.dilation
    assert A.padding == cfg.pairs
    assert A.groups == cfg.groups
    assert A.padding_mode == cfg.mode
    assert A.method in RESOLVED_METHODS
    assert A.dtype == cfg.dtype
    np.testing.assert_array_equal(A.weight, cfg.weight)
    for m in METHODS:
        assert cfg.build(m).method == m


CONV_CHECKS = [check_conv_matvec_rmatvec, check_conv_matmat_rmatmat, check_conv_apply_batch,
               check_conv_tocsr, check_conv_adjoint_identity, check_conv_transpose_views]


@pytest.mark.parametrize("nd,mode", CONV_STRATA)
@settings(DRAWN, max_examples=CONV_EXAMPLES)
@given(data=st.data())
def test_conv_matches_reference(nd, mode, data):
    """Every check on each drawn convolution: the reference's self-consistency, the
    attributes, then matvec/rmatvec, matmat/rmatmat, apply/apply_adjoint with batch axes,
    tocsr, the adjoint identity and .T/.H with each method."""
    cfg = draw_conv(data, nd, mode)
    check_reference_self_consistency(cfg)
    check_conv_attributes(cfg)
    for method in METHODS:
        note(f"method={method!r}")  # the last one noted is the failing one
        for check in CONV_CHECKS:
            check(cfg, method)


# ----------------------------------------------------------------------------
# hand-picked corner cases, through the same checks
# ----------------------------------------------------------------------------
def _corner(nd, w_shape, spatial, dtype=np.float64, **kw):
    groups = kw.get("groups", 1)
    return Case(ConvConfig(
        ndim=nd, transpose=False, bare=False, weight_shape=w_shape,
        input_shape=(w_shape[1] * groups,) + spatial, stride=kw.get("stride", 1),
        padding=kw.get("padding", 0), dilation=kw.get("dilation", 1), groups=groups,
        padding_mode=kw.get("padding_mode", "zeros"), output_padding=0, method="auto",
        dtype=np.dtype(dtype), seed=0))


CORNER_CASES = [
    # padding-mode limits: reflect p = n - 1, circular p = n, replicate p > n
    pytest.param(_corner(1, (2, 1, 3), (4,), padding=3, padding_mode="reflect"),
                 id="reflect-p=n-1"),
    pytest.param(_corner(2, (1, 1, 3, 2), (3, 2), padding=((2, 1), (0, 1)),
                         padding_mode="reflect"), id="reflect-pairs-p=n-1"),
    pytest.param(_corner(1, (1, 2, 2), (3,), padding=3, padding_mode="circular",
                         dtype=np.complex128), id="circular-p=n"),
    pytest.param(_corner(2, (2, 1, 2, 3), (2, 3), padding=((2, 2), (3, 3)),
                         padding_mode="circular"), id="circular-pairs-p=n"),
    pytest.param(_corner(2, (1, 1, 3, 3), (2, 2), padding=5, padding_mode="replicate",
                         dtype=np.float32), id="replicate-p>n"),
    pytest.param(_corner(1, (1, 1, 2), (1,), padding=4, padding_mode="replicate"),
                 id="replicate-n=1"),
    pytest.param(_corner(1, (1, 1, 3), (1,), padding=1, padding_mode="circular"),
                 id="circular-n=1"),
    # reflect/circular combined with stride, dilation, 'same', even kernels
    pytest.param(_corner(2, (2, 2, 4, 2), (5, 6), padding="same", dilation=(1, 2),
                         padding_mode="reflect"), id="reflect-same-even-dilated"),
    pytest.param(_corner(1, (3, 1, 4), (6,), padding="same", dilation=3, groups=1,
                         padding_mode="circular"), id="circular-same-even-dilated"),
    pytest.param(_corner(3, (2, 1, 2, 2, 2), (3, 4, 3), padding="same", padding_mode="zeros",
                         groups=2, dtype=np.complex64), id="3d-same-grouped"),
    pytest.param(_corner(2, (4, 1, 3, 3), (7, 6), stride=(3, 2), padding=(2, 1),
                         dilation=(2, 1), groups=4, padding_mode="reflect",
                         dtype=np.complex128), id="reflect-depthwise-strided"),
    # output of size 1 (kernel = padded input); stride larger than the kernel
    pytest.param(_corner(2, (1, 1, 5, 4), (3, 2), padding=1), id="output-size-1"),
    pytest.param(_corner(1, (2, 1, 2), (11,), stride=5), id="stride>kernel"),
    pytest.param(_corner(3, (1, 1, 1, 1, 1), (2, 3, 2), stride=(2, 1, 2), dtype=np.float32),
                 id="3d-1x1x1-kernel"),
    pytest.param(_corner(3, (2, 2, 2, 1, 3), (3, 2, 5), stride=2,
                         padding=((1, 0), (0, 1), (1, 2)), padding_mode="replicate",
                         dtype=np.complex128), id="3d-replicate-pairs-strided"),
]


def _check_id(check):
    return check.__name__.removeprefix("check_")


@pytest.mark.parametrize("cfg", CORNER_CASES)
def test_corner_cases_reference_and_attributes(cfg):
    check_reference_self_consistency(cfg)
    check_conv_attributes(cfg)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("check", CONV_CHECKS, ids=_check_id)
@pytest.mark.parametrize("cfg", CORNER_CASES)
def test_corner_cases(cfg, check, method):
    check(cfg, method)


# ============================================================================
# 3. transposed convolutions
# ============================================================================
def check_reference_tconv_self_consistency(cfg):
    """Scatter-add (sliced) vs scalar loops, and the scatter-add vs the transpose of the
    convolution matrix: the transposed convolution with a weight is the transpose of the
    convolution with the same weight and parameters whose input has the transposed
    convolution's output shape (for output_padding >= stride that convolution's output is
    larger, and its extra rows are pixels the transposed convolution never reads)."""
    w = cfg.w_full.astype(high(cfg.dtype))
    y = random_array(cfg.rng(0), cfg.in_shape_c, high(cfg.dtype))
    fast = R.conv_transpose_nd(y, w, **cfg.ref_kwargs)
    slow = R.conv_transpose_nd_scalar(y, w, **cfg.ref_kwargs)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
    Mc = R.conv_matrix_dense(w, cfg.out_shape_c, stride=cfg.stride, padding=cfg.pairs,
                             dilation=cfg.dilation, groups=cfg.groups)
    conv_out = R.conv_output_shape(cfg.out_sp, cfg.ks, cfg.stride, cfg.pairs, cfg.dilation)
    rows = conv_rows_for(cfg, conv_out)
    np.testing.assert_array_equal(Mc[rows].T, cfg.dense)


def conv_rows_for(cfg, conv_out):
    """Rows of the conv matrix over the transposed conv's output that correspond to the
    transposed conv's input pixels (all of them unless output_padding >= stride)."""
    for n_c, n_t in zip(conv_out, cfg.spatial):
        assert n_c >= n_t
    c_out_conv = cfg.w_full.shape[0]
    grid = np.arange(c_out_conv * math.prod(conv_out)).reshape((c_out_conv,) + conv_out)
    return grid[(slice(None),) + tuple(slice(0, n) for n in cfg.spatial)].ravel()


def check_tconv_matvec_rmatvec(cfg, method):
    T = cfg.build(method)
    assert T.input_shape == cfg.input_shape
    assert T.output_shape == cfg.output_shape
    assert T.dtype == cfg.dtype
    rng = cfg.rng(11)
    y = random_array(rng, cfg.input_shape, cfg.dtype)
    z = random_array(rng, cfg.output_shape, cfg.dtype)
    got = T.matvec(y.ravel())
    assert got.dtype == cfg.dtype
    # against the scatter-add definition directly
    assert_close(got.reshape(cfg.output_shape), cfg.ref_apply(y), cfg.ref_apply_abs(y),
                 cfg.dtype, "tconv matvec")
    M = cfg.dense
    got = T.rmatvec(z.ravel())
    assert got.dtype == cfg.dtype
    assert_close(got, M.conj().T @ z.ravel().astype(M.dtype), cfg.dense_abs.T @ np.abs(z.ravel()),
                 cfg.dtype, "tconv rmatvec")
    Y = random_array(rng, (T.shape[1], 3), cfg.dtype)
    assert_close(T.matmat(Y), M @ Y.astype(M.dtype), cfg.dense_abs @ np.abs(Y), cfg.dtype,
                 "tconv matmat")
    Z = random_array(rng, (T.shape[0], 2), cfg.dtype)
    assert_close(T.rmatmat(Z), M.conj().T @ Z.astype(M.dtype), cfg.dense_abs.T @ np.abs(Z),
                 cfg.dtype, "tconv rmatmat")


def check_tconv_apply_batch(cfg, method):
    T = cfg.build(method)
    rng = cfg.rng(12)
    y = random_array(rng, (3, 2) + cfg.input_shape, cfg.dtype)
    got = T.apply(y)
    assert got.shape == (3, 2) + cfg.output_shape
    assert_close(got, cfg.ref_apply(y), cfg.ref_apply_abs(y), cfg.dtype, "tconv apply")
    z = random_array(rng, (2,) + cfg.output_shape, cfg.dtype)
    got = T.apply_adjoint(z)
    assert got.shape == (2,) + cfg.input_shape
    M = cfg.dense
    ref = (M.conj().T @ z.reshape(2, -1).T.astype(M.dtype)).T
    bound = (cfg.dense_abs.T @ np.abs(z.reshape(2, -1)).T).T
    assert_close(got.reshape(2, -1), ref, bound, cfg.dtype, "tconv apply_adjoint")


def check_tconv_tocsr(cfg, method):
    T = cfg.build(method)
    S = T.tocsr()
    assert_csr(S, cfg.dtype)
    # one weight per entry: exact
    np.testing.assert_array_equal(S.toarray(), cfg.dense.astype(cfg.dtype))
    S2 = linop.conv_transpose_matrix(cfg.weight, cfg.input_shape, method=method, **cfg.kwargs)
    assert_csr(S2, cfg.dtype)
    np.testing.assert_array_equal(S2.toarray(), S.toarray())


def check_tconv_tocsr_is_conv_matrix_transposed(cfg, method):
    """ConvTranspose(w, in).tocsr() == conv_matrix(w, <its output shape>).T exactly
    (rows restricted when output_padding >= stride, see conv_rows_for)."""
    T = cfg.build(method)
    conv_kwargs = dict(stride=cfg.stride, padding=cfg.kwargs["padding"],
                       dilation=cfg.dilation, groups=cfg.groups)
    C = linop.conv_matrix(cfg.weight, T.output_shape, method=method, **conv_kwargs)
    conv_out = R.conv_output_shape(cfg.out_sp, cfg.ks, cfg.stride, cfg.pairs, cfg.dilation)
    if all(o < s for o, s in zip(cfg.op, cfg.stride)):
        assert C.shape == (T.shape[1], T.shape[0])
        np.testing.assert_array_equal(T.tocsr().toarray(), C.toarray().T)
    else:
        rows = conv_rows_for(cfg, conv_out)
        np.testing.assert_array_equal(T.tocsr().toarray(), C.toarray()[rows].T)


def check_tconv_transpose_views(cfg, method):
    T = cfg.build(method)
    M = cfg.dense
    assert T.T.shape == (T.shape[1], T.shape[0])
    assert T.T.input_shape == T.output_shape and T.T.output_shape == T.input_shape
    np.testing.assert_array_equal(T.T.tocsr().toarray(), M.T.astype(cfg.dtype))
    np.testing.assert_array_equal(T.H.tocsr().toarray(), M.conj().T.astype(cfg.dtype))
    rng = cfg.rng(13)
    z = random_array(rng, T.shape[0], cfg.dtype)
    bound = cfg.dense_abs.T @ np.abs(z)
    assert_close(T.T @ z, M.T @ z.astype(M.dtype), bound, cfg.dtype, "T.T @ z")
    assert_close(T.H @ z, M.conj().T @ z.astype(M.dtype), bound, cfg.dtype, "T.H @ z")
    np.testing.assert_array_equal(T.T.T.tocsr().toarray(), M.astype(cfg.dtype))
    assert type(T.T.T) is type(T)
    if all(o < s for o, s in zip(cfg.op, cfg.stride)):
        # the transpose of a ConvTranspose is the matching convolution
        assert "Transpose" not in type(T.T).__name__, type(T.T)


def check_tconv_adjoint_identity(cfg, method):
    T = cfg.build(method)
    rng = cfg.rng(14)
    y = random_array(rng, T.shape[1], cfg.dtype)
    z = random_array(rng, T.shape[0], cfg.dtype)
    lhs = np.vdot(z, T.matvec(y))
    rhs = np.vdot(T.rmatvec(z), y)
    scale = np.abs(z) @ (cfg.dense_abs @ np.abs(y))
    eps = np.finfo(cfg.dtype).eps
    assert abs(lhs - rhs) <= 100 * eps * max(scale, 1e-300) * math.sqrt(T.shape[0]), (lhs, rhs)


def check_tconv_attributes(cfg):
    T = cfg.build()
    # linop.testing's own output-shape formula agrees with the reference's
    assert cfg.config.expected_output_shape == cfg.output_shape
    assert T.stride == cfg.stride
    assert T.dilation == cfg.dilation
    assert T.padding == cfg.pairs
    assert T.output_padding == cfg.op
    assert T.groups == cfg.groups
    assert T.method in RESOLVED_METHODS
    np.testing.assert_array_equal(T.weight, cfg.weight)


TCONV_CHECKS = [check_tconv_matvec_rmatvec, check_tconv_apply_batch, check_tconv_tocsr,
                check_tconv_tocsr_is_conv_matrix_transposed, check_tconv_transpose_views,
                check_tconv_adjoint_identity]


@pytest.mark.parametrize("nd,dtype", TCONV_STRATA)
@settings(DRAWN, max_examples=TCONV_EXAMPLES)
@given(data=st.data())
def test_tconv_matches_reference(nd, dtype, data):
    """Every check on each drawn transposed convolution: the reference's
    self-consistency, the attributes, then matvec/rmatvec/matmat/rmatmat,
    apply/apply_adjoint with batch axes, tocsr, tocsr against the convolution matrix,
    .T/.H and the adjoint identity with each method."""
    cfg = draw_tconv(data, nd, dtype)
    check_reference_tconv_self_consistency(cfg)
    check_tconv_attributes(cfg)
    for method in METHODS:
        note(f"method={method!r}")  # the last one noted is the failing one
        for check in TCONV_CHECKS:
            check(cfg, method)


# ============================================================================
# 4. special cases
# ============================================================================
def test_conv_T_of_strided_conv_picks_output_padding(rng):
    """Conv with stride 2 on an odd and an even input: both map to the same output size,
    and A.T must reproduce the right input size (output_padding 0 resp. 1)."""
    w = rng.standard_normal((2, 3, 3, 3))
    for n in (7, 8):
        A = linop.Conv2d(w, (3, n, n), stride=2, padding=1)
        assert A.output_shape == (2, 4, 4)
        M = R.conv_matrix_dense(w, (3, n, n), stride=2, padding=1)
        assert A.T.output_shape == (3, n, n)
        np.testing.assert_array_equal(A.T.tocsr().toarray(), M.T)
        T = linop.ConvTranspose2d(w, (2, 4, 4), stride=2, padding=1, output_padding=n - 7)
        assert T.output_shape == (3, n, n)
        np.testing.assert_array_equal(T.tocsr().toarray(), M.T)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dtype_end_to_end(dtype, rng):
    """The weights' dtype is the operator's and every result's (float32 stays float32)."""
    dtype = np.dtype(dtype)
    w = random_array(rng, (2, 1, 3, 3), dtype)
    for kw in (dict(), dict(padding=1, padding_mode="reflect"),
               dict(padding="same", method="im2col")):
        A = linop.Conv2d(w, (2, 5, 4), groups=2, **kw)
        assert A.dtype == dtype
        x = random_array(rng, A.input_shape, dtype)
        y = random_array(rng, A.output_shape, dtype)
        assert A.matvec(x.ravel()).dtype == dtype
        assert A.rmatvec(y.ravel()).dtype == dtype
        assert A.matmat(x.reshape(-1, 1)).dtype == dtype
        assert A.rmatmat(y.reshape(-1, 1)).dtype == dtype
        assert A.apply(x[None]).dtype == dtype
        assert A.apply_adjoint(y).dtype == dtype
        assert A.tocsr().dtype == dtype
        assert A.T.dtype == dtype and (A.T @ y.ravel()).dtype == dtype
        assert A.H.dtype == dtype and (A.H @ y.ravel()).dtype == dtype
        assert A.T.tocsr().dtype == dtype
        assert linop.conv_matrix(w, (2, 5, 4), groups=2, **kw).dtype == dtype
    T = linop.ConvTranspose2d(w, (2, 3, 3), stride=2, output_padding=1)
    assert T.dtype == dtype
    assert T.apply(random_array(rng, (2, 3, 3), dtype)).dtype == dtype
    assert T.apply_adjoint(random_array(rng, T.output_shape, dtype)).dtype == dtype
    assert T.tocsr().dtype == dtype
    assert linop.conv_transpose_matrix(w, (2, 3, 3), stride=2).dtype == dtype


def test_dtype_promotion(rng):
    """Integer weights give float64; inputs promote with the operator's dtype."""
    w = np.array([[1, 2], [3, 4]])
    A = linop.Conv2d(w, (3, 3))
    assert A.dtype == np.float64
    assert A.tocsr().dtype == np.float64
    x = np.arange(9).reshape(3, 3)
    np.testing.assert_array_equal(A.apply(x), R.conv_nd(x[None], w[None, None])[0])
    A32 = linop.Conv2d(w.astype(np.float32), (3, 3))
    # a float64 input promotes a float32 operator (numpy's rules)
    assert A32.apply(x.astype(np.float64)).dtype == np.float64
    # a complex input to a real operator: A(xr) + i A(xi)
    B = linop.Conv1d(rng.standard_normal((2, 1, 3)), (1, 6), padding=1, padding_mode="circular")
    xr, xi = rng.standard_normal((2, 1, 6))
    got = B.apply(xr + 1j * xi)
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, B.apply(xr) + 1j * B.apply(xi), rtol=1e-14, atol=1e-14)
    gotH = B.apply_adjoint(got)
    np.testing.assert_allclose(gotH, B.apply_adjoint(got.real) + 1j * B.apply_adjoint(got.imag),
                               rtol=1e-14, atol=1e-14)


def test_complex_weights_not_conjugated():
    """matvec uses w as given (PyTorch); rmatvec conjugates; .T does not."""
    w = np.array([1 + 2j, 3 - 1j])
    A = linop.Conv1d(w, (3,))
    x = np.array([1.0, 1j, 2.0])
    np.testing.assert_allclose(A @ x, [w[0] * x[0] + w[1] * x[1], w[0] * x[1] + w[1] * x[2]],
                               rtol=1e-15)
    y = np.array([1.0, 1.0])
    np.testing.assert_allclose(A.T @ y, [w[0], w[0] + w[1], w[1]], rtol=1e-15)
    np.testing.assert_allclose(A.H @ y, np.conj([w[0], w[0] + w[1], w[1]]), rtol=1e-15)
    np.testing.assert_allclose(A.rmatvec(y), np.conj([w[0], w[0] + w[1], w[1]]), rtol=1e-15)


@pytest.mark.parametrize("method", METHODS)
def test_padding_forms_equivalent(method, rng):
    """int == per-axis == pairs == the explicit values; 'valid' == 0; 'same' keeps size."""
    w = rng.standard_normal((3, 2, 3, 2))
    shape = (2, 5, 6)

    def dense(**kw):
        return linop.Conv2d(w, shape, method=method, **kw).tocsr().toarray()

    np.testing.assert_array_equal(dense(padding=1), dense(padding=(1, 1)))
    np.testing.assert_array_equal(dense(padding=1), dense(padding=((1, 1), (1, 1))))
    np.testing.assert_array_equal(dense(padding=(2, 0)), dense(padding=((2, 2), (0, 0))))
    np.testing.assert_array_equal(dense(padding="valid"), dense(padding=0))
    for mode in MODES:
        A = linop.Conv2d(w, shape, padding="same", padding_mode=mode, method=method)
        assert A.output_shape == (3, 5, 6)
        assert A.padding == ((1, 1), (0, 1))
        np.testing.assert_array_equal(
            A.tocsr().toarray(),
            dense(padding=((1, 1), (0, 1)), padding_mode=mode))
        B = linop.Conv2d(w, shape, padding="same", dilation=(2, 3), padding_mode=mode,
                         method=method)
        assert B.output_shape == (3, 5, 6)
        assert B.padding == ((2, 2), (1, 2))


def test_methods_agree_large_channels(rng):
    """Every method on a many-channel case agrees with the others and the reference."""
    w = rng.standard_normal((6, 4, 3, 3))
    x = rng.standard_normal((3, 4, 9, 7))
    ops = [linop.Conv2d(w, (4, 9, 7), stride=(1, 2), padding=1, padding_mode="reflect",
                        method=m) for m in METHODS]
    ref = R.conv_nd(x, w, stride=(1, 2), padding=1, padding_mode="reflect")
    bound = R.conv_nd(np.abs(x), np.abs(w), stride=(1, 2), padding=1, padding_mode="reflect")
    outs = [A.apply(x) for A in ops]
    for out in outs:
        assert_close(out, ref, bound, np.float64, "apply")
    for other, method in zip(outs[1:], METHODS[1:]):
        assert_close(outs[0], other, bound, np.float64, f"toeplitz vs {method}")
    y = rng.standard_normal((2,) + ops[0].output_shape)
    a0, *others = (A.apply_adjoint(y) for A in ops)
    for a1 in others:
        np.testing.assert_allclose(a0, a1, rtol=1e-12, atol=1e-12 * np.abs(a0).max())


# ----------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------
W2 = np.ones((4, 2, 3, 3))  # conv: C_out 4, C_in/groups 2


def _bad_conv_cases():
    C = lambda **kw: ("Conv2d", W2, (2, 6, 6), kw)  # noqa: E731
    cases = [
        (C(stride=0), ("stride",)),
        (C(stride=-1), ("stride",)),
        (C(stride=1.5), ("stride",)),
        (C(stride=(1, 2, 1)), ("stride",)),
        (C(stride="2"), ("stride",)),
        (C(dilation=0), ("dilation",)),
        (C(dilation=(1, 0)), ("dilation",)),
        (C(dilation=2.0 + 0.5), ("dilation",)),
        (C(padding=-1), ("padding",)),
        (C(padding=(1, -2)), ("padding",)),
        (C(padding=((1, 2), (0, -1))), ("padding",)),
        (C(padding=(1, 2, 3)), ("padding",)),
        (C(padding=1.5), ("padding",)),
        (C(padding="full"), ("padding",)),
        (C(padding="same", stride=2), ("padding", "stride")),
        (C(padding="same", stride=(1, 2)), ("padding", "stride")),
        (C(groups=0), ("groups",)),
        (C(groups=3), ("groups", "input_shape")),  # 3 divides neither C_out 4 nor C_in 2
        (("Conv2d", W2, (4, 6, 6), dict(groups=3)), ("groups", "input_shape")),
        (("Conv2d", np.ones((3, 2, 3, 3)), (4, 6, 6), dict(groups=2)), ("groups",)),  # C_out 3
        (C(groups=1.0), ("groups",)),
        (C(padding_mode="mirror"), ("padding_mode",)),
        (C(padding_mode=None), ("padding_mode",)),
        (C(method="no-such-method"), ("method",)),
        (("Conv2d", W2, (3, 6, 6), {}), ("input_shape",)),  # channel mismatch
        (("Conv2d", W2, (2, 6, 6), dict(groups=2)), ("input_shape", "groups")),  # needs 4
        (("Conv2d", W2, (2, 6), {}), ("input_shape",)),  # wrong length
        (("Conv2d", W2, (2, 6, 0), {}), ("input_shape",)),  # empty axis
        (("Conv2d", W2, (2, 6, -6), {}), ("input_shape",)),
        (("Conv2d", np.ones((4, 2, 3)), (2, 6, 6), {}), ("weight",)),  # 3-D weight for 2d
        (("Conv2d", np.ones((2, 2, 2, 3, 3)), (2, 6, 6), {}), ("weight",)),
        (("Conv1d", np.ones((3, 3)), (3, 5), {}), ("weight", "input_shape")),
        (("Conv3d", np.ones((1, 1, 3, 3)), (1, 4, 4, 4), {}), ("weight",)),
        (("Conv2d", np.ones((4, 2, 0, 3)), (2, 6, 6), {}), ("weight", "kernel")),
        (("Conv2d", np.array([["a"]]), (3, 3), {}), ("weight", "dtype")),
        # kernel larger than the (padded) input
        (("Conv2d", W2, (2, 2, 6), {}), ("input_shape", "weight", "kernel", "output")),
        (("Conv2d", W2, (2, 6, 4), dict(dilation=(1, 2))),
         ("input_shape", "weight", "kernel", "output", "dilation")),
        (("Conv1d", np.ones(5), (3,), dict(padding=(0,))),
         ("input_shape", "weight", "kernel", "output")),
        # padding-mode limits
        (C(padding=6, padding_mode="reflect"), ("padding",)),
        (C(padding=((0, 0), (0, 6)), padding_mode="reflect"), ("padding",)),
        (C(padding=7, padding_mode="circular"), ("padding",)),
        (C(padding=((7, 0), (0, 0)), padding_mode="circular"), ("padding",)),
        (("Conv1d", np.ones((1, 1, 1)), (1, 1), dict(padding=1, padding_mode="reflect")),
         ("padding",)),
    ]
    return cases


def _weight_ndim_case(cls_name, w, shape):
    """weight/input_shape ranks that do not fit the class (ConvNd wants an N-D kernel with
    N sizes, or N + 2 weight axes with N + 1 sizes). conv_matrix infers the rank from the
    weight, so these cases can be valid there."""
    nd = int(cls_name[-2])
    return (np.ndim(w), len(shape)) not in ((nd, nd), (nd + 2, nd + 1))


def _make(cls_name, *args, **kw):
    return getattr(linop, cls_name)(*args, **kw)


def _case_ids(cases):
    return [f"{c[0]}-{np.shape(c[1])}-{c[2]}-" + ",".join(f"{k}={v}" for k, v in c[3].items())
            for c, _ in cases]


@pytest.mark.parametrize("case,names", _bad_conv_cases(), ids=_case_ids(_bad_conv_cases()))
def test_conv_validation(case, names):
    cls_name, w, shape, kw = case
    with pytest.raises((ValueError, TypeError)) as info:
        _make(cls_name, w, shape, **kw)
    msg = str(info.value)
    assert any(n in msg for n in names), f"message {msg!r} names none of {names}"
    if "method" not in kw and not _weight_ndim_case(cls_name, w, shape):
        # conv_matrix validates the same way (except the weight-ndim-vs-class cases: it
        # infers the number of spatial axes from the weight, so those may be valid there)
        with pytest.raises((ValueError, TypeError)):
            linop.conv_matrix(w, shape, **kw)


@pytest.mark.parametrize("mode,n,p", [("reflect", 4, 3), ("circular", 4, 4),
                                      ("replicate", 2, 5), ("zeros", 1, 4)])
def test_padding_mode_limits_accepted(mode, n, p):
    """The largest allowed paddings construct and match the reference."""
    w = np.array([[[1.0, -2.0, 3.0]]])
    A = linop.Conv1d(w, (1, n), padding=p, padding_mode=mode)
    np.testing.assert_allclose(A.tocsr().toarray(),
                               R.conv_matrix_dense(w, (1, n), padding=p, padding_mode=mode),
                               rtol=1e-14, atol=1e-14)


WT = np.ones((4, 1, 3, 3))  # transposed: C_in 4, C_out/groups 1


def _bad_tconv_cases():
    T = lambda **kw: ("ConvTranspose2d", WT, (4, 3, 3), kw)  # noqa: E731
    return [
        (T(stride=0), ("stride",)),
        (T(stride=1.5), ("stride",)),
        (T(dilation=0), ("dilation",)),
        (T(padding=-1), ("padding",)),
        (T(padding="same"), ("padding",)),
        (T(output_padding=-1), ("output_padding",)),
        (T(output_padding=1), ("output_padding",)),  # stride 1, dilation 1
        (T(stride=2, output_padding=2), ("output_padding",)),
        (T(stride=(2, 1), output_padding=(1, 1)), ("output_padding",)),
        (T(stride=2, dilation=3, output_padding=3), ("output_padding",)),
        (T(output_padding=(0, 0, 0)), ("output_padding",)),
        (T(groups=3), ("groups",)),
        (T(groups=0), ("groups",)),
        (T(method="direct"), ("method",)),
        (("ConvTranspose2d", WT, (3, 3, 3), {}), ("input_shape",)),
        (("ConvTranspose2d", WT, (4, 3), {}), ("input_shape",)),
        (("ConvTranspose2d", np.ones((4, 1, 3)), (4, 3, 3), {}), ("weight",)),
        (("ConvTranspose1d", np.ones((1, 1, 3)), (1, 3, 3), {}), ("weight", "input_shape")),
        # output size < 1: padding eats everything
        (T(padding=3), ("padding", "output", "input_shape")),
    ]


@pytest.mark.parametrize("case,names", _bad_tconv_cases(), ids=_case_ids(_bad_tconv_cases()))
def test_tconv_validation(case, names):
    cls_name, w, shape, kw = case
    with pytest.raises((ValueError, TypeError)) as info:
        _make(cls_name, w, shape, **kw)
    msg = str(info.value)
    assert any(n in msg for n in names), f"message {msg!r} names none of {names}"
    if "method" not in kw and not _weight_ndim_case(cls_name, w, shape):
        with pytest.raises((ValueError, TypeError)):
            linop.conv_transpose_matrix(w, shape, **kw)


@pytest.mark.parametrize("method", METHODS)
def test_empty_batch(method):
    """A batch of zero arrays (and a matmat with zero columns) gives empty results."""
    w = np.ones((3, 2, 3, 3))
    A = linop.Conv2d(w, (2, 5, 6), padding=1, method=method)
    assert A.apply(np.zeros((0, 2, 5, 6))).shape == (0, 3, 5, 6)
    assert A.apply_adjoint(np.zeros((4, 0, 3, 5, 6))).shape == (4, 0, 2, 5, 6)
    assert A.matmat(np.zeros((A.shape[1], 0))).shape == (A.shape[0], 0)
    T = linop.ConvTranspose2d(w, (3, 2, 2), method=method)
    assert T.apply(np.zeros((0, 3, 2, 2))).shape == (0,) + T.output_shape


def test_output_padding_allowed_by_dilation(rng):
    """output_padding may reach max(stride, dilation) - 1 even when >= stride."""
    w = rng.standard_normal((1, 2, 3))
    y = rng.standard_normal((1, 4))
    T = linop.ConvTranspose1d(w, (1, 4), stride=1, dilation=3, output_padding=2)
    assert T.output_shape == (2, 4 + 6 + 2)
    ref = R.conv_transpose_nd(y, w, stride=1, dilation=3, output_padding=2)
    np.testing.assert_allclose(T.apply(y), ref, rtol=1e-14, atol=1e-14)
    assert np.all(T.apply(y)[:, -2:] == 0)  # nothing scatters into the output padding



# ============================================================================
# 5. the whole space of the strategies: every method ("auto" included), bare kernels,
#    against the scalar loops of the reference
# ============================================================================
@settings(DRAWN, max_examples=25)
@given(config=conv_configs(transpose=False))
def test_hypothesis_conv_matches_reference(config):
    cfg = Case(config)
    A = config.build()
    rng = cfg.rng(20)
    x = random_array(rng, cfg.input_shape, cfg.dtype)
    hi = high(cfg.dtype)
    ref = R.conv_nd_scalar(x.reshape(cfg.in_shape_c).astype(hi), cfg.w_full.astype(hi),
                           **cfg.ref_kwargs).reshape(cfg.output_shape)
    bound = cfg.ref_apply_abs(x)
    assert_close(A.apply(x), ref, bound, cfg.dtype, "apply")
    # adjoint identity
    y = random_array(rng, A.output_shape, cfg.dtype)
    lhs = np.vdot(y, A.apply(x))
    rhs = np.vdot(A.apply_adjoint(y), x)
    assert abs(lhs - rhs) <= 1e3 * np.finfo(cfg.dtype).eps * (np.abs(y).ravel() @ bound.ravel()
                                                              + 1e-300)


@settings(DRAWN, max_examples=25)
@given(config=conv_configs(transpose=True, max_dilation=3))
def test_hypothesis_tconv_matches_scatter_reference(config):
    cfg = Case(config)
    T = config.build()
    rng = cfg.rng(21)
    y = random_array(rng, cfg.input_shape, cfg.dtype)
    hi = high(cfg.dtype)
    ref = R.conv_transpose_nd_scalar(y.reshape(cfg.in_shape_c).astype(hi),
                                     cfg.w_full.astype(hi),
                                     **cfg.ref_kwargs).reshape(cfg.output_shape)
    bound = cfg.ref_apply_abs(y)
    assert_close(T.apply(y), ref, bound, cfg.dtype, "tconv apply")
    np.testing.assert_array_equal(
        T.tocsr().toarray(),
        R.conv_transpose_matrix_dense(cfg.w_full, cfg.in_shape_c,
                                      **cfg.ref_kwargs).astype(cfg.dtype))
    z = random_array(rng, T.output_shape, cfg.dtype)
    lhs = np.vdot(z, T.apply(y))
    rhs = np.vdot(T.apply_adjoint(z), y)
    assert abs(lhs - rhs) <= 1e3 * np.finfo(cfg.dtype).eps * (np.abs(z).ravel() @ bound.ravel()
                                                              + 1e-300)
