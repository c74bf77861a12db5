"""LAION-CLAP with feature fusion (`630k-audioset-fusion-best.pt`, HTSAT-tiny + RoBERTa), computed as
`laion_clap` does for `CLAP_Module(enable_fusion=True)`, and as stable-audio-metrics feeds it.

The non-fusion backbones (`laion_clap.py`) crop or repeat-pad every clip to 10 s and compute the log-mel
inside the HTSAT module. The fusion model sees long clips whole (`training/data.py::get_audio_features`
with data_truncating="fusion", data_filling="repeatpad", max_len 480000):

1. the log-mel is computed *outside* the network with torchaudio, not torchlibrosa (`get_mel`):
   `MelSpectrogram(48000, n_fft=win=1024, hop=480, center, reflect, power 2, HTK mel scale, no filter
   norm, 64 mels, 50-14000 Hz)` then `AmplitudeToDB(top_db=None)` = 10 log10(max(x, 1e-10)); (frames, 64).
   The HTSAT module's stored torchlibrosa kernels are loaded but unused, as upstream.
2. a clip of at most 480000 samples is repeat-padded to 480000 (as the non-fusion model) and its mel
   (1001 frames) is stacked 4 times; `longer` = False (no fusion happens in the network).
3. a longer clip (`longer` = True): mel of the whole clip (T frames); chunk = 1001 frames; the possible
   chunk starts 0..T-1001 are split in three (`np.array_split`), one start drawn from each third
   (`np.random.choice`, an empty third gives start 0); the 4 channels are the whole mel resized to
   (1001, 64) (`torchvision.transforms.Resize`, bilinear) and the three chunks. A clip of 480001-480479
   samples has T = 1001: its whole mel stacked 4 times, `longer` = False.
4. HTSAT (transformers `ClapAudioModel` with `enable_fusion`, `fusion_type` "aff_2d"): BN over mel bins on
   all 4 channels, bicubic stretch to 1024 frames, patch embedding of channel 0; for `longer` clips the 3
   chunks go through `mel_conv2d` (patch 4 x 12, stride 4 x 12), are concatenated along time, padded to the
   patch grid and merged with channel 0's patches by attentional feature fusion (AFF:
   2 x * w + 2 r * (1 - w), w = sigmoid(local + global attention)); then as the non-fusion model.

Deliberate differences (docs/backbones.md):
- chunk starts: upstream draws them from numpy's global random state, so a long clip's embedding changes
  from run to run. Here they are drawn from `np.random.RandomState(seed)`, the seed being the first 4 bytes
  (little endian) of the sha256 of the clip's float32 samples as the network gets them: the same clip gets
  the same chunks in every run, batch and order. `RandomState(s).choice` is the algorithm of
  `np.random.choice` after `np.random.seed(s)`, so the parity run reproduces our chunks upstream by
  seeding numpy with that value before each clip.
- resize: `torchvision.transforms.Resize` antialiases tensors since torchvision 0.17 (its default became
  True); before, a tensor was resized without antialiasing. stable-audio-metrics pins torchvision 0.16.0
  (and laion-clap 1.1.4), so the stable-audio protocol resizes without antialiasing
  (`resize_antialias=False`, recorded in the settings); laion-clap >= 1.1.6 requires torchvision >= 0.19,
  where it is antialiased (`resize_antialias=True`).

stable-audio-metrics `src/clap_score.py::clap_score`: `librosa.load(path, sr=48000, mono=True)` (the suite's
input path), `pyloudnorm.normalize.peak(audio, -1.0)`, its own int16 round trip, then
`get_audio_embedding_from_data(use_tensor=True)` (no second round trip) one clip at a time; text through
`get_text_embedding` (RoBERTa, 77 tokens); score = mean cosine(audio, text). `stable_audio_metrics_clap_input`
is that input preparation.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genau_core.checkpoint_io import (
    check_complete,
    expected_state,
    strip_prefix,
)
from genau_core.networks.htsat import HTSATConfig
from genau_core.networks.laion_clap import (
    LaionClapConfig,
    LaionClapNet,
    convert_laion_clap_state_dict,
    to_laion_clap_state_dict,
)

WHAT = "LAION-CLAP (HTSAT + RoBERTa, fusion aff_2d)"
# Key prefixes of the fusion layers in an original state dict, and where they live in ours.
_FUSION_ORIGINAL = ("audio_branch.patch_embed.mel_conv2d.", "audio_branch.patch_embed.fusion_model.")
_ENCODER = "clap.audio_model.audio_encoder."
_FUSION_OURS = tuple(_ENCODER + p[len("audio_branch.") :] for p in _FUSION_ORIGINAL)


@dataclass(frozen=True)
class LaionClapFusionConfig(LaionClapConfig):
    """A LAION-CLAP configuration with the fusion branch (`CLAP_Module(enable_fusion=True)` always
    builds fusion_type "aff_2d")."""

    fusion_type: str = "aff_2d"
    resize_antialias: bool = False  # torchvision < 0.17 (stable-audio-metrics' pin): no antialiasing

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fusion_type != "aff_2d":
            raise ValueError(f"LAION-CLAP fusion: fusion_type {self.fusion_type!r} is not supported (only 'aff_2d')")

    @property
    def chunk_frames(self) -> int:
        """Frames of one 10-s chunk (`max_len // hop_size + 1`): 1001."""
        return self.clip_samples // self.hop_size + 1

    def hf_config(self):
        config = super().hf_config()
        config.audio_config.enable_fusion = True
        config.audio_config.fusion_type = self.fusion_type
        return config


def fusion_config(base: LaionClapConfig, **changes) -> LaionClapFusionConfig:
    """The fusion variant of a LAION-CLAP configuration (same front end, HTSAT and text tower)."""
    return LaionClapFusionConfig(**{**{f.name: getattr(base, f.name) for f in fields(base)}, **changes})


# laion_clap model_configs/HTSAT-tiny.json + roberta: the architecture of 630k-audioset-fusion-best.pt
HTSAT_TINY_FUSION = LaionClapFusionConfig(htsat=HTSATConfig(embed_dim=96, depths=(2, 2, 6, 2)))


# -- the fusion front end (torchaudio numerics, plain torch) ----------------------------------------
def htsat_mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """(n_freqs, n_mels) triangular filters on the HTK mel scale without area normalisation, computed in
    float32 as `torchaudio.functional.melscale_fbanks(..., norm=None, mel_scale="htk")` does."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_min = 2595.0 * math.log10(1.0 + f_min / 700.0)
    m_max = 2595.0 * math.log10(1.0 + f_max / 700.0)
    m_pts = torch.linspace(m_min, m_max, n_mels + 2)
    f_pts = 700.0 * (10.0 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1), torch.min(down, up))


