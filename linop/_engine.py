"""The convolution engine: one geometry and weight, two ways to apply them.

`ConvEngine` computes ``A x`` and ``A^T y`` for the convolution matrix ``A``
of a geometry and a weight, on batches shaped ``(B, C, n_pixels)``:

- ``"toeplitz"`` multiplies by the explicit CSR matrix (best for one channel
  in and out per group: one sparse product, nothing else);
- ``"im2col"`` gathers the patches ``P X`` (strided slices of the padded
  input, `linop._gather`) and contracts them with the weights in one GEMM
  per group, ``Y = W (P X)``; the adjoint scatters back with the sparse
  channel-free patch matrix, ``A^T Y = P^T (W^T Y)`` (best when channels
  multiply the matrix's size).

The transposed convolution and the Hermitian adjoint reuse the same engine,
so the two directions can never diverge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from linop._gather import gather_patches, pad_input
from linop._geometry import ConvGeometry
from linop._memory import check_matrix_size, csr_nbytes, get_memory_limit
from linop._direct import one_channel_toeplitz
from linop._threads import csr_matmul
from linop._pattern import index_dtype, patch_matrix, tap_table, toeplitz_matrix, toeplitz_nnz

__all__ = ["METHODS", "PATCH_BUFFER_BYTES", "ConvEngine", "PatchChunk"]

METHODS = ("auto", "toeplitz", "im2col")

#: Most bytes of gathered patches that im2col holds at once (one block of
#: output pixels times the samples processed together).
PATCH_BUFFER_BYTES = 64 * 2**20


@dataclass(frozen=True)
class PatchChunk:
    """Output pixels ``[start, stop)`` of the transposed patch matrix.

    ``scatter`` is ``P^T`` restricted to those pixels' patch rows and to the
    input pixels ``[lo, hi)`` they read, in CSR.
    """

    start: int
    stop: int
    lo: int
    hi: int
    scatter: sp.csr_array


def _csr_apply(matrix: sp.csr_array, a: np.ndarray) -> np.ndarray:
    """``matrix @ a[i].ravel()`` for every sample ``i`` of the batch ``a``."""
    if a.shape[0] == 1:  # a plain vector: SciPy's matvec kernel, not its multi-vector one
        return csr_matmul(matrix, a.reshape(-1))[None]
    columns = np.ascontiguousarray(a.reshape(a.shape[0], -1).T)
    return np.ascontiguousarray(csr_matmul(matrix, columns).T)


def _real_dtype(dtype: np.dtype) -> np.dtype:
    return np.empty(0, dtype=dtype).real.dtype


class ConvEngine:
    """Convolution ``(B, C_in, n_in) -> (B, C_out, n_out)`` and its transpose.

    Parameters
    ----------
    geometry : ConvGeometry
    weight : ndarray, shape (C_out, C_in // groups, *kernel_size)
    groups : int
    method : {"auto", "toeplitz", "im2col"}
    """

    def __init__(self, geometry: ConvGeometry, weight: np.ndarray, groups: int, method: str):
        self.geometry = geometry
        self.weight = weight
        self.groups = groups
        self.c_out = weight.shape[0]
        self.cin_group = weight.shape[1]
        self.c_in = self.cin_group * groups
        self.n_in = math.prod(geometry.input_size)
        self.n_out = math.prod(geometry.output_size)
        self.n_taps = math.prod(geometry.kernel_size)
        self.method = self._choose_method() if method == "auto" else method

    def _choose_method(self) -> str:
        # The explicit matrix costs nnz_1 * C_out * C_in/groups multiply-adds
        # through a memory-bound CSR product; im2col gathers nnz_1 * C_in
        # entries and hands the channel mixing to BLAS. With a single channel
        # in and out per group there is no mixing to hand over.
        if self.c_out // self.groups * self.cin_group != 1:
            return "im2col"
        nbytes = 2 * csr_nbytes(self.toeplitz_nnz(), self.c_out * self.n_out, self.weight.dtype)
        return "toeplitz" if nbytes <= get_memory_limit() else "im2col"

    # -- cached structures --------------------------------------------------
    @cached_property
    def table(self):
        return tap_table(self.geometry)

    @cached_property
    def matrix(self):
        """The explicit CSR matrix ``A``, cached for the Toeplitz method."""
        return self.build_matrix()

    def build_matrix(self):
        """Build the explicit CSR matrix ``A`` (sized against the memory limit first)."""
        shape = (self.c_out * self.n_out, self.c_in * self.n_in)
        check_matrix_size(self.toeplitz_nnz(), self.weight.dtype, shape, "convolution")
        if self.c_out == self.c_in == 1 and self.geometry.padding_mode == "zeros":
            kernel = self.weight.reshape(self.geometry.kernel_size)
            idx_dtype = index_dtype(self.toeplitz_nnz(), self.n_in, self.n_out)
            matrix = one_channel_toeplitz(self.geometry, kernel, idx_dtype)
            if matrix is not None:
                return matrix
        w = self.weight.reshape(self.c_out, self.cin_group, self.n_taps)
        return toeplitz_matrix(self.table, w, self.groups, self.geometry.padding_mode)

    @cached_property
    def matrix_transpose(self):
        """``A^T`` in CSR; built from a fresh ``A`` unless ``A`` is cached already."""
        matrix = self.__dict__.get("matrix")
        return (matrix if matrix is not None else self.build_matrix()).T.tocsr()

    @cached_property
    def patch_chunks(self) -> list[PatchChunk]:
        """``P^T`` (the im2col scatter) cut into blocks of output pixels.

        The patches of one block take at most `PATCH_BUFFER_BYTES` for one
        sample, so the adjoint never holds ``n_out*K*C_in`` values at once;
        each block scatters back only to the contiguous range of input
        pixels it touches.
        """
        patches = patch_matrix(self.table, _real_dtype(self.weight.dtype))
        itemsize = np.dtype(self.weight.dtype).itemsize
        pixels = max(1, PATCH_BUFFER_BYTES // (self.n_taps * self.c_in * itemsize))
        chunks = []
        for start in range(0, self.n_out, pixels):
            stop = min(start + pixels, self.n_out)
            block = patches[start * self.n_taps : stop * self.n_taps]
            lo, hi = (int(block.indices.min()), int(block.indices.max()) + 1) if block.nnz else (0, 0)
            local = sp.csr_array(
                (block.data, block.indices - block.indices.dtype.type(lo), block.indptr),
                shape=(block.shape[0], hi - lo),
            )
            chunks.append(PatchChunk(start, stop, lo, hi, local.T.tocsr()))
        return chunks

    @cached_property
    def _gemm_weight(self):
        """Weights as ``(groups, K*C_in/groups, C_out/groups)``, rows ordered (tap, channel).

        Its transpose maps ``Y`` to patches in the row layout of the
        scatter ``P^T``: one GEMM per group, then one sparse product.
        """
        g, cin_g, cout_g = self.groups, self.cin_group, self.c_out // self.groups
        w = self.weight.reshape(g, cout_g, cin_g, self.n_taps)
        return np.ascontiguousarray(w.transpose(0, 3, 2, 1)).reshape(g, -1, cout_g)

    def __getstate__(self):
        # Pickle the definition, not the caches: a used operator stays small
        # to ship (e.g. to Dask workers), and the patterns are rebuilt there.
        state = self.__dict__.copy()
        for name, attr in vars(type(self)).items():
            if isinstance(attr, cached_property):
                state.pop(name, None)
        return state

    def toeplitz_nnz(self) -> int:
        """Stored entries of the explicit matrix, before building it."""
        return toeplitz_nnz(self.geometry) * self.c_out * self.cin_group

    def conjugate(self) -> "ConvEngine":
        """The engine of ``conj(A)``: conjugated weights, shared pattern."""
        other = ConvEngine(self.geometry, self.weight.conj(), self.groups, self.method)
        if "table" in self.__dict__:
            other.table = self.table
        if "patch_chunks" in self.__dict__:
            other.patch_chunks = self.patch_chunks
        return other

    # -- application ----------------------------------------------------------
    def _batches(self, batch: int, per_sample_bytes: int):
        """Slices of the batch whose gathered patches fit the buffer budget."""
        step = max(1, PATCH_BUFFER_BYTES // max(1, per_sample_bytes))
        return [slice(b, min(b + step, batch)) for b in range(0, batch, step)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``A x`` for ``x`` of shape ``(B, C_in, n_in)`` -> ``(B, C_out, n_out)``."""
        batch = x.shape[0]
        if self.method == "toeplitz":
            return _csr_apply(self.matrix, x).reshape(batch, self.c_out, self.n_out)
        g, cin_g, cout_g = self.groups, self.cin_group, self.c_out // self.groups
        spatial = self.geometry.output_size
        per_row = math.prod(spatial[1:])  # outputs in one row of the first axis
        row_bytes = per_row * self.n_taps * self.c_in * x.itemsize
        rows_per_block = max(1, PATCH_BUFFER_BYTES // row_bytes)
        weight = self.weight.reshape(g, cout_g, cin_g * self.n_taps)
        out = np.empty((batch, g, cout_g, self.n_out), dtype=np.result_type(x, self.weight))
        x = x.reshape((batch, self.c_in) + self.geometry.input_size)
        for part in self._batches(batch, spatial[0] * row_bytes):
            xpad = pad_input(x[part], self.geometry)
            for start in range(0, spatial[0], rows_per_block):
                rows = slice(start, min(start + rows_per_block, spatial[0]))
                cols = gather_patches(xpad, self.geometry, rows)  # (b, C_in, K, n)
                cols = cols.reshape(part.stop - part.start, g, cin_g * self.n_taps, -1)
                block = out[part, :, :, rows.start * per_row : rows.stop * per_row]
                np.matmul(weight, cols, out=block)
        return out.reshape(batch, self.c_out, self.n_out)

    def transpose(self, y: np.ndarray) -> np.ndarray:
        """``A^T y`` (no conjugation) for ``y`` of shape ``(B, C_out, n_out)``."""
        batch = y.shape[0]
        if self.method == "toeplitz":
            return _csr_apply(self.matrix_transpose, y).reshape(batch, self.c_in, self.n_in)
        g, cin_g, cout_g, taps = self.groups, self.cin_group, self.c_out // self.groups, self.n_taps
        chunks = self.patch_chunks
        largest = max(c.stop - c.start for c in chunks)
        weight_t = self._gemm_weight.transpose(0, 2, 1)  # (G, cout_g, K*cin_g)
        y = y.reshape(batch, g, cout_g, self.n_out).transpose(0, 1, 3, 2)
        x = np.empty((batch * self.c_in, self.n_in), dtype=np.result_type(y, self.weight))
        for part in self._batches(batch, largest * taps * self.c_in * y.itemsize):
            b = part.stop - part.start
            xt = np.zeros((self.n_in, b * self.c_in), dtype=x.dtype)
            for c in chunks:
                n = c.stop - c.start
                cols = np.matmul(y[part, :, c.start : c.stop], weight_t)  # (b, G, n, K*cin_g)
                cols = cols.reshape(b, g, n, taps, cin_g).transpose(2, 3, 0, 1, 4)
                cols = np.ascontiguousarray(cols).reshape(n * taps, b * self.c_in)
                xt[c.lo : c.hi] += csr_matmul(c.scatter, cols)
            x[part.start * self.c_in : part.stop * self.c_in] = xt.T
        return x.reshape(batch, self.c_in, self.n_in)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``A^H y = conj(A^T conj(y))``."""
        if np.iscomplexobj(self.weight):
            return self.transpose(y.conj()).conj()
        return self.transpose(y)

    def forward_conjugate(self, x: np.ndarray) -> np.ndarray:
        """``conj(A) x``, the adjoint of the transposed convolution."""
        if np.iscomplexobj(self.weight):
            return self.forward(x.conj()).conj()
        return self.forward(x)
