"""What ``engine="auto"`` expects the products of a layer operator to cost on each engine.

A layer operator (pooling, `~linop.Upsample`, `~linop.Pad`, the pixel
shuffles) has one way to compute per engine, so ``"auto"`` chooses only the
engine: NumPy unless torch is already imported and the torch kernels are
expected to be faster by enough to matter, by the same rule as the
convolutions (`linop._conv.plan.torch_gains` over
`linop._conv.plan.APPLICATIONS` products).

The expected time of one product and one adjoint product, per sample, is a
sum of units of work times constants, one set per *family* (the operator's
kind and mode, `layer_family`):

.. math::

    t_\\text{numpy} = c_0 + c_1 n + c_2 w_\\text{sep}, \\qquad
    t_\\text{torch} = c_0' + c_1' n + c_2' w + c_3' \\frac{n}{\\min(T, p)}

with :math:`n` the entries read and written (input plus output),
:math:`w_\\text{sep}` the entries that NumPy's products along one axis at a
time touch (Upsample and pooling: per axis, the 1-D matrix's stored entries
times the entries of the other axes; 0 for the other families),
:math:`w = 2 m \\prod_k K_k` the window entries that torch's pooling sums
(:math:`m` outputs, windows :math:`K_k` per axis; 0 otherwise),
:math:`T` torch's threads and :math:`p` the planes (the entries of the
axes before the spatial ones), over which torch's kernels split their
work. The constants (`LAYER_COSTS`) were fitted by
``benchmarks/calibrate_layers.py``.
"""

from __future__ import annotations

import math
import sys

__all__ = ["LAYER_COSTS", "choose_engine", "expected_times", "layer_family", "work"]

#: Seconds per unit of work, by family: ``numpy`` (call, entry, separable window entry) and
#: ``torch`` (call, entry, window entry, entry divided among the planes' threads). Fitted by
#: ``benchmarks/calibrate_layers.py`` (torch 2.13 at 2 threads, NumPy 2.4, 2 cores, float32,
#: minimums of forward plus adjoint over 3 passes of the grid; 2026-12-04).
LAYER_COSTS: dict[str, dict[str, tuple[float, ...]]] = {
    "upsample-nearest": {"numpy": (2.32e-05, 9.63e-11, 5.28e-10),
                         "torch": (0.000117, 3.32e-10, 0.0, 4.63e-11)},
    "upsample-nearest-exact": {"numpy": (2.7e-05, 1.32e-09, 0.0),
                               "torch": (0.000119, 3.43e-10, 0.0, 0.0)},
    "upsample-bilinear": {"numpy": (9.99e-05, 3.47e-09, 0.0),
                          "torch": (0.000143, 0.0, 0.0, 4.59e-09)},
    "upsample-bicubic": {"numpy": (0.0, 0.0, 6.62e-10),
                         "torch": (0.000154, 6.34e-10, 0.0, 7.5e-09)},
    "upsample-area": {"numpy": (3.36e-05, 0.0, 4.76e-10),
                      "torch": (9.26e-05, 6.14e-11, 0.0, 3.18e-09)},
    "upsample-linear": {"numpy": (5.19e-05, 2.06e-09, 0.0),
                        "torch": (9.07e-05, 0.0, 0.0, 3.79e-09)},
    "upsample-trilinear": {"numpy": (0.000223, 4.65e-09, 0.0),
                           "torch": (0.00019, 0.0, 0.0, 1.02e-08)},
    "avgpool": {"numpy": (4.03e-05, 6.74e-10, 1.32e-10),
                "torch": (9.01e-05, 4.3e-10, 0.0, 9.73e-10)},
    "avgpool-strided": {"numpy": (0.000112, 0.0, 7.55e-10),
                        "torch": (8.51e-05, 0.0, 3.43e-10, 1.67e-09)},
    "pad-constant": {"numpy": (4.67e-05, 1.31e-10, 0.0),
                     "torch": (6.83e-05, 5.77e-11, 0.0, 5.76e-11)},
    "pad-reflect": {"numpy": (6.26e-05, 2.35e-10, 0.0),
                    "torch": (8.24e-05, 0.0, 0.0, 7.84e-10)},
    "pad-replicate": {"numpy": (7.06e-05, 2.38e-10, 0.0),
                      "torch": (8.33e-05, 1e-10, 0.0, 5.26e-10)},
    "pad-circular": {"numpy": (6.03e-05, 2.34e-10, 0.0),
                     "torch": (0.000116, 6.74e-10, 0.0, 0.0)},
    "pixel_shuffle": {"numpy": (1.19e-05, 1.06e-09, 0.0),
                      "torch": (5.33e-05, 1e-09, 0.0, 0.0)},
    "pixel_unshuffle": {"numpy": (1.25e-05, 1.05e-09, 0.0),
                        "torch": (5.21e-05, 9.74e-10, 0.0, 4.82e-11)},
}


