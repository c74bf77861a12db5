"""Post-captioning filters (paper appendix A.2-A.3): merge, then drop speech/music captions.

Merge: consecutive segments of one video whose captions are identical become one longer clip
(the paper's "concatenate consecutive segments yielding identical captions"; no cap on the
merged length by default, as in the paper). Only pieces of one cue-free gap are merged: they
touch (one ends where the next starts), and no cue lies between them, not even a zero-length
one, which `segments.py` documents as an instant that splits a gap. So a clip is always one
continuous interval of its source that no cue touches. Captions compare equal after
lower-casing, collapsing whitespace and dropping final punctuation; the first segment's wording
is kept. `max_clip_s` optionally caps a merged clip's length.

Speech/music filter: a clip is dropped when its caption holds a keyword that counts under the
rules of `keyword_rules.py` (whole words; phrase exceptions such as "bird song" and "rubber
band"; actor conditions such as "sings" unless a bird, a kettle or the wind sings). The paper
had an LLM list such words ("talking", "speaking", "singing", ...); our documented default
rules are `data/speech_music_rules.txt`, measured on the labelled captions of
`data/filter_eval.csv` (`python -m genau_core.recap.filter_eval`). A plain keyword list, one
per line, is still a valid rule file (`genau recap --keywords FILE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

from genau_core.recap.keyword_rules import Hit, RuleSet, compile_rules, default_rule_lines, read_rule_file

DEFAULT_KEYWORDS: tuple[str, ...] = default_rule_lines()


def read_keywords(path: str | Path) -> tuple[str, ...]:
    """One rule (a keyword or phrase in the simplest case) per line; blank lines and lines
    starting with '#' are ignored. A line that does not compile is a `RuleError` naming it."""
    return read_rule_file(path)


class KeywordFilter:
    def __init__(self, keywords: Iterable[str] = DEFAULT_KEYWORDS):
        self.keywords = tuple(dict.fromkeys(" ".join(k.split()) for k in keywords if k.strip()))
        self.rules: RuleSet = compile_rules(self.keywords)

    def explain(self, caption: str) -> Hit | None:
        """Why `caption` is dropped (keyword, rule, actor), or None when it is kept."""
        return self.rules.find(caption)

    def match(self, caption: str) -> str | None:
        """The caption's words that made it drop (lower case), or None."""
        hit = self.rules.find(caption)
        return hit.keyword if hit else None


@dataclass(frozen=True)
class Piece:
    start_ms: int
    end_ms: int
    caption: str
    gap: int = 0  # which cue-free gap of the video it was cut from: only pieces of one gap merge


@dataclass(frozen=True)
class Clip:
    start_ms: int
    end_ms: int
    caption: str
    n_segments: int = 1

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


def caption_key(caption: str) -> str:
    return " ".join(caption.lower().split()).rstrip(" .!")


def merge_identical(pieces: Sequence[Piece], *, max_clip_ms: int | None = None) -> list[Clip]:
    clips: list[Clip] = []
    last_gap = None
    for p in sorted(pieces, key=lambda q: (q.start_ms, q.end_ms)):
        last = clips[-1] if clips else None
        if (
            last is not None
            and last_gap == p.gap
            and last.end_ms == p.start_ms
            and caption_key(last.caption) == caption_key(p.caption)
            and (max_clip_ms is None or p.end_ms - last.start_ms <= max_clip_ms)
        ):
            clips[-1] = Clip(last.start_ms, p.end_ms, last.caption, last.n_segments + 1)
        else:
            clips.append(Clip(p.start_ms, p.end_ms, p.caption, 1))
        last_gap = p.gap
    return clips


@dataclass(frozen=True)
class FilterRules:
    merge: bool = True
    max_clip_s: float | None = None  # cap on a merged clip (None: no cap)
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS

    @cached_property
    def keyword_filter(self) -> KeywordFilter:
        return KeywordFilter(self.keywords)

    def apply(self, pieces: Sequence[Piece]) -> tuple[list[Clip], list[tuple[Clip, Hit]]]:
        """(kept clips, [(dropped clip, why: keyword, rule, actor)])."""
        cap = None if self.max_clip_s is None else int(round(self.max_clip_s * 1000))
        clips = (
            merge_identical(pieces, max_clip_ms=cap)
            if self.merge
            else [Clip(p.start_ms, p.end_ms, p.caption, 1) for p in sorted(pieces, key=lambda q: q.start_ms)]
        )
        kept, dropped = [], []
        for c in clips:
            hit = self.keyword_filter.explain(c.caption)
            (dropped.append((c, hit)) if hit else kept.append(c))
        return kept, dropped
