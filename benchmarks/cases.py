"""The benchmark cases: what is measured, with which inputs, against which peers.

A case is one operator (a convolution, a transposed convolution, an
up-sampling, an average pooling, a convolution as a function of its kernel
(``ConvFilter``), a product of operators, or an explicit matrix) and the
operations timed on it:

``matvec`` / ``rmatvec``
    The warm application and its adjoint, linop against every peer.
``build``
    A fresh operator's first ``matvec``: construction plus whatever the first
    application has to build (the explicit CSR matrix or the patch matrix).
``tocsr``
    Building the explicit CSR matrix, linop against the peers that build it.

Goals (issue 6) attach a threshold to a ratio measured in a case; see
``GOALS``. The application-plan cases of issue 15 (``AP1``-``AP6``, see
`PLAN_GOALS`) carry several goals each (steady ratios, first result, peak
memory, agreement), judged by ``run.py``. Scaling runs and the memory/smoke
runs are described here too but driven by ``run.py`` and ``memory.py``.

Per-axis values, padding pairs and index sizes come from linop itself
(``linop._validation.per_axis``/``padding_pairs``/``index_dtype``,
``linop._memory.csr_nbytes``), so the benchmarks size things as linop does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

import linop
from benchmarks import peers
from linop._memory import csr_nbytes
from linop._validation import padding_pairs, per_axis, per_axis_real

__all__ = ["ConvSpec", "UpsampleSpec", "PoolSpec", "FilterSpec", "ProductSpec", "Case", "Goal",
           "GOALS", "PLAN_GOALS", "build_cases", "scaling_cases", "conv_nnz", "csr_nbytes",
           "plan_memory_limit"]


# -- specifications -------------------------------------------------------------------

@dataclass
class ConvSpec:
    """A convolution in PyTorch's terms, with every derived size the adapters need.

    ``weight`` always has the channel axes ``(C_out, C_in/groups, *k)`` and
    ``input_shape`` always starts with ``C_in``; ``bare`` says whether linop is
    called with a bare kernel and channel-free shapes (one channel).
    ``padding_arg`` is what linop receives (``"same"``, an int, ...); the
    adapters use the resolved ``padding`` pairs.
    """

    weight: np.ndarray
    input_shape: tuple
    stride: tuple = None
    padding_arg: object = 0
    dilation: tuple = None
    groups: int = 1
    padding_mode: str = "zeros"
    bare: bool = False
    method: str = "auto"

    def __post_init__(self):
        nd = self.weight.ndim - 2
        self.ndim = nd
        self.stride = per_axis(self.stride or 1, nd, "stride", minimum=1)
        self.dilation = per_axis(self.dilation or 1, nd, "dilation", minimum=1)
        self.input_shape = tuple(self.input_shape)
        self.spatial_in = self.input_shape[1:]
        self.kernel_size = self.weight.shape[2:]
        self.effective_kernel = tuple(d * (k - 1) + 1 for k, d in
                                      zip(self.kernel_size, self.dilation))
        self.padding = pairs = padding_pairs(self.padding_arg, self.kernel_size, self.dilation,
                                             self.stride)
        self.unstrided_out = tuple(n + lo + hi - k + 1 for n, (lo, hi), k in
                                   zip(self.spatial_in, pairs, self.effective_kernel))
        self.spatial_out = tuple((u - 1) // s + 1 for u, s in
                                 zip(self.unstrided_out, self.stride))
        self.output_shape = (self.weight.shape[0],) + self.spatial_out

    @property
    def dtype(self):
        return self.weight.dtype

    def linop_kwargs(self):
        kw = dict(stride=self.stride, padding=self.padding_arg, dilation=self.dilation,
                  groups=self.groups, method=self.method)
        if self.padding_mode != "zeros":
            kw["padding_mode"] = self.padding_mode
        return kw

    def linop_weight_shape(self):
        if self.bare:
            return self.weight[0, 0], self.spatial_in
        return self.weight, self.input_shape

    def make_conv(self):
        w, shape = self.linop_weight_shape()
        cls = {1: linop.Conv1d, 2: linop.Conv2d, 3: linop.Conv3d}[self.ndim]
        return cls(w, shape, **self.linop_kwargs())

    def make_conv_transpose(self):
        """The ConvTranspose operator whose matrix is this convolution's transpose."""
        w = self.weight[0, 0] if self.bare else self.weight
        shape = self.spatial_out if self.bare else self.output_shape
        out_pad = tuple(n - ((m - 1) * s - lo - hi + d * (k - 1) + 1) for n, m, s, (lo, hi), d, k
                        in zip(self.spatial_in, self.spatial_out, self.stride, self.padding,
                               self.dilation, self.kernel_size))
        cls = {1: linop.ConvTranspose1d, 2: linop.ConvTranspose2d,
               3: linop.ConvTranspose3d}[self.ndim]
        return cls(w, shape, stride=self.stride, padding=self.padding,
                   output_padding=out_pad, dilation=self.dilation, groups=self.groups,
                   method=self.method)

    def describe(self):
        c_out = self.weight.shape[0]
        ch = "1ch" if c_out == 1 and self.input_shape[0] == 1 else \
            f"{self.input_shape[0]}->{c_out}ch"
        parts = [ch, "x".join(map(str, self.spatial_in)), "k" + "x".join(map(str,
                 self.kernel_size))]
        if any(s != 1 for s in self.stride):
            parts.append(f"s{max(self.stride)}")
        if any(d != 1 for d in self.dilation):
            parts.append(f"d{max(self.dilation)}")
        if self.groups != 1:
            parts.append(f"g{self.groups}")
        if self.padding_mode != "zeros":
            parts.append(self.padding_mode)
        parts.append(str(self.dtype))
        return " ".join(parts)


