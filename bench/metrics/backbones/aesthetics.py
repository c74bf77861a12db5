"""Meta Audiobox Aesthetics behind the backbone interface: four reference-free scores per clip.

The network (WavLM Base+ and the CE / CU / PC / PQ heads) and its key map live in
`genau_core.networks.aesthetics`. What this wrapper adds is the reference's file handling and windowing
(facebookresearch/audiobox-aesthetics 0.0.4, `audiobox_aesthetics/infer.py`):

- input (`AESTHETICS_INPUT`, applied by the suite): `read_wav` averages the channels
  (`wav.mean(0, keepdim=True)`), `AesPredictor.audio_resample_mono` resamples with
  `torchaudio.functional.resample(wav, sr, 16000)` (torchaudio's defaults: "torchaudio-functional").
  No peak or loudness normalisation, no DC removal.
- windows (`make_inference_batch(wavs, 10, 10, 16000)`): 10-s windows every 10 s from sample 0 while
  the start is inside the clip; each window zero-padded to 10 s with a mask of its real samples (the
  network ignores padding frames in attention and pooling, but the first conv's GroupNorm statistics
  span the whole padded window, as in the reference).
- score per axis: each window's output mapped back with the checkpoint's `target_transform`
  (x * std + mean), then the mean over the clip's windows weighted by real samples / 160000.

Outputs per clip: "CE", "CU", "PC", "PQ" (float32 scalars, the rating scale 1-10 with official
weights; z-scores when the configuration has no `target_transform`). No reference audio is involved.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from bench.audio import InputPath
from bench.checkpoints import find_checkpoint
from bench.metrics.backbones.base import AudioBackbone
from genau_core.checkpoint_io import (
    CheckpointFormatError,
    build_from_state,
    load_checkpoint,
)
from genau_core.networks.aesthetics import (
    AXES,
    CHECKPOINT_FILENAME,
    CHECKPOINT_URL,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    AestheticsConfig,
    AestheticsNet,
    WavLMConfig,
    aesthetics_state_from_official,
    aesthetics_state_to_official,
    aesthetics_windows,
    config_from_checkpoint,
)
from genau_core.networks.stft import as_mono_float32

# audiobox-aesthetics infer.py read_wav (channel mean) + AesPredictor.audio_resample_mono
# (torchaudio.functional.resample(wav, orig_freq=sr, new_freq=16000), defaults).
AESTHETICS_INPUT = InputPath(
    "audiobox-aesthetics",
    "audiobox-aesthetics infer.py read_wav + AesPredictor.audio_resample_mono",
    "mean",
    False,
    "torchaudio-functional",
)


def read_aesthetics_checkpoint(path: Path, *, what: str, allow_pickle: bool = False):
    """(state dict under `AestheticsNet` keys, model_cfg, target_transform) from `checkpoint.pt` (a dict with
    "state_dict" / "model_cfg" / "target_transform", `AesPredictor.setup_model`) or from the hf repo's
    `model.safetensors` with the `config.json` beside it (`AesMultiOutput.from_pretrained`)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
            cfg = json.loads((path.parent / "config.json").read_text())
            return state, cfg, cfg.get("target_transform") or {}
        # numpy floats in target_transform are allowed by load_checkpoint's weights-only reader
        obj = load_checkpoint(
            path,
            what=what,
            allow_pickle=allow_pickle,
            pickle_hint="" if allow_pickle else "(a trusted file that pickles other objects needs allow_pickle=True)",
        )
    except CheckpointFormatError:
        raise
    except Exception as e:  # noqa: BLE001  (safetensors / json raise many types for foreign or corrupt files)
        hint = "" if allow_pickle else " (a trusted file that pickles other objects needs allow_pickle=True)"
        raise CheckpointFormatError(f"{path}: cannot read as {what} ({type(e).__name__}: {e}){hint}") from None
    if not isinstance(obj, dict) or not {"state_dict", "model_cfg", "target_transform"} <= set(obj):
        found = sorted(map(str, obj))[:8] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointFormatError(
            f"{path}: not a {what} checkpoint: expected a dict with 'state_dict', 'model_cfg' and "
            f"'target_transform' (the released {CHECKPOINT_FILENAME}), found {found}"
        )
    return aesthetics_state_from_official(obj["state_dict"]), obj["model_cfg"], obj["target_transform"]


