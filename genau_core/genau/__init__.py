"""GenAu (paper section 3.3): 1D-VAE + FIT latent diffusion conditioned on FLAN-T5 and CLAP text."""

from genau_core.genau.configs import (
    CONFIGS,
    GENAU_L,
    GENAU_S,
    GENAU_TINY,
    AttentionSpec,
    ConditioningConfig,
    DiffusionConfig,
    FITConfig,
    GenAuConfig,
    VAEConfig,
    VAELossConfig,
    get_config,
)
from genau_core.genau.model import GenAuModel, build_genau, load_pretrained, save_pretrained
from genau_core.genau.pipeline import GenAuPipeline

__all__ = [
    "AttentionSpec",
    "CONFIGS",
    "ConditioningConfig",
    "DiffusionConfig",
    "FITConfig",
    "GENAU_L",
    "GENAU_S",
    "GENAU_TINY",
    "GenAuConfig",
    "GenAuModel",
    "GenAuPipeline",
    "VAEConfig",
    "VAELossConfig",
    "build_genau",
    "get_config",
    "load_pretrained",
    "save_pretrained",
]
