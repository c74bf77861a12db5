"""The evaluation protocol shared by every model (paper: AudioLDM protocol, no re-ranking).

Bump PROTOCOL_VERSION whenever anything here, a metric's definition, a backbone's
preprocessing or the default resampler changes: leaderboard rows of different versions
are never ranked together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

PROTOCOL_VERSION = "gb-1"


@dataclass(frozen=True)
class Protocol:
    version: str = PROTOCOL_VERSION
    duration_s: float = 10.0
    sample_rate: int = 16_000
    candidates_per_prompt: int = 1
    clap_reranking: bool = False
    resampler: str = "soxr-hq"
    min_duration_s: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


PROTOCOL = Protocol()
