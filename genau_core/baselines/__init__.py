"""Baseline text-to-audio models implemented in our code and loaded from their official files.

- `audioldm`: AudioLDM's official sampling loop on the diffusers / transformers model classes (no pipeline).
- `bigvgan`: the BigVGAN (v1) generator both Make-An-Audio models vocode with (resblock "1" and "2").
- `ldm_keys`: latent-diffusion (CompVis LDM) UNet / 2D KL-VAE key mappings onto diffusers modules.
- `ldm_sampling`: LDM's DDIM sampler (eps, scaled-linear betas) through diffusers' `DDIMScheduler`.
- `clap_text`: the MS-CLAP 2022 BERT text branch as Make-An-Audio conditions on it (per token).
- `make_an_audio`: Make-An-Audio (ICML 2023): UNet LDM on 80-bin mels, CLAP text, BigVGAN.
- `make_an_audio_2`: Make-An-Audio 2: 1D VAE + ConcatDiT2MLP, CLAP (caption) + T5 (structured caption).
- `tangoflux`: TangoFlux: diffusers' FLUX transformer + T5 + duration embedder on Stable Audio Open's VAE, its key
  mapping and the official rectified-flow sampler.

Every official file is read through an explicit key mapping that reports missing, unexpected
and mis-shaped keys (`CheckpointMappingError`).
"""
