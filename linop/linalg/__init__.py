"""Linear algebra of convolutions: exact spectra, norms, determinants and inverses.

(Work in progress: the block diagonalisation lives in `linop.linalg._symbol`.)
"""

from linop.linalg._symbol import CirculantSymbol, FrequencyOperator, circulant_symbol

__all__ = ["CirculantSymbol", "FrequencyOperator", "circulant_symbol"]

# least squares and preconditioners (issue 22)
from linop.linalg._lstsq import LstsqResult, lstsq
from linop.linalg._precond import Preconditioner, preconditioner

__all__ += ["LstsqResult", "Preconditioner", "lstsq", "preconditioner"]
