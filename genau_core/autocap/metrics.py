"""Caption metrics of Table 1 (BLEU-1, BLEU-4, ROUGE-L, METEOR, CIDEr, SPICE, SPIDEr) with
`pycocoevalcap` (the COCO caption evaluation code the audio-captioning literature uses),
against any number of references per clip (AudioCaps: 5).

Offline facts (checked on these machines):
- captions are tokenised with the Stanford PTB tokenizer (a jar shipped in pycocoevalcap, run
  with Java), lower-cased, punctuation removed, as in every COCO / DCASE evaluation;
- BLEU-n, ROUGE-L and CIDEr-D are pure Python; METEOR 1.5 is a shipped jar (Java 17 works);
- SPICE needs Stanford CoreNLP 3.6.0 (`stanford-corenlp-3.6.0.jar` and `-models.jar` in
  pycocoevalcap's `spice/lib/`), which pycocoevalcap downloads from nlp.stanford.edu on first
  use. Without those jars SPICE, and SPIDEr = (CIDEr-D + SPICE) / 2, are reported *missing*
  with that reason, never estimated. With them present they run.
Scores are on pycocoevalcap's scale (0-1; CIDEr-D 0-10); Table 1 prints x100.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from genau_core.autocap.text import clean_text
from genau_core.errors import GenauBenchError

METRIC_NAMES = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "meteor", "cider", "spice", "spider")
TABLE1_METRICS = ("bleu_1", "bleu_4", "rouge_l", "meteor", "cider", "spice", "spider")
METRIC_LABELS = {
    "bleu_1": "BLEU-1", "bleu_2": "BLEU-2", "bleu_3": "BLEU-3", "bleu_4": "BLEU-4", "rouge_l": "ROUGE-L",
    "meteor": "METEOR", "cider": "CIDEr", "spice": "SPICE", "spider": "SPIDEr",
}  # fmt: skip
FAMILIES = ("bleu", "rouge", "meteor", "cider", "spice")
SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


class CaptionMetricsError(GenauBenchError, RuntimeError):
    """Caption metrics cannot run at all (pycocoevalcap or Java missing); the message says how to fix it."""


@dataclass
class CaptionScores:
    scores: dict[str, float]  # metric -> corpus score (pycocoevalcap scale)
    missing: dict[str, str] = field(default_factory=dict)  # metric -> why it is not reported
    n: int = 0  # clips scored
    implementation: str = "pycocoevalcap"

    def as_dict(self) -> dict:
        return {
            "n": self.n,
            "implementation": self.implementation,
            "scores": dict(self.scores),
            "missing": dict(self.missing),
        }


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise CaptionMetricsError(f"{module} is not installed: pip install 'pycocoevalcap>=1.2'")
    return Path(list(spec.submodule_search_locations)[0])


def spice_unavailable_reason() -> str | None:
    """Why SPICE cannot run here, or None when it can."""
    lib = _package_dir("pycocoevalcap.spice") / "lib"
    missing = [j for j in SPICE_JARS if not (lib / j).is_file()]
    if missing:
        return (
            f"Stanford CoreNLP 3.6.0 jars ({', '.join(missing)}) are not in {lib}; pycocoevalcap downloads them "
            "from nlp.stanford.edu, which cannot be reached offline"
        )
    return None


def _check_inputs(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> list[str]:
    ids = sorted(predictions)
    if not ids:
        raise ValueError("no predictions to score")
    if set(ids) != set(references):
        extra, lacking = sorted(set(ids) - set(references)), sorted(set(references) - set(ids))
        raise ValueError(
            f"predictions and references differ: no references for {extra[:5]}, no prediction for {lacking[:5]}"
        )
    for i in ids:
        refs = references[i]
        if isinstance(refs, str) or not refs or not all(isinstance(r, str) and r.strip() for r in refs):
            raise ValueError(f"clip {i!r}: references must be a non-empty list of non-empty strings")
        if not isinstance(predictions[i], str):
            raise ValueError(f"clip {i!r}: prediction is a {type(predictions[i]).__name__}, not a str")
    return ids


def caption_metrics(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    *,
    families: Sequence[str] = FAMILIES,
) -> CaptionScores:
    """Corpus scores of `predictions` (clip id -> caption) against `references` (clip id -> list
    of reference captions). `families` picks among bleu, rouge, meteor, cider, spice."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown metric families {unknown}; choose from {FAMILIES}")
    ids = _check_inputs(predictions, references)
    _package_dir("pycocoevalcap")
    if shutil.which("java") is None:
        raise CaptionMetricsError(
            "java not found on PATH: the PTB tokenizer, METEOR and SPICE of pycocoevalcap run on Java (17 works)"
        )
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": clean_text(r)} for r in references[i]] for i in ids})
    res = tok.tokenize({i: [{"caption": clean_text(predictions[i])}] for i in ids})
    out = CaptionScores(scores={}, n=len(ids))
    if "bleu" in families:
        from pycocoevalcap.bleu.bleu import Bleu

        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        out.scores.update({f"bleu_{n + 1}": float(b) for n, b in enumerate(bleu)})
    if "rouge" in families:
        from pycocoevalcap.rouge.rouge import Rouge

        out.scores["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    if "cider" in families:
        from pycocoevalcap.cider.cider import Cider

        out.scores["cider"] = float(Cider().compute_score(gts, res)[0])
    if "meteor" in families:
        from pycocoevalcap.meteor.meteor import Meteor

        meteor = Meteor()
        try:
            out.scores["meteor"] = float(meteor.compute_score(gts, res)[0])
        finally:
            del meteor
    if "spice" in families:
        reason = spice_unavailable_reason()
        if reason is None:
            from pycocoevalcap.spice.spice import Spice

            out.scores["spice"] = float(Spice().compute_score(gts, res)[0])
        else:
            out.missing["spice"] = reason
    if "spice" in out.scores and "cider" in out.scores:
        out.scores["spider"] = (out.scores["cider"] + out.scores["spice"]) / 2
    elif "spice" in families or "cider" in families:
        out.missing["spider"] = "needs SPICE and CIDEr-D: " + (out.missing.get("spice") or "CIDEr not computed")
    return out
