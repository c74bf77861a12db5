"""The shipped `genau-tiny` weights: trained by `genau train` on the `demo` split, reproducibly.

Rebuild them (about 8 minutes on one shared CPU thread):

    OMP_NUM_THREADS=1 python -m bench.tiny_genau --work runs/genau-tiny

(`bench/tiny_genau.py`: the data is bench's `demo` split, so the driver sits above genau_core.)
This writes a manifest of the 10 synthesised `demo` clips (`bench.splits.load_split("demo")`,
exact captions, dataset id audiocaps) and the model config, then runs both stages of our own
trainer, exactly equivalent to (numbers: `TinyRecipe`)

    genau train vae --manifest runs/genau-tiny/demo.jsonl --out runs/genau-tiny/vae \
        --model runs/genau-tiny/genau-tiny-config.json --steps 1200 --batch-size 10 --lr 0.002 \
        --crop-frames 128 --seed 0 --device cpu
    genau train ldm --manifest runs/genau-tiny/demo.jsonl --out runs/genau-tiny/ldm \
        --init-from runs/genau-tiny/vae/checkpoints/step-0001200/model --steps 1500 --batch-size 10 \
        --lr 0.005 --warmup-steps 50 --seed 0 --device cpu

and writes the final model (`genau_config.json` + `genau.safetensors`, stored as float16) with a
`training.json` record (recipe, the commands, wall times, final losses, versions, sha256, and an
evaluation of the stored weights on the 10 demo captions) into
`genau_core/genau/weights/genau-tiny/` (`--no-install`: into WORK/genau-tiny instead).

The model is the `genau-tiny` configuration (tiny 1D-VAE and FIT; tiny T5 / CLAP text towers
with in-process tokenizers, frozen at their seed-0 random weights) with these changes, each
needed for a few CPU minutes on 10 clips to give recognisable audio (all measured on our runs):
- vocoder: Griffin-Lim on the mel (`genau_core.audio.griffinlim`), no weights; a HiFi-GAN
  trained this briefly is not recognisable audio, Griffin-Lim of a good mel is;
- VAE input normalisation `mel_mean` = the log-mel floor (log 1e-5, so silent bins are 0 and a
  tone is a sparse input) and `mel_std` = the std of the demo log-mels, and 4 GroupNorm groups
  instead of 32 (genau-tiny has 32 channels, so 32 groups normalise each channel over time on
  its own); without these, every pure tone decoded to one average spectrum;
- VAE trained on random 1.28 s windows (`--crop-frames 128`: 8x cheaper steps), KL weight 0.1,
  the discriminator switched on after 70 % of the steps;
- v-prediction instead of epsilon prediction: with 10 memorised latents the noisy latent alone
  identifies its clip down to t ~ 850 of 1000, so the epsilon loss gives the caption almost no
  weight and sampling ignored the prompt; the v target does not (see genau_core.genau.diffusion).
The LDM stage is the official recipe (LAMB, lr 5e-3 warm-up + cosine, weight decay 0.1,
grad clip 0.5, condition dropout 0.1, scale_by_std).

What the weights can do: reproduce the demo sounds from their exact captions (a memorised,
10-clip training set; nothing else, and not all 10 equally well: see training.json and
tests/genau_core/genau/test_genau_tiny_weights.py for what is measured). Retraining is deterministic for one
torch build and thread count; elsewhere it is the same recipe with float-level differences.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from genau_core.genau.configs import GENAU_TINY, GenAuConfig

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "genau-tiny"


@dataclass(frozen=True)
class TinyRecipe:
    vae_steps: int = 1200
    vae_lr: float = 2e-3
    vae_crop_frames: int = 128  # random 1.28 s windows: 8x cheaper steps than whole 10.24 s clips
    vae_disc_start_fraction: float = 0.7
    vae_kl_weight: float = 0.1
    vae_norm_groups: int = 4
    ldm_steps: int = 1500
    prediction_type: str = "v_prediction"  # see genau_core.genau.diffusion: epsilon ignores the prompt here
    ldm_lr: float = 5e-3  # the official LAMB learning rate
    ldm_warmup: int = 50
    batch_size: int = 10  # the whole demo split per step
    seed: int = 0

    @property
    def disc_start(self) -> int:
        return int(round(self.vae_steps * self.vae_disc_start_fraction))


def tiny_trained_config(recipe: TinyRecipe = TinyRecipe(), *, mel_std: float = 4.0) -> GenAuConfig:
    """genau-tiny as trained here: Griffin-Lim vocoder, a normalised and better-grouped VAE, the recipe's loss weights.

    The VAE input is shifted by the log-mel floor (log clip_value, so silent bins are exactly 0 and a
    pure tone is a sparse input) and scaled by `mel_std` (the std of the training log-mels);
    GroupNorm uses `vae_norm_groups` groups (genau-tiny's 32 groups on 32 channels would
    normalise every channel over time on its own, which erases stationary spectra).
    """
    import math

    return GENAU_TINY.replace(
        vocoder_type="griffin-lim",
        vae=dataclasses.replace(
            GENAU_TINY.vae,
            norm_groups=recipe.vae_norm_groups,
            mel_mean=round(math.log(GENAU_TINY.mel.clip_value), 4),
            mel_std=round(mel_std, 4),
        ),
        vae_loss=dataclasses.replace(GENAU_TINY.vae_loss, disc_start=recipe.disc_start, kl_weight=recipe.vae_kl_weight),
        diffusion=dataclasses.replace(GENAU_TINY.diffusion, prediction_type=recipe.prediction_type),
    )


def demo_mel_std(manifest: Path) -> float:
    """Std of the log-mels of all clips of a manifest (the VAE's input scale)."""
    import torch

    from genau_core.genau.model import build_genau
    from genau_core.genau.train import AudioCaptionDataset, _collate, read_manifest

    cfg = GENAU_TINY
    ds = AudioCaptionDataset(read_manifest(manifest), cfg)
    wav, _, _ = _collate([ds[i] for i in range(len(ds))])
    with torch.no_grad():
        mel = build_genau(cfg, seed=0).mel(wav)
    return float(mel.std())


def final_losses(run: Path, keys: Sequence[str], last: int = 10) -> dict:
    """Mean of each key over the last `last` logged steps (one logged step is one noisy batch)."""
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()][-last:]
    out: dict = {"logged_steps": f"{rows[0]['step']}..{rows[-1]['step']} ({len(rows)} logged)"}
    for k in keys:
        vals = [r[k] for r in rows if k in r]
        if vals:
            out[k] = round(sum(vals) / len(vals), 5)
    return out


def spectral_peak_and_flatness(wave, sample_rate: int = 16_000) -> tuple[float, float]:
    """(frequency of the largest Hann-windowed FFT bin, spectral flatness = geometric / arithmetic mean of |X|)."""
    import numpy as np

    x = np.asarray(wave, dtype=np.float64)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / sample_rate)
    return float(freqs[spec.argmax()]), float(np.exp(np.mean(np.log(spec + 1e-12))) / spec.mean())


def install(model_dir: Path, dest: Path) -> None:
    """Write the model folder's config and its weights as float16 safetensors (halves the shipped size) into `dest`."""
    import torch
    from safetensors.torch import load_file, save_file

    from genau_core.genau.model import CONFIG_NAME, WEIGHTS_NAME

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_dir / CONFIG_NAME, dest / CONFIG_NAME)
    state = load_file(str(model_dir / WEIGHTS_NAME))
    half = {k: (v.to(torch.float16) if v.is_floating_point() and v.numel() > 1 else v) for k, v in state.items()}
    save_file(half, str(dest / WEIGHTS_NAME))
    (dest / WEIGHTS_NAME).chmod(0o644)  # safetensors writes 0600; package data must be world-readable
    (dest / "training.json").unlink(missing_ok=True)
