"""Transcriptions of the official AudioLDM / AudioLDM 2 sampling code, for the plugin tests.

Written from haoheliu/AudioLDM and haoheliu/AudioLDM2 (mirrored under /work/.mirror); both repos carry
the same LDM DDIM sampler. Each function names the official file and function it follows. The networks
(UNet, VAE, vocoder, text encoders) are the diffusers / transformers modules the released diffusers
folders hold; what is transcribed is everything around them: schedule, timesteps, eta, noise draws,
guidance, unconditional conditioning and latent length.

Noise: the official code draws x_T and every DDIM noise term from the global RNG (`torch.randn`,
`noise_like`); here they come, in the same order, from one seeded generator per prompt, which is what
the plugins do (a deliberate, documented difference). Each prompt is run alone, as the official CLI does.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch


def official_alphas_cumprod(
    linear_start: float = 0.0015, linear_end: float = 0.0195, timesteps: int = 1000
) -> torch.Tensor:
    """`DDPM.register_schedule` (audioldm/latent_diffusion/ddpm.py; audioldm2 models/ddpm.py) with
    `make_beta_schedule("linear", ...)` (latent_diffusion/util.py): betas = linspace(sqrt(start), sqrt(end))**2
    in float64, cumulative product in float64, stored as float32 buffers."""
    betas = np.linspace(linear_start**0.5, linear_end**0.5, timesteps, dtype=np.float64) ** 2
    return torch.tensor(np.cumprod(1.0 - betas, axis=0), dtype=torch.float32)


def official_ddim_schedule(alphas_cumprod: torch.Tensor, steps: int, eta: float) -> dict:
    """`DDIMSampler.make_schedule` with `make_ddim_timesteps("uniform")` and `make_ddim_sampling_parameters`
    (latent_diffusion/util.py; audioldm2 modules/diffusionmodules/util.py)."""
    n = alphas_cumprod.shape[0]
    c = n // steps
    ddim_timesteps = np.asarray(list(range(0, n, c))) + 1  # "add one to get the final alpha values right"
    alphas = alphas_cumprod[ddim_timesteps]
    alphas_prev = np.asarray([alphas_cumprod[0]] + alphas_cumprod[ddim_timesteps[:-1]].tolist())
    with warnings.catch_warnings():  # the official code mixes numpy and torch here; numpy 2 warns about it
        warnings.simplefilter("ignore", DeprecationWarning)
        sigmas = eta * np.sqrt((1 - alphas_prev) / (1 - alphas) * (1 - alphas / alphas_prev))
        sqrt_one_minus_alphas = np.sqrt(1.0 - alphas)
    return dict(
        timesteps=ddim_timesteps,
        alphas=alphas,
        alphas_prev=alphas_prev,
        sigmas=sigmas,
        sqrt_one_minus_alphas=sqrt_one_minus_alphas,
    )


def official_ddim_sample(
    eps_model: Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor],
    shape: tuple[int, ...],
    generator: torch.Generator,
    *,
    steps: int,
    eta: float,
    guidance: float,
    alphas_cumprod: torch.Tensor,
) -> torch.Tensor:
    """`DDIMSampler.sample` -> `ddim_sampling` -> `p_sample_ddim` (audioldm/latent_diffusion/ddim.py,
    audioldm2/latent_diffusion/models/ddim.py), batch of one; `eps_model(x, t, conditional)`.

    Guidance: eps_u + s * (eps_c - eps_u) (AudioLDM runs [uc, c] as one batch, AudioLDM 2 two calls)."""
    sched = official_ddim_schedule(alphas_cumprod, steps, eta)
    img = torch.randn(shape, generator=generator)  # ddim_sampling: x_T = torch.randn(shape)
    timesteps = sched["timesteps"]
    total = timesteps.shape[0]
    for i, step in enumerate(np.flip(timesteps)):
        index = total - i - 1
        ts = torch.full((shape[0],), int(step), dtype=torch.long)
        if guidance == 1.0:
            e_t = eps_model(img, ts, True)
        else:
            e_u, e_c = eps_model(img, ts, False), eps_model(img, ts, True)
            e_t = e_u + guidance * (e_c - e_u)
        b = shape[0]
        a_t = torch.full((b, 1, 1, 1), float(sched["alphas"][index]))
        a_prev = torch.full((b, 1, 1, 1), float(sched["alphas_prev"][index]))
        sigma_t = torch.full((b, 1, 1, 1), float(sched["sigmas"][index]))
        sqrt_one_minus_at = torch.full((b, 1, 1, 1), float(sched["sqrt_one_minus_alphas"][index]))
        pred_x0 = (img - sqrt_one_minus_at * e_t) / a_t.sqrt()
        dir_xt = (1.0 - a_prev - sigma_t**2).sqrt() * e_t
        noise = sigma_t * torch.randn(img.shape, generator=generator)  # noise_like(x.shape): a draw at every step
        img = a_prev.sqrt() * pred_x0 + dir_xt + noise
    return img


def official_latent_t_size(duration: float, latent_t_per_second: float = 25.6) -> int:
    """audioldm/pipeline.py `duration_to_latent_t_size`; audioldm2/pipeline.py `text_to_audio`
    (`int(duration * latent_t_per_second)`, 25.6 for the 16 kHz models with a 4x VAE: 256 for 10 s)."""
    return int(duration * latent_t_per_second)
