"""The fixed facts of the listening-study protocol (paper appendix C.3, Table 8).

Bump STUDY_PROTOCOL_VERSION whenever the questions, their order, the playback gate, the
catch trials, the exclusion rules or what the participant is served change: the version is
frozen into every study's config and written into every export, so results of different
versions are never pooled.

gb-2 (issue 14): every clip of a study is served in one WAV format (one sample rate, 16-bit
mono), the clips of one prompt are padded with trailing silence to the same length, and every
audio URL carries its own inaudible dither (so a repeated pair differs at byte level from its
first showing); gb-1 studies could leak which system made a clip through file times.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

STUDY_PROTOCOL_VERSION = "gb-2"


@dataclass(frozen=True)
class Criterion:
    key: str
    title: str
    question: str
    shows_prompt: bool


# The paper's order: Realism and Quality with the prompt hidden, then the prompt is
# revealed for Prompt Alignment and Overall Preference. "{prompt}" is filled by the page.
CRITERIA: tuple[Criterion, ...] = (
    Criterion(
        "realism",
        "Realism",
        "Which audio is more realistic? In other words, which is more likely to be the result of a real action?",
        False,
    ),
    Criterion(
        "quality",
        "Quality",
        "Which audio has better quality, regardless of the realism of the audio? Please note that some audio "
        "may have background noise, which should not be confused with low quality.",
        False,
    ),
    Criterion(
        "alignment",
        "Prompt Alignment",
        "Considering the prompt used to generate the audio (shown above), which audio better follows the given prompt?",
        True,
    ),
    Criterion(
        "overall",
        "Overall Preference",
        "Considering the realism, quality, and prompt alignment of the audio, which audio do you prefer more overall?",
        True,
    ),
)
CRITERION_KEYS: tuple[str, ...] = tuple(c.key for c in CRITERIA)
CRITERION_BY_KEY: dict[str, Criterion] = {c.key: c for c in CRITERIA}

ITEM_MAIN = "main"
ITEM_CATCH_ANCHOR = "catch_anchor"  # real reference clip (A) vs its low-passed version (B)
ITEM_CATCH_REPEAT = "catch_repeat"  # a main pair shown again with the sides swapped
ITEM_KINDS = (ITEM_MAIN, ITEM_CATCH_ANCHOR, ITEM_CATCH_REPEAT)

REFERENCE_SYSTEM = "reference"
ANCHOR_SYSTEM = "anchor-lowpass"


@dataclass(frozen=True)
class ExclusionRules:
    """Pre-registered participant exclusion rules, frozen into the study config at creation.

    A participant *fails* an anchor trial when, on any of `anchor_criteria`, they prefer the
    low-passed anchor over the real clip; they are excluded when the fraction of failed
    anchor judgements is greater than `max_anchor_fail_fraction`. A repeated pair is
    *inconsistent* when, on any of `repeat_criteria`, the system chosen differs from the
    first showing; excluded when the inconsistent fraction is greater than
    `max_repeat_inconsistent_fraction`. With `require_complete`, participants who did not
    finish are excluded too.
    """

    anchor_criteria: tuple[str, ...] = ("quality",)
    max_anchor_fail_fraction: float = 0.5
    repeat_criteria: tuple[str, ...] = ("overall",)
    max_repeat_inconsistent_fraction: float = 0.5
    require_complete: bool = False

    def __post_init__(self) -> None:
        for c in (*self.anchor_criteria, *self.repeat_criteria):
            if c not in CRITERION_KEYS:
                raise ValueError(f"exclusion rule names unknown criterion {c!r}; choose from {CRITERION_KEYS}")
        for name in ("max_anchor_fail_fraction", "max_repeat_inconsistent_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {v}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["anchor_criteria"] = list(self.anchor_criteria)
        d["repeat_criteria"] = list(self.repeat_criteria)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ExclusionRules":
        return cls(
            anchor_criteria=tuple(d["anchor_criteria"]),
            max_anchor_fail_fraction=float(d["max_anchor_fail_fraction"]),
            repeat_criteria=tuple(d["repeat_criteria"]),
            max_repeat_inconsistent_fraction=float(d["max_repeat_inconsistent_fraction"]),
            require_complete=bool(d["require_complete"]),
        )


@dataclass(frozen=True)
class PlaybackRule:
    """The server-side playback gate.

    A clip counts as played through when the server received an ``ended`` event at least
    ``duration - tolerance_s`` seconds (server clock) after the first ``play`` event of that
    play-through (the first ``play`` after the previous ``ended``). Both clips of an item must
    be played through before its first question is accepted.
    """

    tolerance_s: float = 0.25
    max_events_per_item: int = 400

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LoudnessRule:
    target_lufs: float = -23.0
    peak_ceiling: float = 0.98  # linear; a gain that would clip is reduced to this peak
    method: str = field(default="pyloudnorm-bs1770")  # or "rms" when pyloudnorm is absent

    def to_dict(self) -> dict:
        return asdict(self)
