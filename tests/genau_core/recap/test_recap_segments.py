"""Segment arithmetic on hand-made transcripts in the three formats, with the edge cases."""

import json

import pytest

from genau_core.recap.segments import SegmentRules, cut, plan_segments
from genau_core.recap.transcripts import Cue, read_transcript


def _ts_vtt(ms):
    h, r = divmod(ms, 3600000)
    m, r = divmod(r, 60000)
    s, ms = divmod(r, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def as_vtt(cues):
    return "WEBVTT\n\n" + "".join(f"{_ts_vtt(s)} --> {_ts_vtt(e)}\n{t}\n\n" for s, e, t in cues)


def as_srt(cues):
    return "".join(
        f"{i}\n{_ts_vtt(s).replace('.', ',')} --> {_ts_vtt(e).replace('.', ',')}\n{t}\n\n"
        for i, (s, e, t) in enumerate(cues, 1)
    )


def as_json3(cues):
    return json.dumps(
        {
            "events": [{"tStartMs": 0, "dDurationMs": 1, "id": 1}]
            + [{"tStartMs": s, "dDurationMs": e - s, "segs": [{"utf8": t}]} for s, e, t in cues]
        }
    )


FORMATS = {"vtt": as_vtt, "srt": as_srt, "json3": as_json3}

# one timeline with every edge case, media duration 60 s:
#   [0, 2.5) gap 2.5 s                          -> kept
#   2.5-4 and 3-6 overlap, 3.5-4.5 nested        -> one speech interval 2.5-6
#   [6, 7) gap of exactly 1 s                    -> rejected (must be > 1 s)
#   7-9 then 9-11: zero-length gap at 9          -> nothing between them
#   [11, 33.5) gap 22.5 s                        -> 10 + 10 + 2.5
#   33.5-34.5 speech
#   [34.5, 45.6) gap 11.1 s                      -> 10 s piece, then 1.1 s remainder (> 1 s, kept)
#   45.6-45.6 zero-length cue                    -> an instant that splits the gap
#   [45.6, 56.6) gap 11 s                        -> 10 s piece, 1 s remainder dropped
#   56.6-58 speech;  [58, 60) gap 2 s            -> kept (clipped to the media end)
#   59.5-70 crosses the end                      -> clipped to 59.5-60, so the last gap is [58, 59.5)
#   61-62 and 60-65 start at/after the end       -> ignored, counted as past the end
CUES = [
    (2500, 4000, "one"),
    (3000, 6000, "two"),
    (3500, 4500, "nested"),
    (7000, 9000, "a"),
    (9000, 11000, "b"),
    (33500, 34500, "c"),
    (45600, 45600, "instant"),
    (56600, 58000, "d"),
    (59500, 70000, "over the end"),
    (61000, 62000, "past"),
    (60000, 65000, "past too"),
]
EXPECTED = (
    (0, 2500),
    (11000, 21000),
    (21000, 31000),
    (31000, 33500),
    (34500, 44500),
    (44500, 45600),
    (45600, 55600),
    (58000, 59500),
)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_edge_cases_in_every_format(tmp_path, fmt):
    p = tmp_path / f"t.{fmt}"
    p.write_text(FORMATS[fmt](CUES))
    tr = read_transcript(p)
    assert len(tr.cues) == len(CUES)
    plan = plan_segments(tr.cues, 60000)
    assert plan.segments == EXPECTED
    assert plan.n_cues == 11 and plan.n_cues_past_end == 2
    # speech: 2.5-6, 7-11, 33.5-34.5, 45.6 (0), 56.6-58, 59.5-60
    assert plan.covered_ms == 3500 + 4000 + 1000 + 0 + 1400 + 500
    assert plan.gap_ms == 60000 - plan.covered_ms
    # gaps: [0,2.5) [6,7) [11,33.5) [34.5,45.6) [45.6,56.6) [58,59.5)
    assert plan.n_gaps == 6 and plan.n_gaps_kept == 5
    assert plan.segment_ms == 2500 + 22500 + 11100 + 10000 + 1500
    assert plan.rejected_ms == 60000 - plan.segment_ms
    assert all(e - s <= 10000 and e - s > 1000 for s, e in plan.segments)


def test_no_cues_whole_video_cut():
    plan = plan_segments([], 25300)
    assert plan.segments == ((0, 10000), (10000, 20000), (20000, 25300))
    assert plan.covered_ms == 0 and plan.n_gaps == 1


def test_short_and_empty_media():
    assert plan_segments([], 1000).segments == ()  # exactly 1 s: not longer than 1 s
    assert plan_segments([], 1001).segments == ((0, 1001),)
    assert plan_segments([], 0).segments == ()
    p = plan_segments([Cue(0, 5000, "x")], 3000)  # a cue covering everything (and past the end)
    assert p.segments == () and p.covered_ms == 3000 and p.gap_ms == 0


def test_speech_everywhere_via_touching_cues():
    cues = [Cue(i * 1000, (i + 1) * 1000, "w") for i in range(30)]
    p = plan_segments(cues, 30000)
    assert p.segments == () and p.covered_ms == 30000 and p.n_gaps == 0


def test_unsorted_cues_and_margin():
    cues = [Cue(20000, 21000, "b"), Cue(5000, 6000, "a")]
    assert plan_segments(cues, 30000).segments == ((0, 5000), (6000, 16000), (16000, 20000), (21000, 30000))
    widened = plan_segments(cues, 30000, SegmentRules(cue_margin_s=0.5))
    assert widened.segments == ((0, 4500), (6500, 16500), (16500, 19500), (21500, 30000))


def test_custom_rules_and_cut():
    assert cut(0, 25000, 10000, 1000) == [(0, 10000), (10000, 20000), (20000, 25000)]
    assert cut(0, 20500, 10000, 1000) == [(0, 10000), (10000, 20000)]
    assert cut(0, 3000, 10000, 1000) == [(0, 3000)]
    p = plan_segments([Cue(4000, 5000, "x")], 12000, SegmentRules(min_segment_s=3.0, max_segment_s=5.0))
    assert p.segments == ((0, 4000), (5000, 10000))  # the 2 s remainder [10, 12) is not > 3 s
    with pytest.raises(ValueError):
        SegmentRules(min_segment_s=10.0, max_segment_s=10.0)
    with pytest.raises(ValueError):
        plan_segments([], -1)
