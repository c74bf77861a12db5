"""The `laion_clap_fusion` metric backbones: rate, dims, prepare and embed over `genau_core.networks.laion_clap_fusion`
(the network, its configurations and official key maps live there; its docstring says how the reference computes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bench.audio import InputPath
from bench.checkpoints import find_checkpoint
from bench.metrics.backbones.laion_clap import LaionClapBackbone
from genau_core.checkpoint_io import (
    build_on_meta,
    materialize,
    read_state_dict,
    state_shapes,
)
from genau_core.networks.laion_clap import int16_round_trip
from genau_core.networks.laion_clap_fusion import (
    HTSAT_TINY_FUSION,
    FusionInput,
    FusionMel,
    LaionClapFusionConfig,
    LaionClapFusionNet,
    convert_laion_clap_fusion_state_dict,
    fusion_features,
    save_laion_clap_fusion_checkpoint,
    to_laion_clap_fusion_state_dict,
)
from genau_core.networks.stft import as_mono_float32

# stable-audio-metrics src/clap_score.py: librosa.load(file_path, sr=48000, mono=True) (channel mean,
# then librosa's soxr HQ); the -1 dBFS peak gain and the int16 round trip follow in `prepare` / the backbone.
STABLE_AUDIO_CLAP_INPUT = InputPath(
    "librosa-load",
    "stable-audio-metrics src/clap_score.py clap_score: librosa.load(path, sr=48000, mono=True)",
    "mean",
    False,
    "librosa-soxr-hq",
)


def stable_audio_metrics_clap_peak(audio: np.ndarray) -> np.ndarray:
    """`pyln.normalize.peak(audio, -1.0)` on the float32 clip of `librosa.load(path, sr=48000, mono=True)`.

    The gain (float64: 10^(-1/20) / the float32 peak) multiplies the float32 samples in float32, as numpy
    1.23.5 (stable-audio-metrics' pin) computes `gain * data` for a float64 scalar and a float32 array (numpy
    2 computes in float64; after the int16 round trip that moves a few samples by 1 LSB). A silent clip has no
    peak: the reference divides by zero and embeds garbage; we raise."""
    x = np.asarray(audio, dtype=np.float32)
    peak = np.max(np.abs(x)) if x.size else np.float32(0.0)
    if not peak > 0:
        raise ValueError(
            "silent clip: peak normalisation to -1 dBFS is undefined (stable-audio-metrics' pyloudnorm call divides "
            "by zero); the clip cannot be scored under this protocol"
        )
    gain = np.power(10.0, -1.0 / 20.0) / peak
    return np.float32(gain) * x


def stable_audio_metrics_clap_input(audio: np.ndarray) -> np.ndarray:
    """stable-audio-metrics `src/clap_score.py::clap_score`'s preparation of one clip already read by
    `librosa.load(path, sr=48000, mono=True)`: the -1 dBFS peak gain (`stable_audio_metrics_clap_peak`), then
    its `int16_to_float32(float32_to_int16(audio))`: the float32 waveform it gives
    `get_audio_embedding_from_data(use_tensor=True)`, which quantises no further. (The round trip is applied
    exactly once: it is not idempotent in float32.)"""
    return int16_round_trip(stable_audio_metrics_clap_peak(audio))


# -- backbones ------------------------------------------------------------------------------------------
class LaionClapFusion(LaionClapBackbone):
    """`630k-audioset-fusion-best.pt`: the whole clip through the fusion branch (module doc); audio as
    `get_audio_embedding_from_data` (int16 round trip, then `get_audio_features` "fusion")."""

    name = "laion-clap-htsat-tiny-fusion"
    checkpoint_filename = "630k-audioset-fusion-best.pt"
    default_config = HTSAT_TINY_FUSION
    # fusion features are 4 x 1001 x 64 per clip; the network cost is the non-fusion one
    default_cpu_batch_size = 4

    def __init__(self, device: str | torch.device = "cpu", *, config: LaionClapFusionConfig | None = None, **kw):
        super().__init__(device, config=config, **kw)
        if not isinstance(self.config, LaionClapFusionConfig):
            raise TypeError(f"{self.name}: needs a LaionClapFusionConfig, got {type(self.config).__name__}")
        self.last_inputs: list[FusionInput] = []  # of the last embed call (chunk starts, for records / parity)
        self.fusion_mel = FusionMel(self.config)  # on the CPU, where upstream computes it (get_audio_features)

    def settings(self) -> dict:
        c = self.config
        out = super().settings()
        out.update(
            {
                "long_clips": "fusion: whole clip resized + 3 chunks (starts drawn per third, seeded by the "
                "sha256 of the clip's samples; upstream: unseeded np.random)",
                "resize_antialias": c.resize_antialias,
                "fusion_type": c.fusion_type,
                "mel": "torchaudio MelSpectrogram (HTK, no norm) + AmplitudeToDB(top_db=None)",
            }
        )
        return out

    # -- weights ----------------------------------------------------------------------
    def build_network(self) -> LaionClapFusionNet:
        return LaionClapFusionNet(self.config)

    def load(self, checkpoint: str | Path | None = None) -> LaionClapFusion:
        what = f"LAION-CLAP {self.name}"
        path = find_checkpoint(self.checkpoint_filename, checkpoint, what=what, source=self.checkpoint_source)
        state = read_state_dict(path, ("state_dict",), what=what, allow_pickle=self.allow_pickle)
        net = build_on_meta(self.build_network)
        converted = convert_laion_clap_fusion_state_dict(
            state, self.config, source=str(path), expected=state_shapes(net)
        )
        return self._install(materialize(net, converted, path, what), self._official_identity(path))

    def state_dict_official(self) -> dict[str, torch.Tensor]:
        self._require_loaded()
        return to_laion_clap_fusion_state_dict(self.model)

    def save_official(self, path: str | Path) -> Path:
        self._require_loaded()
        return save_laion_clap_fusion_checkpoint(self.model, path)

    # -- inference --------------------------------------------------------------------
    def fit_clip(self, clip: np.ndarray) -> np.ndarray:
        """The waveform `get_audio_features` receives: the int16 round trip (no crop, no padding here)."""
        return int16_round_trip(clip)

    def fusion_input(self, waveform: np.ndarray, index: int = 0) -> FusionInput:
        self._require_loaded()
        x = self.fit_clip(as_mono_float32(waveform, index, self.name))
        if len(x) == 0:
            raise ValueError(f"{self.name}: clip {index} is empty")
        with torch.inference_mode():
            return fusion_features(x, self.config, self.fusion_mel)

    def embed(self, waveforms: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        self._require_loaded()
        clips = [as_mono_float32(w, i, self.name) for i, w in enumerate(waveforms)]
        for i, c in enumerate(clips):
            if len(c) == 0:
                raise ValueError(f"{self.name}: clip {i} is empty")
        out: list[dict[str, np.ndarray]] = []
        self.last_inputs = []
        with torch.inference_mode():
            for k in range(0, len(clips), self.batch_size):
                inputs = [self.fusion_input(c, k + j) for j, c in enumerate(clips[k : k + self.batch_size])]
                self.last_inputs.extend(inputs)
                mel = torch.stack([i.mel_fusion for i in inputs]).to(self.device)
                longer = torch.tensor([i.longer for i in inputs], device=self.device)
                emb = self.model.embed_fusion(mel, longer).float().cpu().numpy()
                out.extend({"embedding": e.copy()} for e in emb)
        return out

    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """(4, chunk_frames, n_mels) dB mel channels of one clip (the network's input)."""
        return self.fusion_input(waveform).mel_fusion.numpy()


class LaionClapFusionStableAudio(LaionClapFusion):
    """stable-audio-metrics' CLAP score input: peak -1 dBFS on the 48 kHz mono clip (`prepare`), one int16
    round trip, the fusion features with torchvision 0.16's resize (no antialiasing)."""

    name = "laion-clap-htsat-tiny-fusion-stable-audio"
    input_path = STABLE_AUDIO_CLAP_INPUT

    def prepare(self, waveform: np.ndarray) -> np.ndarray:
        """The peak gain; `fit_clip` then does the one int16 round trip (stable-audio-metrics quantises once and
        passes use_tensor=True, which skips laion_clap's own): together `stable_audio_metrics_clap_input`."""
        return stable_audio_metrics_clap_peak(waveform)
