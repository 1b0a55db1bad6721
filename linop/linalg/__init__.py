"""Linear algebra of convolutions: spectra, norms, inverses and least squares.

A convolution with circular padding of total ``dilation*(kernel_size-1)``
and a stride that divides the size has a block-circulant matrix: discrete
Fourier transforms turn it into one small dense block per frequency (and
group), so its singular values, norm, condition number, determinant,
inverse and pseudo-inverse are exact and cheap. For every other operator
`opnorm` estimates the norm by Lanczos iteration and bounds it from above
with a bound that holds for its structure.

- `svdvals`, `cond`, `slogdet`, `inv`, `pinv`, `clip_singular_values`: exact,
  for block-circulant convolutions (``ValueError`` otherwise);
- `opnorm`: any operator, an `OpnormResult` with ``value``, ``lower``,
  ``upper``, ``exact``;
- `lstsq`: ``min ||A x - b||^2 + damp^2 ||x||^2``, exact per frequency for
  block-circulant operators (and per axis for separable kernels), else CG
  on the normal equations with the SPD `preconditioner` matched to the
  padding.

Examples
--------
>>> import numpy as np, linop
>>> w = np.random.default_rng(0).standard_normal((16, 16, 3, 3))
>>> A = linop.Conv2d(w, (16, 32, 32), padding=1, padding_mode="circular")
>>> s = linop.linalg.svdvals(A)                  # all 16384 singular values
>>> s.shape
(16384,)
>>> bool(linop.linalg.opnorm(A).value == s[0])
True
"""

from linop.linalg._lstsq import LstsqResult, lstsq
from linop.linalg._norm import OpnormResult, opnorm
from linop.linalg._precond import Preconditioner, preconditioner
from linop.linalg._spectral import (
    SlogdetResult,
    clip_singular_values,
    cond,
    inv,
    pinv,
    slogdet,
    svdvals,
)
from linop.linalg._symbol import CirculantSymbol, FrequencyOperator, circulant_symbol

__all__ = [
    # exact spectra, norms, determinants and inverses (part 1)
    "CirculantSymbol",
    "FrequencyOperator",
    "OpnormResult",
    "SlogdetResult",
    "circulant_symbol",
    "clip_singular_values",
    "cond",
    "inv",
    "opnorm",
    "pinv",
    "slogdet",
    "svdvals",
    # least squares and preconditioners (part 2)
    "LstsqResult",
    "Preconditioner",
    "lstsq",
    "preconditioner",
]
