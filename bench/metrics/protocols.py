"""Scoring protocols as data: named, versioned sets of (metric, backbone) pairs.

A protocol fixes everything that moves a number: which metrics (declared in
`bench.metrics.registry`), on which backbone and checkpoint, and how each backbone's input is
derived from the clip as the model produced it (its native rate and channels). The derivation
belongs to the backbone entry: its `input_path` (channels, mean removal, the tool's resampler)
and its `prepare` (peak normalisation, crop, pad, windows, int16 round trip). Where two
protocols feed one network differently, the backbone has one registered name per protocol
(e.g. `passt-s-ap476-stable-audio` and `passt-s-ap476-av-benchmark`); the name is part of the
embedding-cache key. Scoring decodes each file once and embeds it with every backbone of every
protocol asked for.

Shipped protocols (the README's protocols table):
  genau          the GenAU paper's (audioldm_eval style): FD / IS / KL / KAD on PANNs Cnn14 16 kHz,
                 FAD on VGGish, CLAP on LAION-CLAP (HTSAT-base) and MS-CLAP 2023
  stable-audio   Stability-AI/stable-audio-metrics: FD on OpenL3 (mel256, env) of 44.1 kHz stereo,
                 KL on PaSST (10 s windows every 5 s, mean logits), CLAP on LAION's
                 630k-audioset-fusion-best
  av-benchmark   hkchengrex/av-benchmark: FD / IS / KL on PaSST and on PANNs, FD on VGGish,
                 LAION-CLAP and MS-CLAP scores (its video metrics are out of scope)
  aesthetics     facebookresearch/audiobox-aesthetics: PQ, PC, CE, CU (no reference audio)

A backbone written "@role" is the genau protocol's role, resolved through
`ScoreConfig.backbones` (so `--backbones` / the config file can swap, e.g., the CLAP checkpoint).

Bump a protocol's `version` whenever anything in it changes (a backbone's input, a checkpoint,
a metric's definition): rows of different versions are never ranked together.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from bench.metrics.registry import METRICS
from bench.protocol import PROTOCOL


@dataclass(frozen=True)
class ProtocolMetric:
    """One metric of a protocol: a registry metric on a backbone (a name, or "@role" for the genau
    protocol's configurable roles), with the protocol's options for it (e.g. KL eps)."""

    metric: str
    backbone: str
    options: tuple[tuple[str, object], ...] = ()

    @property
    def role(self) -> str | None:
        return self.backbone[1:] if self.backbone.startswith("@") else None

    def option_dict(self) -> dict:
        return dict(self.options)


@dataclass(frozen=True)
class Protocol:
    name: str
    version: str
    reference_tool: str  # the tool (and version) whose numbers this protocol reproduces
    metrics: tuple[ProtocolMetric, ...]
    description: str = ""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "reference_tool": self.reference_tool,
            "metrics": [{"metric": m.metric, "backbone": m.backbone, "options": m.option_dict()} for m in self.metrics],
        }


PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(p: Protocol) -> Protocol:
    if p.name in PROTOCOLS:
        raise ValueError(f"protocol {p.name!r} is declared twice")
    for m in p.metrics:
        if m.metric not in METRICS:
            raise ValueError(f"protocol {p.name}: unknown metric {m.metric!r}")
    PROTOCOLS[p.name] = p
    return p


def protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        close = difflib.get_close_matches(name, list(PROTOCOLS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise KeyError(f"unknown protocol {name!r}.{hint} Known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def parse_protocols(spec: str | None) -> tuple[str, ...]:
    """'genau,stable-audio' -> ('genau', 'stable-audio') (default genau); unknown names raise KeyError."""
    names: list[str] = []
    for n in (s.strip() for s in (spec or "genau").split(",")):
        if n and protocol(n).name not in names:
            names.append(n)
    if not names:
        raise KeyError(f"--protocols names no protocol; known: {', '.join(PROTOCOLS)}")
    return tuple(names)


_M = ProtocolMetric

GENAU = register_protocol(
    Protocol(
        "genau",
        PROTOCOL.version,
        "audioldm_eval (Cnn14_16k_mAP=0.438, VGGish without its last ReLU) + laion_clap + msclap, as the GenAU paper",
        (
            _M("FD", "@panns"),
            _M("IS", "@panns"),
            _M("KL_softmax", "@panns"),
            _M("KL_sigmoid", "@panns"),
            _M("KAD", "@panns"),
            _M("FAD", "@vggish"),
            _M("CLAP_LAION", "@clap_laion"),
            _M("CLAP_MS", "@clap_ms"),
        ),
        "GenAU / AudioLDM / Tango / Make-An-Audio papers: 16 kHz mono, audioldm_eval's loader",
    )
)

STABLE_AUDIO = register_protocol(
    Protocol(
        "stable-audio",
        "sam-1",
        "Stability-AI/stable-audio-metrics (src/openl3_fd.py, src/passt_kld.py, src/clap_score.py) at its audiocaps "
        "settings",
        (
            # openl3_fd(channels=2, samplingrate=44100, content_type="env", openl3_hop_size=0.5): every frame pooled
            _M("FD", "openl3-mel256-env-512-stable-audio", (("frames", True),)),
            # passt_kld(collect="mean"): softmax of the mean window logits, KL(gen || ref + 1e-6)
            _M("KL_sam", "passt-s-ap476-stable-audio"),
            # clap_score(clap_model="630k-audioset-fusion-best.pt")
            _M("CLAP_LAION", "laion-clap-htsat-tiny-fusion-stable-audio"),
        ),
        "Stable Audio Open, TangoFlux, ETTA: 44.1 kHz stereo FD on OpenL3, KL on PaSST, CLAP with fusion",
    )
)

AV_BENCHMARK = register_protocol(
    Protocol(
        "av-benchmark",
        "avb-1",
        "hkchengrex/av-benchmark (av_bench/extract.py, av_bench/evaluate.py) with --audio_length 10",
        (
            _M("FD", "passt-s-ap476-av-benchmark"),
            _M("FD", "panns-cnn14-16k-av-benchmark"),
            _M("FAD", "vggish-av-benchmark"),
            # compute_kl: kl_div(log_softmax(gen), log_softmax(gt), log_target=True): no eps
            _M("KL_softmax", "passt-s-ap476-av-benchmark", (("eps", 0.0),)),
            _M("KL_softmax", "panns-cnn14-16k-av-benchmark", (("eps", 0.0),)),
            _M("IS", "passt-s-ap476-av-benchmark"),
            _M("IS", "panns-cnn14-16k-av-benchmark"),
            _M("CLAP_LAION", "laion-clap-htsat-base-av-benchmark"),
            _M("CLAP_MS", "ms-clap-2023"),
        ),
        "MMAudio and followers: FD / IS / KL on PaSST and PANNs, FD on VGGish, LAION-CLAP and MS-CLAP",
    )
)

AESTHETICS = register_protocol(
    Protocol(
        "aesthetics",
        "aes-1",
        "facebookresearch/audiobox-aesthetics (audiobox_aesthetics/infer.py AesPredictor)",
        tuple(_M(axis, "audiobox-aesthetics") for axis in ("PQ", "PC", "CE", "CU")),
        "TTA-Bench, VERSA: reference-free production quality / complexity, content enjoyment / usefulness",
    )
)
