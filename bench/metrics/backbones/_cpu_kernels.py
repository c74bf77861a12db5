"""Faster float32 CPU kernels for backbone inference, equal to PyTorch's defaults up to
float32 rounding (measured: <= 1.3e-6 relative on every backbone's outputs; every parity row
against the reference tools stays within 1e-4).

Why this exists, measured on this project's 2-core AMD EPYC (AVX-512):
- `torch.nn.functional.linear` on CPU calls MKL's sgemm, which takes its AVX2 path on AMD
  CPUs: 188-214 GFLOP/s, against 350-490 GFLOP/s for oneDNN's matmul (shipped in the same
  PyTorch build) on the transformer shapes of HTSAT, RoBERTa and GPT-2.
- Convolutions with up to 512 input channels run faster in channels-last layout (Cnn14's
  64->64 layer: 0.19 s against 0.12 s per batch of 8 clips); those on small maps with many
  channels are fastest by Winograd F(2x2, 3x3) over oneDNN matmuls (Cnn14's 2048->2048 layer:
  0.13 s direct, 0.05 s Winograd), which keeps a transformed copy of those weights: 16/9 of
  their size, about 530 MB for Cnn14, 25 MB for VGGish.
- 2x2 max pooling as the maximum of four strided views is exact and about 2x faster.
- Not swapped: the STFT front ends (torchlibrosa's single-channel Conv1d). As frames x kernels
  through oneDNN's matmul they take 4.9 instead of 9.0 ms per 10 s clip at 48 kHz, but the
  log-mel amplifies the changed rounding in near-silent bins: CLAP_LAION / CLAP_MS parity
  went from 5e-9 / 3e-8 to 4e-6 relative. That is too much fidelity to give for 2% of the run.

`optimize_for_cpu_inference` swaps the classes of a loaded network's `nn.Linear`,
transformers' GPT-2 `Conv1D`, `nn.Conv2d` and 2x2 `nn.MaxPool2d` modules in place for
subclasses with the faster forward. Parameters and state-dict keys are untouched, so
official-layout export and checkpoint round trips see the same tensors. The kernel choice is
a fixed rule on layer shapes, never timed at run time, so the same inputs give the same numbers
on every run. Training and autograd take PyTorch's own path.

Set GENAU_BENCH_CPU_KERNELS=default to keep PyTorch's kernels (the results record which ran).
"""

from __future__ import annotations

import functools
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

from genau_core.errors import UsageError

ENV_VAR = "GENAU_BENCH_CPU_KERNELS"
# Layout / algorithm thresholds, measured per Cnn14 and VGGish layer (see choose_conv_algorithm).
CHANNELS_LAST_MAX_IN = 512
WINOGRAD_MIN_CHANNEL_PAIRS = 256 * 512


@functools.lru_cache(maxsize=None)
def onednn_linear_available() -> bool:
    """True when this PyTorch build has oneDNN's fused linear op and it agrees with F.linear."""
    if not torch.backends.mkldnn.is_available():
        return False
    op = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if op is None:
        return False
    try:
        g = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(*s, generator=g) for s in ((3, 5), (4, 5), (4,)))
        with torch.inference_mode():
            return torch.allclose(op(x, w, b, "none", [], ""), F.linear(x, w, b), rtol=1e-5, atol=1e-6)
    except (RuntimeError, NotImplementedError):
        return False


def requested_mode() -> str:
    """ "fast" (unset) or "default" from $GENAU_BENCH_CPU_KERNELS; another value is a UsageError (a ValueError)."""
    mode = os.environ.get(ENV_VAR, "fast").strip().lower() or "fast"
    if mode not in ("fast", "default"):
        raise UsageError(
            f"environment variable {ENV_VAR}={mode!r}: expected 'fast' (the default: faster CPU "
            f"kernels) or 'default' (PyTorch's own kernels); unset it or set one of those"
        )
    return mode


def active_kernels(device: torch.device | str = "cpu") -> str:
    """What backbone inference on `device` runs: recorded with every score."""
    if torch.device(device).type != "cpu" or requested_mode() == "default":
        return "pytorch-default"
    if onednn_linear_available():
        return "onednn-linear+winograd+channels-last-conv"
    return "channels-last-conv"


def _fast_path(x: torch.Tensor, weight: torch.Tensor | None = None) -> bool:
    """CPU float32 inference (no autograd graph to build): the only case the fast kernels take."""
    tensors = (x,) if weight is None else (x, weight)
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors) and not (
        torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    )


class OneDnnLinear(nn.Linear):
    """nn.Linear whose CPU float32 inference runs oneDNN's matmul (no autograd on that path)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _fast_path(x, self.weight):
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)


@functools.lru_cache(maxsize=None)
def _onednn_conv1d_class(base: type) -> type:
    """A subclass of transformers' GPT-2 `Conv1D` (a linear layer with a (in, out) weight)
    whose CPU float32 inference runs oneDNN's matmul on the transposed view (no copy)."""

    class OneDnnConv1D(base):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if _fast_path(x, self.weight):
                return torch.ops.mkldnn._linear_pointwise(x, self.weight.t(), self.bias, "none", [], "")
            return super().forward(x)

    return OneDnnConv1D


