"""The faster CPU inference kernels (bench.metrics.backbones._cpu_kernels) against PyTorch's own
layers: same outputs up to float32 rounding (max pooling bit for bit), same state dicts, PyTorch's
path whenever autograd is on, and GENAU_BENCH_CPU_KERNELS=default honoured."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.metrics.backbones import _cpu_kernels as K

needs_onednn = pytest.mark.skipif(not K.onednn_linear_available(), reason="this PyTorch build has no oneDNN linear op")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _swapped(module: nn.Module) -> nn.Module:
    K.optimize_for_cpu_inference(module)
    return module


@needs_onednn
@pytest.mark.parametrize("shape", [(5, 24), (3, 7, 24), (2, 3, 4, 24)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_pytorch(shape, bias):
    torch.manual_seed(0)
    ref = nn.Linear(24, 40, bias=bias)
    fast = _swapped(nn.Sequential(nn.Linear(24, 40, bias=bias)))[0]
    fast.load_state_dict(ref.state_dict())
    assert type(fast) is K.OneDnnLinear
    x = torch.randn(*shape)
    with torch.inference_mode():
        got, want = fast(x), ref(x)
    assert got.shape == want.shape
    assert _rel(got, want) < 1e-5


@needs_onednn
def test_transformers_gpt2_conv1d_matches():
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    ref = Conv1D(48, 24)
    fast = Conv1D(48, 24)
    fast.load_state_dict(ref.state_dict())
    _swapped(nn.Sequential(fast))
    assert type(fast) is not Conv1D and isinstance(fast, Conv1D)
    x = torch.randn(2, 5, 24)
    with torch.inference_mode():
        assert _rel(fast(x), ref(x)) < 1e-5


@pytest.mark.parametrize(
    "c_in,c_out,hw,bias",
    [
        (1, 8, (13, 9), True),  # channels-last, single input channel
        (16, 16, (12, 8), False),  # channels-last
        (256, 512, (7, 5), False),  # Winograd, odd map
        (512, 512, (1, 1), True),  # Winograd, one pixel, bias
        (600, 16, (6, 4), True),  # NCHW (many input channels, few pairs)
    ],
)
def test_conv2d_matches_pytorch(c_in, c_out, hw, bias):
    torch.manual_seed(0)
    ref = nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias)
    fast = nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias)
    fast.load_state_dict(ref.state_dict())
    _swapped(nn.Sequential(fast))
    assert type(fast) is K.FastConv2d
    x = torch.randn(2, c_in, *hw)
    with torch.inference_mode():
        got, want = fast(x), ref(x)
    assert got.shape == want.shape
    assert _rel(got, want) < 1e-5


def test_conv_algorithm_rule():
    assert K.choose_conv_algorithm(nn.Conv2d(64, 64, 3, padding=1)) == "channels-last"
    assert K.choose_conv_algorithm(nn.Conv2d(1024, 1024, 3, padding=2, dilation=2)) == "nchw"
    assert K.choose_conv_algorithm(nn.Conv2d(1024, 1024, 3, stride=2, padding=1)) == "nchw"
    assert K.choose_conv_algorithm(nn.Conv2d(1, 768, 4, stride=4)) == "channels-last"
    if K.onednn_linear_available():
        assert K.choose_conv_algorithm(nn.Conv2d(2048, 2048, 3, padding=1, bias=False)) == "winograd"
        assert K.choose_conv_algorithm(nn.Conv2d(256, 256, 3, padding=1)) == "channels-last"


@needs_onednn
def test_winograd_weight_follows_weight_changes_and_module_moves():
    torch.manual_seed(0)
    conv = _swapped(nn.Sequential(nn.Conv2d(256, 512, 3, padding=1, bias=False)))[0]
    assert conv.algorithm == "winograd"
    x = torch.randn(1, 256, 4, 4)
    with torch.inference_mode():
        conv(x)
    assert "winograd_weight" not in conv.state_dict()  # never exported
    with torch.no_grad():
        conv.weight.mul_(2.0)  # in place: the transformed copy must be rebuilt
    with torch.inference_mode():
        got = conv(x)
        want = F.conv2d(x, conv.weight, padding=1)
    assert _rel(got, want) < 1e-5
    conv.to("meta")  # LazyBackbone.release: the transformed copy goes with the module
    assert conv.winograd_weight.device.type == "meta"


@pytest.mark.parametrize("c_in,c_out", [(8, 16), (256, 512)])  # channels-last and Winograd
def test_fold_batch_norm_equals_conv_then_batch_norm(c_in, c_out):
    torch.manual_seed(0)
    conv, bn = _swapped(nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out, eps=1e-3)))
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 2), bn.bias.uniform_(-1, 1)
    bn.eval()
    before = {k: v.clone() for k, v in {**conv.state_dict(), **bn.state_dict()}.items()}
    x = torch.randn(2, c_in, 6, 10).contiguous(memory_format=torch.channels_last)
    folder = K.BatchNormFolder()
    with torch.inference_mode():
        folded = folder(conv, bn)
        assert type(folded) is type(conv) and folded.algorithm == conv.algorithm
        assert _rel(folded(x), bn(conv(x))) < 1e-5
        assert folder(conv, bn) is folded  # made once
    assert all(torch.equal(v, {**conv.state_dict(), **bn.state_dict()}[k]) for k, v in before.items())
    with torch.no_grad():
        bn.running_var.mul_(4.0)  # in place (a checkpoint load): the folded copy must be remade
    with torch.inference_mode():
        assert folder(conv, bn) is not folded
        assert _rel(folder(conv, bn)(x), bn(conv(x))) < 1e-5
    folder.clear()
    assert not folder._made


def test_max_pool_is_bit_identical():
    pool = _swapped(nn.Sequential(nn.MaxPool2d(2, 2)))[0]
    assert type(pool) is K.StridedMaxPool2d
    for shape in [(2, 3, 8, 6), (1, 4, 7, 5), (2, 3, 9, 9)]:
        x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            assert torch.equal(pool(x), F.max_pool2d(x, 2, 2))
            assert torch.equal(K.max_pool_2x2(x), F.max_pool2d(x, 2, 2))
    # Other pooling shapes are left to PyTorch.
    other = _swapped(nn.Sequential(nn.MaxPool2d(3, 2)))[0]
    assert type(other) is nn.MaxPool2d


@needs_onednn
def test_autograd_takes_pytorchs_path():
    torch.manual_seed(0)
    net = _swapped(nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 1)))
    x = torch.randn(4, 8, requires_grad=True)
    net(x).sum().backward()  # the oneDNN op has no derivative: must not be used here
    assert x.grad is not None and net[0].weight.grad is not None


def test_state_dict_is_untouched():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 3)
    )
    before = {k: v.clone() for k, v in net.state_dict().items()}
    _swapped(net)
    after = net.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_default_mode_keeps_pytorch_layers(monkeypatch):
    monkeypatch.setenv(K.ENV_VAR, "default")
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Linear(3, 3))
    assert K.optimize_for_cpu_inference(net) == "pytorch-default"
    assert type(net[0]) is nn.Conv2d and type(net[1]) is nn.Linear
    monkeypatch.setenv(K.ENV_VAR, "fastest")
    with pytest.raises(ValueError, match=K.ENV_VAR):
        K.active_kernels("cpu")


def test_cnn14_and_vggish_agree_across_kernel_modes(monkeypatch):
    """The real backbones (random weights): same embeddings with PyTorch's and the fast kernels."""
    from bench.metrics.backbones.panns import Cnn14Backbone
    from bench.metrics.backbones.vggish import VGGishBackbone

    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(16000).astype(np.float32) * 0.1 for _ in range(2)]
    outputs = {}
    for m in ("default", "fast"):
        monkeypatch.setenv(K.ENV_VAR, m)
        cnn = Cnn14Backbone().init_random(0)
        vgg = VGGishBackbone().init_random(0)
        assert cnn.kernels == K.active_kernels("cpu")
        outputs[m] = (cnn.embed(clips), vgg.embed(clips))
    assert cnn.kernels != "pytorch-default"  # the second run really took the fast kernels
    assert any(type(mod) is K.FastConv2d for mod in cnn.model.modules())
    (cnn_a, vgg_a), (cnn_b, vgg_b) = outputs["default"], outputs["fast"]
    for a, b in zip(cnn_a, cnn_b):
        assert np.abs(a["embedding"] - b["embedding"]).max() <= 1e-5 * np.abs(a["embedding"]).max()
        assert np.abs(a["logits"] - b["logits"]).max() <= 1e-5 * np.abs(a["logits"]).max()
    for a, b in zip(vgg_a, vgg_b):
        assert np.abs(a["frames"] - b["frames"]).max() <= 1e-5 * np.abs(a["frames"]).max()


def test_cpu_batch_defaults():
    """4 clips per forward on CPU (as fast per clip, half the activations); the class default
    elsewhere; VGGish keeps 64 examples; an explicit batch size always wins."""
    from bench.metrics.backbones.laion_clap import LaionClapHtsatBase
    from bench.metrics.backbones.ms_clap import MsClap2023
    from bench.metrics.backbones.panns import Cnn14Backbone
    from bench.metrics.backbones.vggish import VGGishBackbone

    assert Cnn14Backbone().batch_size == 4 and Cnn14Backbone(device="cuda").batch_size == 8
    assert LaionClapHtsatBase().batch_size == 4 and MsClap2023(device="cuda").batch_size == 8
    assert VGGishBackbone().batch_size == 64 == VGGishBackbone(device="cuda").batch_size
    assert Cnn14Backbone(batch_size=2).batch_size == 2
