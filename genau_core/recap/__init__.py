"""AutoReCap (paper section 3.2, appendix A): videos with timed transcripts -> captioned
ambient-audio clips, with a manifest that `bench` and `genau train` read directly.

    from genau_core.recap import RecapConfig, run_recap
    result = run_recap(RecapConfig(videos="videos.csv", out="data/recap", captioner="autocap-tiny"))
    result.manifest            # data/recap/manifest.jsonl

Stages (each its own module): transcripts (VTT / SRT / json3 -> cues), segments (cue-free
intervals > 1 s, cut to <= 10 s), decode (PyAV / soundfile; declared vs decoded length),
caption (any `Captioner`, on the audio as written), filters (merge identical consecutive
captions of one gap, drop speech/music captions by the rules of keyword_rules +
data/speech_music_rules.txt, measured by filter_eval on data/filter_eval.csv), tables + stats
(Parquet / JSONL, histograms, rejection rate), engines (local, Ray Data; ray_procs stops what a
killed Ray run left), store (shards, resume). CLI: `genau recap` / `python -m genau_core.recap`.
Rules, labels and deliberate choices: docs/recap.md.
"""

from genau_core.recap.caption import load_captioner
from genau_core.recap.fetch import CommandFetcher, Fetcher, FetchError, LocalFetcher, make_fetcher
from genau_core.recap.filters import DEFAULT_KEYWORDS, FilterRules, KeywordFilter, merge_identical
from genau_core.recap.inputs import VideoItem, VideoListError, read_video_list
from genau_core.recap.keyword_rules import Hit, RuleError, RuleSet
from genau_core.recap.segments import SegmentPlan, SegmentRules, plan_segments
from genau_core.recap.transcripts import Cue, Transcript, TranscriptError, read_transcript

_LAZY = {"RecapConfig", "RecapResult", "run_recap"}  # need pyarrow ([recap] extra): imported on first use


def __getattr__(name: str):
    if name in _LAZY:
        from genau_core.recap import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'genau_core.recap' has no attribute {name!r}")


__all__ = [
    "CommandFetcher",
    "Cue",
    "DEFAULT_KEYWORDS",
    "FetchError",
    "Fetcher",
    "FilterRules",
    "Hit",
    "KeywordFilter",
    "LocalFetcher",
    "RecapConfig",
    "RecapResult",
    "RuleError",
    "RuleSet",
    "SegmentPlan",
    "SegmentRules",
    "Transcript",
    "TranscriptError",
    "VideoItem",
    "VideoListError",
    "load_captioner",
    "make_fetcher",
    "merge_identical",
    "plan_segments",
    "read_transcript",
    "read_video_list",
    "run_recap",
]