def _transformers_conv1d() -> type | None:
    # Only if transformers is already imported: a network without it has no such layers.
    module = sys.modules.get("transformers.pytorch_utils")
    return getattr(module, "Conv1D", None)


class FastConv2d(nn.Conv2d):
    """nn.Conv2d whose CPU float32 inference runs the algorithm chosen for its shape
    (`choose_conv_algorithm`): PyTorch's oneDNN convolution in channels-last or NCHW layout, or
    Winograd F(2x2, 3x3) over oneDNN matmuls."""

    algorithm: str = "nchw"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or not _fast_path(x, self.weight):
            return super().forward(x)
        if self.algorithm == "winograd":
            return winograd_conv3x3(x, self._winograd_weight(), self.bias)
        fmt = torch.channels_last if self.algorithm == "channels-last" else torch.contiguous_format
        return super().forward(x.contiguous(memory_format=fmt))

    def _winograd_weight(self) -> torch.Tensor:
        # Kept as a non-persistent buffer: not in the state dict, moved (or freed) with the
        # module; rebuilt whenever the weight tensor is replaced or changed in place.
        key = (self.weight.data_ptr(), self.weight._version)
        if getattr(self, "_winograd_key", None) != key:
            self.register_buffer("winograd_weight", winograd_weight_transform(self.weight.detach()), persistent=False)
            self._winograd_key = key
        return self.winograd_weight


# Winograd F(2x2, 3x3) (Lavin & Gray, 2016): each 2x2 output tile costs 16 products instead of
# 36, i.e. 2.25x fewer multiply-adds. The transforms are additions, except G's halves.
_WINOGRAD_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))


def winograd_weight_transform(weight: torch.Tensor, block: int = 128) -> torch.Tensor:
    """(K, C, 3, 3) -> (16, K, C), G w G^T per tile position, computed in float64 in blocks of
    `block` output channels (so the temporaries stay small: the 2048x2048 layer would need
    gigabytes in one piece)."""
    k, c = weight.shape[:2]
    g = torch.tensor(_WINOGRAD_G, dtype=torch.float64, device=weight.device)
    out = weight.new_empty(4, 4, k, c)
    for start in range(0, k, block):
        w = weight[start : start + block].double()
        out[:, :, start : start + block] = torch.einsum("ai,kcij,bj->abkc", g, w, g)
    return out.view(16, k, c)


def _input_transform_1d(x: torch.Tensor, dim: int, tiles: int) -> tuple[torch.Tensor, ...]:
    """B^T d along `dim` for tiles of 4 starting every 2 samples: (d0-d2, d1+d2, d2-d1, d1-d3)."""
    step = (slice(None),) * dim + (slice(None, None, 2),)
    d0, d1, d2, d3 = (x.narrow(dim, offset, 2 * tiles - 1)[step] for offset in range(4))
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


def winograd_conv3x3(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """3x3 convolution, stride 1, zero padding 1, of (B, C, H, W) `x` with the transformed
    weight `u` (16, K, C). Returns (B, K, H, W) in channels-last memory."""
    batch, channels, height, width = x.shape
    out_channels = u.shape[1]
    th, tw = (height + 1) // 2, (width + 1) // 2
    # NHWC, zero-padded by 1 on top / left and up to a whole number of tiles on bottom / right.
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 2 * tw + 1 - width, 1, 2 * th + 1 - height))
    v = x.new_empty(4, 4, batch, th, tw, channels)
    for i, rows in enumerate(_input_transform_1d(padded, 1, th)):
        for j, tile in enumerate(_input_transform_1d(rows, 2, tw)):
            v[i, j] = tile
    v = v.view(16, -1, channels)
    m = x.new_empty(16, v.shape[1], out_channels)
    for p in range(16):
        m[p] = torch.ops.mkldnn._linear_pointwise(v[p], u[p], None, "none", [], "")
    m = m.view(4, 4, batch, th, tw, out_channels)
    # Output transform A^T m A with A^T = [[1, 1, 1, 0], [0, 1, -1, -1]], rows then columns.
    out = x.new_empty(batch, th, 2, tw, 2, out_channels)
    for a, row in enumerate((m[0] + m[1] + m[2], m[1] - m[2] - m[3])):
        out[:, :, a, :, 0] = row[0] + row[1] + row[2]
        out[:, :, a, :, 1] = row[1] - row[2] - row[3]
    out = out.view(batch, 2 * th, 2 * tw, out_channels)[:, :height, :width]
    if bias is not None:
        out = out + bias
    return out.permute(0, 3, 1, 2)


