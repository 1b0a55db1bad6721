"""Load the PyTorch golden data ``tests/data/torch_reference.npz``.

The file is written by ``tests/data/make_reference.py`` (which needs torch);
this loader needs numpy and json only.  See the generator's docstring for the
meaning of every field.

    >>> from golden import load_cases
    >>> case = load_cases()[0]
    >>> case["name"], case["x"].shape, case["params"]["padding"]

Each case is a dict with the JSON metadata (``id``, ``name``, ``kind``,
``ndim``, ``dtype``, ``bare``, ``batch``, ``input_shape``, ``output_shape``,
``params``, ``torch_grad_is_adjoint``, ...), JSON lists turned back into
tuples, plus the arrays ``x``, ``y``, ``gy``, ``gx`` and, where present,
``w``, ``gxadj`` and ``A``.  ``expected_adjoint(case)`` is the array that the
linop adjoint must reproduce.
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "torch_reference.npz")

_ARRAY_KEYS = ("x", "w", "y", "gy", "gx", "gxadj", "A")
_CONV_CLASSES = {
    ("conv", 1): "Conv1d", ("conv", 2): "Conv2d", ("conv", 3): "Conv3d",
    ("conv_transpose", 1): "ConvTranspose1d", ("conv_transpose", 2): "ConvTranspose2d",
    ("conv_transpose", 3): "ConvTranspose3d",
}


def tuplify(v):
    """JSON lists -> tuples, recursively (dicts are walked too)."""
    if isinstance(v, list):
        return tuple(tuplify(u) for u in v)
    if isinstance(v, dict):
        return {k: tuplify(u) for k, u in v.items()}
    return v


@functools.lru_cache(maxsize=4)
def _load(path):
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["cases_json"]))
        info = {k: str(data[k]) for k in ("torch_version", "numpy_version") if k in data.files}
        cases = []
        for m in meta:
            case = tuplify(m)
            case["input_shape"] = tuple(case["input_shape"])
            case["output_shape"] = tuple(case["output_shape"])
            for key in _ARRAY_KEYS:
                name = f"{m['id']}_{key}"
                if name in data.files:
                    case[key] = data[name]
            cases.append(case)
    return tuple(cases), info


def load_cases(path=DATA, kind=None):
    """The golden cases (a list of dicts with arrays), optionally of one kind."""
    cases, _ = _load(path)
    return [dict(c) for c in cases if kind is None or c["kind"] == kind]


def file_info(path=DATA):
    """``{"torch_version": ..., "numpy_version": ...}`` of the generating run."""
    return dict(_load(path)[1])


def expected_adjoint(case):
    """What ``apply_adjoint(gy)`` must equal: the exact adjoint of torch's forward.

    That is torch's autograd gradient ``gx``, except in the few cases where
    torch's backward kernel is not the adjoint of its own forward kernel
    (``torch_grad_is_adjoint`` False), where it is ``gxadj``.
    """
    return case["gxadj"] if "gxadj" in case else case["gx"]


def linop_call(case):
    """``(class_name, args, kwargs)`` that build the linop operator of a case.

    Pure data (no linop import): e.g. ``("Conv2d", (w, (3, 8, 8)),
    {"stride": 2, ...})`` or ``("Upsample", ((3, 5),), {"size": 9, ...})``.
    """
    p = case["params"]
    if case["kind"] == "interpolate":
        kwargs = dict(size=p["size"], scale_factor=p["scale_factor"], mode=p["mode"],
                      align_corners=p["align_corners"], dtype=np.dtype(case["dtype"]))
        return "Upsample", (case["input_shape"],), kwargs
    name = _CONV_CLASSES[(case["kind"], case["ndim"])]
    kwargs = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
                  groups=p["groups"])
    if case["kind"] == "conv":
        kwargs["padding_mode"] = p["padding_mode"]
    else:
        kwargs["output_padding"] = p["output_padding"]
    return name, (case["w"], case["input_shape"]), kwargs


def case_id(case):
    """A readable pytest id."""
    return f"{case['id']}-{case['name']}"


# --------------------------------------------------------------------------- checking
TOLERANCE = {"float32": 1e-5, "complex64": 1e-5, "float64": 1e-12, "complex128": 1e-12}


def rel_err(actual, expected):
    """``max|actual - expected| / max|expected|`` (0 when both are zero)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    diff = float(np.max(np.abs(actual - expected), initial=0.0))
    scale = float(np.max(np.abs(expected), initial=0.0))
    if diff == 0.0:
        return 0.0
    return diff / scale if scale > 0 else float("inf")


def build(linop, case, method=None):
    """The linop operator of a case (``method`` only for convolutions)."""
    name, args, kwargs = linop_call(case)
    if method is not None and case["kind"] != "interpolate":
        kwargs["method"] = method
    return getattr(linop, name)(*args, **kwargs)


def compare(linop, case, method=None):
    """Build the operator and compare it with torch; return the relative errors.

    Raises AssertionError (with the case's name and the errors) on a shape or
    dtype mismatch or when an error exceeds ``TOLERANCE[dtype]``.
    """
    op = build(linop, case, method)
    where = f"{case['id']} {case['name']} method={method}"
    assert tuple(op.input_shape) == tuple(case["input_shape"]), (
        f"{where}: input_shape {op.input_shape} != {case['input_shape']}")
    assert tuple(op.output_shape) == tuple(case["output_shape"]), (
        f"{where}: output_shape {op.output_shape} != torch's {case['output_shape']}")
    dtype = np.dtype(case["dtype"])
    assert op.dtype == dtype, f"{where}: operator dtype {op.dtype} != {dtype}"
    y = op.apply(case["x"])
    gx = op.apply_adjoint(case["gy"])
    assert y.dtype == dtype and gx.dtype == dtype, (
        f"{where}: result dtypes {y.dtype}, {gx.dtype} != {dtype}")
    errors = {"y": rel_err(y, case["y"]), "gx": rel_err(gx, expected_adjoint(case))}
    tol = TOLERANCE[case["dtype"]]
    assert max(errors.values()) <= tol, (
        f"{where}: relative error {errors} > {tol} (params {case['params']})")
    return errors
