"""The keyword filter and the merge of consecutive identical captions."""

import pytest

from genau_core.recap.filters import (
    DEFAULT_KEYWORDS,
    Clip,
    FilterRules,
    KeywordFilter,
    Piece,
    merge_identical,
    read_keywords,
)


@pytest.mark.parametrize(
    "caption, hit",
    [
        ("A man is talking while cars pass by", "talking"),
        ("Someone SPEAKING loudly", "speaking"),
        ("a woman singing and a dog barks", "singing"),
        ("Music plays in the background", "music"),
        ("A crowd cheers as a guitar strums", "guitar"),
        ("People are having a conversation", "conversation"),
        ("a narrator reads aloud over wind", "narrator"),
        ("rain falls on a tin roof", None),
        ("an engine is humming and a kettle whistling", None),
        ("birds chattering in the trees", None),
        ("someone is typing on a keyboard", None),
        ("a songbird chirps", None),  # whole words only: 'song' inside 'songbird' does not count
        ("the speakerphone beeps", None),
        ("the talkative parrot squawks", None),
    ],
)
def test_default_keywords(caption, hit):
    assert KeywordFilter().match(caption) == hit


def test_paper_examples_are_dropped_by_the_default_rules():
    assert "talking" in DEFAULT_KEYWORDS and "speaking" in DEFAULT_KEYWORDS
    for caption in ("a man is talking", "a woman is speaking", "a man is singing"):
        assert KeywordFilter().match(caption) is not None, caption


def test_custom_keywords_and_phrases(tmp_path):
    f = tmp_path / "kw.txt"
    f.write_text("# speech words\nbaby   babbling\n\nCROWD\n")
    kw = read_keywords(f)
    assert kw == ("baby babbling", "CROWD")
    flt = KeywordFilter(kw)
    assert flt.match("a baby\tbabbling nearby") == "baby babbling"
    assert flt.match("a crowd roars") == "crowd"
    assert flt.match("a man is talking") is None  # the custom list replaces the default one
    assert KeywordFilter([]).match("a man is talking") is None


def P(s, e, c):
    return Piece(s * 1000, e * 1000, c)


def test_merge_consecutive_identical():
    pieces = [
        P(0, 10, "Rain falls."),
        P(10, 20, "rain   falls"),  # same caption up to case, spacing and final punctuation
        P(20, 25, "rain falls"),
        P(30, 40, "rain falls"),  # same caption but not touching (a cue in between): separate clip
        P(40, 50, "wind blows"),
        P(50, 60, "rain falls"),  # identical to earlier clips but not consecutive with them
    ]
    clips = merge_identical(pieces)
    assert clips == [
        Clip(0, 25000, "Rain falls.", 3),
        Clip(30000, 40000, "rain falls", 1),
        Clip(40000, 50000, "wind blows", 1),
        Clip(50000, 60000, "rain falls", 1),
    ]
    assert merge_identical(list(reversed(pieces))) == clips  # order of input does not matter
    capped = merge_identical(pieces, max_clip_ms=20000)
    assert [(c.start_ms, c.end_ms, c.n_segments) for c in capped[:2]] == [(0, 20000, 2), (20000, 25000, 1)]
    assert merge_identical([]) == []


def test_filter_rules_merge_then_drop():
    pieces = [
        P(0, 10, "a man is speaking"),
        P(10, 20, "a man is speaking"),
        P(20, 30, "a dog barks"),
        P(30, 31.5, "a dog barks"),
    ]
    kept, dropped = FilterRules().apply(pieces)
    assert kept == [Clip(20000, 31500, "a dog barks", 2)]
    assert [(c, h.keyword, h.rule) for c, h in dropped] == [
        (Clip(0, 20000, "a man is speaking", 2), "speaking", "speaking")
    ]
    kept, dropped = FilterRules(merge=False, keywords=()).apply(pieces)
    assert len(kept) == 4 and dropped == []
