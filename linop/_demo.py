"""The seed's two examples, reproduced with linop (``linop demo``)."""

from __future__ import annotations

import numpy as np

__all__ = ["SEED_INPUT", "SEED_KERNEL", "SEED_UP_INPUT", "SEED_UP_KERNEL", "format_demo",
           "run_demo"]

#: The blog's 4x4 input, ``arange(1, 17)``.
SEED_INPUT = np.arange(1, 17, dtype=np.float64).reshape(4, 4)
#: The blog's first kernel (convolution).
SEED_KERNEL = np.array([[3, 2, 9], [-2, 1, 3], [-3, -2, 2]], dtype=np.float64)
#: The blog's 2x2 input to up-sample.
SEED_UP_INPUT = np.array([[1, 2], [3, 4]], dtype=np.float64)
#: The blog's second kernel (transposed convolution).
SEED_UP_KERNEL = np.array([[1, 2, 7], [-2, 1, 0], [-3, 1, 2]], dtype=np.float64)


def run_demo(rng=0) -> dict:
    """Compute the demo's numbers: matrices, outputs and adjoint checks."""
    from linop import Conv2d, ConvTranspose2d, Upsample
    from linop.testing import dottest

    conv = Conv2d(SEED_KERNEL, SEED_INPUT.shape)
    up = ConvTranspose2d(SEED_UP_KERNEL, SEED_UP_INPUT.shape)
    checks = {}
    for name, op in (("Conv2d", conv), ("ConvTranspose2d", up)):
        checks[name] = dottest(op, rng=rng, raise_error=False)
    upsampled = {}
    for mode in ("nearest", "bilinear", "bicubic"):
        op = Upsample((1,) + SEED_UP_INPUT.shape, scale_factor=2, mode=mode)
        upsampled[mode] = op.apply(SEED_UP_INPUT[None])[0]
        checks[f"Upsample({mode})"] = dottest(op, rng=rng, raise_error=False)
    upsampled["transposed convolution"] = up.apply(SEED_UP_INPUT)
    return {
        "input": SEED_INPUT,
        "kernel": SEED_KERNEL,
        "conv_matrix": conv.tocsr().toarray(),
        "conv_output": conv.apply(SEED_INPUT),
        "up_input": SEED_UP_INPUT,
        "up_kernel": SEED_UP_KERNEL,
        "up_output": up.apply(SEED_UP_INPUT),
        "transpose_equals_conv_T": bool(
            np.array_equal(up.tocsr().toarray(), Conv2d(SEED_UP_KERNEL, (4, 4)).tocsr().toarray().T)
        ),
        "upsampled": upsampled,
        "adjoint_checks": checks,
    }


def _block(title: str, array: np.ndarray) -> str:
    body = np.array2string(array, precision=4, suppress_small=True, max_line_width=120)
    return f"{title}\n{body}\n"


def format_demo(result: dict) -> str:
    """The demo as text, in the blog's order."""
    parts = [
        "linop demo: the convolution of the blog post as a sparse matrix\n",
        _block("Input x (4x4):", result["input"]),
        _block("Kernel (3x3):", result["kernel"]),
        _block("Convolution matrix A = linop.Conv2d(kernel, (4, 4)).tocsr() (4x16):",
               result["conv_matrix"]),
        _block("Output A @ x.ravel(), reshaped 2x2 (the blog: [[26, 39], [78, 91]]):",
               result["conv_output"]),
        _block("Up-sampling input (2x2):", result["up_input"]),
        _block("Second kernel (3x3):", result["up_kernel"]),
        _block("Transposed convolution linop.ConvTranspose2d(kernel2, (2, 2)) up-samples to 4x4:",
               result["up_output"]),
        ("Its matrix is the transpose of linop.Conv2d(kernel2, (4, 4)).tocsr(): "
         f"{result['transpose_equals_conv_T']}\n"),
        "Up-sampling [[1, 2], [3, 4]] by 2, side by side:\n",
    ]
    for mode, out in result["upsampled"].items():
        parts.append(_block(f"  {mode}:", out))
    parts.append("Adjoint (dot) tests <A x, y> = <x, A^H y>:\n")
    for name, check in result["adjoint_checks"].items():
        status = "passed" if check.passed else "FAILED"
        parts.append(
            f"  {name:<20} <Ax,y> = {check.lhs:+.12g}  <x,A^H y> = {check.rhs:+.12g}  "
            f"relative error {check.rel_error:.1e} (tolerance {check.tolerance:.1e}): {status}\n"
        )
    return "".join(parts)
