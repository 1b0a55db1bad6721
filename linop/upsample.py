"""Interpolation (``torch.nn.functional.interpolate``) as a linear operator."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from linop._base import ShapedLinearOperator
from linop._interp.axis import AxisInterpolation
from linop._interp.matrices import axis_taps, axis_taps_nbytes
from linop._layer_engine import LayerEngine
from linop._memory import check_nbytes, csr_nbytes
from linop._sparse import canonical_csr
from linop._validation import (
    ParameterTypeError,
    ParameterValueError,
    as_bool,
    as_choice,
    as_operator_dtype,
    as_shape,
    per_axis,
    per_axis_real,
)

__all__ = ["Upsample"]

_MODES_ANY = ("nearest", "nearest-exact", "area")
_MODES_NDIM = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
MODES = _MODES_ANY + tuple(_MODES_NDIM)
_FORMS = {1: "n", 2: "H, W", 3: "D, H, W"}


class Upsample(LayerEngine, ShapedLinearOperator):
    r"""Interpolation of ``(C, *spatial)`` (or bare spatial) arrays as a sparse linear operator.

    The operator equals ``torch.nn.functional.interpolate(x[None], size=size,
    scale_factor=scale_factor, mode=mode, align_corners=align_corners)[0]``
    (``...(x[None, None], ...)[0, 0]`` for a bare ``input_shape``)
    (PyTorch's default ``recompute_scale_factor=None``, no antialiasing) for
    every mode, for up- and down-sampling alike. Each mode is separable: the
    operator is a Kronecker product of one sparse ``(n_out, n_in)`` matrix per
    spatial axis, repeated over the channels.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, *spatial)`` with 1, 2 or 3 spatial axes, or the spatial sizes
        alone (a *bare* shape, no channel axis; see ``bare``).
    size : int or tuple of int, optional
        Output spatial size, one value for every axis or one per axis.
    scale_factor : float or tuple of float, optional
        Multiplier of the spatial size, one value or one per axis; values below
        1 down-sample. Exactly one of ``size`` and ``scale_factor`` is given.
    mode : {"nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area"}
        Interpolation mode. ``linear`` needs 1 spatial axis, ``bilinear`` and
        ``bicubic`` 2, ``trilinear`` 3; the others work for any number.
    align_corners : bool, optional
        Only for ``linear``, ``bilinear``, ``bicubic`` and ``trilinear`` (where
        ``None`` means ``False``): align the centres of the corner pixels
        instead of the corners of the pixel grid.
    dtype : dtype, default float64
        float32, float64, complex64 or complex128. The float32 and complex64
        operators reproduce torch's float32 coordinate arithmetic.
    bare : bool, optional
        Whether ``input_shape`` has no channel axis. ``None`` (the default)
        decides from the mode: ``linear``, ``bilinear``, ``bicubic`` and
        ``trilinear`` fix the number of spatial axes (1, 2, 2, 3), so an
        ``input_shape`` of exactly that many sizes is bare and one with one
        more size has a channel axis first. ``nearest``, ``nearest-exact``
        and ``area`` work on any number of axes, so for them ``None`` means
        ``False`` (``(C, *spatial)``, as PyTorch's layout): pass
        ``bare=True`` to interpolate spatial sizes alone.
    engine : {"auto", "numpy", "torch"}, default "auto"
        Who computes NumPy inputs: NumPy, or PyTorch's kernels on the same
        memory. ``"auto"`` is NumPy unless torch is imported and the layers'
        cost model expects its kernels to be faster by enough to matter
        (``linop._layer_costs``). Tensors are computed by torch on their
        device whatever the engine.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        ``(C, *spatial)`` and ``(C, *size)``, or ``spatial`` and ``size``
        when bare.
    bare : bool
        True when ``input_shape`` has no channel axis (the resolved value).
    mode : str
    align_corners : bool or None
        The resolved value: ``False`` or ``True`` for the interpolating modes,
        ``None`` for ``nearest``, ``nearest-exact`` and ``area``.
    size : tuple of int
        The resolved output spatial size.
    scale_factor : tuple of float or None
        The scale factor per axis as given, ``None`` when ``size`` was given.
    matrices : tuple of scipy.sparse.csr_array
        The 1-D interpolation matrices, one ``(size[k], spatial[k])`` per axis
        (canonical: duplicates summed, no explicit zeros; fresh copies).
    axes : tuple of AxisInterpolation
        The same axes as PyTorch computes them (``axes[k].taps``: one entry
        per tap, duplicates of clamped borders and zero weights kept), which
        is what `apply` multiplies.
    axis_order : tuple of int
        The order in which `apply` goes through the axes (shrinking axes
        first, so the intermediate arrays stay small); the adjoint goes
        backwards.
    dims, dimsd : tuple of int
        ``input_shape`` and ``output_shape`` under PyLops' names.
    dtype : numpy.dtype

    Raises
    ------
    MatrixTooLargeError
        If the 1-D tables would exceed `linop.get_memory_limit` (they are
        sized before anything is built).
    ValueError
        Both or neither of ``size`` and ``scale_factor``; a non-positive size or
        scale factor, or one that gives an empty output; a wrong number of
        entries; an unknown mode or one that does not fit the number of spatial
        axes (with the channel axis or without); ``align_corners`` with
        ``nearest``, ``nearest-exact`` or ``area``; a bad ``input_shape``.
    TypeError
        Non-integer sizes, non-real scale factors, a non-bool ``align_corners``
        a non-bool ``bare`` or an unsupported ``dtype``.

    See Also
    --------
    linop.Conv2d, linop.ConvTranspose2d

    Notes
    -----
    Along one axis of input size :math:`n` and output size :math:`m`, output
    pixel :math:`o` reads the input at the source coordinate :math:`s(o)`. With
    ``size`` given, :math:`m` is that size and the scale is :math:`r = n/m`;
    with ``scale_factor`` :math:`f` given, :math:`m = \lfloor n f \rfloor` and
    :math:`r = 1/f` (this is what PyTorch does with the default
    ``recompute_scale_factor=None``; ``area`` only uses :math:`m`).

    * ``nearest``: :math:`i(o) = \min(\lfloor o\,r \rfloor, n - 1)`.
    * ``nearest-exact``: :math:`i(o) = \min(\lfloor (o + \tfrac12)\,r \rfloor, n - 1)`.
    * ``linear`` family: with ``align_corners=False``,
      :math:`s = \max((o + \tfrac12)\,r - \tfrac12, 0)`; with ``True``,
      :math:`s = o\,(n - 1)/(m - 1)` (0 if :math:`m = 1`). Then
      :math:`i = \lfloor s \rfloor`, :math:`\lambda = s - i` and
      :math:`y_o = (1 - \lambda)\,x_i + \lambda\,x_{\min(i + 1, n - 1)}`; if
      :math:`m = n` the axis is copied.
    * ``bicubic``: :math:`s` as above but not clamped at 0, :math:`t = s - i`,
      :math:`y_o = \sum_{k=-1}^{2} w_k(t)\, x_{\mathrm{clip}(i + k, 0, n - 1)}` with
      Keys' cubic convolution kernel for :math:`a = -0.75`:
      :math:`W(d) = (a+2)|d|^3 - (a+3)|d|^2 + 1` for :math:`|d| \le 1`,
      :math:`W(d) = a|d|^3 - 5a|d|^2 + 8a|d| - 4a` for :math:`1 < |d| < 2`,
      :math:`w_k(t) = W(k - t)`. Taps outside the input are clamped to the
      border and their weights add up.
    * ``area`` (adaptive average pooling): :math:`y_o` is the mean of
      :math:`x_j` for :math:`\lfloor o n/m \rfloor \le j < \lceil (o+1) n/m \rceil`.

    With :math:`M_k` the matrix of axis :math:`k`, the operator on
    :math:`C` channels is

    .. math:: A = I_C \otimes M_1 \otimes \dots \otimes M_d ,

    in the C-order flattening of ``(C, *spatial)`` (:math:`C = 1`, no
    :math:`I_C`, when bare); :meth:`tocsr` returns that
    product, while :meth:`apply` and ``matvec`` apply the :math:`M_k` one axis
    at a time (cost :math:`O(\sum_k \mathrm{nnz}(M_k) \cdot N / n_k)` rather than
    :math:`O(\mathrm{nnz}(A))`). The adjoint applies the :math:`M_k^T`.

    Every product multiplies the taps PyTorch multiplies, zero weights
    included, so non-finite values propagate as in ``F.interpolate``: an
    infinite pixel read with weight 0 gives NaN. :meth:`tocsr` and
    `matrices` are the canonical matrices (duplicates summed, zeros dropped):
    the same numbers for finite inputs.

    Floating-point details follow PyTorch's CPU kernels, so that even the
    nearest indices agree where a product lands exactly on an integer: indices
    of the nearest modes are computed in float32 for two spatial axes when
    ``size[0] + size[1] <= 128`` (torch's ``nearest_idx``, whose ``nearest``
    copies the axis when :math:`m = n` and halves indices when :math:`m = 2n`,
    even if the factor is not exactly 1 or 2), and otherwise in the precision of
    ``dtype`` rounded to float32 before the floor; float32 operators compute
    the coordinates of the linear modes in float32, as torch does for float32
    data.

    Examples
    --------
    >>> import numpy as np
    >>> import linop
    >>> op = linop.Upsample((1, 3), scale_factor=2, mode="linear")
    >>> op.output_shape
    (1, 6)
    >>> op.apply(np.array([[0.0, 1.0, 2.0]]))
    array([[0.  , 0.25, 0.75, 1.25, 1.75, 2.  ]])
    >>> op.tocsr().toarray()
    array([[1.  , 0.  , 0.  ],
           [0.75, 0.25, 0.  ],
           [0.25, 0.75, 0.  ],
           [0.  , 0.75, 0.25],
           [0.  , 0.25, 0.75],
           [0.  , 0.  , 1.  ]])

    Nearest-neighbour up-sampling of a 2-channel image, and its adjoint, which
    sums the copies:

    >>> op = linop.Upsample((2, 2, 2), scale_factor=2)
    >>> x = np.arange(8.0).reshape(2, 2, 2)
    >>> op.apply(x)[0]
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]])
    >>> op.apply_adjoint(np.ones(op.output_shape))[1]
    array([[4., 4.],
           [4., 4.]])

    A bare image, no channel axis: ``bilinear`` has two spatial axes, so a
    shape of two sizes is the image itself. The nearest modes and ``area``
    take ``bare=True`` for the same:

    >>> op = linop.Upsample((2, 3), size=(3, 5), mode="bilinear")
    >>> op.bare, op.output_shape
    (True, (3, 5))
    >>> linop.Upsample((2, 3), scale_factor=2, bare=True).output_shape
    (4, 6)
    >>> linop.Upsample((2, 3), scale_factor=2).output_shape       # (C, n): 2 channels
    (2, 6)

    Down-sampling by area averaging (``scale_factor`` below 1):

    >>> op = linop.Upsample((1, 4), scale_factor=0.5, mode="area")
    >>> op.matvec(np.array([1.0, 3.0, 5.0, 7.0]))
    array([2., 6.])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        *,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        dtype=np.float64,
        bare: bool | None = None,
        engine="auto",
    ) -> None:
        dt = as_operator_dtype(dtype)
        mode = as_choice(mode, "mode", MODES)
        need = _MODES_NDIM.get(mode)
        if bare is not None:
            bare = as_bool(bare, "bare")
        input_shape = as_shape(input_shape, ndims=(1, 2, 3, 4), what=(
            "a tuple (C, *spatial) of ints with 1 to 3 spatial axes, or the spatial sizes "
            "alone (bare)"))
        if bare is None:  # only the interpolating modes say how many spatial axes they have
            bare = need is not None and len(input_shape) == need
        d = len(input_shape) - (0 if bare else 1)
        if need is not None and need != d:
            form = _FORMS[need]
            raise ParameterValueError(
                "mode", f"mode={mode!r} needs {need} spatial {'axes' if need > 1 else 'axis'}, "
                f"input_shape (C, {form}) or ({form}{',' if need == 1 else ''}), got "
                f"input_shape={input_shape!r}" + (f" with bare={bare}" if len(input_shape) in (
                    need, need + 1) else "")
            )
        if not 1 <= d <= 3:
            raise ParameterValueError(
                "input_shape", f"input_shape must be (C, *spatial) with 1 to 3 spatial axes, or "
                f"1 to 3 spatial sizes alone with bare=True; got {input_shape!r}"
                f"{' with bare=True' if bare else ''}")
        channels, spatial = (1, input_shape) if bare else (input_shape[0], input_shape[1:])
        if align_corners is not None and not isinstance(align_corners, (bool, np.bool_)):
            raise ParameterTypeError(
                "align_corners", f"align_corners must be a bool or None, got {align_corners!r}")
        if mode in _MODES_ANY:
            if align_corners is not None:
                raise ParameterValueError(
                    "align_corners",
                    f"align_corners can only be set with the interpolating modes "
                    f"linear, bilinear, bicubic, trilinear; got align_corners="
                    f"{align_corners!r} with mode={mode!r}"
                )
        else:
            align_corners = bool(align_corners) if align_corners is not None else False

        if size is not None and scale_factor is not None:
            raise ParameterValueError(
                "size", f"give only one of size and scale_factor, got size={size!r} and "
                f"scale_factor={scale_factor!r}"
            )
        if size is None and scale_factor is None:
            raise ParameterValueError("size", "give one of size and scale_factor (both are None)")
        if size is not None:
            out = per_axis(size, d, "size", minimum=1)
            factors = None
        else:
            factors = per_axis_real(scale_factor, d, "scale_factor")
            out = tuple(math.floor(float(n) * f) for n, f in zip(spatial, factors))
            if any(m < 1 for m in out):
                raise ParameterValueError(
                    "scale_factor", f"scale_factor={scale_factor!r} gives an empty output: "
                    f"input spatial size {spatial} -> {out}"
                )
            out = tuple(as_shape(out, "scale_factor", what="a factor that keeps sizes in range"))
        check_nbytes(
            sum(axis_taps_nbytes(mode, n, m, dt) for n, m in zip(spatial, out)),
            f"the 1-D interpolation tables of this Upsample ({input_shape} -> "
            f"{out if bare else (channels,) + out}, mode={mode!r})"
        )
        self.mode = mode
        self.bare = bare
        self.align_corners = align_corners
        self.size = out
        self.scale_factor = factors
        single = dt.type in (np.float32, np.complex64)
        fast = d == 2 and out[0] + out[1] <= 128
        self.axes = tuple(
            AxisInterpolation(axis_taps(
                mode, n, m, None if factors is None else factors[k],
                align_corners=bool(align_corners), single=single, fast=fast, dtype=dt,
            ))
            for k, (n, m) in enumerate(zip(spatial, out))
        )
        # apply shrinking axes first: the intermediate arrays stay small
        self.axis_order = tuple(sorted(range(d), key=lambda k: out[k] / spatial[k]))
        super().__init__(input_shape, out if bare else (channels,) + out, dt)
        self._set_engine(engine)

    @property
    def matrices(self) -> tuple[sp.csr_array, ...]:
        """The canonical 1-D matrices, one ``(size[k], spatial[k])`` per axis (copies)."""
        return tuple(axis.matrix() for axis in self.axes)

    def __repr__(self) -> str:
        what = f"size={self.size}" if self.scale_factor is None else (
            f"scale_factor={self.scale_factor}"
        )
        ac = "" if self.align_corners is None else f", align_corners={self.align_corners}"
        return (
            f"<Upsample {self.input_shape} -> {self.output_shape}, mode={self.mode!r}, "
            f"{what}{ac}, dtype={self.dtype}>"
        )

    # -- explicit matrix ------------------------------------------------------------
    def tocsr(self) -> sp.csr_array:
        """The explicit sparse matrix :math:`I_C \\otimes M_1 \\otimes \\dots \\otimes M_d`.

        (:math:`M_1 \\otimes \\dots \\otimes M_d` when `bare`.)

        Returns
        -------
        scipy.sparse.csr_array
            Shape ``(prod(output_shape), prod(input_shape))``, sorted indices,
            int32 indices where they fit.

        Raises
        ------
        MatrixTooLargeError
            If the matrix would need more memory than `get_memory_limit`.

        Examples
        --------
        Linear interpolation of 3 samples to 6 (one channel): each row holds
        the weights of the two nearest input samples.

        >>> import linop
        >>> linop.Upsample((1, 3), scale_factor=2, mode="linear").tocsr().toarray()
        array([[1.  , 0.  , 0.  ],
               [0.75, 0.25, 0.  ],
               [0.25, 0.75, 0.  ],
               [0.  , 0.75, 0.25],
               [0.  , 0.25, 0.75],
               [0.  , 0.  , 1.  ]])
        """
        channels = 1 if self.bare else self.input_shape[0]
        nnz = channels * math.prod(axis.taps.nnz for axis in self.axes)
        check_nbytes(
            2 * csr_nbytes(nnz, self.shape[0], self.dtype, self.shape[1]),
            f"the explicit matrix of this Upsample ({self.shape[0]} x {self.shape[1]}, "
            f"{nnz} stored entries)"
        )
        matrices = self.matrices
        a = matrices[0]
        for m in matrices[1:]:
            a = sp.kron(a, m, format="csr")
        if channels > 1:
            a = sp.kron(sp.eye_array(channels, dtype=self.dtype, format="csr"), a, format="csr")
        return canonical_csr(a, self.dtype, copy=len(matrices) == 1 and channels == 1)

    # -- application ------------------------------------------------------------------
    def _through_axes(self, x: np.ndarray, shape, order, transpose: bool) -> np.ndarray:
        k = x.shape[-1]
        x = x.reshape((1,) * self.bare + tuple(shape) + (k,))
        for a in order:
            x = self.axes[a].apply(x, 1 + a, transpose=transpose)
        return np.ascontiguousarray(x).reshape(-1, k)

    def _apply_cols(self, x: np.ndarray) -> np.ndarray:
        if self.engine == "torch":
            return self._torch_cols("A", x)
        return self._through_axes(x, self.input_shape, self.axis_order, False)

    def _apply_adjoint_cols(self, y: np.ndarray) -> np.ndarray:
        # the weights are real: the Hermitian adjoint is the plain transpose
        if self.engine == "torch":
            return self._torch_cols("AH", y)
        return self._through_axes(y, self.output_shape, self.axis_order[::-1], True)

    _apply_transpose_cols = _apply_adjoint_cols
    _apply_conjugate_cols = _apply_cols
