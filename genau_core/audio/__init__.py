"""Audio front end (16 kHz log-mel) and the vocoders of GenAu (HiFi-GAN; Griffin-Lim for the shipped genau-tiny)."""

from genau_core.audio.griffinlim import GriffinLimConfig, GriffinLimVocoder
from genau_core.audio.hifigan import TINY_HIFIGAN, HiFiGANConfig, HiFiGANGenerator, load_hifigan
from genau_core.audio.mel import MelConfig, MelSpectrogram, fit_frames, prepare_waveform

__all__ = [
    "GriffinLimConfig",
    "GriffinLimVocoder",
    "HiFiGANConfig",
    "HiFiGANGenerator",
    "MelConfig",
    "MelSpectrogram",
    "TINY_HIFIGAN",
    "fit_frames",
    "load_hifigan",
    "prepare_waveform",
]
