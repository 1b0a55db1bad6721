"""Choosing how to apply a convolution: a cost model, and the plan it gives.

For every method, `estimate` predicts from the geometry alone (taps, pixels,
channels, dtype, stride) three numbers:

- ``build``: what the first applications pay once (the explicit matrix and
  its transpose for ``"toeplitz"``; the kernel's spectra for ``"fft"``;
  nothing for ``"im2col"``);
- ``apply``: the time of one application, the mean of the forward and the
  adjoint;
- ``memory``: the bytes the method holds between applications plus its
  workspace during one.

``method="auto"`` takes the method with the least expected time
``build + APPLICATIONS * apply`` among those whose memory fits the budget
(`AUTO_MATRIX_BYTES` for the explicit matrix, whatever the memory limit;
`linop.get_memory_limit` for the others). ``"fft"`` needs finite weights.

The constants are seconds per unit of work, measured on this kind of machine
(2 x86-64 cores, OpenBLAS, SciPy 1.17, NumPy 2.4) by
``benchmarks/calibrate.py``, which fits them to timings of each method on a
grid of geometries and prints this table; rerun it to adapt linop to another
machine. They only need to be right where methods differ by a wide margin:
where two methods are close, either choice is good.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np

from linop._conv.fft import FFT_BUFFER_BYTES, fft_tile_shape
from linop._conv.geometry import ConvGeometry
from linop._conv.im2col import PATCH_BUFFER_BYTES
from linop._conv.toeplitz import explicit_matrix_nbytes, explicit_matrix_nnz
from linop._memory import get_memory_limit
from linop._threads import num_threads
from linop._torch_engine.runtime import torch_loaded

__all__ = ["APPLICATIONS", "AUTO_MATRIX_BYTES", "COSTS", "TORCH_COSTS", "Estimate", "Plan", "Work",
           "estimate", "torch_work",
           "make_plan", "work", "torch_gains", "TORCH_MIN_GAIN", "TORCH_MIN_RATIO"]

#: The number of applications "auto" expects an operator to serve: an
#: iterative solver applies it tens of times, a one-shot user once; 10 keeps
#: the first result within a few applications' time of the fastest start.
APPLICATIONS = 10

#: The largest explicit matrix (with its transpose) "auto" builds, in bytes.
#: ``tocsr()`` and ``method="toeplitz"`` build larger ones on request, up to
#: `linop.get_memory_limit`.
AUTO_MATRIX_BYTES = 256 * 2**20

#: Seconds per unit of work, fitted by ``benchmarks/calibrate.py`` (non-negative least
#: squares on relative errors over 61 geometries, 2 cores, 2026-12-02; with them "auto"
#: is within 25% of the best expected time on 57 of the 61). Per byte where the work is
#: moving memory, per operation where it is arithmetic. A constant the fit sets to 0 is
#: explained by the others (e.g. im2col's scatter by its gather, which grows alike).
COSTS = {
    "call": 3.07e-05,              # a method's fixed cost per application
    "csr_byte": 3.3e-11,           # a sparse product, per byte of the matrix (all cores)
    "csr_build_entry": 0.0,        # building the explicit matrix, per stored entry ...
    "csr_transpose_entry": 6.54e-09,  # ... and its transpose, per stored entry (both)
    "pad_byte": 0.0,               # padding (or folding back) the input, per byte
    "gather_byte": 3.35e-10,       # im2col: gathering (and adding back) patches, per byte
    "scatter_byte": 0.0,           # im2col adjoint: adding the patches back, per byte
    "tap_call": 0.0,               # im2col: one strided copy per tap and tile
    "gemm_flop": 7.29e-13,         # one real multiply-add in a GEMM (BLAS, all cores)
    "gemm_byte": 0.0,              # streaming a GEMM's operands, per byte
    "fft_flop": 5.97e-10,          # per point * log2(points) of one float64 transform
    "mix_byte": 5.04e-11,          # mixing channels of spectra, per byte of complex values
}


@dataclasses.dataclass(frozen=True)
class Estimate:
    """What one method is expected to cost for one convolution.

    Attributes
    ----------
    method : str
    build : float
        Seconds paid once, by the first applications.
    apply : float
        Seconds per application (mean of the forward and the adjoint).
    memory : int
        Bytes held between applications, plus the workspace of one.
    eligible : bool
        Whether ``"auto"`` may take it.
    note : str
        Why it is not eligible, or what dominates its cost.

    Examples
    --------
    >>> import numpy as np, linop
    >>> plan = linop.Conv2d(np.ones((3, 3)), (64, 64), padding=1).plan
    >>> fft = plan["fft"]
    >>> fft.method, fft.eligible, fft.build >= 0 and fft.apply > 0
    ('fft', True, True)
    >>> bool(fft.expected(10) == fft.build + 10 * fft.apply)
    True
    """

    method: str
    build: float
    apply: float
    memory: int
    eligible: bool = True
    note: str = ""
    engine: str = "numpy"

    __module__ = "linop"  # public as linop.Estimate

    def expected(self, applications: int = APPLICATIONS) -> float:
        """``build + applications * apply``, in seconds."""
        return self.build + applications * self.apply


@dataclasses.dataclass(frozen=True)
class Plan:
    """How an operator applies itself, and the estimates behind the choice.

    ``str(plan)`` is a table, one line per method. Read it from ``op.plan``.

    Attributes
    ----------
    method : str
        The method in use.
    chosen_by : str
        ``"auto"`` (the least expected time among the eligible methods) or
        ``"user"`` (``method=`` was given).
    estimates : tuple of Estimate
        One per method and engine.
    applications : int
        The number of applications the expected times assume
        (`APPLICATIONS`).
    engine : str
        The engine in use, ``"numpy"`` or ``"torch"``.
    engine_chosen_by : str
        ``"auto"`` (``engine="auto"``: the least expected time, torch only
        when it is imported already) or ``"user"``.

    Examples
    --------
    >>> import numpy as np, linop
    >>> op = linop.Conv2d(np.ones((31, 31)), (1024, 1024), padding="same")
    >>> op.method, op.plan.chosen_by
    ('fft', 'auto')
    >>> print(op.plan)                              # doctest: +SKIP
    method fft, chosen by auto: least expected time over 10 applications
      method    build        apply      memory  expected  note
      toeplitz  ...
    """

    method: str
    chosen_by: str
    estimates: tuple[Estimate, ...]
    applications: int = APPLICATIONS
    engine: str = "numpy"
    engine_chosen_by: str = "user"

    __module__ = "linop"  # public as linop.Plan

    def __getitem__(self, key) -> Estimate:
        """The estimate of a method: ``plan["fft"]`` (on the plan's engine, else NumPy's)
        or ``plan["torch", "im2col"]``."""
        if isinstance(key, tuple):
            engine, method = key
            return next(e for e in self.estimates if e.method == method and e.engine == engine)
        found = [e for e in self.estimates if e.method == key]
        return next((e for e in found if e.engine == self.engine), found[0])

    def __str__(self) -> str:
        why = (f"least expected time over {self.applications} applications"
               if self.chosen_by == "auto" else "requested with method=")
        engine_why = ("chosen by auto" if self.engine_chosen_by == "auto"
                      else "requested with engine=")
        header = (f"  {'engine':<6} {'method':<9} {'build':>10} {'apply':>10} {'memory':>10} "
                  f"{'expected':>10}  note")
        title = (f"method {self.method}, chosen by {self.chosen_by}: {why}; engine "
                 f"{self.engine}, {engine_why}")
        lines = [title, header]
        for e in self.estimates:
            mark = "*" if (e.method, e.engine) == (self.method, self.engine) else " "
            lines.append(
                f"{mark} {e.engine:<6} {e.method:<9} {_seconds(e.build):>10} "
                f"{_seconds(e.apply):>10} "
                f"{_bytes(e.memory):>10} {_seconds(e.expected(self.applications)):>10}  "
                + ("" if e.eligible else "not eligible: ") + e.note)
        return "\n".join(lines)


def _seconds(t: float) -> str:
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.2f} ms"
    return f"{t * 1e6:.0f} us"


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


# -- the estimates --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Work:
    """The work of one method: units per entry of `COSTS`, for building and per application.

    Times are linear in the constants, ``sum(units * COSTS[name])``, so that
    ``benchmarks/calibrate.py`` can fit the constants to measured times.
    """

    method: str
    build: dict
    apply: dict
    memory: int
    eligible: bool = True
    note: str = ""
    engine: str = "numpy"

    def estimate(self, costs: dict | None = None) -> Estimate:
        if costs is None:
            costs = TORCH_COSTS if self.engine == "torch" else COSTS

        def seconds(units):
            return sum(n * costs[name] for name, n in units.items())

        return Estimate(self.method, seconds(self.build), seconds(self.apply), self.memory,
                        self.eligible, self.note, self.engine)


def _sizes(weight: np.ndarray, geometry: ConvGeometry, groups: int):
    c_out, cin_g = weight.shape[:2]
    c_in = cin_g * groups
    return (c_out, cin_g, c_in, math.prod(geometry.output_size),
            math.prod(geometry.padded_size), geometry.n_taps, weight.dtype.itemsize,
            np.iscomplexobj(weight))


def _toeplitz(weight, geometry, groups) -> Work:
    *_, itemsize, cplx = _sizes(weight, geometry, groups)
    nnz = explicit_matrix_nnz(weight, geometry)
    memory = explicit_matrix_nbytes(weight, geometry, groups, transposed=True)
    budget = min(AUTO_MATRIX_BYTES, get_memory_limit())
    eligible = memory <= budget
    note = (f"{nnz} stored entries" if eligible else
            f"the matrix and its transpose ({_bytes(memory)}) exceed the budget of "
            f"{_bytes(budget)}")
    return Work("toeplitz", {"csr_build_entry": nnz, "csr_transpose_entry": nnz},
                {"call": 1, "csr_byte": nnz * (itemsize + 4) * (2 if cplx else 1)},
                memory, eligible, note)


def _im2col(weight, geometry, groups) -> Work:
    c_out, cin_g, c_in, n_out, padded, taps, itemsize, cplx = _sizes(weight, geometry, groups)
    patch_bytes = c_in * taps * n_out * itemsize
    tiles = max(1, -(-patch_bytes // PATCH_BUFFER_BYTES))
    padding = geometry.padded_size != geometry.input_size
    pad_bytes = c_in * padded * itemsize
    apply = {  # the mean of the forward and the adjoint
        "call": 1,
        "pad_byte": pad_bytes * ((1 if padding else 0) + 1) / 2,
        "gather_byte": patch_bytes / 2,
        "scatter_byte": patch_bytes / 2,
        "tap_call": tiles * taps,
        "gemm_flop": c_out * cin_g * taps * n_out * (4 if cplx else 1),
        "gemm_byte": patch_bytes + c_out * n_out * itemsize,
    }
    memory = min(patch_bytes, PATCH_BUFFER_BYTES) + pad_bytes
    return Work("im2col", {}, apply, memory, memory <= get_memory_limit(),
                f"{taps} taps x {c_in} channels gathered per output")


def _fft(weight, geometry, groups) -> Work:
    c_out, cin_g, c_in, _, padded, _, itemsize, cplx = _sizes(weight, geometry, groups)
    if not np.isfinite(weight).all():
        return Work("fft", {}, {"call": math.inf}, 0, False, "the weight is not finite")
    tile, lengths, _ = fft_tile_shape(geometry, c_in, c_out, 1, itemsize)
    n_tiles = math.prod(-(-m // t) for m, t in zip(geometry.output_size, tile))
    points = math.prod(lengths)
    spectrum = points if cplx else points // lengths[-1] * (lengths[-1] // 2 + 1)
    real_itemsize = itemsize // 2 if cplx else itemsize
    # transforms of real data: (points log2 points), scaled by the precision's speed
    flops = points * math.log2(max(points, 2)) * (2 if cplx else 1) * real_itemsize / 8
    spectra_bytes = c_out * cin_g * spectrum * 2 * real_itemsize
    apply = {
        "call": 1,
        "fft_flop": n_tiles * (c_in + c_out) * flops / max(1, min(2, num_threads())),
        "mix_byte": n_tiles * (spectra_bytes + (c_in + c_out) * spectrum * 2 * real_itemsize),
        "pad_byte": c_in * padded * itemsize,
    }
    build = {"fft_flop": 2 * c_out * cin_g * flops}  # both directions' spectra
    workspace = min(FFT_BUFFER_BYTES, 4 * (c_in + c_out) * points * itemsize)
    memory = 2 * spectra_bytes + workspace + c_in * padded * itemsize
    return Work("fft", build, apply, memory, memory <= get_memory_limit(),
                f"{n_tiles} tile{'s' * (n_tiles > 1)} of {'x'.join(map(str, lengths))} points")


_WORK = {"toeplitz": _toeplitz, "im2col": _im2col, "fft": _fft}


def work(weight: np.ndarray, geometry: ConvGeometry, groups: int) -> tuple[Work, ...]:
    """The work of every NumPy method for a convolution."""
    return tuple(f(weight, geometry, groups) for f in _WORK.values())


def estimate(weight: np.ndarray, geometry: ConvGeometry, groups: int) -> tuple[Estimate, ...]:
    """The estimates of every NumPy method for a convolution."""
    return tuple(w.estimate() for w in work(weight, geometry, groups))


# -- the torch engine -------------------------------------------------------------------------
#: Seconds per unit of work of the torch engine on the CPU (torch 2.13, 2 cores). A
#: multiply-add costs a constant (shared by torch's threads, `torch_parallelism`), plus one
#: divided by ``C_in/groups * C_out/groups``: torch's GEMMs are efficient with many channels
#: and slow with one in and one out (a 1-channel 3x3 convolution costs ~50x more per
#: multiply-add than P2); 3-D convolutions run a slower kernel per multiply-add, and so do
#: depthwise ones (one input channel per group); float64 runs several times slower than
#: float32 (torch's CPU float64 convolutions have no fast path). The constants were set
#: from the minimum times of ``torch.nn.functional.conv*d`` and ``conv_transpose*d``
#: (forward and adjoint averaged) of P2, the strided 7x7, depthwise and 3-D cases and a
#: 1-channel 512^2 3x3, measured on a heavily shared 2-core machine (2026-12-04), with the
#: ratios of torch to the NumPy engine that ``benchmarks/README.md`` records for them on a
#: quieter one (P2 about 0.3, 3-D about 3); the single-channel term was then doubled after
#: ``benchmarks/engines.py`` measured torch 3 to 10 times slower than NumPy on every
#: single-channel case. Checked against the 62 geometries of
#: ``benchmarks/calibrate_torch.py`` at one thread; rerun that script on an idle machine
#: to refit them.
TORCH_COSTS = {
    "call": 6.6e-06,                      # a call: wrapping, dispatch, output allocation
    "byte": 2.9e-11,                      # input, output (and padded copy), per byte
    "mac_float32": 9.7e-12,               # a multiply-add of a float32 convolution ...
    "mac_per_channel_pair_float32": 1.0e-09,  # ... divided by C_in/groups * C_out/groups
    "mac_3d_float32": 1.6e-10,            # ... and in 3-D, on top
    "mac_float64": 8.0e-11,               # the same in float64
    "mac_per_channel_pair_float64": 2.0e-09,
    "mac_3d_float64": 3.2e-10,
    "depthwise_mac_float32": 1.65e-10,    # a multiply-add of a depthwise convolution
    "depthwise_mac_float64": 8.6e-10,
    "csr_byte": 1.0e-10,                  # torch's sparse product, per byte of the matrix
    # method="fft" (torch.fft): not measured separately; taken equal to the NumPy engine's
    # scipy.fft constants (both run pocketfft-style transforms on the CPU), shared by torch's
    # threads (`torch_parallelism`), so that "auto" prefers it on torch where NumPy prefers
    # fft, and never switches engines for it alone (the gain is only the call overhead)
    "fft_flop": COSTS["fft_flop"],
    "mix_byte": COSTS["mix_byte"],
    "pad_byte": COSTS["pad_byte"],
    "csr_build_entry": COSTS["csr_build_entry"],  # the matrix is built by NumPy's code
    "csr_transpose_entry": COSTS["csr_transpose_entry"],
}


def torch_parallelism() -> float:
    """How many times faster torch's threads run a convolution than one (1 without torch)."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else 1
    return 1 + 0.7 * (max(1, threads) - 1)