def conv_nnz(spec: ConvSpec) -> int:
    """Stored entries of the explicit matrix (zero padding: exact)."""
    per_axis = 1
    for n, m, k, s, d, (lo, _) in zip(spec.spatial_in, spec.spatial_out, spec.kernel_size,
                                      spec.stride, spec.dilation, spec.padding):
        count = 0
        for j in range(k):
            off = j * d - lo
            o = np.arange(m) * s + off
            count += int(((o >= 0) & (o < n)).sum())
        per_axis *= count
    c_out, cin_g = spec.weight.shape[:2]
    return per_axis * c_out * cin_g


@dataclass
class UpsampleSpec:
    input_shape: tuple
    mode: str
    scale_factor: object = None
    size: object = None
    align_corners: object = None
    dtype: object = np.float64

    def __post_init__(self):
        nd = len(self.input_shape) - 1
        self.ndim = nd
        self.dtype = np.dtype(self.dtype)
        if self.scale_factor is not None:
            self.scale_tuple = per_axis_real(self.scale_factor, nd, "scale_factor")
            sizes = tuple(math.floor(n * f) for n, f in zip(self.input_shape[1:],
                                                            self.scale_tuple))
        else:
            self.scale_tuple = None
            sizes = per_axis(self.size, nd, "size", minimum=1)
        self.output_shape = (self.input_shape[0],) + sizes

    def make(self):
        return linop.Upsample(self.input_shape, size=self.size, scale_factor=self.scale_factor,
                              mode=self.mode, align_corners=self.align_corners, dtype=self.dtype)

    def describe(self):
        scale = f"x{self.scale_factor}" if self.scale_factor is not None else f"->{self.size}"
        return (f"{self.input_shape[0]}ch {'x'.join(map(str, self.input_shape[1:]))} "
                f"{self.mode} {scale} {self.dtype}")


@dataclass
class PoolSpec:
    """``AvgPool{n}d(input_shape, kernel_size, ...)``; ``input_shape`` starts with C."""

    input_shape: tuple
    kernel_size: object
    stride: object = None
    padding: object = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: object = None
    dtype: object = np.float32

    def __post_init__(self):
        self.input_shape = tuple(self.input_shape)
        self.ndim = nd = len(self.input_shape) - 1
        self.dtype = np.dtype(self.dtype)
        self.kernel_tuple = per_axis(self.kernel_size, nd, "kernel_size", minimum=1)
        self.stride_tuple = (self.kernel_tuple if self.stride is None
                             else per_axis(self.stride, nd, "stride", minimum=1))
        self.padding_tuple = per_axis(self.padding, nd, "padding", minimum=0)

    @property
    def output_shape(self):
        from linop.pool import pool_output_size  # PyTorch's formula, as linop has it

        return (self.input_shape[0],) + tuple(
            pool_output_size(n, k, s, p, self.ceil_mode) for n, k, s, p in
            zip(self.input_shape[1:], self.kernel_tuple, self.stride_tuple, self.padding_tuple))

    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def make(self):
        cls = getattr(linop, f"AvgPool{self.ndim}d")
        return cls(self.input_shape, self.kernel_size, dtype=self.dtype, **self.kwargs())

    def describe(self):
        parts = [f"{self.input_shape[0]}ch", "x".join(map(str, self.input_shape[1:])),
                 "k" + "x".join(map(str, self.kernel_tuple))]
        if self.stride is not None:
            parts.append(f"s{max(self.stride_tuple)}")
        if any(self.padding_tuple):
            parts.append(f"pad {max(self.padding_tuple)}")
        parts.append(str(self.dtype))
        return " ".join(parts)


