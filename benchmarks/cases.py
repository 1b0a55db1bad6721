"""The benchmark cases: what is measured, with which inputs, against which peers.

A case is one operator (a convolution, a transposed convolution, an
up-sampling, or an explicit matrix) and the operations timed on it:

``matvec`` / ``rmatvec``
    The warm application and its adjoint, linop against every peer.
``build``
    A fresh operator's first ``matvec``: construction plus whatever the first
    application has to build (the explicit CSR matrix or the patch matrix).
``tocsr``
    Building the explicit CSR matrix, linop against the peers that build it.

Goals (issue 6) attach a threshold to a ratio measured in a case; see
``GOALS``. Scaling runs and the memory/smoke runs are described here too but
driven by ``run.py`` and ``memory.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import linop

from benchmarks import peers

__all__ = ["ConvSpec", "UpsampleSpec", "Case", "Goal", "GOALS", "build_cases",
           "scaling_cases", "conv_nnz", "explicit_nbytes"]


# -- specifications -------------------------------------------------------------------

def _per_axis(v, nd):
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * nd


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
        self.stride = _per_axis(self.stride or 1, nd)
        self.dilation = _per_axis(self.dilation or 1, nd)
        self.input_shape = tuple(self.input_shape)
        self.spatial_in = self.input_shape[1:]
        self.kernel_size = self.weight.shape[2:]
        self.effective_kernel = tuple(d * (k - 1) + 1 for k, d in
                                      zip(self.kernel_size, self.dilation))
        p = self.padding_arg
        if p == "same":
            pairs = tuple(((k - 1) // 2, (k - 1) - (k - 1) // 2) for k in self.effective_kernel)
        elif p == "valid":
            pairs = ((0, 0),) * nd
        elif isinstance(p, (int, np.integer)):
            pairs = ((int(p), int(p)),) * nd
        else:
            pairs = tuple((v, v) if isinstance(v, (int, np.integer)) else tuple(v) for v in p)
        self.padding = pairs
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
        c_out, cin_g = self.weight.shape[:2]
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


def explicit_nbytes(nnz: int, n_rows: int, dtype) -> int:
    """Bytes of CSR data + indices + indptr (int32 where it fits)."""
    idx = 4 if max(nnz, n_rows) <= np.iinfo(np.int32).max else 8
    return nnz * (np.dtype(dtype).itemsize + idx) + (n_rows + 1) * idx


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
            self.scale_tuple = _per_axis(self.scale_factor, nd)
            sizes = tuple(int(math.floor(n * f)) for n, f in zip(self.input_shape[1:],
                                                                  self.scale_tuple))
        else:
            self.scale_tuple = None
            sizes = _per_axis(self.size, nd)
        self.output_shape = (self.input_shape[0],) + sizes

    def make(self):
        return linop.Upsample(self.input_shape, size=self.size, scale_factor=self.scale_factor,
                              mode=self.mode, align_corners=self.align_corners, dtype=self.dtype)

    def describe(self):
        scale = f"x{self.scale_factor}" if self.scale_factor is not None else f"->{self.size}"
        return (f"{self.input_shape[0]}ch {'x'.join(map(str, self.input_shape[1:]))} "
                f"{self.mode} {scale} {self.dtype}")


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

    def peer_impls(self, op_name: str, x, y) -> list[peers.Impl]:
        if op_name in ("build", "build_adjoint"):
            return []
        if op_name == "tocsr":
            impls = peers.explicit_impls(self.spec)
        elif self.kind == "upsample":
            direction = "forward" if op_name == "matvec" else "adjoint"
            impls = peers.upsample_impls(self.spec, direction, x if op_name == "matvec" else y)
        else:
            # A transposed convolution's matvec is the convolution's adjoint.
            forward = (op_name == "matvec") != (self.kind == "conv_transpose")
            arr = x if op_name == "matvec" else y
            impls = peers.conv_impls(self.spec, "forward" if forward else "adjoint", arr)
        if self.peer_families is not None:
            impls = [i for i in impls if i.family in self.peer_families]
        return impls

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
    return cases


def scaling_cases(quick: bool = False):
    """(goal id, ConvSpec) for the scaling runs: 1-channel, 3x3 / 3x3x3, padding 1, f64."""
    rng = np.random.default_rng(1)
    sizes_2d = (256, 512, 1024) if quick else (256, 512, 1024, 2048)
    sizes_3d = (32, 48, 64) if quick else (32, 64, 96)
    w2 = rng.standard_normal((1, 1, 3, 3))
    w3 = rng.standard_normal((1, 1, 3, 3, 3))
    out = [("SCALE-2D", ConvSpec(w2, (1, n, n), padding_arg=1, bare=True)) for n in sizes_2d]
    out += [("SCALE-3D", ConvSpec(w3, (1, n, n, n), padding_arg=1, bare=True))
            for n in sizes_3d]
    return out
