"""Transcript parsing: WebVTT, SRT and YouTube json3, and the malformed cases named per file."""

import json

import pytest

from genau_core.recap.transcripts import Cue, TranscriptError, detect_format, read_transcript


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


YOUTUBE_VTT = """WEBVTT
Kind: captions
Language: en

00:00:01.319 --> 00:00:03.510 align:start position:0%
so<00:00:01.680><c> today</c><00:00:02.040><c> we</c>

00:00:03.510 --> 00:00:03.520 align:start position:0%
 

NOTE this block is a comment
spanning two lines

intro
01:02.000 --> 01:04.250
[Music]

1:00:00.000 --> 1:00:01.500
&amp; an hour in
"""


def test_vtt_youtube_style(tmp_path):
    tr = read_transcript(write(tmp_path, "a.en.vtt", YOUTUBE_VTT))
    assert tr.format == "vtt"
    assert tr.cues == (
        Cue(1319, 3510, "so today we"),
        Cue(62000, 64250, "[Music]"),
        Cue(3600000, 3601500, "& an hour in"),
    )
    assert tr.n_empty == 1  # the whitespace-only layout cue


def test_vtt_header_only_has_no_cues(tmp_path):
    tr = read_transcript(write(tmp_path, "empty.vtt", "WEBVTT\n\n"))
    assert tr.cues == () and tr.n_empty == 0


@pytest.mark.parametrize(
    "text, reason",
    [
        ("00:00:01.000 --> 00:00:02.000\nhi\n", "line 1: missing 'WEBVTT' header"),
        ("WEBVTT\n\n00:00:01,000 --> 00:00:02.000\nhi\n", "line 3: malformed timing line"),
        ("WEBVTT\n\n00:00:05.000 --> 00:00:02.000\nhi\n", "line 3: cue ends (2000 ms) before it starts (5000 ms)"),
        ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n\njust text\n", "line 6: cue block without a timing line"),
        ("WEBVTT\n00:00:01.000 --> 00:00:02.000\nhi\n", "line 2: cue inside the header block"),
        ("", "empty file"),  # issue 20: not "missing 'WEBVTT' header"
    ],
)
def test_vtt_malformed(tmp_path, text, reason):
    p = write(tmp_path, "bad.vtt", text)
    with pytest.raises(TranscriptError) as e:
        read_transcript(p)
    assert e.value.path == str(p)
    assert reason in e.value.reason
    assert str(p) in str(e.value)


SRT = """1
00:00:01,000 --> 00:00:04,000
<i>Hello</i> there

2
00:00:03,500 --> 00:00:06,25
{\\an8}overlapping cue

3
00:01:00.000 --> 00:01:02,000
 

"""


def test_srt(tmp_path):
    tr = read_transcript(write(tmp_path, "a.srt", SRT.replace("\n", "\r\n")))
    assert tr.format == "srt"
    assert tr.cues == (Cue(1000, 4000, "Hello there"), Cue(3500, 6250, "overlapping cue"))
    assert tr.n_empty == 1


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty file"),
        ("   \n\n", "empty file"),
        ("1\n00:00:01 --> 00:00:02\nhi\n", "line 2: expected a timing line"),
        ("1\n00:00:03,000 --> 00:00:02,000\nhi\n", "cue ends (2000 ms) before it starts (3000 ms)"),
        ("1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n", "line 5: expected a timing line"),
    ],
)
def test_srt_malformed(tmp_path, text, reason):
    p = write(tmp_path, "bad.srt", text)
    with pytest.raises(TranscriptError) as e:
        read_transcript(p)
    assert reason in e.value.reason and e.value.path == str(p)


def json3(events):
    return json.dumps({"wireMagic": "pb3", "pens": [{}], "events": events})


def test_json3(tmp_path):
    events = [
        {"tStartMs": 0, "dDurationMs": 90000, "id": 1, "wpWinPosId": 1, "wsWinStyleId": 1},  # window setup: no segs
        {
            "tStartMs": 1200,
            "dDurationMs": 2000,
            "wWinId": 1,
            "segs": [{"utf8": "so"}, {"utf8": " today", "tOffsetMs": 400}],
        },
        {"tStartMs": 3100, "dDurationMs": 10, "wWinId": 1, "aAppend": 1, "segs": [{"utf8": "\n"}]},
        {"tStartMs": 5000, "wWinId": 1, "segs": [{"utf8": "no duration"}]},
        {"tStartMs": 8000, "dDurationMs": 0, "segs": [{"utf8": "instant"}]},
    ]
    tr = read_transcript(write(tmp_path, "a.json3", json3(events)))
    assert tr.format == "json3"
    # the event without dDurationMs lasts until the next event starts (8000)
    assert tr.cues == (Cue(1200, 3200, "so today"), Cue(5000, 8000, "no duration"), Cue(8000, 8000, "instant"))
    assert tr.n_empty == 1


@pytest.mark.parametrize(
    "text, reason",
    [
        ("{not json", "invalid JSON"),
        ('{"foo": []}', "no 'events' list"),
        (json3([{"dDurationMs": 5, "segs": [{"utf8": "x"}]}]), "event 0: missing 'tStartMs'"),
        (json3([{"tStartMs": "ten", "segs": [{"utf8": "x"}]}]), "event 0: 'tStartMs' is not a number"),
        (
            json3([{"tStartMs": 0}, {"tStartMs": -5, "dDurationMs": 5, "segs": [{"utf8": "x"}]}]),
            "event 1: negative 'tStartMs'",
        ),
        (json3([{"tStartMs": 0, "dDurationMs": -1, "segs": [{"utf8": "x"}]}]), "event 0: negative 'dDurationMs'"),
        (json3([{"tStartMs": 0, "dDurationMs": 1, "segs": "x"}]), "event 0: 'segs' must be a list"),
    ],
)
def test_json3_malformed(tmp_path, text, reason):
    p = write(tmp_path, "bad.json3", text)
    with pytest.raises(TranscriptError) as e:
        read_transcript(p)
    assert reason in e.value.reason and e.value.path == str(p)


def test_missing_and_non_utf8(tmp_path):
    with pytest.raises(TranscriptError, match="transcript file not found"):
        read_transcript(tmp_path / "nope.vtt")
    p = tmp_path / "latin1.srt"
    p.write_bytes("1\n00:00:01,000 --> 00:00:02,000\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(TranscriptError, match="not UTF-8"):
        read_transcript(p)


def test_format_detection_by_content(tmp_path):
    assert detect_format(tmp_path / "x.txt", "WEBVTT\n") == "vtt"
    assert detect_format(tmp_path / "x.txt", '  {"events": []}') == "json3"
    assert detect_format(tmp_path / "x.txt", "1\n00:00:01,000 --> 00:00:02,000\n") == "srt"
    tr = read_transcript(write(tmp_path, "subs.txt", "WEBVTT\n\n00:00.500 --> 00:01.000\nok\n"))
    assert tr.cues == (Cue(500, 1000, "ok"),)
