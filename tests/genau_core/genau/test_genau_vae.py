"""1D-VAE: shapes, reparameterised posterior, loss (rec + KL + adversarial after disc_start), a training step."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genau_core.genau import GENAU_S, GENAU_TINY, VAEConfig, VAELossConfig
from genau_core.genau.losses import PatchDiscriminator, VAELoss, hinge_d_loss
from genau_core.genau.vae import AutoencoderKL1D, DiagonalGaussian


def test_full_vae_config_is_the_paper_s():
    v = GENAU_S.vae
    assert (v.mel_bins, v.ch, v.ch_mult, v.num_res_blocks, v.z_channels, v.embed_dim) == (
        64,
        512,
        (1, 2, 4),
        3,
        256,
        64,
    )
    assert v.time_downsample == 4
    assert GENAU_S.latent_shape == (64, 256)  # 1024 x 64 mel -> 256 tokens x 64 channels
    assert GENAU_S.vae_loss.kl_weight == 1000.0


def test_shapes_through_encoder_and_decoder():
    torch.manual_seed(0)
    vae = AutoencoderKL1D(GENAU_TINY.vae).eval()
    mel = torch.randn(2, 64, 1024)
    post = vae.encode(mel)
    assert post.mean.shape == (2, GENAU_TINY.vae.embed_dim, 256)
    with torch.no_grad():
        rec, _ = vae(mel)
    assert rec.shape == mel.shape
    assert vae.decode(post.mode()[..., None]).shape == mel.shape  # official (B, C, T, 1) latent layout
    with pytest.raises(ValueError):
        vae.encode(torch.randn(1, 64, 1022))


def test_posterior_is_reparameterised_and_kl_matches_closed_form():
    moments = torch.randn(3, 8, 5, requires_grad=True)
    post = DiagonalGaussian(moments)
    g = torch.Generator().manual_seed(1)
    z = post.sample(g)
    z.sum().backward()
    assert moments.grad is not None and moments.grad.abs().sum() > 0  # gradient flows through mean and std
    torch.testing.assert_close(post.mode(), moments[:, :4])
    mean, logvar = moments.detach()[:, :4], moments.detach()[:, 4:]
    ref = (
        torch.distributions.kl_divergence(
            torch.distributions.Normal(mean, torch.exp(0.5 * logvar)), torch.distributions.Normal(0.0, 1.0)
        )
        .flatten(1)
        .mean(1)
    )
    torch.testing.assert_close(post.kl().detach(), ref, atol=1e-5, rtol=1e-5)
    # same generator -> same sample
    assert torch.equal(DiagonalGaussian(moments.detach()).sample(torch.Generator().manual_seed(1)), z.detach())


def test_discriminator_layout_and_hinge_loss():
    d = PatchDiscriminator(1, 8, 3)
    convs = [m for m in d.main if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5 and convs[0].bias is not None and convs[1].bias is None
    assert d(torch.randn(2, 1, 64, 64)).shape[1] == 1
    assert float(hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0))) == 0.0
    assert float(hinge_d_loss(torch.zeros(4), torch.zeros(4))) == pytest.approx(1.0)


def test_adversarial_terms_switch_on_at_disc_start():
    torch.manual_seed(0)
    cfg = dataclasses.replace(GENAU_TINY.vae_loss, disc_start=5)
    vae = AutoencoderKL1D(GENAU_TINY.vae)
    loss = VAELoss(cfg)
    mel = torch.randn(2, 64, 1024)
    rec, post = vae(mel)
    _, log_before = loss.generator_loss(mel, rec, post, step=4, last_layer=vae.last_layer())
    assert "g_loss" not in log_before
    assert loss.discriminator_loss(mel, rec, step=4)[1]["disc_loss"] == 0.0
    _, log_after = loss.generator_loss(mel, rec, post, step=5, last_layer=vae.last_layer())
    assert "g_loss" in log_after and log_after["d_weight"] > 0
    assert loss.discriminator_loss(mel, rec, step=5)[1]["disc_loss"] > 0
    assert log_after["total_loss"] != pytest.approx(log_before["total_loss"])
    with pytest.raises(ValueError):
        VAELoss(dataclasses.replace(cfg, perceptual_weight=1.0))


def test_a_few_training_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    vcfg = VAEConfig(ch=32, ch_mult=(1, 2), num_res_blocks=1, z_channels=8, embed_dim=4)
    vae = AutoencoderKL1D(vcfg)
    loss_fn = VAELoss(VAELossConfig(kl_weight=1e-3, disc_start=2, disc_channels=8, disc_layers=2))
    g_opt = torch.optim.Adam(list(vae.parameters()) + [loss_fn.logvar], lr=5e-3)
    d_opt = torch.optim.Adam(loss_fn.discriminator.parameters(), lr=5e-3)
    t = torch.linspace(0, 1, 128)
    mel = torch.stack([torch.sin(2 * torch.pi * (k + 1) * t)[None].repeat(64, 1) * 2 - 5 for k in range(2)])
    gen = torch.Generator().manual_seed(0)
    losses = []
    for step in range(30):
        rec, post = vae(mel, generator=gen)
        d_loss, _ = loss_fn.discriminator_loss(mel, rec, step)
        d_opt.zero_grad()
        if d_loss.requires_grad:
            d_loss.backward()
            d_opt.step()
        g_loss, log = loss_fn.generator_loss(mel, rec, post, step, vae.last_layer())
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        losses.append(log["rec_loss"])
    assert min(losses[-3:]) < 0.3 * losses[0]


def test_input_normalisation_is_an_affine_wrapper_around_the_same_network():
    """mel_mean / mel_std (used by the shipped genau-tiny): encoder sees (mel - mean) / std,
    decoder output is mapped back."""
    plain = AutoencoderKL1D(GENAU_TINY.vae).eval()
    normed = AutoencoderKL1D(dataclasses.replace(GENAU_TINY.vae, mel_mean=-11.5, mel_std=4.0)).eval()
    normed.load_state_dict(plain.state_dict())  # no extra parameters or buffers
    mel = torch.randn(2, 64, 64) * 4 - 8
    with torch.no_grad():
        torch.testing.assert_close(normed.encode(mel).mean, plain.encode((mel + 11.5) / 4.0).mean)
        z = torch.randn(2, GENAU_TINY.vae.embed_dim, 16)
        torch.testing.assert_close(normed.decode(z), plain.decode(z) * 4.0 - 11.5)