def _torch_conv(weight, geometry, groups) -> Work:
    c_out, cin_g, c_in, n_out, padded, taps, itemsize, cplx = _sizes(weight, geometry, groups)
    precision = "float64" if itemsize // (2 if cplx else 1) == 8 else "float32"
    macs = c_out * cin_g * taps * n_out * (4 if cplx else 1)
    shared = macs / torch_parallelism()
    if cin_g == 1 and groups > 1:
        arithmetic = {f"depthwise_mac_{precision}": shared}
    else:
        # the per-channel overhead of narrow GEMMs (memory-bound) is counted at one thread
        arithmetic = {f"mac_{precision}": shared,
                      f"mac_per_channel_pair_{precision}": macs / (cin_g * (c_out // groups))}
        if geometry.ndim == 3:
            arithmetic[f"mac_3d_{precision}"] = shared
    data = (c_in * (padded + math.prod(geometry.input_size)) + c_out * n_out) * itemsize
    return Work("im2col", {}, {"call": 1, "byte": data, **arithmetic},
                c_in * padded * itemsize, True,
                "torch.nn.functional.conv" + f"{geometry.ndim}d and conv_transpose"
                f"{geometry.ndim}d", engine="torch")


def _torch_csr(weight, geometry, groups) -> Work:
    numpy = _toeplitz(weight, geometry, groups)
    itemsize = _sizes(weight, geometry, groups)[6]
    nnz = explicit_matrix_nnz(weight, geometry)
    return Work("toeplitz", numpy.build, {"call": 1, "csr_byte": nnz * (itemsize + 4)},
                numpy.memory, False, "torch.sparse_csr_tensor (on request only)",
                engine="torch")


def _torch_fft(weight, geometry, groups) -> Work:
    numpy = _fft(weight, geometry, groups)
    apply = dict(numpy.apply)
    if "fft_flop" in apply:  # the transforms shared by torch's threads, not linop's
        apply["fft_flop"] *= max(1, min(2, num_threads())) / torch_parallelism()
    note = "torch.fft: " + numpy.note if numpy.eligible else numpy.note
    return dataclasses.replace(numpy, apply=apply, note=note, engine="torch")


def torch_work(weight: np.ndarray, geometry: ConvGeometry, groups: int) -> tuple[Work, ...]:
    """The work of every torch method for a convolution.

    Without torch imported, none is eligible ("auto" never imports torch).
    """
    works = (_torch_conv(weight, geometry, groups), _torch_csr(weight, geometry, groups),
             _torch_fft(weight, geometry, groups))
    if torch_loaded():
        return works
    return tuple(dataclasses.replace(w, eligible=False, note="torch is not imported")
                 for w in works)


def make_plan(weight: np.ndarray, geometry: ConvGeometry, groups: int,
              method: str = "auto", engine: str = "numpy") -> Plan:
    """The plan of a convolution: the engine and method if given, else the least expected time.

    ``engine="auto"`` considers the torch engine only when torch is imported
    in the process already (nothing imports it here), and takes it when it
    saves enough (`torch_gains`).
    """
    numpy_estimates = estimate(weight, geometry, groups)
    torch_estimates = tuple(w.estimate() for w in torch_work(weight, geometry, groups))
    estimates = numpy_estimates + torch_estimates
    engine_by = "user"
    if engine == "auto":
        engine_by = "auto"
        engine = "numpy"
        if torch_loaded():
            numpy_best = _best(numpy_estimates, method)
            torch_best = _best(torch_estimates, method)
            if torch_best is not None and (numpy_best is None or torch_gains(
                    numpy_best.expected(), torch_best.expected())):
                engine = "torch"
    pool = torch_estimates if engine == "torch" else numpy_estimates
    if method != "auto":
        return Plan(method, "user", estimates, engine=engine, engine_chosen_by=engine_by)
    best = _best(pool, method)
    return Plan(best.method, "auto", estimates, engine=engine, engine_chosen_by=engine_by)


#: "auto" switches to the torch engine only when it saves at least this much over the expected
#: applications, and at least `TORCH_MIN_RATIO` of the NumPy engine's time: small operators
#: stay on NumPy, whose results do not depend on whether torch happens to be imported.
TORCH_MIN_GAIN = 5e-4
TORCH_MIN_RATIO = 0.2


def torch_gains(numpy_expected: float, torch_expected: float) -> bool:
    """Whether the torch engine is worth taking over NumPy (`TORCH_MIN_GAIN`, `TORCH_MIN_RATIO`)."""
    gain = numpy_expected - torch_expected
    return gain >= TORCH_MIN_GAIN and gain >= TORCH_MIN_RATIO * numpy_expected


def _best(estimates, method: str):
    """The estimate "auto" takes (or the one of ``method``); None if the engine lacks it."""
    if method != "auto":
        return next((e for e in estimates if e.method == method), None)
    eligible = [e for e in estimates if e.eligible] or [
        next(e for e in estimates if e.method == "im2col")]
    return min(eligible, key=lambda e: e.expected())