class AestheticsBackbone(AudioBackbone):
    """audiobox-aesthetics: 16 kHz mono, 10-s windows every 10 s, four scores per clip (module doc)."""

    name = "audiobox-aesthetics"
    sample_rate = SAMPLE_RATE
    channels: ClassVar[int] = 1
    embedding_dim = len(AXES)  # four scores, no embedding
    outputs = AXES
    axes: ClassVar[tuple[str, ...]] = AXES
    checkpoint_filename = CHECKPOINT_FILENAME
    checkpoint_source = CHECKPOINT_URL + " (or model.safetensors + config.json of hf facebook/audiobox-aesthetics)"
    input_path = AESTHETICS_INPUT
    # a 10-s window is 499 frames through 12 layers of 768: 2 windows per pass on CPU
    default_cpu_batch_size = 2
    what: ClassVar[str] = "audiobox-aesthetics (WavLM + CE/CU/PC/PQ heads)"

    def __init__(
        self,
        device: str | torch.device = "cpu",
        batch_size: int | None = None,
        config: AestheticsConfig | None = None,
        allow_pickle: bool = False,
    ):
        super().__init__(device, batch_size)
        self.config = config or AestheticsConfig()  # init_random's architecture; load() takes the file's
        self.allow_pickle = allow_pickle

    # -- weights ---------------------------------------------------------------------
    def load(self, checkpoint: str | Path | None = None) -> AestheticsBackbone:
        path = find_checkpoint(self.checkpoint_filename, checkpoint, what=self.what, source=self.checkpoint_source)
        state, model_cfg, target_transform = read_aesthetics_checkpoint(
            path, what=self.what, allow_pickle=self.allow_pickle
        )
        try:
            config = config_from_checkpoint(model_cfg, target_transform, self.config.wavlm)
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointFormatError(f"{path}: not a {self.what} checkpoint: {e}") from None
        if not config.target_transform:
            raise CheckpointFormatError(f"{path}: not a {self.what} checkpoint: its target_transform is empty")
        net = build_from_state(lambda: AestheticsNet(config), state, path, self.what)
        self.config = config
        return self._install(net, self._official_identity(path))

    def init_random(self, seed: int = 0) -> AestheticsBackbone:
        torch.manual_seed(seed)
        return self._install(AestheticsNet(self.config), self._random_identity(seed))

    def state_dict_official(self) -> dict[str, torch.Tensor]:
        self._require_loaded()
        return aesthetics_state_to_official({k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()})

    def save_official(self, path: str | Path) -> Path:
        """Write `checkpoint.pt`'s layout: {"state_dict", "model_cfg", "target_transform"}."""
        self._require_loaded()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        c = self.config
        tt = {a: dict(v) for a, v in c.target_transform.items()}
        torch.save({"state_dict": self.state_dict_official(), "model_cfg": c.model_cfg(), "target_transform": tt}, path)
        return path

    def settings(self) -> dict:
        """What, besides the weights, decides the numbers (for result records)."""
        return {
            "window_s": WINDOW_SAMPLES / SAMPLE_RATE,
            "hop_s": WINDOW_SAMPLES / SAMPLE_RATE,
            "aggregation": "mean of window scores weighted by real samples / window",
            "target_transform": bool(self.config.target_transform),
            "precision": "float32",
        }

    # -- inference -------------------------------------------------------------------
    def window_scores(self, windows: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
        """(W, 160000) zero-padded windows + (W, 160000) masks -> {axis: (W,) scores}, in batches."""
        self._require_loaded()
        out = {a: np.zeros(len(windows), np.float32) for a in AXES}
        with torch.inference_mode():
            for k in range(0, len(windows), self.batch_size):
                w = torch.from_numpy(windows[k : k + self.batch_size]).to(self.device)
                m = torch.from_numpy(valid[k : k + self.batch_size]).to(self.device)
                for a, v in self.model.scores(w, m).items():
                    out[a][k : k + len(w)] = v.float().cpu().numpy()
        return out

    def embed(self, waveforms: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        self._require_loaded()
        clips = [as_mono_float32(w, i, self.name) for i, w in enumerate(waveforms)]
        for i, c in enumerate(clips):
            if len(c) == 0:
                raise ValueError(f"{self.name}: clip {i} is empty")
        results: list[dict[str, np.ndarray]] = []
        # windows of a few clips at a time: memory stays flat in the number (and length) of clips
        for first in range(0, len(clips), max(1, self.batch_size)):
            group = clips[first : first + max(1, self.batch_size)]
            owner, starts = [], []
            for j, c in enumerate(group):
                for start, n in aesthetics_windows(len(c)):
                    owner.append(j)
                    starts.append((start, n))
            windows = np.zeros((len(starts), WINDOW_SAMPLES), np.float32)
            valid = np.zeros((len(starts), WINDOW_SAMPLES), bool)
            for r, (j, (start, n)) in enumerate(zip(owner, starts)):
                windows[r, :n] = group[j][start : start + n]
                valid[r, :n] = True
            scores = self.window_scores(windows, valid)
            owner_arr = np.asarray(owner)
            weights = np.asarray([n / WINDOW_SAMPLES for _, n in starts], np.float32)
            for j in range(len(group)):
                rows = owner_arr == j
                w = torch.from_numpy(weights[rows])
                # infer.py: (preds[bids == b] * weights_b).sum() / weights_b.sum(), in float32 torch
                results.append({a: ((torch.from_numpy(scores[a][rows]) * w).sum() / w.sum()).numpy() for a in AXES})
        return results


def tiny_aesthetics_config(**kw) -> AestheticsConfig:
    """A few-thousand-parameter architecture for tests (full windowing, tiny widths)."""
    wavlm = WavLMConfig(
        conv_layers=((16, 10, 5),) + ((16, 3, 2),) * 4 + ((16, 2, 2),) * 2,
        embed_dim=24,
        ffn_dim=32,
        layers=2,
        heads=2,
        conv_pos=8,
        conv_pos_groups=4,
        num_buckets=32,
        max_distance=64,
    )
    return AestheticsConfig(wavlm=wavlm, nth_layer=wavlm.layers + 1, **kw)
