r"""The block diagonalisation of block-circulant convolutions (the symbol).

A convolution whose matrix is block-circulant is diagonalised, block by
block, by discrete Fourier transforms. This module computes that
factorisation and the operators built from it; everything else in
:mod:`linop.linalg` (singular values, norms, determinants, inverses,
pseudo-inverses, and the solves and preconditioners built on them) is a
per-frequency dense problem on its blocks.

The contract
------------
``circulant_symbol(A)`` returns a `CirculantSymbol` ``S`` with

.. math::

    A = U_\mathrm{out}^H \, \mathrm{blockdiag}(B) \, U_\mathrm{in},

where ``B = S.blocks`` is a complex array of shape ``(F, G, m, n)``: ``F``
frequencies of the *coarse* grid (the grid of the strided side), ``G``
groups, and per frequency and group one ``m x n`` block. ``U_in`` and
``U_out`` are **unitary** ``N_in x N_in`` and ``N_out x N_out`` matrices
(``N_in = F*G*n``, ``N_out = F*G*m``), so the singular values of all the
blocks together are exactly the singular values of ``A`` with their
multiplicities: each block has ``min(m, n)``, and ``F*G*min(m, n) =
min(N_in, N_out)``, the number ``numpy.linalg.svd`` returns for the dense
matrix (a dense SVD that pads to ``max(N_in, N_out)`` values adds only
zeros). The transforms are applied, never formed:

- ``S.to_input_freq(x)``: flat input columns ``x`` of shape ``(N_in, k)``
  (C-order flattened arrays of shape ``A.input_shape``, one per column) to
  ``U_in x`` of shape ``(F, G, n, k)``;
- ``S.from_input_freq(X)``: ``(F, G, n, k)`` to ``U_in^H X`` of shape
  ``(N_in, k)``, the inverse (and adjoint) of ``to_input_freq``;
- ``S.to_output_freq(y)`` and ``S.from_output_freq(Y)``: the same with
  ``U_out``, ``N_out`` and ``m``.

So ``A x == S.from_output_freq(S.blocks @ S.to_input_freq(x))`` and ``A^H y
== S.from_input_freq(conj(S.blocks).swapaxes(-1, -2) @ S.to_output_freq(y))``.
For an operator of a real dtype, ``from_input_freq`` and
``from_output_freq`` return the real part (a real array); that is exact
when ``X`` is the transform of a real array, or the product of such a
transform with per-frequency matrices computed from the blocks by any rule
that commutes with complex conjugation and with permutations of rows and
columns (products, inverses, pseudo-inverses, ``(B^H B + c I)^{-1}``): real
arrays have transforms with the conjugate symmetry ``X(-w) = P conj(X(w))``
(``P`` a permutation of the aliased frequencies), the blocks of a real
operator have it too, and such products keep it. Pass ``real=False`` for
the complex result. Both ``S`` and its arrays are read-only; ``S`` pickles.

`FrequencyOperator` ``(S, M, domain=..., codomain=...)`` is the shaped
operator ``U_codomain^H blockdiag(M) U_domain``, for a stack ``M`` of shape
``(F, G, p, q)`` (``q`` the block size of the domain side, ``p`` that of
the codomain side: ``n`` on the ``"input"`` side of ``A``, ``m`` on its
``"output"`` side). Its ``.H`` is the same with ``M^H`` (exact, no copy of
``M``), it has ``apply``, pickles, and ``tocsr()`` builds its (dense)
matrix, sized against `linop.get_memory_limit` first.
`linop.linalg.inv` and `linop.linalg.pinv` are such operators, from the
output side to the input side.

The layout
----------
For the convolution ``A`` (cross-correlation) of weight ``w`` of shape
``(C_out, C_in/G, *k)`` with circular padding of total ``d_a (k_a - 1)`` on
axis ``a`` of size ``N_a``, stride ``s_a`` dividing ``N_a`` (coarse size
``M_a = N_a / s_a``), the full-resolution output is a circular
cross-correlation, diagonalised by the unitary DFT ``X(w) = N^{-1/2}
sum_t x[t] exp(-2 pi i w.t / N)`` into ``Z(w) = K(w) X(w)`` with the
symbol

.. math::

    K(\omega) = \sum_\tau w[:, :, \tau]\,
        \exp\Big(2\pi i \sum_a \omega_a (\tau_a d_a - p_a) / N_a\Big),

``p_a`` the low padding. Keeping every ``s_a``-th output folds the
frequencies ``w_a = mu_a + j_a M_a`` (``j_a = 0..s_a-1``) onto the coarse
frequency ``mu_a``: ``Y(mu) = S^{-1/2} sum_j K(mu + j M) X(mu + j M)``,
``S = prod s_a``. The frequency of the coarse grid is ``f`` (C order over
``mu_1, ..., mu_d``), the group ``g``; ``U_in x`` holds at ``[f, g, j*C_g +
c]`` the DFT coefficient ``X_c(mu + j M)`` of input channel ``g*C_g + c``
(``j`` in C order over the axes, ``C_g = C_in/G``), and ``U_out y`` holds at
``[f, g, o]`` the coarse DFT coefficient of output channel ``g*(C_out/G) +
o``. The block at ``[f, g]`` is ``S^{-1/2} [K_g(mu + j M)]_j`` (``C_out/G``
rows, ``S*C_in/G`` columns). A transposed convolution, and the ``.T``,
``.H`` and ``.conj()`` views, are ``A^H`` of a convolution with the weight
``w`` or ``conj(w)``: their sides swap and their blocks are the conjugate
transposes.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.fft
import scipy.sparse as sp

from linop._base import OperatorView, ShapedLinearOperator
from linop._memory import check_nbytes, csr_nbytes
from linop._sparse import canonical_csr
from linop._threads import num_threads
from linop._validation import ParameterValueError, as_choice
from linop.conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)

__all__ = [
    "CirculantSymbol",
    "ConvForm",
    "FourierSide",
    "FrequencyOperator",
    "circulant_symbol",
    "conv_blocks",
    "conv_form",
    "inverse_blocks_to_weight",
]

_CONVS = (Conv1d, Conv2d, Conv3d)
_CONV_TRANSPOSES = (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)
_SIDES = ("input", "output")


def complex_dtype(dtype) -> np.dtype:
    """complex64 for single precision, complex128 otherwise."""
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.complex64):
        return np.dtype(np.complex64)
    return np.dtype(np.complex128)


# -- which operators are convolutions, and in which form -----------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class ConvForm:
    """An operator written as ``A_w`` or ``A_w^H`` for a convolution ``A_w``.

    Attributes
    ----------
    weight : ndarray, shape (C_out, C_in/G, *k)
        The weight of the convolution ``A_w`` (channel axes always present).
    geometry : ConvGeometry
        Its geometry.
    groups : int
    adjoint : bool
        The operator is ``A_w^H`` (else ``A_w``).
    conv_input_shape, conv_output_shape : tuple of int
        The shapes of ``A_w``'s input and output as the operator has them
        (no channel axis for a bare kernel).
    name : str
        The operator's type, for messages.
    """

    weight: np.ndarray
    geometry: object
    groups: int
    adjoint: bool
    conv_input_shape: tuple
    conv_output_shape: tuple
    name: str

    def conjugate(self) -> ConvForm:
        """The form of ``conj(op)``: ``conj(A_w) = A_conj(w)``."""
        return dataclasses.replace(self, weight=np.conj(self.weight))

    def flipped(self) -> ConvForm:
        """The form of ``op^H``."""
        return dataclasses.replace(self, adjoint=not self.adjoint)


def conv_form(op) -> ConvForm | None:
    """`ConvForm` of a convolution, transposed convolution or a view of one; else None.

    Reads only public attributes: ``weight``, ``geometry``, ``groups``,
    ``input_shape``, ``output_shape`` and, for views, ``base``,
    ``transposed`` and ``conjugated``.
    """
    if isinstance(op, OperatorView):
        form = conv_form(op.base)
        if form is None:
            return None
        # view (transposed, conjugated): T = conj of H; H flips; conj conjugates
        if op.transposed:
            form = form.flipped()
        if op.transposed != op.conjugated:
            form = form.conjugate()
        return dataclasses.replace(form, name=f"{form.name} view")
    is_transposed = isinstance(op, _CONV_TRANSPOSES)
    if not (is_transposed or isinstance(op, _CONVS)):
        return None
    geometry = op.geometry
    weight = np.asarray(op.weight)
    if weight.ndim == geometry.ndim:  # a bare kernel
        weight = weight.reshape((1, 1) + weight.shape)
    conv_in, conv_out = ((op.output_shape, op.input_shape) if is_transposed
                         else (op.input_shape, op.output_shape))
    name = type(op).__name__
    form = ConvForm(weight, geometry, op.groups, False, conv_in, conv_out, name)
    # ConvTranspose(w) = A_w^T = (A_conj(w))^H
    return form.conjugate().flipped() if is_transposed else form


def circulant_failure(form: ConvForm | None, op) -> str | None:
    """Why ``op`` is not block-circulant (a sentence), or None if it is."""
    if form is None:
        return (f"{type(op).__name__} is not a convolution (Conv1d/2d/3d, ConvTranspose1d/2d/3d "
                f"or their .T, .H, .conj())")
    g = form.geometry
    for axis in range(g.ndim):
        lo, hi = g.padding[axis]
        reach, n, s = g.reach[axis], g.input_size[axis], g.stride[axis]
        if lo + hi != reach:
            return (f"its padding {(lo, hi)} on axis {axis} totals {lo + hi}, not "
                    f"dilation*(kernel_size-1) = {reach}")
        if reach > 0 and g.padding_mode != "circular":
            return f"its padding_mode is {g.padding_mode!r}, not 'circular'"
        if n % s or g.output_size[axis] != n // s:
            return (f"its stride {s} on axis {axis} does not divide the convolution's input "
                    f"size {n}")
    return None


def _refuse(form, op, failure: str):
    raise ValueError(
        f"{type(op).__name__} is not block-circulant: {failure}; exact spectra need circular "
        f"padding of total dilation*(kernel_size-1) and a stride that divides the size. "
        f"linop.linalg.opnorm estimates and bounds the norm of any operator."
    )


def circulant_form(op) -> ConvForm:
    """The `ConvForm` of a block-circulant operator, else a ValueError saying why not."""
    form = conv_form(op)
    failure = circulant_failure(form, op)
    if failure is not None:
        _refuse(form, op, failure)
    return form


# -- one side: channels on a grid, aliased by a stride -------------------------------------
@dataclasses.dataclass(frozen=True)
class FourierSide:
    """The unitary transform ``U`` of one side of a block-circulant operator.

    ``U x``: the orthonormal DFT of every channel over ``grid``, each axis of
    size ``N_a`` split into ``s_a`` aliases of the coarse size ``N_a/s_a``,
    arranged as ``(F, G, s*C/G, k)`` (see the module's layout).

    Attributes
    ----------
    shape : tuple of int
        The array shape on this side (the operator's ``input_shape`` or
        ``output_shape``).
    channels, groups : int
    grid, stride : tuple of int
        Spatial sizes and the aliasing factor per axis (1 on the unstrided side).
    dtype : numpy.dtype
        The operator's dtype: real sides return real arrays from `from_freq`.
    """

    shape: tuple
    channels: int
    groups: int
    grid: tuple
    stride: tuple
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.grid)

    @property
    def coarse(self) -> tuple[int, ...]:
        """The coarse grid, ``grid // stride``."""
        return tuple(n // s for n, s in zip(self.grid, self.stride))

    @property
    def n_freq(self) -> int:
        """``F``: the frequencies of the coarse grid."""
        return math.prod(self.coarse)

    @property
    def block_size(self) -> int:
        """Rows of ``U x`` per frequency and group: ``prod(stride) * channels / groups``."""
        return math.prod(self.stride) * (self.channels // self.groups)

    @property
    def size(self) -> int:
        return self.channels * math.prod(self.grid)

    def _split_shape(self, k: int) -> tuple[int, ...]:
        dims = [self.groups, self.channels // self.groups]
        for s, m in zip(self.stride, self.coarse):
            dims += [s, m]
        return tuple(dims) + (k,)

    def _perm(self) -> list[int]:
        """From ``(G, Cg, s1, m1, ..., k)`` to ``(m1.., G, s1.., Cg, k)``."""
        d = self.ndim
        return ([3 + 2 * a for a in range(d)] + [0] + [2 + 2 * a for a in range(d)]
                + [1, 2 + 2 * d])

    def to_freq(self, x: np.ndarray) -> np.ndarray:
        """``U x``: ``(N, k)`` columns to ``(F, G, block_size, k)``."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[0] != self.size:
            raise ValueError(f"expected columns of shape ({self.size}, k) (flattened arrays of "
                             f"shape {self.shape}), got {x.shape}")
        k = x.shape[1]
        spatial = tuple(range(1, self.ndim + 1))
        freq = scipy.fft.fftn(x.reshape((self.channels,) + self.grid + (k,)), axes=spatial,
                              norm="ortho", workers=num_threads())
        freq = freq.reshape(self._split_shape(k)).transpose(self._perm())
        return freq.reshape(self.n_freq, self.groups, self.block_size, k)

    def from_freq(self, X: np.ndarray, *, real: bool | None = None) -> np.ndarray:
        """``U^H X``: ``(F, G, block_size, k)`` to ``(N, k)`` columns.

        Real (the real part) when ``real`` is True, or when it is None and
        the side's dtype is real.
        """
        X = np.asarray(X)
        if X.ndim != 4 or X.shape[:3] != (self.n_freq, self.groups, self.block_size):
            raise ValueError(f"expected an array of shape ({self.n_freq}, {self.groups}, "
                             f"{self.block_size}, k), got {X.shape}")
        k = X.shape[3]
        perm = self._perm()
        split = self._split_shape(k)
        arranged = X.reshape(tuple(split[p] for p in perm)).transpose(np.argsort(perm))
        spatial = tuple(range(1, self.ndim + 1))
        x = scipy.fft.ifftn(arranged.reshape((self.channels,) + self.grid + (k,)),
                            axes=spatial, norm="ortho", workers=num_threads())
        if real is None:
            real = self.dtype.kind == "f"
        if real:
            x = x.real
        return np.ascontiguousarray(x.reshape(self.size, k))


def conv_sides(form: ConvForm) -> tuple[FourierSide, FourierSide]:
    """The sides ``(U_in, U_out)`` of the convolution ``A_w`` of a form (not its adjoint)."""
    g = form.geometry
    c_out, c_in = form.weight.shape[0], form.weight.shape[1] * form.groups
    dtype = np.result_type(form.weight.dtype, np.float32)
    side_in = FourierSide(tuple(form.conv_input_shape), c_in, form.groups, g.input_size,
                          g.stride, dtype)
    side_out = FourierSide(tuple(form.conv_output_shape), c_out, form.groups, g.output_size,
                           (1,) * g.ndim, dtype)
    return side_in, side_out


# -- the blocks -----------------------------------------------------------------------------
def blocks_nbytes(form: ConvForm, *, half: bool = False) -> int:
    """Bytes of the blocks of a form's convolution (all or the half-spectrum)."""
    g = form.geometry
    coarse = [n // s for n, s in zip(g.input_size, g.stride)]
    if half:
        coarse[-1] = coarse[-1] // 2 + 1
    c_out, cg = form.weight.shape[:2]
    itemsize = complex_dtype(form.weight.dtype).itemsize
    return math.prod(coarse) * math.prod(g.stride) * c_out * cg * itemsize


def conv_blocks(form: ConvForm, *, half: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The blocks ``S^{-1/2} [K_g(mu + j M)]_j`` of the convolution ``A_w`` of a form.

    Parameters
    ----------
    form : ConvForm
        A block-circulant convolution's form (its ``adjoint`` is ignored).
    half : bool
        Only the coarse frequencies with ``mu_last <= M_last // 2`` (for real
        weights the others have the same singular values: ``B(-mu)`` is
        ``conj(B(mu))`` with its columns permuted).

    Returns
    -------
    blocks : ndarray, shape (F', G, C_out/G, S*C_in/G)
        Complex, in the weight's precision.
    multiplicity : ndarray of int, shape (F',), or None
        With ``half``: how many coarse frequencies each block stands for
        (1 or 2), summing to ``F``.

    Notes
    -----
    ``K`` is evaluated as a pruned separable DFT of the kernel (one small
    contraction per axis), with the phases reduced modulo ``N_a`` in exact
    integer arithmetic: no FFT of a zero-padded kernel, no array of the
    grid's size per channel pair.
    """
    g = form.geometry
    w = form.weight
    d = g.ndim
    c_out, cg = w.shape[:2]
    groups = form.groups
    cog = c_out // groups
    ctype = complex_dtype(w.dtype)
    coarse = [n // s for n, s in zip(g.input_size, g.stride)]
    mus = [np.arange(m) for m in coarse]
    if half:
        mus[-1] = np.arange(coarse[-1] // 2 + 1)
    check_nbytes(3 * blocks_nbytes(form, half=half),
                 f"the Fourier blocks of this {form.name} ({math.prod(len(mu) for mu in mus)} "
                 f"frequencies of {cog} x {math.prod(g.stride) * cg} per group)")
    # values: (k1, ..., kd, P), P = C_out * C_g, contracted axis by axis from the last
    values = np.moveaxis(w.reshape((c_out * cg,) + g.kernel_size), 0, -1).astype(ctype)
    for a in reversed(range(d)):
        values = np.tensordot(_phases(g, a, mus[a]).astype(ctype), values, axes=([1], [d - 1]))
    # values: (s1*mu1, ..., sd*mud, P) -> (mu1.., G, C_out/G, s1.., C_g)
    dims, perm = _block_layout(g, [len(mu) for mu in mus], (groups, cog, cg))
    n_freq = math.prod(len(mu) for mu in mus)
    blocks = values.reshape(dims).transpose(perm)
    blocks = np.ascontiguousarray(blocks.reshape(n_freq, groups, cog, math.prod(g.stride) * cg))
    if math.prod(g.stride) > 1:
        blocks *= ctype.type(1 / math.sqrt(math.prod(g.stride)))
    multiplicity = None
    if half:
        m = coarse[-1]
        last = np.where((mus[-1] > 0) & (2 * mus[-1] < m), 2, 1)
        shape = tuple(len(mu) for mu in mus)
        multiplicity = np.broadcast_to(last, shape).reshape(-1).copy()
    return blocks, multiplicity


def _phases(g, axis: int, mu: np.ndarray) -> np.ndarray:
    """``exp(2 pi i w (tap*d - lo) / N)`` for ``w = j*M + mu`` (j-major) and every tap.

    The phase is reduced modulo ``N`` in integers first, so it is exact
    however large ``w * offset`` is.
    """
    n, s = g.input_size[axis], g.stride[axis]
    omega = (np.arange(s)[:, None] * (n // s) + mu[None, :]).reshape(-1).astype(np.int64)
    offset = np.arange(g.kernel_size[axis], dtype=np.int64) * g.dilation[axis] - g.padding[axis][0]
    turns = np.mod(omega[:, None] * offset[None, :], n)
    return np.exp(2j * np.pi * (turns / n))


def _block_layout(g, mu_counts, channels):
    """Shape ``(s1, mu1, ..., sd, mud, G, C_out/G, C_g)`` and the permutation to blocks."""
    d = g.ndim
    dims = []
    for a in range(d):
        dims += [g.stride[a], mu_counts[a]]
    perm = ([1 + 2 * a for a in range(d)] + [2 * d, 2 * d + 1] + [2 * a for a in range(d)]
            + [2 * d + 2])
    return tuple(dims) + tuple(channels), perm


def inverse_blocks_to_weight(form: ConvForm, blocks: np.ndarray) -> np.ndarray:
    """The kernel, on the support of ``form``'s weight, of full-spectrum blocks.

    The inverse of `conv_blocks` (``half=False``) on the kernels of that
    support; for other blocks, the kernel of their circulant operator read
    at the support's taps (the crop of `clip_singular_values`). Taps that
    wrap onto the same grid point (``dilation*(k-1) >= N``) share its value
    equally, so the operator is the same. Returns a complex ``(C_out, C_in/G,
    *k)`` array.
    """
    g = form.geometry
    d = g.ndim
    c_out, cg = form.weight.shape[:2]
    groups = form.groups
    cog = c_out // groups
    coarse = [n // s for n, s in zip(g.input_size, g.stride)]
    dims, perm = _block_layout(g, coarse, (groups, cog, cg))
    values = np.asarray(blocks) * math.sqrt(math.prod(g.stride))
    values = values.reshape(tuple(dims[p] for p in perm)).transpose(np.argsort(perm))
    values = values.reshape(tuple(g.input_size) + (c_out * cg,))
    for a in reversed(range(d)):
        n = g.input_size[a]
        phase = _phases(g, a, np.arange(coarse[a]))  # (n, k): rows w = j*M + mu = 0..n-1
        taps = np.mod(np.arange(g.kernel_size[a]) * g.dilation[a] - g.padding[a][0], n)
        shared = (taps[:, None] == taps[None, :]).sum(axis=1)
        inverse = (np.conj(phase).T / (n * shared[:, None])).astype(values.dtype)
        values = np.tensordot(inverse, values, axes=([1], [d - 1]))
    return np.moveaxis(values, -1, 0).reshape((c_out, cg) + tuple(g.kernel_size))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@dataclasses.dataclass(frozen=True, eq=False)
class CirculantSymbol:
    """The block diagonalisation ``A = U_out^H blockdiag(blocks) U_in`` of an operator.

    Built by `circulant_symbol`; see the module's contract for the layout.

    Attributes
    ----------
    blocks : ndarray, shape (F, G, m, n)
        Complex and read-only: one ``m x n`` block per coarse frequency and group.
    input_side, output_side : FourierSide
        The unitary transforms ``U_in`` and ``U_out``.
    dtype : numpy.dtype
        The operator's dtype.
    """

    blocks: np.ndarray
    input_side: FourierSide
    output_side: FourierSide
    dtype: np.dtype

    def __setstate__(self, state):
        state["blocks"].flags.writeable = False
        for name, value in state.items():
            object.__setattr__(self, name, value)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.input_side.shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output_side.shape

    @property
    def n_freq(self) -> int:
        """``F``, the coarse frequencies."""
        return self.blocks.shape[0]

    @property
    def groups(self) -> int:
        return self.blocks.shape[1]

    def side(self, name: str) -> FourierSide:
        """``input_side`` or ``output_side`` by name (``"input"`` or ``"output"``)."""
        name = as_choice(name, "side", _SIDES)
        return self.input_side if name == "input" else self.output_side

    def to_input_freq(self, x: np.ndarray) -> np.ndarray:
        """``U_in x``: input columns ``(N_in, k)`` to ``(F, G, n, k)``."""
        return self.input_side.to_freq(x)

    def from_input_freq(self, X: np.ndarray, *, real: bool | None = None) -> np.ndarray:
        """``U_in^H X``: ``(F, G, n, k)`` to input columns ``(N_in, k)``."""
        return self.input_side.from_freq(X, real=real)

    def to_output_freq(self, y: np.ndarray) -> np.ndarray:
        """``U_out y``: output columns ``(N_out, k)`` to ``(F, G, m, k)``."""
        return self.output_side.to_freq(y)

    def from_output_freq(self, Y: np.ndarray, *, real: bool | None = None) -> np.ndarray:
        """``U_out^H Y``: ``(F, G, m, k)`` to output columns ``(N_out, k)``."""
        return self.output_side.from_freq(Y, real=real)

    def __repr__(self) -> str:
        F, G, m, n = self.blocks.shape
        return (f"<CirculantSymbol {self.input_shape} -> {self.output_shape}: {F} frequencies "
                f"x {G} groups of {m} x {n} blocks, dtype={self.dtype}>")


def circulant_symbol(A) -> CirculantSymbol:
    """The block diagonalisation of a block-circulant convolution.

    Parameters
    ----------
    A : Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
        Or a ``.T``, ``.H`` or ``.conj()`` of one. Its matrix must be
        block-circulant: circular padding of total ``dilation*(k-1)`` on
        every axis (any padding when ``dilation*(k-1) == 0``), a stride that
        divides the convolution's input size.

    Returns
    -------
    CirculantSymbol

    Raises
    ------
    ValueError
        If ``A`` is not such an operator; the message says which condition fails.
    MatrixTooLargeError
        If the blocks would exceed `linop.get_memory_limit`.

    Examples
    --------
    >>> import numpy as np, linop
    >>> from linop.linalg import circulant_symbol
    >>> w = np.random.default_rng(0).standard_normal((4, 2, 3, 3))
    >>> A = linop.Conv2d(w, (2, 8, 8), padding=1, padding_mode="circular", stride=2)
    >>> S = circulant_symbol(A)
    >>> S.blocks.shape                    # 4x4 coarse frequencies, 4 x (2*2*2) blocks
    (16, 1, 4, 8)
    >>> x = np.random.default_rng(1).standard_normal((A.shape[1], 3))
    >>> y = S.from_output_freq(S.blocks @ S.to_input_freq(x))
    >>> bool(np.allclose(y, A @ x))
    True
    """
    form = circulant_form(A)
    blocks, _ = conv_blocks(form)
    side_in, side_out = conv_sides(form)
    if form.adjoint:
        blocks = np.conj(blocks.swapaxes(-1, -2))
        side_in, side_out = side_out, side_in
    dtype = np.dtype(A.dtype)
    side_in = dataclasses.replace(side_in, dtype=dtype)
    side_out = dataclasses.replace(side_out, dtype=dtype)
    return CirculantSymbol(_readonly(blocks), side_in, side_out, dtype)


# -- operators diagonal in the frequencies -------------------------------------------------
class FrequencyOperator(ShapedLinearOperator):
    """``U_codomain^H blockdiag(M) U_domain``: an operator block-diagonal in frequency.

    Parameters
    ----------
    symbol : CirculantSymbol
        Gives the transforms of its ``"input"`` and ``"output"`` sides
        (the blocks themselves are not kept).
    matrices : array_like, shape (F, G, p, q)
        One ``p x q`` matrix per coarse frequency and group; ``q`` is the
        block size of the domain side, ``p`` that of the codomain side.
    domain, codomain : {"input", "output"}
        The sides of the symbol's operator that this operator maps from and to.
    real : bool, optional
        Whether the operator is real (returns the real part for real inputs);
        by default, when the symbol's operator is. Only correct when
        ``matrices`` has the conjugate symmetry of the blocks of a real
        operator (see the module's contract).

    Attributes
    ----------
    matrices : ndarray
        The ``(F, G, p, q)`` stack (read-only; for the adjoint view, still
        the original stack).
    hermitian : bool
        The operator is ``(U_domain^H M U_codomain)^H``, i.e. applies ``M^H``.
    domain_side, codomain_side : FourierSide

    Examples
    --------
    The inverse of a circular convolution, with ``M = B^{-1}``:

    >>> import numpy as np, linop
    >>> from linop.linalg import circulant_symbol, FrequencyOperator
    >>> A = linop.Conv1d(np.array([1.0, 4.0, 1.0]), (8,), padding=1, padding_mode="circular")
    >>> S = circulant_symbol(A)
    >>> Ainv = FrequencyOperator(S, np.linalg.inv(S.blocks), domain="output",
    ...                          codomain="input")
    >>> bool(np.allclose(Ainv.tocsr().toarray() @ A.tocsr().toarray(), np.eye(8)))
    True
    """

    def __init__(self, symbol: CirculantSymbol, matrices, *, domain: str = "input",
                 codomain: str = "input", real: bool | None = None):
        domain_side = symbol.side(as_choice(domain, "domain", _SIDES))
        codomain_side = symbol.side(as_choice(codomain, "codomain", _SIDES))
        ctype = complex_dtype(symbol.dtype)
        matrices = np.asarray(matrices)
        expected = (domain_side.n_freq, domain_side.groups, codomain_side.block_size,
                    domain_side.block_size)
        if matrices.shape != expected:
            raise ParameterValueError(
                "matrices", f"matrices must have shape (F, G, p, q) = {expected} for the "
                f"{domain} -> {codomain} sides of this symbol, got {matrices.shape}")
        if real is None:
            real = symbol.dtype.kind == "f"
        self._init(domain_side, codomain_side, _readonly(matrices.astype(ctype, copy=False)),
                   bool(real), False)

    def _init(self, domain_side, codomain_side, matrices, real, hermitian):
        self.domain_side = domain_side
        self.codomain_side = codomain_side
        self.matrices = matrices
        self.real = real
        self.hermitian = hermitian
        dtype = matrices.real.dtype if real else matrices.dtype
        shapes = (domain_side.shape, codomain_side.shape)
        super().__init__(*(shapes[::-1] if hermitian else shapes), dtype)

    def __setstate__(self, state):
        state["matrices"].flags.writeable = False
        self.__dict__.update(state)

    def _product(self, X: np.ndarray, hermitian: bool) -> np.ndarray:
        M = self.matrices
        if hermitian:  # M^H X without a copy of M
            return np.conj(np.matmul(M.swapaxes(-1, -2), np.conj(X)))
        return np.matmul(M, X)

    def _run_sides(self, x, adjoint: bool):
        """``U_cod^H M U_dom x``, or ``U_dom^H M^H U_cod x`` when the two flags differ."""
        hermitian = adjoint != self.hermitian
        dom, cod = self.domain_side, self.codomain_side
        if hermitian:
            dom, cod = cod, dom
        Y = self._product(dom.to_freq(x), hermitian)
        return cod.from_freq(Y, real=self.real and not np.iscomplexobj(x))

    def _apply_cols(self, x):
        return self._run_sides(x, False)

    def _apply_adjoint_cols(self, y):
        return self._run_sides(y, True)

    def _adjoint(self):
        op = FrequencyOperator.__new__(FrequencyOperator)
        op._init(self.domain_side, self.codomain_side, self.matrices, self.real,
                 not self.hermitian)
        return op

    def tocsr(self) -> sp.csr_array:
        """The explicit (in general dense) matrix, sized against the memory limit first.

        Returns
        -------
        scipy.sparse.csr_array
            Shape ``(prod(output_shape), prod(input_shape))``, exact zeros dropped.

        Raises
        ------
        MatrixTooLargeError
            If the matrix, with every entry stored, would exceed `linop.get_memory_limit`.
        """
        n_rows, n_cols = self.shape
        nnz = n_rows * n_cols
        check_nbytes(csr_nbytes(nnz, n_rows, self.dtype, n_cols)
                     + nnz * np.dtype(self.dtype).itemsize,
                     f"the explicit matrix of {self!r} ({n_rows} x {n_cols}, up to {nnz} "
                     f"stored entries)")
        dense = np.empty((n_rows, n_cols), dtype=self.dtype)
        chunk = max(1, min(n_cols, 2**22 // max(1, n_rows + n_cols)))
        for start in range(0, n_cols, chunk):
            stop = min(n_cols, start + chunk)
            eye = np.zeros((n_cols, stop - start), dtype=self.dtype)
            eye[np.arange(start, stop), np.arange(stop - start)] = 1
            dense[:, start:stop] = self._apply_cols(eye)
        return canonical_csr(dense, copy=False)

    def __repr__(self) -> str:
        p, q = self.matrices.shape[-2:]
        if self.hermitian:
            p, q = q, p
        return (f"<FrequencyOperator {self.input_shape} -> {self.output_shape}: "
                f"{self.matrices.shape[0]} x {self.matrices.shape[1]} blocks of {p} x {q}, "
                f"dtype={self.dtype}>")
