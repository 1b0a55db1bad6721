"""linop.linalg's operators are values: a forked child and a deep copy give the same numbers.

The inverse and pseudo-inverse (`FrequencyOperator`) and the preconditioners
of every kind are applied in a child process started by ``fork`` and in a
deep copy; both must give the parent's numbers bit for bit, and the parent's
numbers are checked against NumPy's dense inverse, pseudo-inverse and
normal-equation inverse of the explicit matrix.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

import linop
from conftest import forked_product
from linop import linalg

TIMEOUT = 60  # seconds: far above what any of these takes


def _symmetric(rng, k):
    h = rng.standard_normal(k)
    h = h + h[::-1]
    return np.outer(h, h) + 0.1 * np.eye(k)[::-1] + 0.1 * np.eye(k)


def _cases():
    rng = np.random.default_rng(3)
    circ = linop.Conv2d(rng.standard_normal((2, 2, 3, 3)), (2, 6, 6), padding=1,
                        padding_mode="circular")
    strided = linop.Conv2d(rng.standard_normal((3, 2, 2, 2)), (2, 6, 6),
                           padding=((0, 1), (0, 1)), padding_mode="circular", stride=2)
    M_circ = circ.tocsr().toarray()
    M_str = strided.tocsr().toarray()
    cases = [("inv", linalg.inv(circ), np.linalg.inv(M_circ)),
             ("pinv", linalg.pinv(strided), np.linalg.pinv(M_str))]
    damp = 0.3
    for mode in ("circular", "reflect", "zeros"):
        A = linop.Conv2d(_symmetric(rng, 3), (7, 7), padding=1, padding_mode=mode)
        M = A.tocsr().toarray()
        P = linalg.preconditioner(A, damp)
        ref = np.linalg.inv(M.T @ M + damp**2 * np.eye(M.shape[1]))
        # only the block-circulant (exact) form equals the inverse; the others approximate it
        cases.append((f"preconditioner-{mode}", P, ref if P.kind == "exact" else None))
    return cases


CASES = _cases()


@pytest.mark.processes
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
@pytest.mark.parametrize(("name", "op", "ref"), CASES, ids=[c[0] for c in CASES])
def test_fork_and_deepcopy_give_the_parents_numbers(name, op, ref):
    x = np.random.default_rng(0).standard_normal(op.shape[1])
    expected = op @ x
    if ref is not None:
        np.testing.assert_allclose(expected, ref @ x, rtol=1e-10, atol=1e-10)
    else:  # an SPD approximation: positive along x
        assert float(x @ expected) > 0
    data, _ = forked_product(op, x, TIMEOUT)
    assert data is not None, "the forked child never answered"
    got = np.frombuffer(data, dtype=expected.dtype)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(copy.deepcopy(op) @ x, expected)