@dataclass
class FilterSpec:
    """``ConvFilter{n}d(x, weight_shape, ...)``: the operator ``w -> conv(x, w)``.

    ``x`` always has its channel axis ``(C_in, *spatial)`` and ``weight_shape``
    is always ``(C_out, C_in/groups, *k)``; ``bare`` says whether linop gets a
    channel-free ``x`` and a bare kernel size. The operator's input is the
    weight (``input_shape = weight_shape``), its output the convolution's.
    """

    x: np.ndarray
    weight_shape: tuple
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1
    bare: bool = False

    def __post_init__(self):
        self.weight_shape = tuple(self.weight_shape)
        self.ndim = nd = len(self.weight_shape) - 2
        self.kernel_size = self.weight_shape[2:]
        self.stride_tuple = per_axis(self.stride, nd, "stride", minimum=1)
        self.dilation_tuple = per_axis(self.dilation, nd, "dilation", minimum=1)
        self.padding_pairs = padding_pairs(self.padding, self.kernel_size, self.dilation_tuple,
                                           self.stride_tuple)
        spatial = tuple((n + lo + hi - d * (k - 1) - 1) // s + 1 for n, (lo, hi), d, k, s in
                        zip(self.x.shape[1:], self.padding_pairs, self.dilation_tuple,
                            self.kernel_size, self.stride_tuple))
        self.input_shape = self.weight_shape
        self.output_shape = (self.weight_shape[0],) + spatial

    @property
    def dtype(self):
        return self.x.dtype

    def torch_kwargs(self):
        """stride, padding (symmetric), dilation, groups as PyTorch takes them."""
        if any(lo != hi for lo, hi in self.padding_pairs):
            raise ValueError("FilterSpec: the torch peers need symmetric padding")
        return dict(stride=self.stride_tuple, padding=tuple(lo for lo, _ in self.padding_pairs),
                    dilation=self.dilation_tuple, groups=self.groups)

    def make(self):
        cls = getattr(linop, f"ConvFilter{self.ndim}d")
        kw = dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                  groups=self.groups)
        if self.bare:
            return cls(self.x[0], self.kernel_size, **kw)
        return cls(self.x, self.weight_shape, **kw)

    def describe(self):
        c_out, c_in = self.weight_shape[0], self.x.shape[0]
        ch = "1ch" if c_out == c_in == 1 else f"{c_in}->{c_out}ch"
        return (f"{ch} x {'x'.join(map(str, self.x.shape[1:]))} "
                f"k{'x'.join(map(str, self.kernel_size))} pad {self.padding} {self.dtype}")


@dataclass
class ProductSpec:
    """``Conv2d(w, conv_input_shape) @ Upsample(up_input_shape, ...)``, and its fused matrix.

    linop's side of ``matvec``/``rmatvec`` is the *fused* application: the
    product's matrix ``op.tocsr()`` (built once, outside the timing; its
    transpose as a CSR matrix for ``rmatvec``), then SciPy's CSR product. The
    peers are the factors applied in turn (``op.matvec``: what the operator
    does), the fused matrix through linop's threaded CSR product, and PyTorch.
    ``tocsr`` times building the product's matrix from fresh factors.
    """

    weight: np.ndarray
    conv_input_shape: tuple
    conv_padding: object
    up_input_shape: tuple
    scale_factor: object = 2
    mode: str = "bilinear"
    _fused: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.conv = ConvSpec(self.weight, self.conv_input_shape, padding_arg=self.conv_padding)
        self.up = UpsampleSpec(self.up_input_shape, self.mode, scale_factor=self.scale_factor,
                               dtype=self.weight.dtype)
        self.input_shape = self.up.input_shape
        self.output_shape = self.conv.output_shape

    @property
    def dtype(self):
        return self.weight.dtype

    def make_factors(self):
        return self.conv.make_conv(), self.up.make()

    def make(self):
        conv, up = self.make_factors()
        return conv @ up

    def fused(self, op):
        """(M, M^T as CSR) of ``op``, built once per operator."""
        if self._fused.get("op") is not op:
            m = op.tocsr()
            self._fused.clear()
            self._fused.update(op=op, m=m, mt=m.T.tocsr())
        return self._fused["m"], self._fused["mt"]

    def linop_impl(self, op_name, op, x, y):
        xf, yf = x.ravel(), y.ravel()
        if op_name == "matvec":
            m, _ = self.fused(op)
            return peers.Impl("fused: M = op.tocsr() once, M @ x (SciPy, 1 core)", "linop",
                              lambda: m @ xf)
        if op_name == "rmatvec":
            _, mt = self.fused(op)
            return peers.Impl("fused: M^T (CSR) once, M^T @ y (SciPy, 1 core)", "linop",
                              lambda: mt @ yf)
        if op_name == "tocsr":
            return peers.Impl("linop: (Conv2d @ Upsample).tocsr()", "linop",
                              lambda: self.make().tocsr(), lambda r: r)
        return None

    def peer_impls(self, op_name, op, x, y):
        from linop._threads import csr_matmul  # linop's threaded CSR product (internal)

        xf, yf = x.ravel(), y.ravel()
        if op_name == "tocsr":
            def by_hand():
                conv, up = self.make_factors()
                return conv.tocsr() @ up.tocsr()
            return [peers.Impl("scipy: conv.tocsr() @ up.tocsr()", "scipy.sparse", by_hand,
                               lambda r: r)]
        if op_name == "matvec":
            m, _ = self.fused(op)
            impls = [peers.Impl("linop: op.matvec (Upsample, then Conv2d)", "linop-factors",
                                lambda: op.matvec(xf)),
                     peers.Impl("fused: csr_matmul(M, x) (linop's threaded product)",
                                "linop-fused", lambda: csr_matmul(m, xf))]
            return impls + peers.product_impls(self, "forward", x)
        _, mt = self.fused(op)
        impls = [peers.Impl("linop: op.rmatvec (Conv2d^T, then Upsample^T)", "linop-factors",
                            lambda: op.rmatvec(yf)),
                 peers.Impl("fused: csr_matmul(M^T, y) (linop's threaded product)",
                            "linop-fused", lambda: csr_matmul(mt, yf))]
        return impls + peers.product_impls(self, "adjoint", y)

    def release(self):
        """Drop the fused matrices (run.py calls this when the case is done)."""
        self._fused.clear()

    def describe(self):
        return (f"Conv2d({'x'.join(map(str, self.weight.shape[2:]))}, {self.conv_input_shape}, "
                f"padding={self.conv_padding}) @ Upsample({self.up_input_shape}, "
                f"scale_factor={self.scale_factor}, {self.mode!r}) {self.dtype}")


