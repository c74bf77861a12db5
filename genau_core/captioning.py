"""The captioner interface: what the AutoReCap pipeline (and anything else) needs from a
captioning model. AutoCap implements it; the pipeline knows nothing else about AutoCap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Sequence

import numpy as np


class Captioner(ABC):
    name: ClassVar[str]
    sample_rate: ClassVar[int]  # waveforms passed to `caption` are mono float32 at this rate
    max_duration_s: ClassVar[float] = 10.0

    @abstractmethod
    def caption(
        self,
        waveforms: Sequence[np.ndarray],
        metadata: Sequence[dict[str, str]] | None = None,
        *,
        batch_size: int = 8,
    ) -> list[str]:
        """One caption per waveform. `metadata[i]` may hold 'title', 'video_caption',
        'description' (any subset, possibly empty strings)."""

    @property
    def identity(self) -> str:
        """Checkpoint identity recorded in every manifest row it captions (sha256 / random:seed=N)."""
        return "unknown"
