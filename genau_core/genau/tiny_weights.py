"""The shipped `genau-tiny` weights: trained by `genau train` on the `demo` split, reproducibly.

Rebuild them (about 8 minutes on one shared CPU thread):

    OMP_NUM_THREADS=1 python -m genau_core.genau.tiny_weights --work runs/genau-tiny

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
tests/test_genau_tiny_weights.py for what is measured). Retraining is deterministic for one
torch build and thread count; elsewhere it is the same recipe with float-level differences.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import time
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
        vae=dataclasses.replace(GENAU_TINY.vae, norm_groups=recipe.vae_norm_groups,
                                mel_mean=round(math.log(GENAU_TINY.mel.clip_value), 4), mel_std=round(mel_std, 4)),
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


def write_demo_manifest(folder: Path) -> Path:
    """Render the `demo` split and write `demo.jsonl` (audio path, exact caption, AudioCaps id)."""
    from bench.splits import load_split

    split = load_split("demo")
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "demo.jsonl"
    rows = [{"audio": str(item.reference), "caption": item.prompt, "dataset": "audiocaps"} for item in split.items]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _final_losses(run: Path, keys: Sequence[str], last: int = 10) -> dict:
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


def evaluate(model_dir: Path, *, seed: int = 0) -> dict:
    """Generate every demo caption with the plugin defaults; per prompt: spectral peak, flatness, nearest reference.

    "nearest reference" is the demo clip whose time-averaged log-mel is closest (L1) to the generated one's.
    """
    import soundfile as sf
    import torch

    from bench.plugins.genau import GenAuTiny
    from bench.splits import load_split
    from genau_core.audio.mel import prepare_waveform
    from genau_core.genau import GenAuPipeline, load_pretrained

    model = load_pretrained(model_dir)
    split = load_split("demo")
    prompts = [it.prompt for it in split.items]
    steps, guidance = GenAuTiny.info.defaults.steps, GenAuTiny.info.defaults.guidance
    waves = GenAuPipeline(model)(prompts, [seed + i for i in range(len(prompts))], steps=steps, guidance=guidance, duration_s=10.0)
    cfg = model.cfg.mel

    def mel_profile(clips):
        x = torch.stack([torch.from_numpy(prepare_waveform(c, cfg.sample_rate, cfg)) for c in clips])
        with torch.no_grad():
            return model.mel(x)[:, :, :1000].mean(-1)

    refs = [sf.read(str(it.reference), dtype="float32")[0] for it in split.items]
    nearest = torch.cdist(mel_profile(waves), mel_profile(refs), p=1).argmin(1).tolist()
    rows = []
    for i, (prompt, wave) in enumerate(zip(prompts, waves)):
        peak, flat = spectral_peak_and_flatness(wave, cfg.sample_rate)
        rows.append({"prompt": prompt, "peak_hz": round(peak, 1), "flatness": round(flat, 4), "nearest_reference": split.items[nearest[i]].id})
    hits = sum(r["nearest_reference"] == it.id for r, it in zip(rows, split.items))
    return {"settings": {"steps": steps, "guidance": guidance, "seeds": f"{seed}..{seed + len(prompts) - 1}"},
            "nearest_reference_accuracy": f"{hits}/{len(rows)}", "prompts": rows}


def train_tiny(work: Path, recipe: TinyRecipe = TinyRecipe(), *, install_to: Path | None = WEIGHTS_DIR) -> dict:
    """Run both stages under `work`; return the provenance record (also written next to the weights)."""
    import platform

    import torch

    from genau_core.genau.train import TrainConfig, checkpoint_dir, train

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    manifest = write_demo_manifest(work)
    cfg_path = work / "genau-tiny-config.json"
    mel_std = demo_mel_std(manifest)
    cfg_path.write_text(json.dumps(tiny_trained_config(recipe, mel_std=mel_std).to_dict(), indent=2, sort_keys=True))
    vae_out, ldm_out = work / "vae", work / "ldm"
    for d in (vae_out, ldm_out):
        if d.exists():
            shutil.rmtree(d)
    log_every = 10
    vae_tc = TrainConfig(stage="vae", manifest=str(manifest), out_dir=str(vae_out), model=str(cfg_path), steps=recipe.vae_steps,
                         batch_size=recipe.batch_size, lr=recipe.vae_lr, save_every=recipe.vae_steps, log_every=log_every,
                         seed=recipe.seed, device="cpu", crop_frames=recipe.vae_crop_frames)
    t0 = time.perf_counter()
    train(vae_tc)
    t_vae = time.perf_counter() - t0
    vae_model = checkpoint_dir(vae_out, recipe.vae_steps) / "model"
    ldm_tc = TrainConfig(stage="ldm", manifest=str(manifest), out_dir=str(ldm_out), init_from=str(vae_model), steps=recipe.ldm_steps,
                         batch_size=recipe.batch_size, lr=recipe.ldm_lr, warmup_steps=recipe.ldm_warmup,
                         save_every=recipe.ldm_steps, log_every=log_every, seed=recipe.seed, device="cpu")
    t0 = time.perf_counter()
    train(ldm_tc)
    t_ldm = time.perf_counter() - t0
    final = checkpoint_dir(ldm_out, recipe.ldm_steps) / "model"
    commands = [
        f"genau train vae --manifest {manifest} --out {vae_out} --model {cfg_path} --steps {recipe.vae_steps} "
        f"--batch-size {recipe.batch_size} --lr {recipe.vae_lr} --crop-frames {recipe.vae_crop_frames} "
        f"--save-every {recipe.vae_steps} --log-every {log_every} --seed {recipe.seed} --device cpu",
        f"genau train ldm --manifest {manifest} --out {ldm_out} --init-from {vae_model} --steps {recipe.ldm_steps} "
        f"--batch-size {recipe.batch_size} --lr {recipe.ldm_lr} --warmup-steps {recipe.ldm_warmup} "
        f"--save-every {recipe.ldm_steps} --log-every {log_every} --seed {recipe.seed} --device cpu",
    ]
    record = {
        "recipe": dataclasses.asdict(recipe),
        "rebuild": "OMP_NUM_THREADS=1 python -m genau_core.genau.tiny_weights --work runs/genau-tiny",
        "equivalent_commands": commands,
        "data": "bench.splits.load_split('demo'): 10 synthesised 10 s clips, exact captions, dataset id audiocaps",
        "vae_mel_std": mel_std,
        "vocoder": "griffin-lim (genau_core.audio.griffinlim); no vocoder weights",
        "stored_as": "float16 safetensors (trained in float32; loaded into a float32 model)",
        "wall_time_s": {"vae": round(t_vae, 1), "ldm": round(t_ldm, 1)},
        "final_vae": _final_losses(vae_out, ("rec_loss", "kl_loss", "disc_loss", "g_loss")),
        "final_ldm": _final_losses(ldm_out, ("loss",)),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    dest = Path(install_to) if install_to is not None else work / "genau-tiny"
    install(final, dest)
    record["evaluation"] = evaluate(dest, seed=recipe.seed)  # what the shipped (float16-stored) weights do
    record["sha256"] = _sha256(dest / "genau.safetensors")
    (dest / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


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


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m genau_core.genau.tiny_weights", description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="runs/genau-tiny", help="folder for the manifest, configs and both training runs")
    p.add_argument("--install-to", default=str(WEIGHTS_DIR), help="where the weights go (default: inside the package)")
    p.add_argument("--no-install", action="store_true", help="write them to WORK/genau-tiny instead")
    defaults = TinyRecipe()
    for f in dataclasses.fields(TinyRecipe):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(getattr(defaults, f.name)), default=getattr(defaults, f.name))
    args = p.parse_args(argv)
    recipe = TinyRecipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TinyRecipe)})
    record = train_tiny(Path(args.work), recipe, install_to=None if args.no_install else Path(args.install_to))
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
