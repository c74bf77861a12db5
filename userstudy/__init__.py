"""Pairwise listening study for text-to-audio systems (paper Table 5, appendix C.3).

Modules, one job each: ``protocol`` (questions, order, rules, version), ``sources``
(clip folders / bench runs, prompts CSV), ``audio`` (loudness, low-pass anchor), ``db``
(schema, engine), ``create`` (sampling, frozen config), ``participation`` (invitations,
sessions, server-side order and playback gate), ``server`` (FastAPI app), ``export``
(owner views, database digest), ``analysis`` (Table-5 statistics), ``tokens`` (secrets),
``cli`` (``userstudy`` / ``python -m userstudy`` / ``bench study``), ``testing`` (synthetic
inputs and in-process / child-process servers for tests).
"""

from .protocol import STUDY_PROTOCOL_VERSION

__all__ = ["STUDY_PROTOCOL_VERSION"]
