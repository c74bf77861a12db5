"""Embedding backbones behind one interface (see base.py), found by name."""

from __future__ import annotations

import difflib
import importlib

from bench.errors import UnknownNameError
from bench.metrics.backbones.base import AudioBackbone, BackboneIdentity, TextAudioBackbone

BACKBONES: dict[str, str] = {
    "panns-cnn14-16k": "bench.metrics.backbones.panns:Cnn14Backbone",
    "vggish": "bench.metrics.backbones.vggish:VGGishBackbone",
    "laion-clap-htsat-base": "bench.metrics.backbones.laion_clap:LaionClapHtsatBase",
    "laion-clap-htsat-tiny": "bench.metrics.backbones.laion_clap:LaionClapHtsatTiny",
    "laion-clap-htsat-tiny-fusion": "bench.metrics.backbones.laion_clap_fusion:LaionClapFusion",
    "laion-clap-htsat-tiny-fusion-stable-audio": "bench.metrics.backbones.laion_clap_fusion:LaionClapFusionStableAudio",
    "panns-cnn14-16k-av-benchmark": "bench.metrics.backbones.av_benchmark:Cnn14AvBenchmark",
    "vggish-av-benchmark": "bench.metrics.backbones.av_benchmark:VGGishAvBenchmark",
    "laion-clap-htsat-base-av-benchmark": "bench.metrics.backbones.av_benchmark:LaionClapHtsatBaseAvBenchmark",
    "ms-clap-2022": "bench.metrics.backbones.ms_clap:MsClap2022",
    "ms-clap-2023": "bench.metrics.backbones.ms_clap:MsClap2023",
    "passt-s-ap476": "bench.metrics.backbones.passt:PasstBackbone",
    "passt-s-ap476-stable-audio": "bench.metrics.backbones.passt:PasstStableAudio",
    "passt-s-ap476-av-benchmark": "bench.metrics.backbones.passt:PasstAvBenchmark",
    "openl3-mel256-env-512": "bench.metrics.backbones.openl3:OpenL3Backbone",
    "openl3-mel256-env-512-stable-audio": "bench.metrics.backbones.openl3:OpenL3StableAudio",
    "audiobox-aesthetics": "bench.metrics.backbones.aesthetics:AestheticsBackbone",
}

__all__ = ["AudioBackbone", "BackboneIdentity", "TextAudioBackbone", "BACKBONES", "backbone_class"]


def backbone_class(name: str) -> type[AudioBackbone]:
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, list(BACKBONES), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownNameError(f"unknown backbone {name!r}.{hint} Known: {', '.join(BACKBONES)}")  # a KeyError
    module, _, attr = BACKBONES[name].partition(":")
    return getattr(importlib.import_module(module), attr)
