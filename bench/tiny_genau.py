"""Rebuild the shipped `genau-tiny` weights from bench's `demo` split (the recipe, the config and the
installer are `genau_core.genau.tiny_weights`; this driver sits in bench because its data is a bench split).

    OMP_NUM_THREADS=1 python -m bench.tiny_genau --work runs/genau-tiny

About 8 minutes on one shared CPU thread; see genau_core/genau/tiny_weights.py for what the weights are.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Sequence

from genau_core.files import file_sha256
from genau_core.genau.tiny_weights import (
    WEIGHTS_DIR,
    TinyRecipe,
    final_losses,
    demo_mel_std,
    install,
    spectral_peak_and_flatness,
    tiny_trained_config,
)


def write_demo_manifest(folder: Path) -> Path:
    """Render the `demo` split and write `demo.jsonl` (audio path, exact caption, AudioCaps id)."""
    from bench.splits import load_split

    split = load_split("demo")
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "demo.jsonl"
    rows = [{"audio": str(item.reference), "caption": item.prompt, "dataset": "audiocaps"} for item in split.items]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


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
    waves = GenAuPipeline(model)(
        prompts, [seed + i for i in range(len(prompts))], steps=steps, guidance=guidance, duration_s=10.0
    )
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
        rows.append(
            {
                "prompt": prompt,
                "peak_hz": round(peak, 1),
                "flatness": round(flat, 4),
                "nearest_reference": split.items[nearest[i]].id,
            }
        )
    hits = sum(r["nearest_reference"] == it.id for r, it in zip(rows, split.items))
    return {
        "settings": {"steps": steps, "guidance": guidance, "seeds": f"{seed}..{seed + len(prompts) - 1}"},
        "nearest_reference_accuracy": f"{hits}/{len(rows)}",
        "prompts": rows,
    }


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
    vae_tc = TrainConfig(
        stage="vae",
        manifest=str(manifest),
        out_dir=str(vae_out),
        model=str(cfg_path),
        steps=recipe.vae_steps,
        batch_size=recipe.batch_size,
        lr=recipe.vae_lr,
        save_every=recipe.vae_steps,
        log_every=log_every,
        seed=recipe.seed,
        device="cpu",
        crop_frames=recipe.vae_crop_frames,
    )
    t0 = time.perf_counter()
    train(vae_tc)
    t_vae = time.perf_counter() - t0
    vae_model = checkpoint_dir(vae_out, recipe.vae_steps) / "model"
    ldm_tc = TrainConfig(
        stage="ldm",
        manifest=str(manifest),
        out_dir=str(ldm_out),
        init_from=str(vae_model),
        steps=recipe.ldm_steps,
        batch_size=recipe.batch_size,
        lr=recipe.ldm_lr,
        warmup_steps=recipe.ldm_warmup,
        save_every=recipe.ldm_steps,
        log_every=log_every,
        seed=recipe.seed,
        device="cpu",
    )
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
        "rebuild": "OMP_NUM_THREADS=1 python -m bench.tiny_genau --work runs/genau-tiny",
        "equivalent_commands": commands,
        "data": "bench.splits.load_split('demo'): 10 synthesised 10 s clips, exact captions, dataset id audiocaps",
        "vae_mel_std": mel_std,
        "vocoder": "griffin-lim (genau_core.audio.griffinlim); no vocoder weights",
        "stored_as": "float16 safetensors (trained in float32; loaded into a float32 model)",
        "wall_time_s": {"vae": round(t_vae, 1), "ldm": round(t_ldm, 1)},
        "final_vae": final_losses(vae_out, ("rec_loss", "kl_loss", "disc_loss", "g_loss")),
        "final_ldm": final_losses(ldm_out, ("loss",)),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    dest = Path(install_to) if install_to is not None else work / "genau-tiny"
    install(final, dest)
    record["evaluation"] = evaluate(dest, seed=recipe.seed)  # what the shipped (float16-stored) weights do
    record["sha256"] = file_sha256(dest / "genau.safetensors")
    (dest / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tiny_genau", description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="runs/genau-tiny", help="folder for the manifest, configs and both training runs")
    p.add_argument("--install-to", default=str(WEIGHTS_DIR), help="where the weights go (default: inside the package)")
    p.add_argument("--no-install", action="store_true", help="write them to WORK/genau-tiny instead")
    defaults = TinyRecipe()
    for f in dataclasses.fields(TinyRecipe):
        p.add_argument(
            "--" + f.name.replace("_", "-"), type=type(getattr(defaults, f.name)), default=getattr(defaults, f.name)
        )
    args = p.parse_args(argv)
    recipe = TinyRecipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TinyRecipe)})
    record = train_tiny(Path(args.work), recipe, install_to=None if args.no_install else Path(args.install_to))
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
