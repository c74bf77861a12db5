"""Training GenAu: `vae` (1D-VAE with its GAN loss) and `ldm` (FIT latent diffusion).

    python -m genau_core.genau.train ldm --manifest data.jsonl --out runs/tiny --model genau-tiny --steps 200
    torchrun --nproc_per_node 2 -m genau_core.genau.train ldm ...     # data parallel (gloo on CPU, NCCL on GPU)

Paper / official settings (appendix D.2, settings/simple_runs/genau.yaml): LAMB, lr 5e-3 with a
linear warm-up then cosine decay to `final_lr` (official 1.5e-3), weight decay 0.1, betas
(0.9, 0.99), dropout 0.1 (in the FIT config), gradient clipping 0.5, no EMA, condition dropout 0.1.
The VAE trains as the official AutoencoderKL1D: Adam (betas 0.5, 0.9, constant lr, official 8e-6, no
clipping) for the autoencoder and the discriminator, which starts at `disc_start`.

Data: a manifest (.jsonl or .csv) of rows {audio, caption, dataset} (`dataset` a name from the
config's dataset ids or an integer id; relative audio paths are resolved against the manifest's
folder). Each clip is read from its start (the official `consistent_start_time`), resampled,
mean-removed, peak-normalised to 0.5 and padded / cut to 10.24 s.

`--crop-frames N` (vae only) trains on one random N-frame window per clip (aligned to the VAE's
time stride, drawn from the step's generator), which makes a step ~1024/N times cheaper; the
discriminator is initialised from the seed, so a run is a function of its arguments.

Checkpoints (`<out>/checkpoints/step-XXXXXXX/`: model folder + `trainer.pt`) are written every
`save_every` steps and at the end; `--resume` continues from the latest one exactly: the data
order is a function of (seed, epoch), the per-step noise a function of (seed, rank, step), and
optimiser / LR-schedule states are restored.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from genau_core.genau.configs import GenAuConfig, get_config
from genau_core.genau.diffusion import ldm_loss, make_ddpm_scheduler
from genau_core.genau.losses import VAELoss
from genau_core.genau.model import GenAuModel, build_genau, load_pretrained, save_pretrained
from genau_core.training_utils import (
    ShardedLoader,
    append_log,
    config_from_namespace,
    finish_distributed,
    latest_checkpoint,
    print_metrics_on_main,
    read_trainer_state,
)
from genau_core.training_utils import (
    restore_optimisation,
    save_checkpoint,
    setup_device,
    step_seed,
    trainer_state,
    warmup_cosine_scheduler,
    write_train_config,
)
from genau_core.training_utils import Dist, checkpoint_dir, init_distributed, warmup_cosine  # noqa: F401  (re-exported: callers import them from here)


@dataclass(frozen=True)
class TrainConfig:
    stage: str  # "vae" or "ldm"
    manifest: str
    out_dir: str
    model: str = "genau-tiny"  # config name, a config json, or a folder written by save_pretrained
    init_from: str | None = None  # folder written by save_pretrained (e.g. a trained VAE for the LDM stage)
    steps: int = 1000
    batch_size: int = 4  # global batch (split over processes)
    lr: float | None = None  # default: 5e-3 (ldm) / 8e-6 (vae)
    final_lr: float | None = None  # default: 0.3 * lr (official 1.5e-3 for 5e-3)
    warmup_steps: int = 0
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    optimizer: str = "lamb"  # ldm: lamb | adamw ; the vae always uses adam
    grad_clip: float = 0.5
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    mixed_precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU; "no" to disable
    scale_by_std: bool = True  # ldm: set the latent scale factor to 1/std of the first batch (official)
    crop_frames: int | None = None  # vae: train on a random window of this many mel frames per clip (None: whole clips)
    resume: bool = False
    stop_at: int | None = None  # end this run after that step (an interruption; --resume continues)
    device: str = "auto"

    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else (5e-3 if self.stage == "ldm" else 8e-6)

    def resolved_final_lr(self) -> float:
        return self.final_lr if self.final_lr is not None else 0.3 * self.resolved_lr()


# ----------------------------------------------------------------------------------- data ---


@dataclass(frozen=True)
class ManifestRow:
    audio: Path
    caption: str
    dataset: str | int


def read_manifest(path: str | Path) -> list[ManifestRow]:
    path = Path(path)
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    elif path.suffix == ".csv":
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        raise ValueError(f"{path}: manifest must be .jsonl or .csv")
    out = []
    for i, r in enumerate(rows):
        audio = r.get("audio") or r.get("audio_path") or r.get("path")
        if not audio or "caption" not in r:
            raise ValueError(f"{path} row {i}: needs 'audio' and 'caption' (got {sorted(r)})")
        p = Path(audio)
        if not p.is_absolute():
            p = path.parent / p
        ds = r.get("dataset", r.get("dataset_id", "audiocaps"))
        if isinstance(ds, str) and ds.strip().lstrip("-").isdigit():
            ds = int(ds)
        out.append(ManifestRow(p, str(r["caption"]), ds))
    if not out:
        raise ValueError(f"{path}: empty manifest")
    return out


class AudioCaptionDataset(torch.utils.data.Dataset):
    """(waveform at the model rate, caption, dataset id) per manifest row."""

    def __init__(self, rows: Sequence[ManifestRow], cfg: GenAuConfig):
        self.rows = list(rows)
        self.cfg = cfg
        ids = cfg.conditioning.dataset_ids
        for r in self.rows:
            if isinstance(r.dataset, str) and r.dataset not in ids:
                raise ValueError(f"{r.audio}: unknown dataset {r.dataset!r}; known: {', '.join(ids)}")
            if isinstance(r.dataset, int) and not 0 <= r.dataset < cfg.fit.dataset_ids_count:
                raise ValueError(f"{r.audio}: dataset id {r.dataset} outside [0, {cfg.fit.dataset_ids_count})")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        import soundfile as sf

        from genau_core.audio.mel import prepare_waveform

        r = self.rows[i]
        wav, sr = sf.read(str(r.audio), dtype="float32", always_2d=True)
        wav = prepare_waveform(wav.mean(axis=1), sr, self.cfg.mel)
        ds = r.dataset if isinstance(r.dataset, int) else self.cfg.conditioning.dataset_ids[r.dataset]
        return torch.from_numpy(wav), r.caption, int(ds)


def _collate(batch):
    wavs, caps, ids = zip(*batch)
    return torch.stack(wavs), list(caps), torch.tensor(ids, dtype=torch.long)


# ------------------------------------------------------------------------------ schedule ---


def make_optimizer(params, tc: TrainConfig) -> torch.optim.Optimizer:
    lr = tc.resolved_lr()
    if tc.stage == "vae":
        return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.9))
    if tc.optimizer == "lamb":
        from torch_optimizer import Lamb

        return Lamb(params, lr=lr, betas=tuple(tc.betas), eps=1e-8, weight_decay=tc.weight_decay)
    if tc.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(tc.betas), eps=1e-8, weight_decay=tc.weight_decay)
    raise ValueError(f"unknown optimizer {tc.optimizer!r}")


def _step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(step_seed(seed, rank, step))


def _build_model(tc: TrainConfig) -> GenAuModel:
    src = Path(tc.init_from or tc.model)
    if (src / "genau_config.json").exists():
        return load_pretrained(src)
    if src.suffix == ".json" and src.exists():
        return build_genau(GenAuConfig.from_dict(json.loads(src.read_text())), seed=tc.seed)
    return build_genau(get_config(tc.model), seed=tc.seed)


# ----------------------------------------------------------------------------------- train ---


def train(tc: TrainConfig) -> dict:
    """Run (or resume) one training stage in this process; returns the last logged metrics."""
    if tc.stage not in ("vae", "ldm"):
        raise ValueError(f"stage must be 'vae' or 'ldm', got {tc.stage!r}")
    device, dist = setup_device(tc.device)
    if tc.crop_frames is not None and tc.stage != "vae":
        raise ValueError("crop_frames applies to the vae stage only (the FIT sees whole latent clips)")
    if tc.batch_size % dist.world:
        raise ValueError(f"batch size {tc.batch_size} not divisible by {dist.world} processes")
    out = Path(tc.out_dir)
    resume_from = latest_checkpoint(out) if tc.resume else None
    model = load_pretrained(resume_from / "model") if resume_from else _build_model(tc)
    model = model.to(device)
    cfg = model.cfg
    amp = tc.mixed_precision != "no" and device.type == "cuda"

    rows = read_manifest(tc.manifest)
    dataset = AudioCaptionDataset(rows, cfg)
    if len(dataset) < tc.batch_size:
        raise ValueError(f"{len(dataset)} clips for a global batch of {tc.batch_size}")
    data = ShardedLoader.build(dataset, global_batch=tc.batch_size, dist=dist, seed=tc.seed, collate_fn=_collate)

    # what trains in each stage
    model.eval()
    if tc.stage == "ldm":
        model.backbone.train()
        # self-conditioning is not used in training (official): keep those weights out of DDP / the optimiser
        for m in (model.backbone.self_cond, model.backbone.self_cond_norm):
            m.requires_grad_(False)
        trainable = [p for p in model.backbone.parameters() if p.requires_grad]
        net: nn.Module = model.backbone
        if dist.world > 1:
            net = nn.parallel.DistributedDataParallel(
                model.backbone, device_ids=[device.index] if device.type == "cuda" else None
            )
        opt = make_optimizer(trainable, tc)
        sched = warmup_cosine_scheduler(
            opt, total=tc.steps, warmup=tc.warmup_steps, lr=tc.resolved_lr(), final_lr=tc.resolved_final_lr()
        )
        ddpm = make_ddpm_scheduler(cfg.diffusion)
        loss_mod = disc_opt = None
    else:
        model.vae.train()
        with torch.random.fork_rng(devices=[]):  # the discriminator's initialisation is a function of the seed
            torch.manual_seed(tc.seed)
            loss_mod = VAELoss(cfg.vae_loss).to(device).train()
        # official: Adam(0.5, 0.9) on the autoencoder only (the loss log-variance stays at its init),
        # constant learning rate, no gradient clipping
        loss_mod.logvar.requires_grad_(False)
        trainable = list(model.vae.parameters())
        opt = make_optimizer(trainable, tc)
        disc_opt = torch.optim.Adam(loss_mod.discriminator.parameters(), lr=tc.resolved_lr(), betas=(0.5, 0.9))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        net = model.vae

    step = 0
    if resume_from is not None:
        state = read_trainer_state(resume_from, device)
        step = restore_optimisation(state, opt, sched)
        if loss_mod is not None:
            loss_mod.load_state_dict(state["vae_loss"])
            disc_opt.load_state_dict(state["disc_optimizer"])
    elif tc.stage == "ldm" and tc.scale_by_std and float(model.scale_factor) == 1.0:
        _set_scale_factor(model, data, device, dist, tc.seed)

    write_train_config(out, tc, dist)
    metrics: dict = {}
    end = tc.steps if tc.stop_at is None else min(tc.steps, tc.stop_at)
    for epoch, (wav, captions, ids) in data.batches(step, end):
        gen = _step_generator(tc.seed, dist.rank, step)
        torch.manual_seed(
            int(torch.randint(0, 2**62, (1,), generator=_step_generator(tc.seed + 1, dist.rank, step)))
        )  # dropout masks
        wav, ids = wav.to(device), ids.to(device)
        autocast = lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)  # noqa: E731
        if tc.stage == "ldm":
            metrics = _ldm_step(model, net, wav, captions, ids, ddpm, opt, trainable, tc, dist, gen, autocast)
        else:
            metrics = _vae_step(model, loss_mod, wav, opt, disc_opt, trainable, tc, dist, gen, step, autocast)
        lr_used = opt.param_groups[0]["lr"]
        sched.step()
        step += 1
        metrics.update(step=step, lr=lr_used, epoch=epoch)
        if dist.main and (step % tc.log_every == 0 or step == tc.steps):
            append_log(out, metrics)
        if step % tc.save_every == 0 or step == end:
            _save(out, step, model, opt, sched, loss_mod, disc_opt, tc, dist)
    finish_distributed(metrics, trainable, dist)
    metrics["world_size"] = dist.world
    return metrics


@torch.no_grad()
def _set_scale_factor(model, data: ShardedLoader, device, dist, seed) -> None:
    """Official `scale_by_std`: scale latents to unit std, measured on the first batch (averaged over ranks)."""
    wav, _, _ = next(iter(data.epoch(0)))
    z = model.vae.encode(model.mel(wav.to(device))).sample(torch.Generator().manual_seed(seed))
    var = dist.mean(z.float().var().reshape(1))
    model.scale_factor.fill_(float(1.0 / var.sqrt()))


def _ldm_step(model, net, wav, captions, ids, ddpm, opt, trainable, tc, dist, gen, autocast) -> dict:
    from types import SimpleNamespace

    with torch.no_grad():
        mel = model.mel(wav)
        z = model.vae.encode(mel).sample(gen) * model.scale_factor
        summary = model.conditioner.encode(captions).to(z.dtype)
    # ldm_loss calls model.backbone / model.conditioner: route the backbone through DDP
    routed = SimpleNamespace(backbone=net, conditioner=model.conditioner, cfg=model.cfg)
    with autocast():
        out = ldm_loss(routed, z, summary, ids, scheduler=ddpm, generator=gen)
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    gnorm = torch.nn.utils.clip_grad_norm_(trainable, tc.grad_clip)
    opt.step()
    loss = dist.mean(out.loss.detach().reshape(1))
    return {"loss": float(loss), "grad_norm": float(gnorm), "cfg_dropped": int(out.dropped.sum())}


def random_crops(mel: torch.Tensor, frames: int, multiple: int, generator: torch.Generator) -> torch.Tensor:
    """One random window of `frames` mel frames per clip, starting at a multiple of `multiple` (the VAE's stride)."""
    total = mel.shape[-1]
    if frames % multiple or not 0 < frames <= total:
        raise ValueError(f"crop of {frames} frames: must be a multiple of {multiple} in (0, {total}]")
    starts = torch.randint(0, (total - frames) // multiple + 1, (mel.shape[0],), generator=generator) * multiple
    return torch.stack([m[:, s : s + frames] for m, s in zip(mel, starts.tolist())])


def _vae_step(model, loss_mod, wav, opt, disc_opt, trainable, tc, dist, gen, step, autocast) -> dict:
    with torch.no_grad():
        mel = model.mel(wav)
        if tc.crop_frames is not None:
            mel = random_crops(mel, tc.crop_frames, model.cfg.vae.time_downsample, gen)
    with autocast():
        rec, post = model.vae(mel, generator=gen)
        # discriminator update (zero before disc_start)
        d_loss, d_log = loss_mod.discriminator_loss(mel, rec, step)
    if d_loss.requires_grad and loss_mod.disc_active(step):
        disc_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        dist.average_gradients(loss_mod.discriminator.parameters())
        disc_opt.step()
    # autoencoder update
    with autocast():
        g_loss, g_log = loss_mod.generator_loss(mel, rec, post, step, model.vae.last_layer())
    opt.zero_grad(set_to_none=True)
    loss_mod.discriminator.zero_grad(set_to_none=True)
    g_loss.backward()
    dist.average_gradients(trainable)
    gnorm = torch.nn.utils.clip_grad_norm_(trainable, float("inf"))  # norm only (no clipping, as the reference)
    opt.step()
    return {**g_log, **d_log, "grad_norm": float(gnorm)}


def _save(out: Path, step: int, model, opt, sched, loss_mod, disc_opt, tc, dist) -> None:
    def make_state() -> dict:
        state = trainer_state(step, opt, sched, tc)
        if loss_mod is not None:
            state.update(vae_loss=loss_mod.state_dict(), disc_optimizer=disc_opt.state_dict())
        return state

    save_checkpoint(
        out, step, save_model=lambda folder: save_pretrained(model, folder), make_trainer_state=make_state, dist=dist
    )


# ------------------------------------------------------------------------------------- CLI ---


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="genau train", description=__doc__.split("\n\n")[0])
    p.add_argument("stage", choices=["vae", "ldm"])
    p.add_argument("--manifest", required=True, help=".jsonl or .csv with audio, caption, dataset")
    p.add_argument("--out", required=True, dest="out_dir")
    p.add_argument("--model", default="genau-tiny", help="config name, config .json, or a saved model folder")
    p.add_argument("--init-from", default=None, help="saved model folder to start from (e.g. the trained VAE)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--final-lr", type=float, default=None)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--optimizer", choices=["lamb", "adamw"], default="lamb")
    p.add_argument("--grad-clip", type=float, default=0.5)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mixed-precision", choices=["auto", "no"], default="auto")
    p.add_argument("--no-scale-by-std", dest="scale_by_std", action="store_false")
    p.add_argument("--crop-frames", type=int, default=None, help="vae: train on random windows of this many mel frames")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-at", type=int, default=None, help="end this run after that step (resume later)")
    p.add_argument("--device", default="auto")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return config_from_namespace(TrainConfig, args)


def main(argv: Sequence[str] | None = None) -> int:
    return print_metrics_on_main(train(config_from_args(build_parser().parse_args(argv))))


if __name__ == "__main__":
    raise SystemExit(main())
