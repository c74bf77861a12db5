"""Post-captioning filters (paper appendix A.2-A.3): merge, then drop speech/music captions.

Merge: consecutive segments of one video whose captions are identical become one longer clip
(the paper's "concatenate consecutive segments yielding identical captions"). Only segments
that touch (one ends where the next starts, i.e. pieces of one cue-free gap) are merged, so
a clip is always one continuous interval of its source; segments separated by a cue are
never joined across the speech between them. Captions compare equal after lower-casing,
collapsing whitespace and dropping final punctuation; the first segment's wording is kept.
`max_clip_s` optionally caps a merged clip's length.

Keyword filter: a clip is dropped when its caption contains a speech or music keyword as a
whole word (case-insensitive). The paper had an LLM list such words ("talking", "speaking",
"singing", ...); `DEFAULT_KEYWORDS` below is our documented list. Words that are usually
ambient in captions ("humming" engines, "whistling" kettles, "chattering" teeth or birds,
"keyboard" typing, "rubber band", "laughing", "cheering") are deliberately left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

SPEECH_KEYWORDS = (
    "speak", "speaks", "speaking", "spoke", "spoken", "speaker", "speakers", "speech", "speeches",
    "talk", "talks", "talking", "talked",
    "say", "says", "saying", "said",
    "conversation", "conversations", "converse", "conversing", "chat", "chats", "chatting",
    "discuss", "discusses", "discussing", "discussion",
    "narrate", "narrates", "narrating", "narration", "narrator",
    "announce", "announces", "announcing", "announcement", "announcer",
    "lecture", "lectures", "lecturing", "preach", "preaches", "preaching", "sermon",
    "interview", "interviews", "interviewing",
    "whisper", "whispers", "whispering", "whispered",
    "voice", "voices", "voiceover",
    "dialogue", "dialog", "monologue", "commentary", "commentator",
    "explain", "explains", "explaining",
    "shout", "shouts", "shouting", "yell", "yells", "yelling",
    "read aloud", "reads aloud", "reading aloud",
)  # fmt: skip

MUSIC_KEYWORDS = (
    "music", "musical", "musician", "musicians",
    "song", "songs", "sing", "sings", "singing", "sang", "sung", "singer", "singers",
    "choir", "chorus", "choral", "melody", "melodies", "melodic", "tune", "tunes", "harmony",
    "instrument", "instruments", "instrumental", "orchestra", "orchestral", "symphony",
    "concert", "opera", "rap", "rapping", "rapper", "lyrics", "vocals", "karaoke", "dj",
    "guitar", "guitars", "piano", "violin", "violins", "cello", "drums", "drummer",
    "flute", "trumpet", "trumpets", "saxophone", "clarinet", "trombone", "tuba", "harp",
    "harmonica", "accordion", "ukulele", "banjo", "mandolin", "synthesizer", "xylophone",
    "marimba", "bagpipes",
)  # fmt: skip

DEFAULT_KEYWORDS: tuple[str, ...] = SPEECH_KEYWORDS + MUSIC_KEYWORDS


def read_keywords(path: str | Path) -> tuple[str, ...]:
    """One keyword or phrase per line; blank lines and lines starting with '#' are ignored."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = " ".join(line.split())
        if line and not line.startswith("#"):
            out.append(line)
    return tuple(out)


class KeywordFilter:
    def __init__(self, keywords: Iterable[str] = DEFAULT_KEYWORDS):
        self.keywords = tuple(dict.fromkeys(" ".join(k.lower().split()) for k in keywords if k.strip()))
        if self.keywords:
            alts = sorted((r"\s+".join(map(re.escape, k.split())) for k in self.keywords), key=len, reverse=True)
            self._re = re.compile(r"\b(?:" + "|".join(alts) + r")\b", re.IGNORECASE)
        else:
            self._re = None

    def match(self, caption: str) -> str | None:
        """The first keyword found in `caption` (normalised to the list's spelling), or None."""
        if self._re is None:
            return None
        m = self._re.search(caption)
        return " ".join(m.group(0).lower().split()) if m else None


@dataclass(frozen=True)
class Piece:
    start_ms: int
    end_ms: int
    caption: str


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
    for p in sorted(pieces, key=lambda q: (q.start_ms, q.end_ms)):
        last = clips[-1] if clips else None
        if (
            last is not None
            and last.end_ms == p.start_ms
            and caption_key(last.caption) == caption_key(p.caption)
            and (max_clip_ms is None or p.end_ms - last.start_ms <= max_clip_ms)
        ):
            clips[-1] = Clip(last.start_ms, p.end_ms, last.caption, last.n_segments + 1)
        else:
            clips.append(Clip(p.start_ms, p.end_ms, p.caption, 1))
    return clips


@dataclass(frozen=True)
class FilterRules:
    merge: bool = True
    max_clip_s: float | None = None  # cap on a merged clip (None: no cap)
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS

    @cached_property
    def keyword_filter(self) -> KeywordFilter:
        return KeywordFilter(self.keywords)

    def apply(self, pieces: Sequence[Piece]) -> tuple[list[Clip], list[tuple[Clip, str]]]:
        """(kept clips, [(dropped clip, matched keyword)])."""
        cap = None if self.max_clip_s is None else int(round(self.max_clip_s * 1000))
        clips = merge_identical(pieces, max_clip_ms=cap) if self.merge else [Clip(p.start_ms, p.end_ms, p.caption, 1) for p in sorted(pieces, key=lambda q: q.start_ms)]
        kept, dropped = [], []
        for c in clips:
            hit = self.keyword_filter.match(c.caption)
            (dropped.append((c, hit)) if hit else kept.append(c))
        return kept, dropped
