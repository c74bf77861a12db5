"""The LDM DDIM sampler (CompVis `ldm/models/diffusion/ddim.py`) through diffusers' `DDIMScheduler`.

LDM's `DDPM.register_schedule("linear", linear_start, linear_end)` is diffusers' "scaled_linear"
(betas = linspace(sqrt(start), sqrt(end), T)^2). Its DDIM sampler with `ddim_discretize="uniform"`
visits the timesteps `range(0, T, T // S) + 1` (991, 981, ..., 1 for S = 100), uses
`alphas_cumprod[0]` as the last "previous" alpha, predicts eps, does not clip x0 and, with
eta = 0, adds no noise: diffusers' `DDIMScheduler` with timestep_spacing "leading",
steps_offset 1, set_alpha_to_one False, clip_sample False computes the same steps (for every S
that divides T; LDM itself fails on the others). Classifier-free guidance as LDM:
eps = eps(x, uc) + scale * (eps(x, c) - eps(x, uc)), model run on the concatenation [uc, c];
with scale 1 only the conditional branch runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch

from genau_core.baselines._state import CheckpointMappingError


@dataclass(frozen=True)
class LdmSchedule:
    timesteps: int = 1000
    linear_start: float = 0.00085
    linear_end: float = 0.012

    def betas(self) -> np.ndarray:
        return np.linspace(self.linear_start**0.5, self.linear_end**0.5, self.timesteps, dtype=np.float64) ** 2

    def alphas_cumprod(self) -> np.ndarray:
        return np.cumprod(1.0 - self.betas())


# LatentDiffusion buffers derived from the schedule (stored in every checkpoint, recomputed here)
SCHEDULE_BUFFERS = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)


def check_schedule_buffers(buffers: Mapping[str, torch.Tensor], schedule: LdmSchedule, *, what: str) -> None:
    """The checkpoint's stored betas / alphas_cumprod must be the schedule we sample with."""
    expected = {"betas": schedule.betas(), "alphas_cumprod": schedule.alphas_cumprod()}
    for name, ref in expected.items():
        if name not in buffers:
            continue
        got = buffers[name].double().cpu().numpy()
        if got.shape != ref.shape or not np.allclose(got, ref, rtol=1e-4, atol=1e-7):
            raise CheckpointMappingError(
                f"{what}: stored {name} is not the LDM linear schedule {schedule} "
                f"(first/last {float(got.reshape(-1)[0]):.6g}/{float(got.reshape(-1)[-1]):.6g})"
            )


def build_ddim_scheduler(schedule: LdmSchedule):
    """diffusers' DDIMScheduler set up as LDM's sampler. Its alphas_cumprod are replaced by LDM's
    (cumulative product in float64, then float32; diffusers multiplies in float32), so both
    samplers use the very same numbers."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(
        num_train_timesteps=schedule.timesteps,
        beta_start=schedule.linear_start,
        beta_end=schedule.linear_end,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        timestep_spacing="leading",
    )
    alphas_cumprod = torch.tensor(schedule.alphas_cumprod(), dtype=torch.float32)
    scheduler.alphas_cumprod = alphas_cumprod
    scheduler.final_alpha_cumprod = alphas_cumprod[0]
    return scheduler


def ddim_sample(
    eps_model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    latents: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    *,
    schedule: LdmSchedule,
    steps: int,
    guidance: float,
) -> torch.Tensor:
    """Deterministic DDIM (eta 0) from `latents` (x_T); `eps_model(x, t, context)` with t (B,) long."""
    if schedule.timesteps % steps:
        raise ValueError(
            f"DDIM steps {steps} must divide {schedule.timesteps} (the LDM sampler's uniform discretisation)"
        )
    scheduler = build_ddim_scheduler(schedule)
    scheduler.set_timesteps(steps, device=latents.device)
    use_cfg = guidance != 1.0
    if use_cfg and uncond is None:
        raise ValueError("classifier-free guidance needs the unconditional context")
    context = torch.cat([uncond, cond]) if use_cfg else cond
    x = latents
    for t in scheduler.timesteps:
        x_in = torch.cat([x, x]) if use_cfg else x
        ts = torch.full((x_in.shape[0],), int(t), device=x.device, dtype=torch.long)
        eps = eps_model(x_in, ts, context)
        if use_cfg:
            eps_u, eps_c = eps.chunk(2)
            eps = eps_u + guidance * (eps_c - eps_u)
        x = scheduler.step(eps, t, x, eta=0.0).prev_sample
    return x