# -- cases ----------------------------------------------------------------------------

@dataclass
class Case:
    """One operator and the operations timed on it.

    ``kind``: ``conv``, ``conv_transpose``, ``upsample`` or ``explicit``.
    ``peer_families``: when given, only peers of these families are run
    (to keep a case's runtime down); None runs every installed peer.
    """

    id: str
    title: str
    group: str
    kind: str
    spec: object
    ops: tuple = ("matvec", "rmatvec")
    peer_families: tuple | None = None
    note: str = ""
    seed: int = 0
    joint: bool = False  # time all ops in one interleaved set
    #: Caps on slow peers: name substring -> (``"skip"``, ``"once"`` or ``"check"``,
    #: why). A skipped peer is not run; a ``"once"`` peer is timed by its agreement
    #: call alone, outside the interleaved rounds; a ``"check"`` peer is only
    #: compared with linop, not timed.
    peer_caps: dict = field(default_factory=dict)
    #: Peers whose agreement call takes longer than this (seconds) are timed once.
    once_after: float | None = None
    #: At most this many repeats (for cases whose calls take a large part of a second).
    max_repeat: int | None = None
    #: Issue 15: also measure the first result and the peak memory in fresh processes.
    plan: bool = False
    #: Add PyTorch applied to chunks of the output (`peers.torch_chunked_1d`): an
    #: agreement check where one PyTorch call would need gigabytes.
    torch_chunked: bool = False

    # -- inputs -------------------------------------------------------------------
    def shapes(self):
        """(operator input shape, operator output shape), with channel axes."""
        s = self.spec
        if self.kind == "conv_transpose":
            return s.output_shape, s.input_shape
        return s.input_shape, s.output_shape

    def inputs(self):
        rng = np.random.default_rng(self.seed + 1)
        shape_in, shape_out = self.shapes()
        dtype = self.spec.dtype
        x = rng.standard_normal(shape_in).astype(dtype)
        y = rng.standard_normal(shape_out).astype(dtype)
        return x, y

    def make_linop(self):
        if self.kind == "conv" or self.kind == "explicit":
            return self.spec.make_conv()
        if self.kind == "conv_transpose":
            return self.spec.make_conv_transpose()
        return self.spec.make()

    # -- implementations ------------------------------------------------------------
    def linop_impl(self, op_name: str, op, x, y) -> peers.Impl:
        custom = getattr(self.spec, "linop_impl", None)
        if custom is not None:
            impl = custom(op_name, op, x, y)
            if impl is not None:
                return impl
        xf, yf = x.ravel(), y.ravel()
        label = f"linop ({getattr(op, 'method', type(op).__name__)})"
        if op_name == "matvec":
            return peers.Impl(label, "linop", lambda: op.matvec(xf))
        if op_name == "rmatvec":
            return peers.Impl(label, "linop", lambda: op.rmatvec(yf))
        if op_name == "build":
            make = self.make_linop
            return peers.Impl("linop: fresh op -> first matvec", "linop",
                              lambda: make().matvec(xf))
        if op_name == "build_adjoint":
            make = self.make_linop
            return peers.Impl("linop: fresh op -> first rmatvec", "linop",
                              lambda: make().rmatvec(yf))
        if op_name == "tocsr":
            make = self.make_linop
            return peers.Impl("linop: Conv(...).tocsr()", "linop", lambda: make().tocsr(),
                              lambda r: r)
        raise ValueError(op_name)

    def peer_impls(self, op_name: str, x, y, op=None, families=None) -> list[peers.Impl]:
        """The peers of one operation (before `skipped_peers`); ``op`` is linop's operator.

        ``families`` limits the adapters that are run (a fresh-process
        measurement sets up one peer family only).
        """
        if op_name in ("build", "build_adjoint"):
            return []
        direction = "forward" if op_name == "matvec" else "adjoint"
        arr = x if op_name == "matvec" else y
        if self.kind == "product":
            impls = self.spec.peer_impls(op_name, op, x, y)
        elif op_name == "tocsr":
            impls = peers.explicit_impls(self.spec)
        elif self.kind == "upsample":
            impls = peers.upsample_impls(self.spec, direction, arr)
        elif self.kind == "avgpool":
            impls = peers.avgpool_impls(self.spec, direction, arr)
        elif self.kind == "convfilter":
            impls = peers.convfilter_impls(self.spec, direction, arr)
        else:
            # A transposed convolution's matvec is the convolution's adjoint.
            forward = (op_name == "matvec") != (self.kind == "conv_transpose")
            impls = peers.conv_impls(self.spec, "forward" if forward else "adjoint", arr,
                                     families=families)
            if self.torch_chunked and (families is None or "torch" in families):
                impls += peers.torch_chunked_1d(self.spec, "forward" if forward else "adjoint",
                                                arr)
        wanted = self.peer_families if families is None else families
        if wanted is not None:
            impls = [i for i in impls if i.family in wanted]
        return impls

    def cap(self, impl) -> tuple[str, str] | None:
        """``("skip" | "once" | "check", why)`` when `peer_caps` names this peer, else None.

        The longest key contained in the peer's name wins.
        """
        keys = [key for key in self.peer_caps if key in impl.name]
        return self.peer_caps[max(keys, key=len)] if keys else None

    def describe(self):
        return self.title or self.spec.describe()


