"""Cue-free intervals of a video -> candidate segments, in integer milliseconds.

The paper (section 3.2, appendix A.2) keeps audio segments longer than one second that no
subtitle covers, and limits them to 10 s for captioning. Here:

1. every cue, widened by `cue_margin_ms` on both sides (0 by default, as in the paper), is
   clipped to the media duration [0, D]; cues that start at or after D are ignored (counted);
2. the clipped cues are united (overlapping, nested and touching cues become one interval);
   a zero-length cue is an instant that still splits the gap around it;
3. the gaps of [0, D] not covered by that union are kept when strictly longer than
   `min_segment_ms`;
4. each kept gap is cut from its start into pieces of `max_segment_ms`; a last piece that is
   not strictly longer than `min_segment_ms` is dropped (its time counts as rejected). Every
   piece records the index of its gap (`SegmentPlan.gaps_of`): merging joins only pieces of
   one gap, so a merged clip never spans a cue, not even a zero-length one.

Everything is integer arithmetic, so both engines and every re-run give the same boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from genau_core.recap.transcripts import Cue


@dataclass(frozen=True)
class SegmentRules:
    min_segment_s: float = 1.0  # keep gaps / pieces strictly longer than this
    max_segment_s: float = 10.0  # AutoCap is trained on 10 s clips
    cue_margin_s: float = 0.0  # widen every cue by this much on both sides

    def __post_init__(self) -> None:
        if self.min_segment_s < 0 or self.cue_margin_s < 0:
            raise ValueError("min_segment_s and cue_margin_s must be >= 0")
        if self.max_segment_s <= self.min_segment_s:
            raise ValueError(f"max_segment_s ({self.max_segment_s}) must exceed min_segment_s ({self.min_segment_s})")

    @property
    def min_ms(self) -> int:
        return int(round(self.min_segment_s * 1000))

    @property
    def max_ms(self) -> int:
        return int(round(self.max_segment_s * 1000))

    @property
    def margin_ms(self) -> int:
        return int(round(self.cue_margin_s * 1000))


@dataclass(frozen=True)
class SegmentPlan:
    segments: tuple[tuple[int, int], ...]  # (start_ms, end_ms), sorted, non-overlapping
    gaps_of: tuple[int, ...]  # per segment: the index of its cue-free gap among all gaps of the video
    duration_ms: int
    covered_ms: int  # time covered by (clipped, united) cues
    gap_ms: int  # time in cue-free gaps of any length
    n_cues: int
    n_cues_past_end: int  # cues that start at or after the media's end
    n_gaps: int  # cue-free gaps of any positive length
    n_gaps_kept: int  # gaps strictly longer than min_segment

    @property
    def segment_ms(self) -> int:
        return sum(e - s for s, e in self.segments)

    @property
    def rejected_ms(self) -> int:
        return self.duration_ms - self.segment_ms


def cue_union(cues: Iterable[Cue], duration_ms: int, margin_ms: int = 0) -> tuple[list[tuple[int, int]], int]:
    """United cue intervals clipped to [0, duration_ms], and the number of cues past the end."""
    past_end = 0
    spans = []
    for c in cues:
        if c.start_ms >= duration_ms:
            past_end += 1
            continue
        spans.append((max(0, c.start_ms - margin_ms), min(duration_ms, c.end_ms + margin_ms)))
    spans.sort()
    union: list[list[int]] = []
    for s, e in spans:
        if union and s <= union[-1][1]:
            union[-1][1] = max(union[-1][1], e)
        else:
            union.append([s, e])
    return [(s, e) for s, e in union], past_end


def gaps(union: Sequence[tuple[int, int]], duration_ms: int) -> list[tuple[int, int]]:
    """The positive-length parts of [0, duration_ms] outside `union` (sorted, disjoint)."""
    out, pos = [], 0
    for s, e in union:
        if s > pos:
            out.append((pos, s))
        pos = max(pos, e)
    if duration_ms > pos:
        out.append((pos, duration_ms))
    return out


def cut(start_ms: int, end_ms: int, max_ms: int, min_ms: int) -> list[tuple[int, int]]:
    """[start, end) in consecutive pieces of max_ms from the start; a last piece <= min_ms is dropped."""
    pieces, pos = [], start_ms
    while pos < end_ms:
        stop = min(pos + max_ms, end_ms)
        if stop - pos > min_ms:
            pieces.append((pos, stop))
        pos = stop
    return pieces


def plan_segments(cues: Sequence[Cue], duration_ms: int, rules: SegmentRules = SegmentRules()) -> SegmentPlan:
    if duration_ms < 0:
        raise ValueError(f"negative duration {duration_ms} ms")
    union, past_end = cue_union(cues, duration_ms, rules.margin_ms)
    free = gaps(union, duration_ms)
    kept = [(k, g) for k, g in enumerate(free) if g[1] - g[0] > rules.min_ms]
    pieces = [(k, piece) for k, (s, e) in kept for piece in cut(s, e, rules.max_ms, rules.min_ms)]
    return SegmentPlan(
        segments=tuple(p for _, p in pieces),
        gaps_of=tuple(k for k, _ in pieces),
        duration_ms=duration_ms,
        covered_ms=sum(e - s for s, e in union),
        gap_ms=sum(e - s for s, e in free),
        n_cues=len(cues),
        n_cues_past_end=past_end,
        n_gaps=len(free),
        n_gaps_kept=len(kept),
    )
