"""Two-stage AutoCap training (paper section 3.1):

    autocap train --stage 1 --manifest demo --out runs/ac1 --model autocap-tiny --steps 300
    autocap train --stage 2 --manifest demo --out runs/ac2 --init-from runs/ac1/final --steps 300
    torchrun --nproc_per_node 2 -m genau_core.autocap.cli train --stage 1 ...   # data parallel

Stage 1 freezes both audio encoders and BART and trains the Q-Former, the projections / norms
and the delimiter embeddings (official: lr 1e-4 on ~634k weakly labelled clips). Stage 2 also
trains BART except its word-embedding layer (tied to the LM head), at a lower learning rate
(official 1e-5, AudioCaps). Adam (betas 0.9 / 0.999, eps 1e-8, weight decay 1e-6), cosine
schedule after a linear warm-up, gradient clipping 2, token cross-entropy with label smoothing
0.1 (the released code's loss; the paper writes plain cross-entropy: `--label-smoothing 0`).

`--manifest` is a split name (`demo`, `audiocaps`) or a .csv / .jsonl manifest with
`id,caption,audio` and optional `title,video_caption,description` columns.
`--model` is a config name (`autocap-tiny`: random frozen encoders and BART, all in-process;
`autocap-paper` / `autocap`: full size, started from the pretrained parts `--bart-dir`,
`--htsat-ckpt`, `--clap-ckpt` as the official stage 1 does), a config .json, or a folder written
by `save_pretrained`. Checkpoints go to `<out>/checkpoints/step-XXXXXXX/` (model folder +
`trainer.pt`) every `--save-every` steps; `--resume` continues from the latest one exactly (the
data order is a function of (seed, epoch); dropout and metadata dropping of (seed, rank, step);
optimiser and schedule states are restored). The finished model is `<out>/final/`.
Distributed: torchrun with the trainer helpers shared with the GenAu engine (`genau_core.training_utils`:
process group, gradient averaging, checkpoint folders, warm-up + cosine schedule).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from genau_core.autocap.configs import AutoCapConfig, get_config
from genau_core.autocap.data import CaptionDataset, collate, load_records
from genau_core.autocap.model import (
    AutoCapBatch,
    AutoCapModel,
    FrozenFeatures,
    build_autocap,
    is_pretrained_folder,
    load_pretrained,
    save_pretrained,
)
from genau_core.autocap.text import caption_labels, metadata_ids, pad_ids
from genau_core.training_utils import (
    Dist,
    ShardedLoader,
    append_log,
    config_from_namespace,
    finish_distributed,
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
from genau_core.training_utils import latest_checkpoint  # noqa: F401  (re-exported: callers import it from here)

DEFAULT_LR = {1: 1e-4, 2: 1e-5}


@dataclass(frozen=True)
class TrainConfig:
    stage: int
    manifest: str
    out_dir: str
    model: str = "autocap-tiny"
    init_from: str | None = None  # a save_pretrained folder (e.g. stage 1's `final/`)
    bart_dir: str | None = None  # full-size configs: facebook/bart-base snapshot
    htsat_ckpt: str | None = None  # full-size configs: HTSAT.ckpt
    clap_ckpt: str | None = None  # full-size configs: the LAION-CLAP .pt
    steps: int = 1000
    batch_size: int = 8  # global (split over processes)
    lr: float | None = None  # default 1e-4 (stage 1) / 1e-5 (stage 2)
    final_lr: float = 0.0
    warmup_steps: int = 0
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 2.0
    label_smoothing: float = 0.1
    meta_drop_p: float = 0.0  # probability of blanking each metadata field of a sample
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    resume: bool = False
    stop_at: int | None = None  # end this run after that step (an interruption; --resume continues)
    device: str = "auto"
    num_workers: int = 0
    cache_features: bool = False  # keep frozen-encoder outputs per clip in memory (small datasets)
    split_csv: str | None = None
    ref_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {self.stage!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1")

    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.stage]


# ------------------------------------------------------------------------------- stages ---
def set_stage(model: AutoCapModel, stage: int) -> list[torch.nn.Parameter]:
    """Freeze / unfreeze for a stage and return the trainable parameters (each once).
    Stage 1: Q-Former, projections, norms, audio positions, delimiter table.
    Stage 2: those + all of BART except its (tied) word-embedding layer."""
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    model.requires_grad_(False)
    for module in model.bridge_modules().values():
        module.requires_grad_(True)
    if stage == 2:
        model.bart.requires_grad_(True)
        model.bart.get_input_embeddings().weight.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


# -------------------------------------------------------------------------------- model ---
def initial_model(tc: TrainConfig) -> AutoCapModel:
    src = tc.init_from or tc.model
    if is_pretrained_folder(src):
        return load_pretrained(src)
    path = Path(src)
    cfg = (
        AutoCapConfig.from_dict(json.loads(path.read_text()))
        if path.suffix == ".json" and path.is_file()
        else get_config(src)
    )
    if cfg.tokenizer.startswith("tiny:"):
        return build_autocap(cfg, seed=tc.seed)
    from genau_core.checkpoints import find_checkpoint
    from genau_core.autocap.official import BART_DIR_NAME, load_pretrained_parts
    from genau_core.autocap.text import build_tokenizer

    bart_dir = find_checkpoint(
        BART_DIR_NAME, tc.bart_dir, what="facebook/bart-base snapshot (weights, config, tokenizer)"
    )
    cfg = cfg.replace(tokenizer=str(bart_dir))
    model = build_autocap(cfg, seed=tc.seed, tokenizer=build_tokenizer(cfg))
    load_pretrained_parts(model, bart_dir=bart_dir, htsat_ckpt=tc.htsat_ckpt, clap_ckpt=tc.clap_ckpt)
    return model


def make_batch(
    model: AutoCapModel, wave, clap, captions, metas, *, drop_p: float, generator: torch.Generator
) -> AutoCapBatch:
    cfg, tok = model.cfg, model.tokenizer
    if drop_p > 0:
        metas = [
            {k: ("" if float(torch.rand((), generator=generator)) < drop_p else v) for k, v in m.items()} for m in metas
        ]
    meta_ids, meta_mask = pad_ids([metadata_ids(tok, cfg, m) for m in metas], cfg.bart.pad_token_id)
    return AutoCapBatch(wave, clap, meta_ids, meta_mask, caption_labels(tok, cfg, captions))


def cached_features(
    model: AutoCapModel, cache: dict, ids, wave: torch.Tensor, clap: torch.Tensor | None
) -> FrozenFeatures:
    """Frozen-encoder outputs of a batch, computed once per clip id (the encoders are frozen and
    run in inference mode, so a cached value is exactly what they would compute again)."""
    todo = [i for i, cid in enumerate(ids) if cid not in cache]
    if todo:
        dev = model.device
        f = model.frozen_features(wave[todo].to(dev), None if clap is None else clap[todo].to(dev))
        for j, i in enumerate(todo):
            cache[ids[i]] = (f.htsat_steps[j].cpu(), None if f.clap is None else f.clap[j].cpu())
    steps = torch.stack([cache[c][0] for c in ids])
    claps = None if cache[ids[0]][1] is None else torch.stack([cache[c][1] for c in ids])
    return FrozenFeatures(steps, claps)


# ---------------------------------------------------------------------------------- train ---
def train(tc: TrainConfig) -> dict:
    """Run (or resume) one stage in this process; returns the last logged metrics."""
    device, dist = setup_device(tc.device)
    if tc.batch_size % dist.world:
        raise ValueError(f"batch size {tc.batch_size} is not divisible by {dist.world} processes")
    out = Path(tc.out_dir)
    resume_from = latest_checkpoint(out) if tc.resume else None
    model = load_pretrained(resume_from / "model") if resume_from else initial_model(tc)
    model = model.to(device)
    trainable = set_stage(model, tc.stage)
    model.train()

    split, records = load_records(tc.manifest, split_csv=tc.split_csv, ref_dir=tc.ref_dir)
    dataset = CaptionDataset(records, model.cfg, source=split.source)
    if len(dataset) < tc.batch_size:
        raise ValueError(f"{split.source}: {len(dataset)} captioned clips for a global batch of {tc.batch_size}")
    data = ShardedLoader.build(
        dataset, global_batch=tc.batch_size, dist=dist, seed=tc.seed, collate_fn=collate, num_workers=tc.num_workers
    )

    opt = torch.optim.Adam(
        trainable, lr=tc.resolved_lr(), betas=tuple(tc.betas), eps=tc.eps, weight_decay=tc.weight_decay
    )
    sched = warmup_cosine_scheduler(
        opt, total=tc.steps, warmup=tc.warmup_steps, lr=tc.resolved_lr(), final_lr=tc.final_lr
    )
    step = 0
    if resume_from is not None:
        state = read_trainer_state(resume_from, device)
        if int(state["stage"]) != tc.stage:
            raise ValueError(f"{resume_from}: a stage {state['stage']} checkpoint, this run is stage {tc.stage}")
        step = restore_optimisation(state, opt, sched)

    write_train_config(out, tc, dist)
    end = tc.steps if tc.stop_at is None else min(tc.steps, tc.stop_at)
    bar = None
    if dist.main and tc.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=end, initial=step, desc=f"autocap stage {tc.stage}", unit="step")
    metrics: dict = {}
    cache: dict | None = {} if tc.cache_features else None
    for epoch, (ids, wave, clap, captions, metas) in data.batches(step, end):
        gen = torch.Generator().manual_seed(step_seed(tc.seed, dist.rank, step))
        torch.manual_seed(step_seed(tc.seed + 1, dist.rank, step))  # dropout masks
        batch = make_batch(model, wave, clap, captions, metas, drop_p=tc.meta_drop_p, generator=gen)
        if cache is not None:
            batch.features, batch.waveform, batch.clap_waveform = (
                cached_features(model, cache, ids, wave, clap),
                None,
                None,
            )
        batch = batch.to(device)
        loss = model(batch, label_smoothing=tc.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        dist.average_gradients(trainable)
        gnorm = torch.nn.utils.clip_grad_norm_(trainable, tc.grad_clip)
        lr_used = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        step += 1
        value = dist.mean(loss.detach().reshape(1))
        metrics = {"step": step, "epoch": epoch, "loss": float(value), "grad_norm": float(gnorm), "lr": lr_used}
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}")
        if dist.main and (step % tc.log_every == 0 or step == end):
            append_log(out, metrics)
        if step % tc.save_every == 0 or step == end:
            _save(out, step, model, opt, sched, tc, dist)
    if bar is not None:
        bar.close()
    if step >= tc.steps and dist.main:
        save_pretrained(model, out / "final")
    finish_distributed(metrics, trainable, dist)
    metrics["world_size"] = dist.world
    metrics["final"] = str(out / "final") if step >= tc.steps else None
    return metrics


def _save(out: Path, step: int, model, opt, sched, tc: TrainConfig, dist: Dist) -> None:
    save_checkpoint(
        out,
        step,
        save_model=lambda folder: save_pretrained(model, folder),
        make_trainer_state=lambda: trainer_state(step, opt, sched, tc, stage=tc.stage),
        dist=dist,
    )


# ------------------------------------------------------------------------------------ CLI ---
def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="autocap train", description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", type=int, choices=[1, 2], required=True)
    p.add_argument("--manifest", required=True, help="split name (demo, audiocaps) or .csv/.jsonl manifest")
    p.add_argument("--out", required=True, dest="out_dir")
    p.add_argument("--model", default="autocap-tiny", help="config name, config .json, or a saved model folder")
    p.add_argument("--init-from", default=None, help="saved model folder to start from (stage 2: stage 1's final/)")
    p.add_argument("--bart-dir", default=None)
    p.add_argument("--htsat-ckpt", default=None)
    p.add_argument("--clap-ckpt", default=None)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None, help="default 1e-4 (stage 1), 1e-5 (stage 2)")
    p.add_argument("--final-lr", type=float, default=0.0)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--weight-decay", type=float, default=1e-6)
    p.add_argument("--grad-clip", type=float, default=2.0)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--meta-drop-p", type=float, default=0.0)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-at", type=int, default=None, help="end this run after that step (resume later)")
    p.add_argument("--device", default="auto")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--cache-features", action="store_true", help="cache frozen-encoder outputs per clip in memory")
    p.add_argument("--split-csv", default=None, help="audiocaps: path of test.csv")
    p.add_argument("--ref-dir", default=None, help="audiocaps: folder of the clips")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return config_from_namespace(TrainConfig, args)


def main(argv: Sequence[str] | None = None) -> int:
    return print_metrics_on_main(train(config_from_args(build_parser().parse_args(argv))))


if __name__ == "__main__":
    raise SystemExit(main())
