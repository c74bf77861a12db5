"""Issue 20, item 2: merging follows the docs. A zero-length cue splits a gap (segments.py), so
pieces on both sides of it are never merged; a merged clip never crosses a cue; same-caption
neighbours inside one gap are still concatenated with no cap by default (the paper)."""

from __future__ import annotations

import json
import random
from itertools import pairwise

import numpy as np
import pytest
import soundfile as sf

from genau_core.recap.filters import FilterRules, Piece, merge_identical
from genau_core.recap.segments import plan_segments
from genau_core.recap.stages import CaptionedSegment, finalize_video
from genau_core.recap.transcripts import Cue


def captioned(plan, captions) -> list[CaptionedSegment]:
    return [CaptionedSegment(k, s, e, captions[k], "test") for k, (s, e) in enumerate(plan.segments)]


def test_vid_b_zero_length_cue_splits_the_merge():
    """vid_b: speech 0-2.5 s, an instant cue at 12.0 s, 14 s of media, one caption throughout."""
    plan = plan_segments([Cue(0, 2500, "hi"), Cue(12000, 12000, "instant")], 14000)
    assert plan.segments == ((2500, 12000), (12000, 14000)) and plan.gaps_of == (0, 1)
    kept, dropped = finalize_video(captioned(plan, ["rain falls"] * 2), FilterRules(), plan.gaps_of)
    assert [(c.start_ms, c.end_ms, c.n_segments) for c in kept] == [(2500, 12000, 1), (12000, 14000, 1)] and not dropped


def test_same_caption_neighbours_concatenated_without_cap():
    plan = plan_segments([Cue(0, 1000, "x")], 46000)  # one 45 s gap -> 10 + 10 + 10 + 10 + 5
    assert len(plan.segments) == 5 and set(plan.gaps_of) == {0}
    kept, _ = finalize_video(captioned(plan, ["wind blows"] * 5), FilterRules(), plan.gaps_of)
    assert [(c.start_ms, c.end_ms, c.n_segments) for c in kept] == [(1000, 46000, 5)]
    capped, _ = finalize_video(captioned(plan, ["wind blows"] * 5), FilterRules(max_clip_s=20), plan.gaps_of)
    assert [(c.start_ms, c.end_ms) for c in capped] == [(1000, 21000), (21000, 41000), (41000, 46000)]


def test_pieces_of_different_gaps_never_merge():
    pieces = [Piece(0, 5000, "a", gap=0), Piece(5000, 9000, "a", gap=1), Piece(9000, 12000, "a", gap=1)]
    assert [(c.start_ms, c.end_ms, c.n_segments) for c in merge_identical(pieces)] == [(0, 5000, 1), (5000, 12000, 2)]


@pytest.mark.parametrize("seed", range(40))
def test_merged_clips_never_cross_a_cue(seed):
    """Random transcripts (overlapping, nested, touching and zero-length cues), a two-word
    caption vocabulary so that most neighbours merge."""
    rng = random.Random(seed)
    duration = rng.randrange(5000, 120000)
    cues = []
    for _ in range(rng.randrange(0, 12)):
        s = rng.randrange(0, duration + 2000)
        cues.append(Cue(s, s if rng.random() < 0.35 else s + rng.randrange(1, 8000), "w"))
    plan = plan_segments(cues, duration)
    segs = captioned(plan, [rng.choice(["rain falls", "wind blows"]) for _ in plan.segments])
    kept, _ = finalize_video(segs, FilterRules(), plan.gaps_of)
    for clip in kept:
        for c in cues:
            if c.end_ms > c.start_ms:
                assert not (c.start_ms < clip.end_ms and clip.start_ms < c.end_ms), (clip, c)
            else:
                assert not (clip.start_ms < c.start_ms < clip.end_ms), (clip, c)  # an instant splits too
        inside = [s for s in segs if clip.start_ms <= s.start_ms and s.end_ms <= clip.end_ms]
        assert sum(s.end_ms - s.start_ms for s in inside) == clip.duration_ms and len(inside) == clip.n_segments
    # no two neighbours of one gap with the same caption are left unmerged (the paper's rule)
    gap_of = {(s.start_ms, s.end_ms): plan.gaps_of[s.seg_idx] for s in segs}
    first = {c: next(s for s in segs if s.start_ms == c.start_ms) for c in kept}
    last = {c: next(s for s in segs if s.end_ms == c.end_ms) for c in kept}
    for a, b in pairwise(kept):
        if (
            a.end_ms == b.start_ms
            and gap_of[(last[a].start_ms, last[a].end_ms)] == gap_of[(first[b].start_ms, first[b].end_ms)]
        ):
            assert a.caption != b.caption


def test_pipeline_vid_b(tmp_path):
    """End to end: the manifest holds two clips for vid_b, split at the instant cue."""
    pytest.importorskip("pyarrow")
    pytest.importorskip("av")
    from genau_core.recap import run_recap
    from tests.genau_core.recap.test_recap_pipeline import config, read_jsonl, tones

    sf.write(tmp_path / "b.wav", tones(16000, [(14, 1000)]), 16000)
    (tmp_path / "b.vtt").write_text(
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nhello\n\n00:00:12.000 --> 00:00:12.000\n[Applause]\n"
    )
    (tmp_path / "v.jsonl").write_text(json.dumps({"id": "vid_b", "media": "b.wav", "transcript": "b.vtt"}) + "\n")
    run_recap(config(tmp_path / "v.jsonl", tmp_path / "out", figures=False))
    rows = read_jsonl(tmp_path / "out" / "manifest.jsonl")
    assert [(r["start"], r["end"], r["caption"], r["n_segments"]) for r in rows] == [
        (2.5, 12.0, "a steady beep", 1),
        (12.0, 14.0, "a steady beep", 1),
    ]
    for r in rows:
        assert len(sf.read(tmp_path / "out" / r["audio"])[0]) == round(r["duration"] * 16000)
    assert np.isclose(sum(r["duration"] for r in rows), 11.5)
