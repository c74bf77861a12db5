"""Diffusion process of GenAu on diffusers' schedulers: epsilon prediction, T = 1000, betas 0.0015..0.0195.

GenAu is trained with epsilon prediction. `DiffusionConfig.prediction_type = "v_prediction"`
(Salimans & Ho 2022) is available for small models trained on a handful of clips (the
shipped genau-tiny): with 10 memorised latents of 8 x 256 values, the noisy latent alone
identifies its clip down to very low signal-to-noise ratios, so the epsilon loss gives the
text condition almost no weight; the v target (~ -x0 at high noise) does.

The official "linear" schedule (LDM `make_beta_schedule("linear")`) is
linspace(sqrt(0.0015), sqrt(0.0195), 1000) ** 2, diffusers' `scaled_linear`. The official DDIM
sampler uses timesteps range(0, 1000, 1000 // steps) + 1 and alpha_prev = alphas_cumprod[0]
at the last step: `timestep_spacing="leading"`, `steps_offset=1`, `set_alpha_to_one=False`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from genau_core.genau.configs import DiffusionConfig


PREDICTION_TYPES = ("epsilon", "v_prediction")


def _scheduler_kwargs(cfg: DiffusionConfig) -> dict:
    return dict(
        num_train_timesteps=cfg.num_train_timesteps,
        beta_start=cfg.beta_start,
        beta_end=cfg.beta_end,
        beta_schedule=cfg.beta_schedule,
        prediction_type=cfg.prediction_type,
        clip_sample=False,
    )


def make_ddim_scheduler(cfg: DiffusionConfig):
    from diffusers import DDIMScheduler

    return DDIMScheduler(**_scheduler_kwargs(cfg), set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")


def make_ddpm_scheduler(cfg: DiffusionConfig):
    from diffusers import DDPMScheduler

    return DDPMScheduler(**_scheduler_kwargs(cfg))


@dataclass
class LDMBatchLoss:
    loss: torch.Tensor
    timesteps: torch.Tensor
    dropped: torch.Tensor


def ldm_loss(
    model,
    latents: torch.Tensor,
    summary: torch.Tensor,
    dataset_ids: torch.Tensor,
    *,
    scheduler=None,
    generator: torch.Generator | None = None,
    cfg_dropout: float | None = None,
) -> LDMBatchLoss:
    """Epsilon- (or v-) prediction MSE on scaled VAE latents (B, C, T), with per-sample condition dropout for CFG.

    `model` is a GenAuModel (its conditioner provides the unconditional encodings).
    """
    scheduler = scheduler or make_ddpm_scheduler(model.cfg.diffusion)
    summary, dataset_ids, dropped = model.conditioner.drop_conditions(
        summary, dataset_ids, generator=generator, p=cfg_dropout
    )
    b = latents.shape[0]
    t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=generator).to(latents.device)
    noise = torch.randn(latents.shape, generator=generator, dtype=latents.dtype).to(latents.device)
    noisy = scheduler.add_noise(latents, noise, t)
    pred, _ = model.backbone(noisy, t, summary, dataset_ids)
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        target = noise
    elif kind == "v_prediction":
        target = scheduler.get_velocity(latents, noise, t)
    else:
        raise ValueError(f"prediction_type must be one of {', '.join(PREDICTION_TYPES)}, got {kind!r}")
    return LDMBatchLoss(F.mse_loss(pred.float(), target.float()), t, dropped)
