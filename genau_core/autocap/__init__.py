"""AutoCap (paper section 3.1): audio captioning with frozen HTSAT + LAION-CLAP encoders, a
Q-Former and a metadata-aware BART. Implements `genau_core.captioning.Captioner`.

    from genau_core.autocap import load_captioner
    captions = load_captioner("autocap-tiny").caption([waveform_at_32k])
"""

from genau_core.autocap.captioner import AutoCapCaptioner, FileCaption, load_captioner
from genau_core.autocap.configs import (
    AUTOCAP,
    AUTOCAP_PAPER,
    AUTOCAP_TINY,
    CONFIGS,
    AutoCapConfig,
    BartSpec,
    FrontEndConfig,
    GenerationSettings,
    QFormerConfig,
    get_config,
)
from genau_core.autocap.model import AutoCapBatch, AutoCapModel, build_autocap, load_pretrained, save_pretrained
from genau_core.autocap.pretrained import load_autocap

__all__ = [
    "AUTOCAP",
    "AUTOCAP_PAPER",
    "AUTOCAP_TINY",
    "CONFIGS",
    "AutoCapBatch",
    "AutoCapCaptioner",
    "AutoCapConfig",
    "AutoCapModel",
    "BartSpec",
    "FileCaption",
    "FrontEndConfig",
    "GenerationSettings",
    "QFormerConfig",
    "build_autocap",
    "get_config",
    "load_autocap",
    "load_captioner",
    "load_pretrained",
    "save_pretrained",
]