class FusionMel(nn.Module):
    """`get_mel`: waveform (N,) or (B, N) -> dB mel (..., frames, n_mels). Buffers are not persistent (the
    checkpoint has no such tensors: upstream builds the transform on every call)."""

    def __init__(self, config: LaionClapConfig):
        super().__init__()
        self.n_fft, self.hop = config.window_size, config.hop_size
        self.register_buffer("window", torch.hann_window(config.window_size), persistent=False)
        fb = htsat_mel_filterbank(
            config.window_size // 2 + 1, config.fmin, config.fmax, config.n_mels, config.sample_rate
        )
        self.register_buffer("fb", fb, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            x,
            self.n_fft,
            hop_length=self.hop,
            win_length=self.n_fft,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        power = spec.abs().pow(2.0)  # torchaudio.functional.spectrogram(power=2.0)
        mel = torch.matmul(power.transpose(-1, -2), self.fb)  # MelScale, already (frames, n_mels)
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))  # AmplitudeToDB(top_db=None), ref 1.0


def fusion_chunk_seed(waveform: np.ndarray) -> int:
    """The per-clip seed of the chunk draw: sha256 of the float32 samples, first 4 bytes, little endian."""
    digest = hashlib.sha256(np.ascontiguousarray(waveform, dtype=np.float32).tobytes()).digest()
    return int.from_bytes(digest[:4], "little")


def fusion_chunk_starts(total_frames: int, chunk_frames: int, rng: np.random.RandomState) -> tuple[int, int, int]:
    """The three chunk starts of `get_audio_features` ("fusion"): the starts 0..total-chunk split in three
    with `np.array_split`, an empty third replaced by [0], one `choice` per third, front / middle / back."""
    ranges = np.array_split(list(range(total_frames - chunk_frames + 1)), 3)
    if len(ranges[1]) == 0:
        ranges[1] = [0]
    if len(ranges[2]) == 0:
        ranges[2] = [0]
    return int(rng.choice(ranges[0])), int(rng.choice(ranges[1])), int(rng.choice(ranges[2]))


@dataclass(frozen=True)
class FusionInput:
    """What the fusion network gets for one clip, and how it was made (recorded by the parity run)."""

    mel_fusion: torch.Tensor  # (4, chunk_frames, n_mels)
    longer: bool
    starts: tuple[int, int, int] | None  # chunk starts (frames) of a longer clip
    seed: int | None


