"""Compare every linop operator with PyTorch golden data (torch not needed).

The data, ``tests/data/torch_reference.npz``, are written by
``tests/data/make_reference.py`` with torch; ``tests/golden.py`` loads them.
For every stored case the linop operator is built from the stored
parameters and weight and must reproduce torch's output shape, output
(``apply``) and input-gradient (``apply_adjoint`` of the stored cotangent),
to a relative (to the largest magnitude) error of 1e-5 in single and 1e-12
in double precision.  Convolutions are checked with both methods.
"""

from __future__ import annotations

import numpy as np
import pytest

import golden
import linop
from conftest import METHODS

CASES = golden.load_cases()
CONV_CASES = [c for c in CASES if c["kind"] in ("conv", "conv_transpose")]
INTERP_CASES = [c for c in CASES if c["kind"] == "interpolate"]
SEED_CASES = [c for c in CASES if "A" in c]


def _params(cases):
    return [pytest.param(c, id=golden.case_id(c)) for c in cases]


def test_golden_file():
    info = golden.file_info()
    assert info["torch_version"]
    kinds = {c["kind"] for c in CASES}
    assert kinds == {"conv", "conv_transpose", "interpolate"}
    assert len(CASES) >= 300
    for c in CASES:
        assert c["y"].shape == (c["batch"],) + c["output_shape"], c["name"]
        assert c["x"].shape == (c["batch"],) + c["input_shape"], c["name"]
        assert c["gx"].shape == c["x"].shape and c["gy"].shape == c["y"].shape
        assert c["y"].dtype == np.dtype(c["dtype"]), c["name"]
    modes = {c["params"]["mode"] for c in INTERP_CASES}
    assert modes == {"nearest", "nearest-exact", "linear", "bilinear", "bicubic",
                     "trilinear", "area"}
    assert {c["params"]["padding_mode"] for c in CASES if c["kind"] == "conv"} == {
        "zeros", "reflect", "replicate", "circular"}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", _params(CONV_CASES))
def test_conv_matches_torch(case, method):
    errors = golden.compare(linop, case, method)
    assert max(errors.values()) <= golden.TOLERANCE[case["dtype"]]


@pytest.mark.parametrize("case", _params(CONV_CASES))
def test_conv_padding_normalised(case):
    """The ``padding`` attribute holds the normalised (lo, hi) pairs; building
    with those pairs gives the same operator."""
    op = golden.build(linop, case)
    pairs = tuple(tuple(p) for p in case["params"]["padding_pairs"])
    assert tuple(tuple(int(v) for v in p) for p in op.padding) == pairs
    if case["params"]["padding"] != pairs:
        same = dict(case, params=dict(case["params"], padding=pairs))
        golden.compare(linop, same)


@pytest.mark.parametrize("case", _params(INTERP_CASES))
def test_upsample_matches_torch(case):
    errors = golden.compare(linop, case)
    assert max(errors.values()) <= golden.TOLERANCE[case["dtype"]]


@pytest.mark.parametrize("case", _params(SEED_CASES))
def test_seed_matrices(case):
    """The seed blog's examples: the explicit matrix is torch's Jacobian
    (the 4x16 convolution matrix and the 16x4 transposed one)."""
    op = golden.build(linop, case)
    A = op.tocsr()
    np.testing.assert_array_equal(A.toarray(), case["A"])
    make = linop.conv_matrix if case["kind"] == "conv" else linop.conv_transpose_matrix
    _, args, kwargs = golden.linop_call(case)
    np.testing.assert_array_equal(make(*args, **kwargs).toarray(), case["A"])
    np.testing.assert_array_equal(op.apply(case["x"]), case["y"])
