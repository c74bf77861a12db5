"""Engines run the stages of one shard. The local engine runs them in this process; the Ray
engine (`ray_engine.py`) runs the very same stage functions on Ray Data. Both return the
same values, which the runner turns into the shard's tables, so the manifests are identical.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

from tqdm import tqdm

from genau_core.captioning import Captioner
from genau_core.recap.caption import captioner_label, load_captioner, resolve_device
from genau_core.recap.fetch import Fetcher, LocalFetcher
from genau_core.recap.inputs import VideoItem
from genau_core.recap.segments import SegmentRules
from genau_core.recap.stages import (
    CaptionedSegment,
    DecodedSegment,
    VideoPlan,
    WriteJob,
    WriteResult,
    caption_segments,
    decode_segments,
    plan_video,
    write_clips,
)


@dataclass
class EngineSettings:
    captioner: str = "autocap-tiny"
    checkpoint: str | None = None
    device: str = "auto"
    batch_size: int = 8
    segments: SegmentRules = field(default_factory=SegmentRules)
    fetcher: Fetcher = field(default_factory=LocalFetcher)
    out_root: str = "."
    clip_sample_rate: int | None = 16000
    progress: bool = True


CaptionedShard = tuple[list[VideoPlan], dict[int, list[CaptionedSegment]]]


class Engine(ABC):
    name: str

    def __init__(self, settings: EngineSettings):
        self.s = settings

    @abstractmethod
    def caption_shard(self, items: Sequence[VideoItem], desc: str = "") -> CaptionedShard:
        """Plan, decode and caption every video: (plans in list order, {vidx: segments by seg_idx})."""

    @abstractmethod
    def write_shard(self, jobs: Sequence[WriteJob], desc: str = "") -> list[WriteResult]:
        """Write the kept clips of each job; results in job order."""

    def close(self) -> None:
        pass


class LocalEngine(Engine):
    """In-process: videos one after another, captioner batches filled across videos."""

    name = "local"

    def __init__(self, settings: EngineSettings):
        super().__init__(settings)
        self._cap: Captioner | None = None
        self._label = ""

    @property
    def captioner(self) -> Captioner:
        if self._cap is None:
            self._cap = load_captioner(
                self.s.captioner, device=resolve_device(self.s.device), checkpoint=self.s.checkpoint
            )
            self._label = captioner_label(self._cap)
        return self._cap

    def caption_shard(self, items: Sequence[VideoItem], desc: str = "") -> CaptionedShard:
        cap, bs = self.captioner, self.s.batch_size
        plans: list[VideoPlan] = []
        captioned: dict[int, list[CaptionedSegment]] = {}
        pending: list[DecodedSegment] = []

        def flush(n: int) -> None:
            batch = pending[:n]
            del pending[:n]
            meta = [plans[d.vidx].item.metadata for d in batch]
            for d, c in zip(batch, caption_segments(cap, self._label, batch, meta, bs, self.s.clip_sample_rate)):
                captioned.setdefault(d.vidx, []).append(c)

        for vidx, item in enumerate(
            tqdm(items, desc=desc or "videos", unit="video", disable=not self.s.progress, leave=False)
        ):
            plan = plan_video(vidx, item, self.s.segments, self.s.fetcher)
            plans.append(plan)
            pending.extend(decode_segments(plan, self.s.fetcher, self.s.segments))
            while len(pending) >= bs:
                flush(bs)
        while pending:
            flush(bs)
        return plans, {k: sorted(v, key=lambda c: c.seg_idx) for k, v in captioned.items()}

    def write_shard(self, jobs: Sequence[WriteJob], desc: str = "") -> list[WriteResult]:
        it = tqdm(jobs, desc=desc or "clips", unit="video", disable=not self.s.progress, leave=False)
        return [write_clips(j, self.s.out_root, self.s.clip_sample_rate, self.s.fetcher) for j in it]


def make_engine(name: str, settings: EngineSettings, **ray_options) -> Engine:
    if name == "local":
        return LocalEngine(settings)
    if name == "ray":
        from genau_core.recap.ray_engine import RayEngine

        return RayEngine(settings, **ray_options)
    raise ValueError(f"unknown engine {name!r}: local or ray")