def fusion_features(
    waveform: np.ndarray, config: LaionClapFusionConfig, mel: FusionMel, seed: int | None = None
) -> FusionInput:
    """`get_audio_features(..., max_len=clip_samples, data_truncating="fusion", data_filling="repeatpad")` on
    one prepared (int16 round-tripped) clip, with the chunk draw seeded (`fusion_chunk_seed` unless given)."""
    x = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))
    n, max_len, chunk = len(x), config.clip_samples, config.chunk_frames
    if n == 0:
        raise ValueError("LAION-CLAP fusion: empty clip")
    if n > max_len:
        m = mel(x)
        total = m.shape[0]
        if total == chunk:  # max_len < n < max_len + hop: the whole clip, unfused
            return FusionInput(torch.stack([m, m, m, m]), False, None, None)
        seed = fusion_chunk_seed(waveform) if seed is None else seed
        starts = fusion_chunk_starts(total, chunk, np.random.RandomState(seed))
        # torchvision Resize(size=[chunk, n_mels]) on the (1, T, n_mels) tensor: bilinear, align_corners=False
        shrink = F.interpolate(
            m[None, None],
            size=[chunk, config.n_mels],
            mode="bilinear",
            align_corners=False,
            antialias=config.resize_antialias,
        )[0, 0]
        chunks = [m[s : s + chunk] for s in starts]
        return FusionInput(torch.stack([shrink, *chunks]), True, starts, seed)
    if n < max_len:  # repeatpad
        x = F.pad(x.repeat(max_len // n), (0, max_len - n * (max_len // n)), mode="constant", value=0.0)
    m = mel(x)
    return FusionInput(torch.stack([m, m, m, m]), False, None, None)


# -- network ----------------------------------------------------------------------------------------
class LaionClapFusionNet(LaionClapNet):
    """`LaionClapNet` whose HTSAT has the fusion layers (its input is `fusion_features`' mel, computed
    outside the network as upstream). The torchlibrosa front end stays (its tensors are in every
    checkpoint) but is not used for audio."""

    def embed_fusion(self, mel_fusion: torch.Tensor, longer: torch.Tensor) -> torch.Tensor:
        """(B, 4, chunk_frames, n_mels) + (B,) bool -> (B, joint) unit vectors."""
        out = self.clap.audio_model(input_features=mel_fusion, is_longer=longer.reshape(-1, 1))
        return F.normalize(self.clap.audio_projection(out.pooler_output), dim=-1)


# -- checkpoint layout -------------------------------------------------------------------------------
def convert_laion_clap_fusion_state_dict(
    state: Mapping[str, torch.Tensor],
    config: LaionClapFusionConfig,
    *,
    source: str = "state dict",
    expected: Mapping[str, torch.Size] | None = None,
) -> dict[str, torch.Tensor]:
    """Original fusion laion_clap state dict (keys optionally under `module.`) -> `LaionClapFusionNet`
    state dict: the non-fusion mapping (`convert_laion_clap_state_dict`) plus the fusion layers
    (`patch_embed.mel_conv2d.*`, `patch_embed.fusion_model.*`, same names under the HTSAT encoder)."""
    state = strip_prefix(state, "module.", source=source)
    if expected is None:
        expected = expected_state(lambda: LaionClapFusionNet(config))
    fusion = {k: v for k, v in state.items() if k.startswith(_FUSION_ORIGINAL)}
    rest = {k: v for k, v in state.items() if not k.startswith(_FUSION_ORIGINAL)}
    base_expected = {k: s for k, s in expected.items() if not k.startswith(_FUSION_OURS)}
    out = convert_laion_clap_state_dict(rest, config, source=source, expected=base_expected, what=WHAT)
    out.update({_ENCODER + k[len("audio_branch.") :]: v for k, v in fusion.items()})
    check_complete(out, expected, unknown=[], source=source, what=WHAT)
    return out


def to_laion_clap_fusion_state_dict(net: LaionClapFusionNet) -> dict[str, torch.Tensor]:
    """`LaionClapFusionNet` -> the original key layout (no `module.`), the fusion layers after
    `audio_branch.patch_embed.norm.bias` as upstream orders them; CPU copies."""
    base = to_laion_clap_state_dict(net)
    sd = net.state_dict()
    fusion = {
        "audio_branch." + k[len(_ENCODER) :]: v.detach().cpu().clone()
        for prefix in _FUSION_OURS
        for k, v in sd.items()
        if k.startswith(prefix)
    }  # mel_conv2d first
    out: dict[str, torch.Tensor] = {}
    for key, value in base.items():
        out[key] = value
        if key == "audio_branch.patch_embed.norm.bias":
            out.update(fusion)
    return out


def save_laion_clap_fusion_checkpoint(net: LaionClapFusionNet, path: str | Path, *, module_prefix: bool = True) -> Path:
    """Write `{"state_dict": ...}` as laion_clap training does (keys under `module.` like the released files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = "module." if module_prefix else ""
    torch.save({"state_dict": {prefix + k: v for k, v in to_laion_clap_fusion_state_dict(net).items()}}, path)
    return path


# -- stable-audio-metrics input ----------------------------------------------------------------------