@dataclass
class Goal:
    """A threshold on a measured quantity (issue 6)."""

    id: str
    text: str
    threshold: float
    unit: str = "ratio"
    families: tuple = ()


GOALS = {
    "P1": Goal("P1", "1ch 512x512 3x3 pad 1 f64: linop / fastest of torch, scipy.ndimage, "
               "PyLops (direct, fft)", 1.0, families=("torch", "scipy.ndimage", "pylops")),
    "P2": Goal("P2", "16->32ch 128x128 3x3 pad 1 f32: linop / torch", 1.5,
               families=("torch",)),
    "P3": Goal("P3", "build of the P1 operator (fresh op -> first matvec, minus a warm "
               "matvec) / warm matvec", 5.0, unit="matvecs"),
    "P4": Goal("P4", "1-D n=1e6 31 taps 'same': Conv1d(...).tocsr() / "
               "scipy.sparse.diags_array(csr), and equal", 2.0,
               families=("scipy.sparse",)),
    "P5": Goal("P5", "peak memory building the P2 operator + first matvec (MiB)", 64.0,
               unit="MiB"),
    "SCALE-2D": Goal("SCALE-2D", "2-D 1ch 3x3: log-log slope of time vs nnz between the "
                     "two largest sizes (build and matvec)", 1.2, unit="slope"),
    "SCALE-3D": Goal("SCALE-3D", "3-D 1ch 3x3x3: log-log slope of time vs nnz between the "
                     "two largest sizes (build and matvec)", 1.2, unit="slope"),
}


#: Issue 15 ("application plans"): thresholds of the AP cases.
PLAN_GOALS = {
    "steady": Goal("steady", "steady matvec / rmatvec: linop's median / the fastest peer's "
                   "median", 1.5),
    "first": Goal("first", "first result in a fresh process: linop construct + first matvec / "
                  "the fastest peer's setup + single call", 8.0),
    "memory": Goal("memory", "peak RSS growth of construct + first matvec + first rmatvec "
                   "(fresh process) / (4 x (input + output bytes) + 64 MiB)", 1.0),
}


