"""linop.from_torch against the modules' own forward, on random Sequentials.

Every conversion is compared with PyTorch computing the same module on the
same input (and its adjoint with autograd); errors name the layer.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

import linop

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
nn = torch.nn


def _check(module, input_shape, dtype=torch.float64, atol=1e-10):
    module = module.to(dtype)
    op = linop.from_torch(module, input_shape)
    x = torch.randn((3,) + tuple(input_shape), dtype=dtype, requires_grad=True)
    y = module(x)
    assert op.output_shape == tuple(y.shape[1:])
    np.testing.assert_allclose(op.apply(x.detach().numpy()), y.detach().numpy(), atol=atol)
    # the adjoint: autograd of <module(x), v> with respect to x
    v = torch.randn_like(y)
    (y * v).sum().backward()
    np.testing.assert_allclose(op.apply_adjoint(v.numpy()), x.grad.numpy(), atol=atol)
    back = pickle.loads(pickle.dumps(op))
    np.testing.assert_array_equal(back.apply(x.detach().numpy()), op.apply(x.detach().numpy()))
    return op


LAYERS = {
    1: [lambda c: nn.Conv1d(c, 3, 3, padding=1, bias=False, padding_mode="circular"),
        lambda c: nn.ConvTranspose1d(c, 2, 4, stride=2, padding=1, bias=False),
        lambda c: nn.Upsample(scale_factor=2, mode="linear", align_corners=False),
        lambda c: nn.Identity()],
    2: [lambda c: nn.Conv2d(c, 4, 3, stride=2, padding=1, bias=False, padding_mode="reflect"),
        lambda c: nn.Conv2d(c, c, 3, padding="same", dilation=2, groups=c, bias=False),
        lambda c: nn.ConvTranspose2d(c, 2, 3, stride=2, padding=1, output_padding=1,
                                     bias=False),
        lambda c: nn.Upsample(scale_factor=2, mode="nearest"),
        lambda c: nn.UpsamplingBilinear2d(scale_factor=2),
        lambda c: nn.UpsamplingNearest2d(size=(9, 7)),
        lambda c: nn.Upsample(scale_factor=1.5, mode="bicubic", recompute_scale_factor=True)],
    3: [lambda c: nn.Conv3d(c, 2, 2, bias=False),
        lambda c: nn.ConvTranspose3d(c, 2, 2, stride=2, bias=False),
        lambda c: nn.Upsample(scale_factor=2, mode="trilinear")],
}


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_random_sequentials_match_the_module(nd):
    rng = np.random.default_rng(nd)
    sizes = {1: (10,), 2: (8, 7), 3: (5, 4, 4)}[nd]
    checked = 0
    for trial in range(12):
        torch.manual_seed(trial)
        channels, layers = 2, []
        for _ in range(int(rng.integers(1, 4))):
            layer = LAYERS[nd][int(rng.integers(len(LAYERS[nd])))](channels)
            layers.append(layer)
            channels = getattr(layer, "out_channels", channels)
        net = nn.Sequential(*layers)
        try:  # a chain that shrinks the input to nothing fails in PyTorch as in linop
            net.double()(torch.zeros((1, 2) + sizes, dtype=torch.float64))
        except RuntimeError:
            with pytest.raises(ValueError):
                linop.from_torch(net, (2,) + sizes)
            continue
        _check(net, (2,) + sizes)
        checked += 1
    assert checked >= 6


def test_single_layers_and_nested_sequentials():
    torch.manual_seed(0)
    op = _check(nn.Conv2d(3, 5, 3, padding=1, bias=False), (3, 6, 6))
    assert isinstance(op, linop.Conv2d) and op.padding == ((1, 1), (1, 1))
    op = _check(nn.Sequential(nn.Sequential(nn.Identity()), nn.Conv1d(1, 1, 3, bias=False)),
                (1, 9))
    assert op.output_shape == (1, 7)
    identity = linop.from_torch(nn.Identity(), (2, 3))
    np.testing.assert_array_equal(identity.tocsr().toarray(), np.eye(6))
    # float32 modules give float32 operators
    op = _check(nn.Conv2d(1, 2, 3, bias=False), (1, 5, 5), dtype=torch.float32, atol=1e-5)
    assert op.dtype == np.float32


def test_the_matrix_is_the_product_of_the_layers():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False),
                        nn.Upsample(scale_factor=2, mode="bilinear"),
                        nn.ConvTranspose2d(2, 1, 2, stride=2, bias=False)).double()
    op = linop.from_torch(net, (1, 4, 4))
    eye = torch.eye(16, dtype=torch.float64).reshape(16, 1, 4, 4)
    columns = net(eye).detach().numpy().reshape(16, -1).T  # the module's matrix, column by column
    np.testing.assert_allclose(op.tocsr().toarray(), columns, atol=1e-12)


def test_weights_that_require_grad_are_detached():
    layer = nn.Conv2d(2, 3, 3, bias=False)
    assert layer.weight.requires_grad
    op = linop.Conv2d(layer.weight, (2, 5, 5))
    np.testing.assert_array_equal(op.weight, layer.weight.detach().numpy())
    assert not op.weight.flags.writeable


def test_bias_and_non_linear_layers_are_refused_by_name():
    with pytest.raises(ValueError, match=r"Conv2d \(layer 1 of Sequential\) has a bias") as info:
        linop.from_torch(nn.Sequential(nn.Identity(), nn.Conv2d(1, 1, 3)), (1, 5, 5))
    assert "bias=False" in str(info.value) and info.value.parameter == "module"
    with pytest.raises(ValueError, match=r"ReLU \(layer 1 of Sequential\).*not linear"):
        linop.from_torch(nn.Sequential(nn.Conv2d(1, 1, 3, bias=False), nn.ReLU()), (1, 5, 5))
    with pytest.raises(ValueError, match=r"Flatten.*shape of the batch"):
        linop.from_torch(nn.Sequential(nn.Flatten()), (1, 5, 5))
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        linop.from_torch(np.eye(3), (3,))


def test_torch_is_not_imported_by_linop():
    code = ("import sys, linop, numpy as np; linop.Conv2d(np.ones((3, 3)), (5, 5)); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stderr