def layer_family(op) -> str:
    """The family of a layer operator: its kind and mode, the key of `LAYER_COSTS`.

    ``"upsample-<mode>"``, ``"avgpool"`` (windows that tile the input),
    ``"avgpool-strided"`` (the others), ``"pad-<mode>"``, ``"pixel_shuffle"`` or
    ``"pixel_unshuffle"``.
    """
    name = type(op).__name__
    if name == "Upsample":
        return f"upsample-{op.mode}"
    if name.startswith("AvgPool"):
        # windows that overlap or leave gaps have adjoints that NumPy applies as sparse
        # products, not gathers: a family of their own
        return "avgpool" if op.kernel_size == op.stride else "avgpool-strided"
    if name == "Pad":
        return f"pad-{op.mode}"
    if name in ("PixelShuffle", "PixelUnshuffle"):
        return "pixel_shuffle" if name == "PixelShuffle" else "pixel_unshuffle"
    raise TypeError(f"{name} is not a layer operator with a cost model")


def _spatial_axes(op) -> int:
    """How many trailing axes of the input are spatial (the rest are planes)."""
    name = type(op).__name__
    if name == "Upsample":
        return len(op.size)
    if name.startswith("AvgPool"):
        return len(op.kernel_size)
    if name == "Pad":
        return len(op.pad) // 2
    return 2  # the shuffles: (..., C, H, W), channels mixed with the pixels


def _separable_entries(op, planes: int) -> int:
    """The entries that NumPy's one-axis-at-a-time products (Upsample, pooling) touch.

    Along each axis, in the operator's order (``axis_order``), the 1-D
    matrix's stored entries times the entries of the other axes at that
    point; the adjoint the same in reverse.
    """
    axes = getattr(op, "axes", None)
    if axes is None:
        return 0
    total = 0
    for adjoint in (False, True):
        sizes = [a.taps.shape[0 if adjoint else 1] for a in axes]  # the sizes it starts from
        for a in (op.axis_order[::-1] if adjoint else op.axis_order):
            total += planes * math.prod(sizes[:a] + sizes[a + 1:]) * axes[a].taps.nnz
            sizes[a] = axes[a].taps.shape[1 if adjoint else 0]
    return total


def work(op) -> dict[str, float]:
    """The units of work of one product and one adjoint product of ``op`` (one sample)."""
    n_in, n_out = math.prod(op.input_shape), math.prod(op.output_shape)
    d = _spatial_axes(op)
    planes = math.prod(op.input_shape[:len(op.input_shape) - d])
    windows = 0
    if type(op).__name__.startswith("AvgPool"):
        windows = 2 * n_out * math.prod(op.kernel_size)
    return {"entries": float(n_in + n_out), "windows": float(windows),
            "separable": float(_separable_entries(op, planes)), "planes": float(max(1, planes))}


def expected_times(op, threads: int | None = None) -> dict[str, float]:
    """Seconds that one product plus one adjoint product of ``op`` are expected to take.

    Parameters
    ----------
    op : layer operator
    threads : int, optional
        torch's threads; by default ``torch.get_num_threads()`` if torch is
        imported, else 1.

    Returns
    -------
    dict
        ``{"numpy": t, "torch": t}``; ``inf`` for a family without constants.
    """
    constants = LAYER_COSTS.get(layer_family(op))
    if constants is None:
        return {"numpy": math.inf, "torch": math.inf}
    if threads is None:
        torch = sys.modules.get("torch")
        threads = torch.get_num_threads() if torch is not None else 1
    u = work(op)
    a, b, c = constants["numpy"]
    numpy_time = a + b * u["entries"] + c * u["separable"]
    a, b, c, e = constants["torch"]
    shared = u["entries"] / min(max(1, threads), u["planes"])
    torch_time = a + b * u["entries"] + c * u["windows"] + e * shared
    return {"numpy": numpy_time, "torch": torch_time}


def choose_engine(op) -> str:
    """``engine="auto"``'s engine for a layer operator: ``"numpy"`` or ``"torch"``.

    NumPy unless torch is imported already (nothing is imported to find out)
    and `expected_times` gives torch the gain that the convolutions need
    (`linop._conv.plan.torch_gains`, over `linop._conv.plan.APPLICATIONS`
    products).
    """
    if "torch" not in sys.modules:
        return "numpy"
    from linop._conv.plan import APPLICATIONS, torch_gains

    times = expected_times(op)
    if not math.isfinite(times["numpy"] + times["torch"]):
        return "numpy"
    gains = torch_gains(APPLICATIONS * times["numpy"], APPLICATIONS * times["torch"])
    return "torch" if gains else "numpy"
