"""Fuzzing every operator's constructor with hypothesis.

Valid parameter sets (drawn by `linop.testing.strategies`) must agree with
the naive loop reference and pass the dot test; invalid ones (a valid set
with one parameter broken) must raise ValueError or TypeError, and nothing
else: no other exception, no crash, no half-built operator.
"""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import linop  # noqa: E402
from conftest import RTOL, assert_close, high  # noqa: E402
from linop.testing import dottest  # noqa: E402
from linop.testing.strategies import conv_configs, upsample_configs  # noqa: E402
from reference import conv_nd, conv_transpose_nd  # noqa: E402
from reference_upsample import interpolate  # noqa: E402

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _reference_output(config, x, w):
    """The naive reference of a drawn configuration, in the dtype of ``x`` and ``w``."""
    if config.bare:
        w = w.reshape((1, 1) + w.shape)
        x = x[None]
    common = dict(stride=config.stride_tuple, padding=config.padding_pairs,
                  dilation=config.dilation_tuple, groups=config.groups)
    if config.transpose:
        y = conv_transpose_nd(x, w, output_padding=config.output_padding_tuple, **common)
    else:
        y = conv_nd(x, w, padding_mode=config.padding_mode, **common)
    return y[0] if config.bare else y


@FUZZ
@given(config=conv_configs(), data=st.data())
def test_valid_convolutions_match_the_reference_and_pass_the_dot_test(config, data):
    op = config.build()
    assert op.output_shape == config.expected_output_shape
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config.input_shape).astype(op.dtype)
    w = config.weight()
    # in high precision; the tolerance is relative to the sums of absolute values
    expected = _reference_output(config, x.astype(high(op.dtype)), w.astype(high(op.dtype)))
    bound = _reference_output(config, np.abs(x).astype(np.float64), np.abs(w).astype(np.float64))
    assert_close(op.apply(x), expected, bound, op.dtype, "apply")
    assert dottest(op, rng=seed, raise_error=False).passed


@FUZZ
@given(config=upsample_configs(), data=st.data())
def test_valid_upsamples_match_the_reference_and_pass_the_dot_test(config, data):
    op = config.build()
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    x = np.random.default_rng(seed).standard_normal(op.input_shape).astype(op.dtype)
    expected = interpolate(
        x[None], size=config.size, scale_factor=config.scale_factor, mode=config.mode,
        align_corners=config.align_corners,
    )[0]
    np.testing.assert_allclose(op.apply(x), expected, rtol=RTOL[op.dtype], atol=RTOL[op.dtype])
    assert dottest(op, rng=seed, raise_error=False).passed


# -- invalid parameters -------------------------------------------------------

BAD_INTS = st.sampled_from(
    [0, -1, -7, 1.5, 2.0, "2", None, True, (1, 2, 3, 4), [], np.float64(1.0)]
)
BAD_PADDING = st.sampled_from(
    [-1, 1.5, "SAME", "full", None, ((1, 2, 3),), ((-1, 0),), (1, 2, 3, 4), [[1], [2]], True]
)


def _broken(config, data):
    """The config's constructor arguments with one parameter made invalid."""
    args = [config.weight(), config.input_shape]
    kwargs = config.kwargs()
    what = data.draw(st.sampled_from([
        "stride", "dilation", "padding", "groups", "method", "input_shape", "weight",
        "padding_mode", "output_padding", "kernel_too_large",
    ]), label="broken parameter")
    if what in ("stride", "dilation"):
        kwargs[what] = data.draw(BAD_INTS, label=what)
    elif what == "padding":
        kwargs["padding"] = data.draw(BAD_PADDING, label="padding")
    elif what == "groups":
        kwargs["groups"] = data.draw(st.sampled_from([0, -2, 1.0, "1", 1000, True]), label="groups")
    elif what == "method":
        kwargs["method"] = data.draw(st.sampled_from(["no-such-method", "", None, 3]),
                                     label="method")
    elif what == "input_shape":
        args[1] = data.draw(st.sampled_from([
            (), 5, (0,) * len(config.input_shape), tuple(-n for n in config.input_shape),
            config.input_shape + (3,), config.input_shape[1:] or (1, 1, 1, 1, 1),
            tuple(float(n) for n in config.input_shape), "4,4",
        ]), label="input_shape")
    elif what == "weight":
        args[0] = data.draw(st.sampled_from([
            np.zeros((0,) * len(config.weight_shape)), np.array(["a"] * 4),
            np.ones(config.weight_shape + (2,)), np.ones(config.weight_shape[:-1]) if
            len(config.weight_shape) > 1 else np.ones(()), object(),
        ]), label="weight")
    elif what == "padding_mode":
        if config.transpose:
            kwargs["padding_mode"] = "zeros"  # not a keyword of transposed convolutions
        else:
            kwargs["padding_mode"] = data.draw(st.sampled_from(["zero", "mirror", None, 0]))
    elif what == "output_padding":
        if config.transpose:
            limit = max(max(config.stride_tuple), max(config.dilation_tuple))
            kwargs["output_padding"] = data.draw(st.sampled_from([limit + 1, -1, 0.5]))
        else:
            kwargs["output_padding"] = 1  # not a keyword of convolutions
    else:  # a kernel larger than the padded input
        big = tuple(n + 20 for n in config.kernel_size)
        args[0] = np.ones(config.weight_shape[: len(config.weight_shape) - config.ndim] + big)
        kwargs["padding"] = 0
        kwargs.pop("padding_mode", None)
        kwargs["dilation"] = 1
    return what, args, kwargs


@FUZZ
@given(config=conv_configs(), data=st.data())
def test_invalid_convolution_parameters_raise_value_or_type_error(config, data):
    what, args, kwargs = _broken(config, data)
    cls = getattr(linop, config.class_name)
    with pytest.raises((ValueError, TypeError)) as info:
        cls(*args, **kwargs)
    assert str(info.value), f"no message for a broken {what}"


BAD_UPSAMPLE = st.sampled_from([
    dict(size=None, scale_factor=None),
    dict(size=(4,), scale_factor=2.0),
    dict(size=0),
    dict(size=-3),
    dict(size=2.5),
    dict(scale_factor=0),
    dict(scale_factor=-1.0),
    dict(scale_factor=float("nan")),
    dict(scale_factor=float("inf")),
    dict(scale_factor="2"),
    dict(scale_factor=(2.0, 2.0, 2.0, 2.0)),
    dict(scale_factor=1e-6),
    dict(mode="cubic"),
    dict(mode=None),
    dict(mode="nearest", align_corners=True),
    dict(mode="area", align_corners=False),
    dict(dtype=object),
    dict(dtype="U3"),
])


@FUZZ
@given(config=upsample_configs(), bad=BAD_UPSAMPLE)
def test_invalid_upsample_parameters_raise_value_or_type_error(config, bad):
    kwargs = dict(size=config.size, scale_factor=config.scale_factor, mode=config.mode,
                  align_corners=config.align_corners)
    if "size" in bad or "scale_factor" in bad:
        kwargs["size"], kwargs["scale_factor"] = None, None
    kwargs.update(bad)
    with pytest.raises((ValueError, TypeError)):
        linop.Upsample(config.input_shape, **kwargs)


@pytest.mark.parametrize("input_shape", [(), (3,), (1, 2, 3, 4, 5), (0, 4), (2, -1), "2,4", None])
def test_upsample_rejects_bad_input_shapes(input_shape):
    with pytest.raises((ValueError, TypeError)):
        linop.Upsample(input_shape, scale_factor=2)
