r"""Exact spectra of block-circulant convolutions: singular values, determinants, inverses.

Every function here reduces to batched dense linear algebra on the blocks of
`linop.linalg._symbol` (one ``numpy.linalg`` call over all frequencies);
for a real weight the blocks of the coarse frequencies ``mu`` and ``-mu``
have the same singular values and conjugate determinants, so only the
half-spectrum ``mu_last <= M_last // 2`` is computed where that suffices.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from linop._base import OperatorView
from linop._memory import check_nbytes
from linop._validation import ParameterTypeError, ParameterValueError
from linop.linalg._symbol import (
    FrequencyOperator,
    blocks_nbytes,
    circulant_form,
    circulant_symbol,
    complex_dtype,
    conv_blocks,
    inverse_blocks_to_weight,
)

__all__ = ["SlogdetResult", "clip_singular_values", "cond", "inv", "pinv", "slogdet",
           "svdvals"]


def as_real(value, name: str, *, positive: bool = False) -> float:
    """A real number ``>= 0`` (``> 0`` if ``positive``), else a parameter error naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(name, f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not (value > 0 if positive else value >= 0):
        raise ParameterValueError(name, f"{name} must be {'>' if positive else '>='} 0, "
                                        f"got {value!r}")
    return value


def _real_dtype(dtype) -> np.dtype:
    return np.empty(0, complex_dtype(dtype)).real.dtype


def _half_blocks(A):
    """The blocks (half-spectrum for real weights) and their multiplicities."""
    form = circulant_form(A)
    half = form.weight.dtype.kind != "c"
    blocks, multiplicity = conv_blocks(form, half=half)
    if multiplicity is None:
        multiplicity = np.ones(blocks.shape[0], dtype=np.int64)
    return form, blocks, multiplicity


def svdvals(A) -> np.ndarray:
    r"""All singular values of a block-circulant convolution, descending, exact.

    Parameters
    ----------
    A : Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
        Or a ``.T``, ``.H`` or ``.conj()`` of one, whose matrix is
        block-circulant: circular padding of total ``dilation*(k-1)`` on every
        axis (any padding mode where ``dilation*(k-1) == 0``) and a stride
        that divides the convolution's input size on every axis. Any
        channels, groups, dilation, 1-D to 3-D, real or complex.

    Returns
    -------
    numpy.ndarray
        ``min(A.shape)`` singular values, descending, real, in the
        operator's precision: what ``numpy.linalg.svd(A.tocsr().toarray(),
        compute_uv=False)`` returns, to the dtype's rounding.

    Raises
    ------
    ValueError
        If the matrix is not block-circulant; the message says which
        condition fails. Use `opnorm` for other operators.
    MatrixTooLargeError
        If the blocks would exceed `linop.get_memory_limit`.

    See Also
    --------
    opnorm : the largest one, for any operator (estimated and bounded).
    cond, slogdet

    Notes
    -----
    With the unitary transforms of the symbol, :math:`A = U_\mathrm{out}^H
    \mathrm{blockdiag}(B_{f,g}) U_\mathrm{in}`, so the singular values of
    :math:`A` are those of the blocks :math:`B_{f,g} = S^{-1/2} [K_g(\mu_f +
    j M)]_j` together (see the user guide, "Linear algebra of
    convolutions"). Each block gives ``min(m, n)`` values and the blocks give
    ``min(A.shape)`` in all. Cost: the blocks (a pruned DFT of the kernel)
    and one batched ``numpy.linalg.svd``; for real weights half of them.

    Examples
    --------
    A circular moving average has the singular values
    :math:`|\cos(\pi f/n)|`-like magnitudes of its DFT; for ``[1, 1]/2`` on 4
    samples they are ``1, cos(pi/4), cos(pi/4), 0``:

    >>> import numpy as np, linop
    >>> A = linop.Conv1d(np.array([0.5, 0.5]), (4,), padding=((0, 1),), padding_mode="circular")
    >>> np.round(linop.linalg.svdvals(A), 6)
    array([1.      , 0.707107, 0.707107, 0.      ])

    A strided multi-channel layer, against the dense SVD:

    >>> w = np.random.default_rng(0).standard_normal((8, 3, 3, 3))
    >>> B = linop.Conv2d(w, (3, 8, 8), padding=1, padding_mode="circular", stride=2)
    >>> s = linop.linalg.svdvals(B)
    >>> s.shape
    (128,)
    >>> bool(np.allclose(s, np.linalg.svd(B.tocsr().toarray(), compute_uv=False)))
    True
    """
    _, blocks, multiplicity = _half_blocks(A)
    values = np.linalg.svd(blocks, compute_uv=False)
    values = np.repeat(values.reshape(values.shape[0], -1), multiplicity, axis=0).reshape(-1)
    values = np.sort(values)[::-1]
    return np.ascontiguousarray(values, dtype=_real_dtype(A.dtype))


def exact_norm(A) -> float:
    """The largest singular value of a block-circulant operator (a float)."""
    _, blocks, _ = _half_blocks(A)
    return top_singular_value(blocks)


#: At most this many Gram squarings (each one batched product of the surviving blocks).
_SQUARINGS = 6

#: Stop squaring once at most this many blocks remain (their SVD is then cheaper).
_FEW = 8

#: The bounds are computed in single precision where their rounding margin is at most this.
_SINGLE_MARGIN = 1e-2


def top_singular_value(blocks: np.ndarray) -> float:
    r"""The largest singular value over a stack of blocks ``(..., m, n)``, exactly.

    The SVD is computed only for the blocks that may hold it: the others are
    excluded by certified upper bounds.

    Notes
    -----
    Gram iteration: with :math:`G_0 = B^H B` (or :math:`B B^H`, the smaller
    side, ``r x r``) and :math:`G_t = G_0^{2^t}`, whose eigenvalues are
    :math:`\sigma_i^{2^{t+1}}`,

    .. math:: \sigma_1 \le \|G_t\|_F^{1/2^{t+1}} \le r^{1/2^{t+2}} \sigma_1,

    so the bound tightens with every squaring. Each step divides the
    matrices by their Frobenius norms (the logarithms of the factors are
    kept), so nothing overflows. The lower bound ``L`` is the exact top
    singular value (SVD) of the block of the largest bound; a block whose
    bound is below ``L`` cannot hold the maximum and is dropped before the
    next squaring. Rounding: a product of ``r x r`` matrices of unit
    Frobenius norm is off by at most about ``r u`` in Frobenius norm, while
    its top singular value is at least ``1/r``, so each step (and the Gram
    matrix itself) moves the top eigenvalue by a relative ``r^2 u`` at most,
    and the root ``1/2^{t+1}`` shrinks what the later steps add; the sums of
    the Frobenius norms add ``r^2 eps`` at most: the bounds are enlarged by
    ``10 r^2 eps``. That is small enough in single precision for ``r <= 90``
    or so, where the bounds are computed in single precision (twice as
    fast), from the blocks scaled by a power of two. The result is the
    maximum of the SVDs of the survivors in the blocks' own
    precision: the value of one SVD of all blocks, to the dtype's rounding.
    """
    m, n = blocks.shape[-2:]
    B = blocks.reshape((-1, m, n))
    if B.shape[0] == 0 or m == 0 or n == 0:
        return 0.0
    if B.shape[0] <= _FEW or min(m, n) == 1:
        return float(np.linalg.svd(B, compute_uv=False).max())
    r = min(m, n)
    dtype = np.dtype(np.complex64)
    margin = 10 * r * r * float(np.finfo(np.float32).eps)
    if margin > _SINGLE_MARGIN:
        dtype = np.result_type(B.dtype, np.complex64)
        margin = 10 * r * r * float(np.finfo(_real_dtype(dtype)).eps)
    parts = B.view(B.real.dtype)
    biggest = max(float(parts.max()), -float(parts.min()))  # the largest real or imaginary part
    if not np.isfinite(biggest):
        return float(np.linalg.svd(B, compute_uv=False).max())
    if biggest == 0:
        return 0.0
    exponent = math.frexp(biggest)[1]  # B / 2^exponent has parts below 1 (an exact scaling)
    # three buffers, reused for every product (allocating big arrays is slow): the scaled
    # blocks and their conjugate transposes, in the bounds' precision, and their Gram matrices
    scale = math.ldexp(1.0, -exponent)
    if n > m:
        B = B.swapaxes(-1, -2)  # B B^H = (B^T)^H B^T conjugated: the same eigenvalues
    first = np.empty(B.shape, dtype=dtype)
    second = np.empty(B.shape[:1] + B.shape[:-3:-1], dtype=dtype)
    np.multiply(B, scale, out=first, casting="same_kind")
    np.multiply(B.swapaxes(-1, -2), scale, out=second, casting="same_kind")
    np.conjugate(second, out=second)
    H = np.matmul(second, first)
    buffers = [H, first.reshape(-1)[: H.size].reshape(H.shape),
               second.reshape(-1)[: H.size].reshape(H.shape)]
    current = 0  # H is the first rows of buffers[current]
    index = np.arange(B.shape[0])
    log_scale = np.zeros(B.shape[0])  # G_t = exp(log_scale) * H, for B / 2^exponent
    done = np.zeros(B.shape[0], dtype=bool)
    lower = 0.0
    for t in range(_SQUARINGS + 1):
        pairs = H.view(H.real.dtype).reshape(H.shape[0], -1)
        # (sums of 2 r^2 positive terms: off by at most a relative r^2 eps, within the margin)
        f = np.sqrt(np.einsum("ij,ij->i", pairs, pairs).astype(np.float64))
        with np.errstate(divide="ignore"):
            upper = np.exp((log_scale + np.log(f)) / 2 ** (t + 1))
        upper *= math.ldexp(1 + margin, exponent)
        top = index[int(np.argmax(upper))]
        if not done[top]:
            lower = max(lower, float(np.linalg.svd(B[top], compute_uv=False)[0]))
            done[top] = True
        keep = (upper >= lower) & (f > 0) & ~done[index]
        count = int(np.count_nonzero(keep))
        if count <= _FEW or t == _SQUARINGS:
            break
        if count > 0.9 * H.shape[0]:  # squaring a few more costs less than copying them out
            keep = f > 0
            count = int(np.count_nonzero(keep))
        # the survivors, scaled to unit Frobenius norm, into a second buffer; squared into a third
        if count == H.shape[0]:
            source = H
        else:
            source = buffers[(current + 1) % 3][:count]
            np.compress(keep, H, axis=0, out=source)
            f, index, log_scale = f[keep], index[keep], log_scale[keep]
        source.view(source.real.dtype).reshape(count, -1)[...] *= (1 / f).astype(
            source.real.dtype)[:, None]
        log_scale = 2 * (log_scale + np.log(f))
        current = (current + 2) % 3
        H = np.matmul(source, source, out=buffers[current][:count])
    survivors = index[keep]
    if survivors.size:
        lower = max(lower, float(np.linalg.svd(B[survivors], compute_uv=False).max()))
    return lower


def cond(A) -> float:
    r"""The 2-norm condition number of a block-circulant convolution, exact.

    ``sigma_max / sigma_min`` over the ``min(A.shape)`` singular values, as
    ``numpy.linalg.cond`` of the dense matrix; ``inf`` when the smallest is
    zero.

    Parameters
    ----------
    A : convolution or view
        As for `svdvals`.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the matrix is not block-circulant (see `svdvals`).

    Examples
    --------
    >>> import numpy as np, linop
    >>> A = linop.Conv1d(np.array([1.0, 3.0, 1.0]), (8,), padding=1, padding_mode="circular")
    >>> round(linop.linalg.cond(A), 12)      # (1 + 3 + 1) / (3 - 2)
    5.0
    >>> linop.linalg.cond(linop.Conv1d(np.array([1.0, -1.0]), (8,), padding=((0, 1),),
    ...                                padding_mode="circular"))
    inf
    """
    values = svdvals(A)
    if values.size == 0:
        return math.nan
    smallest, largest = float(values[-1]), float(values[0])
    return math.inf if smallest == 0 else largest / smallest


class SlogdetResult(NamedTuple):
    """The sign and the natural log of the absolute value of a determinant (as NumPy's)."""

    sign: float | complex
    logabsdet: float


def _square_symbol_check(A, what: str):
    form = circulant_form(A)
    if tuple(A.input_shape) != tuple(A.output_shape) or any(s != 1 for s in
                                                             form.geometry.stride):
        raise ValueError(
            f"{what} needs a square convolution whose output shape equals its input shape; "
            f"this {type(A).__name__} maps {A.input_shape} -> {A.output_shape} with stride "
            f"{form.geometry.stride}" + ("" if what == "slogdet" else "; pinv applies to any"))
    return form


def slogdet(A) -> SlogdetResult:
    r"""Sign and log-determinant of a square block-circulant convolution, exact.

    Parameters
    ----------
    A : convolution or view
        Block-circulant (see `svdvals`), with ``output_shape == input_shape``
        (equal channels, stride 1).

    Returns
    -------
    SlogdetResult
        ``(sign, logabsdet)`` as ``numpy.linalg.slogdet`` of the dense
        matrix: ``sign`` is ``+-1`` (a complex number of modulus 1 for a
        complex operator) and ``logabsdet`` a float; ``(0, -inf)`` for a
        singular operator.

    Raises
    ------
    ValueError
        If the operator is not block-circulant, or not square.

    Notes
    -----
    With one unitary :math:`U` on both sides (the same channels on the same
    grid), :math:`\det A = \det(U^H) \prod_{f,g} \det B_{f,g} \det U =
    \prod_{f,g} \det B_{f,g}`. For a real weight, :math:`\det B(-\mu) =
    \overline{\det B(\mu)}`: the pairs contribute :math:`|\det B(\mu)|^2`
    and only the half-spectrum is factorised. ``logabsdet`` is summed in
    float64.

    Examples
    --------
    >>> import numpy as np, linop
    >>> A = linop.Conv1d(np.array([1.0, 3.0, 1.0]), (4,), padding=1, padding_mode="circular")
    >>> sign, logdet = linop.linalg.slogdet(A)
    >>> float(sign), round(float(np.exp(logdet)), 9)     # 5 * 3 * 1 * 3
    (1.0, 45.0)
    >>> bool(np.isclose(logdet, np.linalg.slogdet(A.tocsr().toarray())[1]))
    True
    """
    form = _square_symbol_check(A, "slogdet")
    real = form.weight.dtype.kind != "c"
    blocks, multiplicity = conv_blocks(form, half=real)
    if multiplicity is None:
        multiplicity = np.ones(blocks.shape[0], dtype=np.int64)
    signs, logs = np.linalg.slogdet(blocks)
    if np.any(signs == 0):
        zero = 0.0 if real else 0j
        return SlogdetResult(zero, -math.inf)
    logabsdet = float(np.sum(logs.astype(np.float64) * multiplicity[:, None]))
    # A^H's determinant is conj(A's): the form's blocks are those of A_w
    if real:
        # pairs (mu, -mu) contribute |sign|^2 = 1; the rest have real products
        product = np.prod(signs[multiplicity == 1].astype(np.complex128))
        sign = 1.0 if product.real >= 0 else -1.0
        return SlogdetResult(sign, logabsdet)
    phase = np.sum(np.angle(signs.astype(np.complex128)))
    sign = complex(np.exp(1j * phase))
    if form.adjoint:
        sign = sign.conjugate()
    return SlogdetResult(sign, logabsdet)


def inv(A) -> FrequencyOperator:
    r"""The inverse of a square block-circulant convolution, applied by FFT.

    Parameters
    ----------
    A : convolution or view
        Block-circulant (see `svdvals`), with ``output_shape == input_shape``.

    Returns
    -------
    FrequencyOperator
        ``A^{-1} = U^H blockdiag(B^{-1}) U``, a shaped operator from
        ``A.output_shape`` to ``A.input_shape`` with ``apply``, its own exact
        ``.H``, and ``tocsr()`` (a dense matrix, sized against the memory
        limit first). Applying it costs two FFTs of the input and one small
        matrix product per frequency.

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``A`` is singular to working precision: its smallest singular
        value is at most ``max(A.shape) * eps * sigma_max`` (NumPy's
        default rank cut-off, as in `pinv`; a dense ``numpy.linalg.inv``
        would return an inverse of huge, meaningless entries).
    ValueError
        If the operator is not block-circulant or not square.
    MatrixTooLargeError
        If the blocks and their inverses would exceed the memory limit.

    Examples
    --------
    Deconvolution of a circular blur, exactly:

    >>> import numpy as np, linop
    >>> A = linop.Conv2d(np.array([[0., 1, 0], [1, 6, 1], [0, 1, 0]]) / 10, (8, 8), padding=1,
    ...                  padding_mode="circular")
    >>> x = np.random.default_rng(0).standard_normal((8, 8))
    >>> bool(np.allclose(linop.linalg.inv(A).apply(A.apply(x)), x))
    True

    With a centre of 4 the symbol vanishes at the frequency ``(pi, pi)``:

    >>> B = linop.Conv2d(np.array([[0., 1, 0], [1, 4, 1], [0, 1, 0]]), (8, 8), padding=1,
    ...                  padding_mode="circular")
    >>> linop.linalg.inv(B)
    Traceback (most recent call last):
    ...
    numpy.linalg.LinAlgError: Conv2d is singular to working precision: ...
    """
    _square_symbol_check(A, "inv")
    symbol = circulant_symbol(A)
    check_nbytes(3 * symbol.blocks.nbytes, f"the inverse blocks of {A!r}")
    values = np.linalg.svd(symbol.blocks, compute_uv=False)
    largest, smallest = (float(values.max()), float(values.min())) if values.size else (1, 1)
    eps = np.finfo(_real_dtype(A.dtype)).eps
    if not smallest > max(A.shape) * eps * largest:
        raise np.linalg.LinAlgError(
            f"{type(A).__name__} is singular to working precision: its smallest singular value "
            f"is {smallest:.3g}, its largest {largest:.3g} (see linop.linalg.pinv)")
    matrices = np.linalg.inv(symbol.blocks)
    return FrequencyOperator(symbol, matrices, domain="output", codomain="input")


def pinv(A, rtol: float | None = None) -> FrequencyOperator:
    r"""The Moore-Penrose pseudo-inverse of a block-circulant convolution, by FFT.

    Parameters
    ----------
    A : convolution or view
        Block-circulant (see `svdvals`): any channels, groups and stride.
    rtol : float, optional
        Singular values ``<= rtol * sigma_max(A)`` are treated as zero.
        Default ``max(A.shape) * eps`` of the operator's precision: NumPy's
        rule, as ``numpy.linalg.pinv(A.tocsr().toarray(), rtol=None)``.

    Returns
    -------
    FrequencyOperator
        ``A^+ = U_in^H blockdiag(B^+) U_out``, from ``A.output_shape`` to
        ``A.input_shape``, with ``apply``, an exact ``.H`` and ``tocsr()``.

    Raises
    ------
    ValueError
        If the operator is not block-circulant, or ``rtol`` is negative.

    Notes
    -----
    :math:`A^+ = U_\mathrm{in}^H \mathrm{blockdiag}(B^+) U_\mathrm{out}`,
    where each :math:`B^+ = V \Sigma^+ U^H` drops the singular values at or
    below the cut-off of the *whole* operator (the same cut-off at every
    frequency, as for the dense matrix).

    Examples
    --------
    A stride-2 layer with more inputs than outputs: ``A A^+ = I``.

    >>> import numpy as np, linop
    >>> w = np.random.default_rng(0).standard_normal((4, 2, 3, 3))
    >>> A = linop.Conv2d(w, (2, 8, 8), padding=1, padding_mode="circular", stride=2)
    >>> P = linop.linalg.pinv(A)
    >>> P.input_shape, P.output_shape
    ((4, 4, 4), (2, 8, 8))
    >>> y = np.random.default_rng(1).standard_normal(A.output_shape)
    >>> bool(np.allclose(A.apply(P.apply(y)), y))
    True
    """
    if rtol is not None:
        rtol = as_real(rtol, "rtol")
    symbol = circulant_symbol(A)
    check_nbytes(4 * symbol.blocks.nbytes, f"the pseudo-inverse blocks of {A!r}")
    u, s, vh = np.linalg.svd(symbol.blocks, full_matrices=False)
    if rtol is None:
        rtol = max(A.shape) * np.finfo(_real_dtype(A.dtype)).eps
    cutoff = rtol * (s.max() if s.size else 0.0)
    large = s > cutoff
    inverse = np.divide(1, s, out=np.zeros_like(s), where=large)
    matrices = np.matmul(np.conj(vh).swapaxes(-1, -2) * inverse[..., None, :],
                         np.conj(u).swapaxes(-1, -2))
    return FrequencyOperator(symbol, matrices, domain="output", codomain="input")


def clip_singular_values(A, max_value: float):
    r"""Clip the singular values of a block-circulant convolution (Sedghi et al., 2019).

    Every block :math:`B = U \Sigma V^H` becomes :math:`U \min(\Sigma, c)
    V^H`, the clipped blocks are transformed back to a kernel on the whole
    grid, and the kernel is cropped to the original support: the result is
    an operator of the same class with the new weight.

    Parameters
    ----------
    A : convolution, transposed convolution, or a view of one
        Block-circulant (see `svdvals`).
    max_value : float
        The clip level :math:`c \ge 0`.

    Returns
    -------
    operator
        Of ``A``'s class (a view of the clipped operator for a view), with
        the same shapes, stride, padding, dilation and groups.

    Raises
    ------
    ValueError
        If the operator is not block-circulant or ``max_value`` is negative.

    Notes
    -----
    Before the crop the clip is the exact projection (in the Frobenius
    norm) of :math:`A` onto the operators of norm at most :math:`c` that
    are block-circulant on the grid; the crop back to the kernel's support
    is a second projection, onto the convolutions with that kernel size,
    which in general raises the largest singular value again (a little):
    the result is *approximate*, and its norm can exceed ``max_value``.
    Repeating the two projections (alternating projections) brings it
    closer. Check it with `opnorm`.

    Examples
    --------
    >>> import numpy as np, linop
    >>> w = np.random.default_rng(0).standard_normal((4, 4, 3, 3))
    >>> A = linop.Conv2d(w, (4, 16, 16), padding=1, padding_mode="circular")
    >>> B = linop.linalg.clip_singular_values(A, 1.0)
    >>> type(B).__name__, B.weight.shape
    ('Conv2d', (4, 4, 3, 3))
    >>> bool(linop.linalg.opnorm(A).value > 5 > 1.5 > linop.linalg.opnorm(B).value)
    True
    """
    max_value = as_real(max_value, "max_value")
    if isinstance(A, OperatorView):
        clipped = clip_singular_values(A.base, max_value)
        return OperatorView.of(clipped, transpose=A.transposed, conjugate=A.conjugated)
    form = circulant_form(A)
    if form.adjoint:  # a transposed convolution: clip the convolution it transposes
        return clip_singular_values(A.T, max_value).T
    return _clipped_conv(A, form, float(max_value))


def _clipped_conv(A, form, max_value: float):
    check_nbytes(6 * blocks_nbytes(form), f"the clipped blocks of {A!r}")
    blocks, _ = conv_blocks(form)
    u, s, vh = np.linalg.svd(blocks, full_matrices=False)
    clipped = np.matmul(u * np.minimum(s, max_value)[..., None, :], vh)
    weight = inverse_blocks_to_weight(form, clipped)
    if form.weight.dtype.kind != "c":
        weight = weight.real
    weight = weight.astype(form.weight.dtype)
    if np.asarray(A.weight).ndim == form.geometry.ndim:
        weight = weight.reshape(form.geometry.kernel_size)
    return type(A)(weight, A.input_shape, stride=A.stride, padding=A.padding,
                   dilation=A.dilation, groups=A.groups, padding_mode=A.padding_mode,
                   method=A.method)
