"""VAE training loss: reconstruction (learned log-variance) + KL + hinge adversarial.

Follows the official `LPIPSWithDiscriminator` (taming-transformers) on mel "images"
(B, 1, T, n_mels): a PatchGAN discriminator, generator weight adapted from the ratio of
gradient norms at the decoder's last layer, adversarial terms enabled from `disc_start` on.
The LPIPS term is left out (see `VAELossConfig`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from genau_core.genau.configs import VAELossConfig
from genau_core.genau.vae import DiagonalGaussian


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al.): conv 4x4 stride 2 stacks with BatchNorm and leaky ReLU."""

    def __init__(self, in_channels: int = 1, channels: int = 64, layers: int = 3):
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, layers):
            prev, mult = mult, min(2**n, 8)
            seq += [
                nn.Conv2d(channels * prev, channels * mult, 4, 2, 1, bias=False),
                nn.BatchNorm2d(channels * mult),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**layers, 8)
        seq += [
            nn.Conv2d(channels * prev, channels * mult, 4, 1, 1, bias=False),
            nn.BatchNorm2d(channels * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(channels * mult, 1, 4, 1, 1),
        ]
        self.main = nn.Sequential(*seq)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def _as_image(mel: torch.Tensor) -> torch.Tensor:
    """(B, n_mels, T) -> (B, 1, T, n_mels), the layout the reference discriminator sees."""
    return mel.transpose(1, 2)[:, None]


class VAELoss(nn.Module):
    def __init__(self, cfg: VAELossConfig = VAELossConfig()):
        super().__init__()
        if cfg.perceptual_weight:
            raise ValueError("perceptual (LPIPS) loss is not available offline; set perceptual_weight=0")
        self.cfg = cfg
        self.logvar = nn.Parameter(torch.tensor(float(cfg.logvar_init)))
        self.discriminator = PatchDiscriminator(cfg.disc_in_channels, cfg.disc_channels, cfg.disc_layers)

    def disc_active(self, step: int) -> bool:
        return step >= self.cfg.disc_start

    def _adaptive_weight(self, nll: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
        nll_grad = torch.autograd.grad(nll, last_layer, retain_graph=True)[0]
        g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
        w = torch.norm(nll_grad) / (torch.norm(g_grad) + 1e-4)
        return torch.clamp(w, 0.0, 1e4).detach() * self.cfg.disc_weight

    def generator_loss(
        self,
        mel: torch.Tensor,
        rec: torch.Tensor,
        posterior: DiagonalGaussian,
        step: int,
        last_layer: torch.Tensor | None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Autoencoder objective (optimizer 0). `last_layer`: decoder output weight (for the adaptive weight)."""
        b = mel.shape[0]
        rec_loss = (mel - rec).abs()
        nll = (rec_loss / torch.exp(self.logvar) + self.logvar).sum() / b
        kl = posterior.kl().sum() / b
        loss = nll + self.cfg.kl_weight * kl
        log = {
            "rec_loss": float(rec_loss.mean().detach()),
            "nll_loss": float(nll.detach()),
            "kl_loss": float(kl.detach()),
            "logvar": float(self.logvar.detach()),
        }
        if self.disc_active(step) and self.cfg.disc_factor > 0:
            g_loss = -self.discriminator(_as_image(rec)).mean()
            if last_layer is not None and torch.is_grad_enabled():
                d_weight = self._adaptive_weight(nll, g_loss, last_layer)
            else:
                d_weight = torch.tensor(0.0)
            loss = loss + d_weight * self.cfg.disc_factor * g_loss
            log.update(g_loss=float(g_loss.detach()), d_weight=float(d_weight))
        log["total_loss"] = float(loss.detach())
        return loss, log

    def discriminator_loss(
        self, mel: torch.Tensor, rec: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Discriminator objective (optimizer 1); zero before `disc_start`."""
        logits_real = self.discriminator(_as_image(mel.detach()))
        logits_fake = self.discriminator(_as_image(rec.detach()))
        factor = self.cfg.disc_factor if self.disc_active(step) else 0.0
        d_loss = factor * hinge_d_loss(logits_real, logits_fake)
        return d_loss, {
            "disc_loss": float(d_loss.detach()),
            "logits_real": float(logits_real.mean().detach()),
            "logits_fake": float(logits_fake.mean().detach()),
        }
