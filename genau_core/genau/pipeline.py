"""GenAuPipeline: prompts -> 16 kHz waveforms (DDIM + classifier-free guidance -> VAE -> HiFi-GAN).

Every prompt owns a `torch.Generator().manual_seed(seed)` that draws its initial latent noise
and then its DDIM (eta > 0) step noise, so a prompt's output does not depend on which other
prompts share its batch. As in the official sampler, the FIT's latent tokens of the
conditional pass are fed back as self-conditioning at the next step.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from genau_core.genau.diffusion import make_ddim_scheduler
from genau_core.genau.model import GenAuModel


class GenAuPipeline:
    def __init__(self, model: GenAuModel):
        self.model = model
        self.cfg = model.cfg

    @property
    def clip_duration_s(self) -> float:
        return self.cfg.mel.duration_s

    def _noise(self, generators: list[torch.Generator], shape: tuple[int, ...]) -> torch.Tensor:
        return torch.stack([torch.randn(shape, generator=g) for g in generators])

    @torch.no_grad()
    def sample_latents(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        steps: int | None = None,
        guidance: float | None = None,
        eta: float | None = None,
        dataset: str | None = None,
    ) -> torch.Tensor:
        d = self.cfg.diffusion
        steps = d.steps if steps is None else int(steps)
        guidance = d.guidance if guidance is None else float(guidance)
        eta = d.eta if eta is None else float(eta)
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if steps < 1:
            raise ValueError("steps must be >= 1")
        model = self.model
        dev = model.device
        dtype = model.backbone.patch_in.weight.dtype
        n = len(prompts)
        generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        x = self._noise(generators, self.cfg.latent_shape).to(dev, dtype)
        cond = model.conditioner.encode(list(prompts)).to(dev, dtype)
        ids = model.conditioner.dataset_ids(n, dataset)
        use_cfg = guidance != 1.0
        if use_cfg:
            summary = torch.cat([model.conditioner.unconditional(n).to(dev, dtype), cond])
            ds = torch.cat([model.conditioner.unconditional_dataset_ids(n), ids])
        else:
            summary, ds = cond, ids
        scheduler = make_ddim_scheduler(d)
        scheduler.set_timesteps(steps, device=dev)
        x = x * scheduler.init_noise_sigma
        prev_latents = None
        for t in scheduler.timesteps:
            inp = torch.cat([x, x]) if use_cfg else x
            tt = torch.full((inp.shape[0],), int(t), device=dev, dtype=torch.long)
            prev = (
                None if prev_latents is None else (torch.cat([prev_latents, prev_latents]) if use_cfg else prev_latents)
            )
            pred, lat = model.backbone(inp, tt, summary, ds, prev)  # epsilon (or v, per cfg.diffusion.prediction_type)
            if use_cfg:
                pred_u, pred_c = pred.chunk(2)
                pred = pred_u + guidance * (pred_c - pred_u)
                prev_latents = lat.chunk(2)[1]
            else:
                prev_latents = lat
            variance_noise = self._noise(generators, self.cfg.latent_shape).to(dev, dtype) if eta > 0 else None
            x = scheduler.step(pred, t, x, eta=eta, variance_noise=variance_noise).prev_sample
        return x

    @torch.no_grad()
    def __call__(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        steps: int | None = None,
        guidance: float | None = None,
        duration_s: float = 10.0,
        eta: float | None = None,
        dataset: str | None = None,
    ) -> list[np.ndarray]:
        """One mono float32 waveform per prompt at `cfg.mel.sample_rate`, `duration_s` long (<= 10.24 s)."""
        if duration_s <= 0 or duration_s > self.clip_duration_s + 1e-9:
            raise ValueError(f"GenAu generates clips of up to {self.clip_duration_s} s; asked for {duration_s} s")
        z = self.sample_latents(prompts, seeds, steps=steps, guidance=guidance, eta=eta, dataset=dataset)
        mel = self.model.decode_latents(z)
        wav = self.model.mel_to_waveform(mel).float().cpu().numpy()
        n = int(round(duration_s * self.cfg.mel.sample_rate))
        peak = self.cfg.diffusion.peak_normalize
        out = []
        for w in wav:
            w = np.ascontiguousarray(w[:n], dtype=np.float32)
            if len(w) < n:
                w = np.concatenate([w, np.zeros(n - len(w), np.float32)])
            if peak is not None:
                m = float(np.abs(w).max())
                if m > 0:
                    w = w / m * np.float32(peak)
            out.append(w.astype(np.float32))
        return out
