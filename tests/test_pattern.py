"""The two constructions of the one-channel Toeplitz matrix against the reference.

`linop._conv.direct` writes zero-padded one-channel matrices straight into
CSR; `linop._conv.toeplitz` builds every other matrix from the masked tap
table of `linop._conv.taps`. Both must equal the naive dense matrix, and each
other to the last bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import linop
import linop._conv.direct
from linop._conv.geometry import conv_geometry
from linop._conv.taps import tap_table
from linop._conv.toeplitz import toeplitz_matrix
from reference import conv_matrix_dense


def _random_geometry(rng, nd):
    while True:
        size = tuple(int(v) for v in rng.integers(1, 8, nd))
        kernel = tuple(int(v) for v in rng.integers(1, 5, nd))
        stride = tuple(int(v) for v in rng.integers(1, 4, nd))
        dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
        padding = tuple((int(a), int(b)) for a, b in rng.integers(0, 5, (nd, 2)))
        try:
            return conv_geometry(size, kernel, stride=stride, padding=padding, dilation=dilation)
        except ValueError:
            continue


def _axis(geometry, a):
    return (geometry.input_size[a], geometry.output_size[a], geometry.kernel_size[a],
            geometry.stride[a], geometry.dilation[a], geometry.padding[a][0])


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("trial", range(15))
def test_direct_construction_equals_reference_and_general(nd, trial, rng):
    geometry = _random_geometry(rng, nd)
    kernel = rng.standard_normal(geometry.kernel_size)
    direct = linop._conv.direct.one_channel_toeplitz(geometry, kernel, np.dtype(np.int32))
    general = toeplitz_matrix(tap_table(geometry), kernel.reshape(1, 1, -1), 1, "zeros")
    dense = conv_matrix_dense(
        kernel[None, None], (1,) + geometry.input_size, stride=geometry.stride,
        padding=geometry.padding, dilation=geometry.dilation,
    )
    np.testing.assert_array_equal(general.toarray(), dense)
    if direct is None:  # too many row classes: the general construction serves
        classes = np.prod([len(linop._conv.direct._axis_runs(*_axis(geometry, a))[1])
                           for a in range(nd)])
        assert classes > linop._conv.direct.MAX_CLASSES
        return
    np.testing.assert_array_equal(direct.toarray(), dense)
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(direct, name), getattr(general, name))
    assert direct.has_sorted_indices and direct.indices.dtype == np.int32


def test_direct_construction_declines_when_the_kernel_covers_the_image(rng):
    geometry = conv_geometry((9, 9), (9, 9), padding="same")
    kernel = rng.standard_normal((9, 9))
    assert linop._conv.direct.one_channel_toeplitz(geometry, kernel, np.dtype(np.int32)) is None
    dense = conv_matrix_dense(kernel[None, None], (1, 9, 9), padding=((4, 4), (4, 4)))
    np.testing.assert_array_equal(linop.conv_matrix(kernel, (9, 9), padding="same").toarray(),
                                  dense)


def test_direct_construction_with_int64_indices(rng):
    geometry = conv_geometry((7, 6), (3, 2), stride=(2, 1), padding=((2, 1), (0, 3)))
    kernel = rng.standard_normal((3, 2))
    matrix = linop._conv.direct.one_channel_toeplitz(geometry, kernel, np.dtype(np.int64))
    assert matrix.indices.dtype == np.int64 and matrix.indptr.dtype == np.int64
    dense = conv_matrix_dense(kernel[None, None], (1, 7, 6), stride=(2, 1),
                              padding=((2, 1), (0, 3)))
    np.testing.assert_array_equal(matrix.toarray(), dense)
