"""Caption metrics (pycocoevalcap, offline) on hand-made pairs with known values."""

from __future__ import annotations

import shutil

import pytest

from genau_core.autocap.evaluate import EvalResult, table1
from genau_core.autocap.metrics import CaptionScores, caption_metrics, spice_unavailable_reason

pytest.importorskip("pycocoevalcap.bleu.bleu")
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="the PTB tokenizer and METEOR need Java")

# disjoint vocabularies: CIDEr-D's idf is the same for every n-gram, so identical captions score 10
IDENTICAL = {"a": "a dog barks loudly", "b": "rain falls on the roof", "c": "an engine idles then revs"}


@needs_java
def test_identical_captions_score_one():
    s = caption_metrics(IDENTICAL, {k: [v] for k, v in IDENTICAL.items()})
    assert s.scores["bleu_1"] == pytest.approx(1.0, abs=1e-6)
    assert s.scores["bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert s.scores["rouge_l"] == pytest.approx(1.0)
    assert s.scores["meteor"] == pytest.approx(1.0, abs=1e-3)
    assert s.scores["cider"] == pytest.approx(10.0)
    assert s.n == 3
    if spice_unavailable_reason() is not None:  # offline: never estimated
        assert "spice" not in s.scores and "CoreNLP 3.6.0" in s.missing["spice"]
        assert "spider" not in s.scores and "SPICE" in s.missing["spider"]


@needs_java
def test_known_values_with_several_references():
    preds = {"a": "A dog barks.", "b": "thunder rumbles far away"}
    refs = {"a": ["a dog runs", "the cat sleeps"], "b": ["Thunder rumbles far away!", "distant thunder"]}
    s = caption_metrics(preds, refs, families=("bleu", "rouge"))
    # BLEU-1: clipped unigram matches 2 of 3 + 4 of 4; closest reference lengths 3 and 4 -> no brevity penalty
    assert s.scores["bleu_1"] == pytest.approx(6 / 7, abs=1e-6)
    # ROUGE-L (beta 1.2): clip a: LCS 2 of 3 against the best reference -> 2/3; clip b: identical -> 1
    assert s.scores["rouge_l"] == pytest.approx((2 / 3 + 1) / 2)
    assert set(s.scores) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l"} and not s.missing


@needs_java
def test_unrelated_caption_scores_zero():
    s = caption_metrics({"a": "xylophone quartet"}, {"a": ["a dog barks"]}, families=("bleu", "rouge"))
    assert s.scores["bleu_1"] == pytest.approx(0.0, abs=1e-6) and s.scores["rouge_l"] == 0.0


def test_input_validation():
    with pytest.raises(ValueError, match="no references for"):
        caption_metrics({"a": "x", "b": "y"}, {"a": ["x"]})
    with pytest.raises(ValueError, match="non-empty list"):
        caption_metrics({"a": "x"}, {"a": "x"})
    with pytest.raises(ValueError, match="unknown metric families"):
        caption_metrics({"a": "x"}, {"a": ["x"]}, families=("bertscore",))


def test_table1_rows_mark_missing_metrics():
    scores = CaptionScores(
        scores={"bleu_1": 0.5, "bleu_4": 0.25, "rouge_l": 0.4, "meteor": 0.2, "cider": 0.8},
        missing={"spice": "no CoreNLP jars", "spider": "needs SPICE"},
        n=2,
    )
    res = EvalResult(
        "autocap-tiny",
        "sha256:abcdef0123456789abcdef",
        "audiocaps",
        "test.csv",
        2,
        {"x": "no audio file"},
        {},
        {},
        scores,
        {"num_beams": 2},
    )
    text = table1([res])
    assert (
        "| autocap-tiny (sha256:abcdef012345, beam 2) | audiocaps | 2 / 1 | 50.0 | 25.0 | 40.0 | 20.0 | 80.0 | "
        "missing | missing |" in text
    )
    assert (
        "| AutoCap (paper Table 1: audio + text, AC+CL+WC) | audiocaps | 876 / - | 72.3 | 29.7 | 51.8 | 25.3 | 83.2 | "
        "18.2 | 50.7 |" in text
    )
    assert "SPICE missing: no CoreNLP jars" in text
