"""The participant's way through a study, enforced on the server.

- ``invite`` creates one-time tokens and, for each participant, the item order and the
  sides of every item (stored, so the analysis can check position bias).
- ``join`` consumes a token exactly once into a server-side session.
- ``record_event`` / ``vote`` accept events and answers only for the participant's current
  item, only in the paper's question order, only after both clips were played through
  (server clock), and only once per (participant, item, criterion). A vote sent again with
  the same answer (a client retrying after a lost reply) succeeds and returns the stored vote;
  a different answer to an answered question is refused.
- ``reissue`` (owner) gives a participant who lost their session a new invitation link; the
  answers stay, the old link and session stop working, and the action is written to the
  audit log.

Errors are ``FlowError`` with the HTTP status the server answers with: 401 no session,
404 unknown item or token, 409 a different answer to an answered question, 410 a used
invitation, 428 a precondition not met (question order, current item, playback), 429 too
many events.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .create import study_config
from .db import Assignment, AuditEvent, Clip, Item, Participant, PlayEvent, Response, Study
from .protocol import CRITERIA, CRITERION_KEYS, ITEM_CATCH_REPEAT, PlaybackRule
from .tokens import completion_code, hash_token, new_token, token_matches

log = logging.getLogger("userstudy.owner")

SIDES = ("left", "right")
EVENTS = ("play", "ended")


class FlowError(Exception):
    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(f"{status} {code}: {message}")


@dataclass(frozen=True)
class Invitation:
    participant_id: int
    label: str
    token: str
    url: str


def _order_for_participant(items: list[Item], rng: random.Random) -> list[tuple[Item, bool]]:
    """(item, a_on_left) in presentation order: main and anchor items shuffled, each repeat
    placed after its original (at least one item later when possible) with sides swapped."""
    firsts = [it for it in items if it.kind != ITEM_CATCH_REPEAT]
    repeats = [it for it in items if it.kind == ITEM_CATCH_REPEAT]
    rng.shuffle(firsts)
    sides = {it.id: rng.random() < 0.5 for it in firsts}
    order = list(firsts)
    rng.shuffle(repeats)
    for rep in repeats:
        at = next(i for i, it in enumerate(order) if it.id == rep.repeat_of_id)
        lo = min(at + 2, len(order))
        order.insert(rng.randint(lo, len(order)), rep)
        sides[rep.id] = not sides[rep.repeat_of_id]
    return [(it, sides[it.id]) for it in order]


def invite(session: Session, study: Study, n: int, base_url: str) -> list[Invitation]:
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    items = session.scalars(select(Item).where(Item.study_id == study.id).order_by(Item.seq)).all()
    if not items:
        raise ValueError(f"study {study.name!r} has no items")
    existing = (
        session.scalar(select(func.count()).select_from(Participant).where(Participant.study_id == study.id)) or 0
    )
    out: list[Invitation] = []
    for k in range(n):
        token = new_token()
        label = f"p{existing + k + 1:03d}"
        p = Participant(study_id=study.id, label=label, token_hash=hash_token(token), invited_at=time.time())
        session.add(p)
        session.flush()
        rng = random.Random(f"order:{study.seed}:{study.id}:{p.id}")
        for pos, (item, a_left) in enumerate(_order_for_participant(list(items), rng)):
            session.add(
                Assignment(
                    participant_id=p.id,
                    item_id=item.id,
                    position=pos,
                    a_on_left=a_left,
                    left_token=new_token(18),
                    right_token=new_token(18),
                )
            )
        out.append(Invitation(p.id, label, token, f"{base_url.rstrip('/')}/join/{token}"))
    session.commit()
    return out


def join(
    session: Session, token: str, now: float, current_session: str | None = None
) -> tuple[Participant, str | None]:
    """Consume an invitation token; returns the participant and a new session token (None when
    the visitor already holds this participant's session: reopening one's own link resumes)."""
    h = hash_token(token)
    p = session.scalar(select(Participant).where(Participant.token_hash == h))
    if p is None:
        raise FlowError(404, "unknown_invitation", "This invitation link is not valid.")
    if current_session and p.session_hash is not None and token_matches(current_session, p.session_hash):
        return p, None
    session_token = new_token(32)
    # Conditional update: exactly one request can move joined_at from NULL, on any backend.
    res = session.execute(
        update(Participant)
        .where(Participant.id == p.id, Participant.joined_at.is_(None))
        .values(joined_at=now, session_hash=hash_token(session_token))
    )
    if res.rowcount != 1:
        session.rollback()
        raise FlowError(410, "invitation_used", "This invitation link has already been used.")
    session.commit()
    session.refresh(p)
    return p, session_token


def participant_for_session(session: Session, session_token: str | None) -> Participant:
    if not session_token:
        raise FlowError(401, "no_session", "Open your invitation link to start.")
    p = session.scalar(select(Participant).where(Participant.session_hash == hash_token(session_token)))
    if p is None:
        raise FlowError(401, "bad_session", "Your session is not valid; open your invitation link.")
    return p


def _answer_counts(session: Session, participant: Participant) -> dict[int, list[str]]:
    rows = session.execute(
        select(Response.assignment_id, Response.criterion).where(Response.participant_id == participant.id)
    ).all()
    out: dict[int, list[str]] = {}
    for aid, crit in rows:
        out.setdefault(aid, []).append(crit)
    for aid in out:
        out[aid].sort(key=CRITERION_KEYS.index)
    return out


def _assignments(session: Session, participant: Participant) -> list[Assignment]:
    return list(
        session.scalars(
            select(Assignment).where(Assignment.participant_id == participant.id).order_by(Assignment.position)
        ).all()
    )


def current(session: Session, participant: Participant) -> tuple[Assignment | None, list[str], int, int]:
    """(current assignment or None when done, its answered criteria, items done, items total)."""
    a, got, done, total, _ = _current(session, participant)
    return a, got, done, total


def _current(session: Session, participant: Participant) -> tuple[Assignment | None, list[str], int, int, int]:
    """current() plus the number of questions answered over all items."""
    assigns = _assignments(session, participant)
    answered = _answer_counts(session, participant)
    done = sum(1 for a in assigns if len(answered.get(a.id, [])) == len(CRITERIA))
    n_answers = sum(len(v) for v in answered.values())
    for a in assigns:
        got = answered.get(a.id, [])
        if len(got) < len(CRITERIA):
            return a, got, done, len(assigns), n_answers
    return None, [], done, len(assigns), n_answers


def _durations(session: Session, a: Assignment) -> dict[str, float]:
    item = session.get(Item, a.item_id)
    assert item is not None
    da = session.get(Clip, item.clip_a_id).duration_s  # type: ignore[union-attr]
    db = session.get(Clip, item.clip_b_id).duration_s  # type: ignore[union-attr]
    return {"left": da, "right": db} if a.a_on_left else {"left": db, "right": da}


def played_through(session: Session, a: Assignment, rule: PlaybackRule) -> dict[str, bool]:
    """Per side: was some play-through at least (duration - tolerance) long on the server clock?"""
    durations = _durations(session, a)
    events = session.execute(
        select(PlayEvent.side, PlayEvent.event, PlayEvent.server_ts)
        .where(PlayEvent.assignment_id == a.id)
        .order_by(PlayEvent.server_ts, PlayEvent.id)
    ).all()
    out = {}
    for side in SIDES:
        ok, start = False, None
        for s, ev, ts in events:
            if s != side:
                continue
            if ev == "play" and start is None:
                start = ts
            elif ev == "ended" and start is not None:
                if ts - start >= durations[side] - rule.tolerance_s:
                    ok = True
                start = None
        out[side] = ok
    return out


def _playback_rule(study: Study) -> PlaybackRule:
    return PlaybackRule(**study_config(study)["playback_rule"])


def _assignment_at(session: Session, participant: Participant, position: int) -> Assignment:
    a = session.scalar(
        select(Assignment).where(Assignment.participant_id == participant.id, Assignment.position == position)
    )
    if a is None:
        raise FlowError(404, "unknown_item", f"There is no item {position}.")
    return a


def state(session: Session, participant: Participant) -> dict:
    study = session.get(Study, participant.study_id)
    assert study is not None
    a, got, done, total, n_answers = _current(session, participant)
    out: dict = {
        "completed": a is None,
        "completion_code": participant.completion_code if a is None else None,
        # per question, so the bar moves with every answer, not only after an item's fourth
        "progress": {
            "items_done": done,
            "items_total": total,
            "questions_done": n_answers,
            "questions_total": total * len(CRITERIA),
        },
        "item": None,
    }
    if a is not None:
        item = session.get(Item, a.item_id)
        assert item is not None
        crit = CRITERIA[len(got)]
        out["item"] = {
            "position": a.position,
            "number": a.position + 1,
            "left_url": f"/audio/{a.left_token}",
            "right_url": f"/audio/{a.right_token}",
            "played": played_through(session, a, _playback_rule(study)),
            "answered": got,
            "criterion": {"key": crit.key, "title": crit.title, "question": crit.question},
            "step": len(got) + 1,
            "steps": len(CRITERIA),
            # The prompt leaves the server only once Realism and Quality are answered.
            "prompt": item.caption if crit.shows_prompt else None,
        }
    return out


def record_event(
    session: Session,
    participant: Participant,
    position: int,
    side: str,
    event: str,
    client_ts: float | None,
    now: float,
) -> dict:
    if side not in SIDES or event not in EVENTS:
        raise FlowError(422, "bad_event", f"side must be one of {SIDES} and event one of {EVENTS}")
    a = _assignment_at(session, participant, position)
    cur, _, _, _ = current(session, participant)
    if cur is None or cur.id != a.id:
        raise FlowError(428, "not_current_item", "Events are accepted for the current item only.")
    study = session.get(Study, participant.study_id)
    rule = _playback_rule(study)  # type: ignore[arg-type]
    n = session.scalar(select(func.count()).select_from(PlayEvent).where(PlayEvent.assignment_id == a.id)) or 0
    if n >= rule.max_events_per_item:
        raise FlowError(429, "too_many_events", "Too many playback events for this item.")
    session.add(PlayEvent(assignment_id=a.id, side=side, event=event, server_ts=now, client_ts=client_ts))
    session.commit()
    return {"played": played_through(session, a, rule)}


def _vote_record(a: Assignment, r: Response, replayed: bool) -> dict:
    return {
        "position": a.position,
        "criterion": r.criterion,
        "choice": r.choice_side,
        "server_ts": r.server_ts,
        "replayed": replayed,
    }


def _stored_vote(session: Session, participant: Participant, a: Assignment, criterion: str) -> Response | None:
    return session.scalar(
        select(Response).where(
            Response.participant_id == participant.id, Response.item_id == a.item_id, Response.criterion == criterion
        )
    )


def _replay(session: Session, participant: Participant, a: Assignment, stored: Response, choice: str) -> dict:
    """The same answer again (a retry after a lost reply) succeeds with the stored vote; another
    answer to an answered question is refused."""
    if stored.choice_side != choice:
        raise FlowError(
            409,
            "already_answered",
            f"{stored.criterion!r} was already answered for this item with the other clip; answers cannot be changed.",
        )
    return {**state(session, participant), "vote": _vote_record(a, stored, replayed=True)}


def vote(session: Session, participant: Participant, position: int, criterion: str, choice: str, now: float) -> dict:
    if criterion not in CRITERION_KEYS or choice not in SIDES:
        raise FlowError(422, "bad_vote", f"criterion must be one of {CRITERION_KEYS} and choice one of {SIDES}")
    a = _assignment_at(session, participant, position)
    stored = _stored_vote(session, participant, a, criterion)
    if stored is not None:
        return _replay(session, participant, a, stored, choice)
    cur, got, _, _ = current(session, participant)
    if cur is None or cur.id != a.id:
        raise FlowError(428, "not_current_item", "Answer the items in the order they are shown.")
    expected = CRITERION_KEYS[len(got)]
    if criterion != expected:
        raise FlowError(428, "question_order", f"Answer {expected!r} first.")
    if not got:
        study = session.get(Study, participant.study_id)
        played = played_through(session, a, _playback_rule(study))  # type: ignore[arg-type]
        if not all(played.values()):
            missing = [s for s in SIDES if not played[s]]
            raise FlowError(
                428, "playback_incomplete", f"Listen to both clips to the end first (not yet: {', '.join(missing)})."
            )
    row = Response(
        assignment_id=a.id,
        participant_id=participant.id,
        item_id=a.item_id,
        criterion=criterion,
        choice_side=choice,
        chose_a=(choice == "left") == a.a_on_left,
        server_ts=now,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # a concurrent copy of this request committed first
        session.rollback()
        stored = _stored_vote(session, participant, a, criterion)
        if stored is None:
            raise
        return _replay(session, participant, a, stored, choice)
    nxt, _, _, _ = current(session, participant)
    if nxt is None and participant.completion_code is None:
        participant.completed_at = now
        participant.completion_code = completion_code()
    session.commit()
    return {**state(session, participant), "vote": _vote_record(a, row, replayed=False)}


def reissue(session: Session, study: Study, label: str, base_url: str, now: float | None = None) -> Invitation:
    """A new invitation link for participant `label` of `study`. Their answers, item order and
    sides stay; the old link and the old session cookie stop working; the link joins once and
    resumes at the next unanswered question. Written to the audit log (never the token)."""
    p = session.scalar(select(Participant).where(Participant.study_id == study.id, Participant.label == label))
    if p is None:
        labels = session.scalars(select(Participant.label).where(Participant.study_id == study.id)).all()
        shown = ", ".join(labels[:10]) + (" ..." if len(labels) > 10 else "")
        raise ValueError(f"study {study.name!r} has no participant {label!r} (participants: {shown or 'none'})")
    now = time.time() if now is None else now
    n_answers = session.scalar(select(func.count()).select_from(Response).where(Response.participant_id == p.id)) or 0
    detail = {
        "answers_kept": n_answers,
        "previous_joined_at": p.joined_at,
        "had_session": p.session_hash is not None,
        "completed": p.completed_at is not None,
    }
    token = new_token()
    p.token_hash = hash_token(token)
    p.session_hash = None
    p.joined_at = None
    session.add(
        AuditEvent(
            study_id=study.id,
            at=now,
            action="reissue_invitation",
            participant=label,
            detail_json=json.dumps(detail, sort_keys=True),
        )
    )
    session.commit()
    log.info(
        "study %s: re-issued the invitation of participant %s (%d answers kept; old link and session revoked)",
        study.name,
        label,
        n_answers,
    )
    return Invitation(p.id, label, token, f"{base_url.rstrip('/')}/join/{token}")


def media_for(session: Session, participant: Participant, token: str) -> tuple[Path, str]:
    """(file, media name) behind an opaque audio URL, only for the participant it was issued to."""
    a = session.scalar(
        select(Assignment).where(
            Assignment.participant_id == participant.id,
            (Assignment.left_token == token) | (Assignment.right_token == token),
        )
    )
    if a is None:
        raise FlowError(404, "unknown_audio", "No such audio.")
    item = session.get(Item, a.item_id)
    assert item is not None
    left_is_a = a.a_on_left
    is_left = a.left_token == token
    clip_id = item.clip_a_id if is_left == left_is_a else item.clip_b_id
    clip = session.get(Clip, clip_id)
    study = session.get(Study, participant.study_id)
    assert clip is not None and study is not None
    return Path(study.media_dir) / clip.media_name, clip.media_name