class StridedMaxPool2d(nn.MaxPool2d):
    """2x2 / stride-2 max pooling as the maximum of four strided views: the same values bit for
    bit (max is exact), about 2x faster than PyTorch's CPU kernel on VGGish's feature maps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or not _fast_path(x) or not _is_plain_2x2(self):
            return super().forward(x)
        return max_pool_2x2(x)


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """`F.max_pool2d(x, 2, 2)` of a (B, C, H, W) tensor as the maximum of four strided views (exact)."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2  # floor mode drops an odd last row
    top, bottom = x[..., 0:h:2, :w], x[..., 1:h:2, :w]
    return torch.maximum(
        torch.maximum(top[..., 0::2], top[..., 1::2]), torch.maximum(bottom[..., 0::2], bottom[..., 1::2])
    )


def fold_batch_norm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """An inference copy of `conv` followed by eval-mode `bn`, as one convolution: weight * a and
    bias * a + (beta - mean * a) with a = gamma / sqrt(var + eps), the affine map BatchNorm's eval
    kernel applies. Same class (and kernel algorithm) as `conv`; `conv` and `bn` are not changed.
    Made outside inference mode (even when called inside it), so the copies carry the version counter
    that `FastConv2d`'s Winograd weight cache reads."""
    with torch.inference_mode(False), torch.no_grad():
        gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
        beta = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_var)
        a = gamma / torch.sqrt(bn.running_var + bn.eps)
        shift = beta - bn.running_mean * a
        bias = shift if conv.bias is None else conv.bias * a + shift
        folded = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
            True,
            conv.padding_mode,
            device="meta",
        )
        folded.weight = nn.Parameter(conv.weight * a.reshape(-1, 1, 1, 1), requires_grad=False)
        folded.bias = nn.Parameter(bias, requires_grad=False)
    folded.__class__ = type(conv)
    if isinstance(conv, FastConv2d):
        folded.algorithm = conv.algorithm
    return folded


class BatchNormFolder:
    """The folded copies (`fold_batch_norm`) of a network's (conv, BatchNorm) pairs, made on first use
    and remade when any of their tensors is replaced or changed in place (a checkpoint load). Held
    outside the module tree: not in the state dict, not moved by `.to()` (a move changes the key)."""

    def __init__(self) -> None:
        self._made: dict[int, tuple[tuple, nn.Conv2d]] = {}

    def __call__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
        tensors = (conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var)
        key = tuple(None if t is None else (t.data_ptr(), t._version) for t in tensors) + (bn.eps,)
        hit = self._made.get(id(conv))
        if hit is None or hit[0] != key:
            hit = self._made[id(conv)] = (key, fold_batch_norm(conv, bn))
        return hit[1]

    def clear(self) -> None:
        """Drop every folded copy (the network is moved or released)."""
        self._made.clear()


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _is_plain_2x2(pool: nn.MaxPool2d) -> bool:
    return (
        _pair(pool.kernel_size) == (2, 2)
        and _pair(pool.stride or pool.kernel_size) == (2, 2)
        and _pair(pool.padding) == (0, 0)
        and _pair(pool.dilation) == (1, 1)
        and not pool.ceil_mode
        and not pool.return_indices
    )


def choose_conv_algorithm(conv: nn.Conv2d) -> str:
    """ "winograd" for plain 3x3 convolutions with at least 256 x 512 channel pairs (their maps
    are small, where oneDNN's direct convolution is slowest: Cnn14's 2048->2048 layer takes
    0.13 s per batch of 8 clips, 0.05 s by Winograd); "channels-last" up to 512 input channels
    (a single-channel input is already channels-last in memory, so the first layer costs no
    copy); "nchw" otherwise."""
    plain_3x3 = (
        _pair(conv.kernel_size) == (3, 3)
        and _pair(conv.stride) == (1, 1)
        and _pair(conv.padding) == (1, 1)
        and _pair(conv.dilation) == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
    )
    if plain_3x3 and conv.in_channels * conv.out_channels >= WINOGRAD_MIN_CHANNEL_PAIRS and onednn_linear_available():
        return "winograd"
    return "channels-last" if conv.in_channels <= CHANNELS_LAST_MAX_IN else "nchw"


def optimize_for_cpu_inference(net: nn.Module) -> str:
    """Swap `net`'s plain Linear / Conv2d / 2x2 MaxPool2d modules for the faster subclasses, in
    place. Returns the kernel label (`active_kernels`). Only exact instances of those classes are
    swapped: subclasses with their own forward keep it."""
    mode = active_kernels("cpu")
    if mode == "pytorch-default":
        return mode
    linear = onednn_linear_available()
    conv1d = _transformers_conv1d() if linear else None
    for module in net.modules():
        if linear and type(module) is nn.Linear:
            module.__class__ = OneDnnLinear
        elif conv1d is not None and type(module) is conv1d:
            module.__class__ = _onednn_conv1d_class(conv1d)
        elif type(module) is nn.Conv2d:
            module.__class__ = FastConv2d
            module.algorithm = choose_conv_algorithm(module)
        elif type(module) is nn.MaxPool2d and _is_plain_2x2(module):
            module.__class__ = StridedMaxPool2d
    return mode
