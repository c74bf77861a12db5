"""Pairwise listening study for text-to-audio systems (paper Table 5, appendix C.3).

Modules, one job each: ``protocol`` (questions, order, rules, version), ``sources``
(clip folders / bench runs, prompts CSV), ``audio`` (loudness, low-pass anchor), ``db``
(schema, engine), ``create`` (sampling, frozen config, one media format per study),
``participation`` (invitations, sessions, server-side order and playback gate, idempotent
votes, re-issued links), ``server`` (FastAPI app), ``media`` (the bytes of one audio URL:
per-URL dither, canonical WAV header, ranges), ``limits`` (body size / type limits before
reading), ``logs`` (token redaction in every log line), ``export`` (owner views, database
digest, audit log), ``analysis`` (Table-5 statistics), ``tokens`` (secrets), ``cli``
(``userstudy`` / ``python -m userstudy`` / ``bench study``), ``testing`` (synthetic inputs and
in-process / child-process servers for tests). Design notes: docs/study.md.
"""

from .protocol import STUDY_PROTOCOL_VERSION

__all__ = ["STUDY_PROTOCOL_VERSION"]
