"""Trainer pieces shared by `genau train` and `autocap train`: device and process group, sharded
data order that resumes exactly, warm-up + cosine schedule, checkpoint folders, replica checks."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

import torch

TRAINER_STATE_FILE = "trainer.pt"
ConfigT = TypeVar("ConfigT")


# ------------------------------------------------------------------------------ schedule ---


def warmup_cosine(step: int, *, total: int, warmup: int, lr: float, final_lr: float) -> float:
    """Linear warm-up to `lr`, then cosine decay to `final_lr` at `total` (a pure function of the step)."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_lr + 0.5 * (lr - final_lr) * (1 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(
    opt: torch.optim.Optimizer, *, total: int, warmup: int, lr: float, final_lr: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """`warmup_cosine` as a LambdaLR factor of the optimiser's base learning rate `lr`."""
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine(s, total=total, warmup=warmup, lr=lr, final_lr=final_lr) / lr
    )


# ---------------------------------------------------------------------------- distributed ---


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def average_gradients(self, params) -> None:
        if self.world == 1:
            return
        for p in params:
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= self.world

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """`value` averaged over the processes (in place; unchanged in a single process)."""
        if self.world > 1:
            torch.distributed.all_reduce(value)
            value /= self.world
        return value


def init_distributed(device: torch.device) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(
        torch.distributed.get_rank(), torch.distributed.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    )


def setup_device(requested: str) -> tuple[torch.device, Dist]:
    """The training device ("auto": CUDA when available) and this process's place in the process group;
    on CUDA each process takes the GPU of its local rank."""
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else requested)
    dist = init_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    return device, dist


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of one process's random draws at one step: a run is a function of its arguments, and resumes exactly."""
    return (seed * 1_000_003 + rank * 7919 + step) % (2**63 - 1)


@torch.no_grad()
def replicas_in_sync(params: Iterable[torch.Tensor]) -> bool:
    """Every process holds the same trainable weights (float64 checksum, all-gathered)."""
    mine = torch.stack([p.detach().double().sum() for p in params]).sum().reshape(1).cpu()
    if torch.distributed.get_backend() == "nccl":
        mine = mine.cuda()
    everyone = [torch.zeros_like(mine) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(everyone, mine)
    return all(torch.equal(e, mine) for e in everyone)


def finish_distributed(metrics: dict, trainable: Iterable[torch.Tensor], dist: Dist) -> None:
    """After the last step of a data-parallel run: record (and insist) that the replicas agree, leave the group."""
    if dist.world == 1:
        return
    metrics["replicas_in_sync"] = replicas_in_sync(trainable)
    dist.barrier()
    torch.distributed.destroy_process_group()
    if not metrics["replicas_in_sync"]:
        raise RuntimeError("data-parallel replicas diverged")


# ----------------------------------------------------------------------------------- data ---


@dataclass
class ShardedLoader:
    """This process's share of every global batch; the order is a function of (seed, epoch)."""

    dataset: torch.utils.data.Dataset
    sampler: torch.utils.data.DistributedSampler
    loader_kw: dict
    batches_per_epoch: int

    @classmethod
    def build(
        cls, dataset, *, global_batch: int, dist: Dist, seed: int, collate_fn: Callable, num_workers: int = 0
    ) -> "ShardedLoader":
        per_rank = global_batch // dist.world
        sampler = torch.utils.data.DistributedSampler(
            dataset, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=seed, drop_last=True
        )
        loader_kw = dict(
            batch_size=per_rank, sampler=sampler, collate_fn=collate_fn, drop_last=True, num_workers=num_workers
        )
        return cls(dataset, sampler, loader_kw, len(sampler) // per_rank)

    def epoch(self, epoch: int) -> torch.utils.data.DataLoader:
        self.sampler.set_epoch(epoch)
        return torch.utils.data.DataLoader(self.dataset, **self.loader_kw)

    def batches(self, start: int, end: int) -> Iterator[tuple[int, Any]]:
        """(epoch, batch) for the steps start .. end - 1; starting anywhere continues the data order exactly."""
        step = start
        while step < end:
            epoch, offset = divmod(step, self.batches_per_epoch)
            for i, batch in enumerate(self.epoch(epoch)):
                if i < offset:
                    continue  # exact resume inside an epoch
                if step >= end:
                    return
                yield epoch, batch
                step += 1


# ---------------------------------------------------------------------------- checkpoints ---


def checkpoint_dir(out_dir: str | Path, step: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"step-{step:07d}"


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    root = Path(out_dir) / "checkpoints"
    done = sorted(p for p in root.glob("step-*") if (p / TRAINER_STATE_FILE).exists()) if root.exists() else []
    return done[-1] if done else None


def save_checkpoint(
    out: Path, step: int, *, save_model: Callable[[Path], None], make_trainer_state: Callable[[], Mapping], dist: Dist
) -> None:
    """`<out>/checkpoints/step-N/` = model folder + trainer.pt (main process), written beside it first and
    then renamed, so an interrupted save never leaves a folder that `latest_checkpoint` would pick."""
    if dist.main:
        d = checkpoint_dir(out, step)
        tmp = d.with_name(d.name + ".tmp")
        save_model(tmp / "model")
        torch.save(dict(make_trainer_state()), tmp / TRAINER_STATE_FILE)
        if d.exists():
            shutil.rmtree(d)
        tmp.rename(d)
    dist.barrier()


def read_trainer_state(checkpoint: Path, device: torch.device) -> dict:
    return torch.load(checkpoint / TRAINER_STATE_FILE, map_location=device, weights_only=False)


def restore_optimisation(
    state: Mapping, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler
) -> int:
    """Load the optimiser and schedule states saved in `state`; returns the step to continue from."""
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    return int(state["step"])


def trainer_state(
    step: int, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler, tc: Any, **extra: Any
) -> dict:
    return {
        "step": step,
        **extra,
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "train_config": dataclasses.asdict(tc),
    }


# ------------------------------------------------------------------------------------ logs ---


def write_train_config(out: Path, tc: Any, dist: Dist) -> None:
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(dataclasses.asdict(tc), indent=2))


def append_log(out: Path, metrics: Mapping) -> None:
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(dict(metrics)) + "\n")


# ------------------------------------------------------------------------------------- CLI ---


def config_from_namespace(config_cls: type[ConfigT], args: argparse.Namespace) -> ConfigT:
    """The dataclass `config_cls` from the parsed arguments that name its fields."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    return config_cls(**{k: v for k, v in vars(args).items() if k in names})


def print_metrics_on_main(metrics: Mapping) -> int:
    """Print the run's last metrics once (torchrun starts every rank with RANK set); the exit status."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(metrics))
    return 0