def plan_memory_limit(input_shape, output_shape, dtype) -> int:
    """Issue 15's memory budget: 4 x (input + output bytes) + 64 MiB."""
    itemsize = np.dtype(dtype).itemsize
    return 4 * (math.prod(input_shape) + math.prod(output_shape)) * itemsize + 64 * 2**20


def _w(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def build_cases(quick: bool = False) -> list[Case]:
    """Every timed case: the goals P1-P4 first, then the wider coverage."""
    rng = np.random.default_rng(0)
    f32, f64 = np.float32, np.float64
    cases = []
    add = cases.append

    # -- goals ------------------------------------------------------------------
    p1 = ConvSpec(_w(rng, (1, 1, 3, 3), f64), (1, 512, 512), padding_arg=1, bare=True)
    add(Case("P1", "conv2d " + p1.describe() + " pad 1", "goal", "conv", p1))
    p2 = ConvSpec(_w(rng, (32, 16, 3, 3), f32), (16, 128, 128), padding_arg=1)
    add(Case("P2", "conv2d " + p2.describe() + " pad 1", "goal", "conv", p2))
    add(Case("P3", "build of the P1 operator", "goal", "conv", p1,
             ops=("build", "matvec", "tocsr", "build_adjoint", "rmatvec"), peer_families=(),
             joint=True))
    p4 = ConvSpec(_w(rng, (1, 1, 31), f64), (1, 1_000_000), padding_arg="same", bare=True)
    add(Case("P4", "conv1d 1ch n=1e6 31 taps 'same' f64: explicit matrix", "goal",
             "explicit", p4, ops=("tocsr",)))

    # -- issue 15: application plans (method="auto"; first result and memory too) --------
    # Peers are capped where one call would take far longer than the rest:
    # "skip" (not run, with the measured cost in the note), "once" (timed by the
    # agreement call only), and any call over `once_after` seconds is timed once.
    r15 = np.random.default_rng(15)  # own stream: the other cases' weights are unchanged
    direct_slow = "(direct)"
    plan_cases = [
        ("AP1", ConvSpec(_w(r15, (1, 1, 9, 9), f64), (1, 1024, 1024), padding_arg="same",
                         padding_mode="reflect", bare=True), "'same'", {}, None),
        ("AP2", ConvSpec(_w(r15, (1, 1, 31, 31), f64), (1, 1024, 1024), padding_arg="same",
                         bare=True), "'same'",
         {direct_slow: ("skip", "scipy.signal/PyLops direct: ~20 s per call (1.2 s at 256^2)"),
          "scipy.ndimage": ("once", "about 1 s per call: timed once")}, 5),
        ("AP3", ConvSpec(_w(r15, (1, 1, 9, 9), f32), (1, 4096, 4096), padding_arg="same",
                         bare=True), "'same'",
         {direct_slow: ("skip", "scipy.signal/PyLops direct: ~30 s per call (0.46 s at 512^2)"),
          "scipy.ndimage": ("once", "about 1 s per call: timed once")}, 5),
        ("AP4", ConvSpec(_w(r15, (1, 1, 7, 7, 7), f32), (1, 96, 96, 96), padding_arg="same",
                         bare=True), "'same'",
         {direct_slow: ("skip", "scipy.signal/PyLops direct: ~6 s per call (0.75 s at 48^3)")},
         None),
        ("AP5", ConvSpec(_w(r15, (1, 1, 1001), f64), (1, 1_000_000), padding_arg="same",
                         bare=True), "'same'",
         {"scipy.ndimage": ("once", "about 0.5 s per call: timed once"),
          "torch.conv": ("skip", ("one float64 call unfolds the input: 7.6 GB, ~11 s; "
                                  "agreement checked in chunks instead")),
          "(agreement only)": ("check", "agreement only")}, None),
        ("AP6", ConvSpec(_w(r15, (8, 3, 7, 7), f32), (3, 256, 256), padding_arg=3, stride=2),
         "pad 3", {}, None),
    ]
    for pid, spec, pad, caps, max_repeat in plan_cases:
        kind = {1: "conv1d", 2: "conv2d", 3: "conv3d"}[spec.ndim]
        add(Case(pid, f"{kind} {spec.describe()} {pad} (auto)", "plans", "conv", spec,
                 peer_caps=caps, once_after=1.0, max_repeat=max_repeat, plan=True,
                 torch_chunked=pid == "AP5"))

    # -- wider coverage ------------------------------------------------------------
    n1 = 200_000 if quick else 1_000_000
    s = ConvSpec(_w(rng, (1, 1, 31), f64), (1, n1), padding_arg="same", bare=True)
    add(Case("X-1d", f"conv1d 1ch n={n1} 31 taps 'same' f64", "extra", "conv", s))
    s = ConvSpec(_w(rng, (1, 1, 31), f64), (1, 4096), padding_arg="same", bare=True)
    add(Case("X-1d-explicit", "conv1d 1ch n=4096 31 taps 'same' f64: explicit matrix "
             "(convmtx fits)", "extra", "explicit", s, ops=("tocsr",)))
    s = ConvSpec(_w(rng, (8, 4, 9), f32), (4, 65536), padding_arg=4, stride=2)
    add(Case("X-1d-multi", "conv1d " + s.describe() + " pad 4", "extra", "conv", s))
    s = ConvSpec(_w(rng, (1, 1, 3, 3), f64), (1, 512, 512), padding_arg=1, bare=True)
    add(Case("X-2d-explicit", "conv2d 1ch 512x512 3x3 pad 1 f64: explicit matrix",
             "extra", "explicit", s, ops=("tocsr",)))
    s = ConvSpec(_w(rng, (1, 1, 3, 3), f32), (1, 512, 512), padding_arg=1, bare=True)
    add(Case("X-2d-f32", "conv2d " + s.describe() + " pad 1 (P1 in float32)", "extra",
             "conv", s))
    s = ConvSpec(_w(rng, (1, 1, 3, 3), f64), (1, 512, 512), padding_arg=1, stride=2,
                 bare=True)
    add(Case("X-2d-stride", "conv2d " + s.describe() + " pad 1", "extra", "conv", s))
    s = ConvSpec(_w(rng, (1, 1, 3, 3), f64), (1, 512, 512), padding_arg=2, dilation=2,
                 bare=True)
    add(Case("X-2d-dilation", "conv2d " + s.describe() + " pad 2", "extra", "conv", s))
    s = ConvSpec(_w(rng, (1, 1, 5, 5), f64), (1, 512, 512), padding_arg=2,
                 padding_mode="reflect", bare=True)
    add(Case("X-2d-reflect", "conv2d " + s.describe() + " pad 2", "extra", "conv", s))
    s = ConvSpec(_w(rng, (1, 1, 4, 4), f64), (1, 512, 512), padding_arg=((1, 2), (2, 1)),
                 bare=True)
    add(Case("X-2d-asym", "conv2d " + s.describe() + " pad ((1,2),(2,1))", "extra", "conv",
             s))
    s = ConvSpec(_w(rng, (32, 16, 3, 3), f64), (16, 128, 128), padding_arg=1)
    add(Case("X-2d-multi-f64", "conv2d " + s.describe() + " pad 1 (P2 in float64)", "extra",
             "conv", s))
    s = ConvSpec(_w(rng, (32, 1, 3, 3), f32), (32, 128, 128), padding_arg=1, groups=32)
    add(Case("X-2d-depthwise", "conv2d " + s.describe() + " pad 1", "extra", "conv", s))
    s = ConvSpec(_w(rng, (32, 8, 3, 3), f32), (32, 128, 128), padding_arg=1, groups=4)
    add(Case("X-2d-groups", "conv2d " + s.describe() + " pad 1", "extra", "conv", s))
    s = ConvSpec(_w(rng, (64, 32, 3, 3), f32), (32, 64, 64), padding_arg=1, stride=2)
    add(Case("X-2d-multi-stride", "conv2d " + s.describe() + " pad 1", "extra", "conv", s))
    n3 = 48 if quick else 64
    s = ConvSpec(_w(rng, (1, 1, 3, 3, 3), f64), (1, n3, n3, n3), padding_arg=1, bare=True)
    add(Case("X-3d", "conv3d " + s.describe() + " pad 1", "extra", "conv", s))
    s = ConvSpec(_w(rng, (8, 4, 3, 3, 3), f32), (4, 32, 32, 32), padding_arg=1)
    add(Case("X-3d-multi", "conv3d " + s.describe() + " pad 1", "extra", "conv", s))

    # Issue 17's multi-channel cases besides P2, AP6 (strided 7x7) and X-2d-depthwise.
    r17 = np.random.default_rng(17)
    s = ConvSpec(_w(r17, (16, 8, 3, 3, 3), f32), (8, 32, 32, 32), padding_arg=1)
    add(Case("X-3d-8to16", "conv3d " + s.describe() + " pad 1", "extra", "conv", s))
    s = ConvSpec(_w(r17, (64, 64, 1, 1), f32), (64, 128, 128))
    add(Case("X-2d-1x1", "conv2d " + s.describe() + " (pointwise)", "extra", "conv", s))

    # Transposed convolutions: the spec is the convolution they transpose.
    s = ConvSpec(_w(rng, (1, 1, 4, 4), f64), (1, 512, 512), padding_arg=1, stride=2,
                 bare=True)
    add(Case("X-2dT", "conv_transpose2d 1ch 256x256->512x512 k4 s2 pad 1 f64", "extra",
             "conv_transpose", s))
    s = ConvSpec(_w(rng, (32, 16, 4, 4), f32), (16, 128, 128), padding_arg=1, stride=2)
    add(Case("X-2dT-multi", "conv_transpose2d 32->16ch 64x64->128x128 k4 s2 pad 1 f32",
             "extra", "conv_transpose", s))
    s = ConvSpec(_w(rng, (1, 1, 31), f64), (1, 1 << 19), padding_arg=15, stride=4,
                 bare=True)
    add(Case("X-1dT", "conv_transpose1d 1ch 131072->524288 31 taps s4 pad 15 f64", "extra",
             "conv_transpose", s))
    s = ConvSpec(_w(rng, (8, 4, 3, 3, 3), f32), (4, 32, 32, 32), padding_arg=1, stride=2)
    add(Case("X-3dT-multi", "conv_transpose3d 8->4ch 16^3->32^3 k3 s2 pad 1 f32", "extra",
             "conv_transpose", s))

    # Up-sampling.
    for uid, u in (
        ("X-up-nearest", UpsampleSpec((16, 128, 128), "nearest", scale_factor=2,
                                      dtype=f32)),
        ("X-up-bilinear", UpsampleSpec((16, 128, 128), "bilinear", scale_factor=2,
                                       dtype=f32)),
        ("X-up-bilinear-1ch", UpsampleSpec((1, 512, 512), "bilinear", scale_factor=2,
                                           dtype=f64)),
        ("X-up-bicubic", UpsampleSpec((3, 256, 256), "bicubic", scale_factor=2,
                                      align_corners=True, dtype=f64)),
        ("X-up-trilinear", UpsampleSpec((4, 32, 32, 32), "trilinear", scale_factor=2,
                                        dtype=f32)),
        ("X-up-area", UpsampleSpec((16, 256, 256), "area", size=(100, 100), dtype=f32)),
    ):
        add(Case(uid, "upsample " + u.describe(), "extra", "upsample", u))

    # Issue 16: average pooling, convolution as a function of its kernel, and a
    # product applied through its multiplied matrix (informational ratios).
    r16 = np.random.default_rng(16)
    for uid, ps in (
        ("X-avgpool-k2", PoolSpec((16, 256, 256), 2, dtype=f32)),
        ("X-avgpool-k3s2p1", PoolSpec((16, 256, 256), 3, stride=2, padding=1, dtype=f32)),
    ):
        add(Case(uid, "avg_pool2d " + ps.describe(), "extra", "avgpool", ps))
    fs = FilterSpec(_w(r16, (16, 64, 64), f32), (32, 16, 3, 3), padding=1)
    add(Case("X-convfilter-multi", "ConvFilter2d " + fs.describe() + " (w -> conv2d(x, w))",
             "extra", "convfilter", fs))
    fs = FilterSpec(_w(r16, (1, 512, 512), f64), (1, 1, 9, 9), padding=4, bare=True)
    add(Case("X-convfilter-1ch", "ConvFilter2d " + fs.describe() + " (w -> conv2d(x, w))",
             "extra", "convfilter", fs))
    prod = ProductSpec(_w(r16, (1, 1, 3, 3), f64), (1, 512, 512), 1, (1, 256, 256),
                       scale_factor=2, mode="bilinear")
    add(Case("X-product-fused", prod.describe() + ": fused matrix vs factors", "extra",
             "product", prod, ops=("tocsr", "matvec", "rmatvec")))
    return cases


def scaling_cases(quick: bool = False):
    """(goal id, ConvSpec) for the scaling runs: 1-channel, 3x3 / 3x3x3, padding 1, f64,
    with the explicit matrix (method="toeplitz"), whose cost per stored entry is measured."""
    rng = np.random.default_rng(1)
    sizes_2d = (256, 512, 1024) if quick else (256, 512, 1024, 2048)
    sizes_3d = (32, 48, 64) if quick else (32, 64, 96)
    w2 = rng.standard_normal((1, 1, 3, 3))
    w3 = rng.standard_normal((1, 1, 3, 3, 3))
    # The explicit matrix's scaling (what "auto" takes depends on the size)
    out = [("SCALE-2D", ConvSpec(w2, (1, n, n), padding_arg=1, bare=True, method="toeplitz"))
           for n in sizes_2d]
    out += [("SCALE-3D", ConvSpec(w3, (1, n, n, n), padding_arg=1, bare=True,
                                  method="toeplitz")) for n in sizes_3d]
    return out
