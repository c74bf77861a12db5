"""What scoring will do to accepted-but-unusual input files, said before it does it.

Files with several channels and files at another rate than the protocol's are accepted (the
bad-input policy in bench.audio): each backbone reads them the way its reference tool does
(its `input_path`: first channel, channel mean or channels one after another; the tool's own
resampler unless `--resampler` names another). They are not failures, but the console says so:
one line per side and kind, with the count, the first files and what each backbone does.
Only file headers are read (soundfile.info), so the notes are the same on a cold and a warm
cache. A file whose header cannot be read is left to the decoder, which reports it as unreadable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.protocol import PROTOCOL

SHOWN = 3  # files named per note; the count covers all of them
CHANNEL_WORDS = {
    "mean": "channel mean",
    "first": "first channel",
    "concatenate": "channels one after another",
    "native": "left and right kept (mono used twice)",
}


@dataclass(frozen=True)
class ScoringRules:
    """How the backbones of one scoring run treat channels and rates, in words."""

    channels: str  # e.g. "panns-cnn14-16k: first channel; vggish: first channel"
    resampling: str  # e.g. "each backbone's reference-tool resampler" or "resampler soxr-hq"


def scoring_rules(config) -> ScoringRules:
    """The rules of a ScoreConfig's backbones (only those its metrics use)."""
    from bench.audio import REFERENCE
    from bench.metrics.backbones import backbone_class

    names = sorted({name for _, _, name in config.entries()})
    parts = []
    for name in names:
        try:
            path = getattr(backbone_class(name), "input_path", None)
        except KeyError:  # an unknown backbone is reported by the scoring itself
            continue
        parts.append(f"{name}: {CHANNEL_WORDS.get(getattr(path, 'channels', 'mean'), 'channel mean')}")
    if config.resampler == REFERENCE:
        resampling = "each backbone's reference-tool resampler"
    else:
        resampling = f"resampler {config.resampler}"
    return ScoringRules("; ".join(parts) or "channel mean", resampling)


@dataclass(frozen=True)
class InputNote:
    side: str  # "generated" | "reference"
    kind: str  # "channels" | "rate"
    detail: str  # e.g. "2 channels" or "8000 Hz"
    files: tuple[str, ...]

    def line(self, rules: ScoringRules) -> str:
        n = len(self.files)
        what = f"{n} {self.side} file{'s' if n != 1 else ''}"
        shown = ", ".join(self.files[:SHOWN]) + (f" and {n - SHOWN} more" if n > SHOWN else "")
        if self.kind == "channels":
            return (
                f"note: {what} with {self.detail}, made mono as each backbone's reference tool does "
                f"({rules.channels}): {shown}"
            )
        return (
            f"note: {what} at {self.detail} (not {PROTOCOL.sample_rate} Hz), resampled to each backbone's rate "
            f"with {rules.resampling}: {shown}"
        )


def input_notes(files: Iterable[str | Path], side: str) -> list[InputNote]:
    """Notes for the files with several channels and the files not at the protocol rate among `files`."""
    import soundfile as sf

    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in sorted(str(p) for p in files):
        try:
            info = sf.info(f)
        except Exception:  # noqa: BLE001, S112 - unreadable: the decoder reports it with its reason
            continue
        if info.channels > 1:
            groups[("channels", f"{info.channels} channels")].append(f)
        if info.samplerate != PROTOCOL.sample_rate:
            groups[("rate", f"{info.samplerate} Hz")].append(f)
    return [InputNote(side, kind, detail, tuple(fs)) for (kind, detail), fs in sorted(groups.items())]
