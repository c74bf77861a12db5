"""Owner-side reads: progress, the response export, and the database digest.

Database digest (``database_sha256``): SHA-256 over every row of every table of the schema,
tables in name order, rows in primary-key order, each row written as one canonical JSON
array of its column values (columns in schema order; booleans as 0/1, floats as their
shortest round-trip ``repr`` string, ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``) followed by a newline, each table
preceded by a line ``#table <name>``. It describes the database *contents*, so it is the
same on SQLite and PostgreSQL and does not change with file layout, WAL checkpoints or
VACUUM; it changes with any added, removed or altered row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .create import study_config
from .db import Assignment, AuditEvent, Base, Item, Participant, Response, Study
from .protocol import CRITERIA, CRITERION_KEYS, ITEM_CATCH_ANCHOR, ITEM_CATCH_REPEAT, ITEM_MAIN, STUDY_PROTOCOL_VERSION
from .tokens import canonical_json


def database_sha256(session: Session) -> str:
    h = hashlib.sha256()
    for table in sorted(Base.metadata.tables.values(), key=lambda t: t.name):
        h.update(f"#table {table.name}\n".encode())
        pk = list(table.primary_key.columns)
        for row in session.execute(select(table).order_by(*pk)):
            h.update((canonical_json([_plain(v) for v in row]) + "\n").encode("utf-8"))
    return h.hexdigest()


def _plain(v):
    if isinstance(v, bool):
        return int(v)  # as SQLite stores it; PostgreSQL booleans hash the same
    if isinstance(v, float):
        return repr(v)  # exact and backend-independent for doubles
    return v


RESPONSE_COLUMNS = (
    "study",
    "protocol_version",
    "participant",
    "item_seq",
    "item_kind",
    "repeat_of_seq",
    "prompt_id",
    "system_a",
    "system_b",
    "position",
    "a_on_left",
    "left_system",
    "right_system",
    "criterion",
    "choice_side",
    "chosen_system",
    "chose_a",
    "server_ts",
)


def response_records(session: Session, study: Study) -> list[dict]:
    items = {it.id: it for it in session.scalars(select(Item).where(Item.study_id == study.id))}
    parts = {p.id: p for p in session.scalars(select(Participant).where(Participant.study_id == study.id))}
    rows = session.execute(
        select(Response, Assignment)
        .join(Assignment, Assignment.id == Response.assignment_id)
        .where(Response.participant_id.in_(list(parts) or [-1]))
        .order_by(Response.participant_id, Assignment.position, Response.id)
    ).all()
    out = []
    for r, a in rows:
        it = items[r.item_id]
        left, right = (it.system_a, it.system_b) if a.a_on_left else (it.system_b, it.system_a)
        out.append(
            {
                "study": study.name,
                "protocol_version": study.protocol_version,
                "participant": parts[r.participant_id].label,
                "item_seq": it.seq,
                "item_kind": it.kind,
                "repeat_of_seq": items[it.repeat_of_id].seq if it.repeat_of_id is not None else None,
                "prompt_id": it.prompt_id,
                "system_a": it.system_a,
                "system_b": it.system_b,
                "position": a.position,
                "a_on_left": bool(a.a_on_left),
                "left_system": left,
                "right_system": right,
                "criterion": r.criterion,
                "choice_side": r.choice_side,
                "chosen_system": it.system_a if r.chose_a else it.system_b,
                "chose_a": bool(r.chose_a),
                "server_ts": r.server_ts,
            }
        )
    return out


@dataclass(frozen=True)
class Export:
    json_text: str
    csv_text: str
    database_sha256: str
    n_responses: int


def export_study(session: Session, study: Study) -> Export:
    digest = database_sha256(session)
    records = response_records(session, study)
    doc = {
        "protocol_version": STUDY_PROTOCOL_VERSION,
        "study": {
            "id": study.id,
            "name": study.name,
            "protocol_version": study.protocol_version,
            "config_sha256": study.config_sha256,
            "config": study_config(study),
        },
        "database_sha256": digest,
        "database_sha256_method": "sha256 over canonical JSON rows of every table (userstudy.export.database_sha256)",
        "exported_at": time.time(),
        "progress": progress(session, study),
        "responses": records,
    }
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*RESPONSE_COLUMNS, "database_sha256"], lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow({**r, "database_sha256": digest})
    return Export(json.dumps(doc, indent=1, ensure_ascii=False), buf.getvalue(), digest, len(records))


def progress(session: Session, study: Study) -> dict:
    n_items = session.scalar(select(func.count()).select_from(Item).where(Item.study_id == study.id)) or 0
    parts = session.scalars(select(Participant).where(Participant.study_id == study.id).order_by(Participant.id)).all()
    per_participant = []
    counts = dict(
        session.execute(
            select(Response.participant_id, func.count())
            .join(Participant, Participant.id == Response.participant_id)
            .where(Participant.study_id == study.id)
            .group_by(Response.participant_id)
        ).all()
    )
    for p in parts:
        n = counts.get(p.id, 0)
        per_participant.append(
            {
                "participant": p.label,
                "joined": p.joined_at is not None,
                "answers": n,
                "answers_total": n_items * len(CRITERIA),
                "items_done": _items_done(session, p.id),
                "items_total": n_items,
                "completed": p.completed_at is not None,
                "completion_code": p.completion_code,
            }
        )
    per_item = []
    item_counts: dict[tuple[int, str], int] = {}
    for item_id, crit, n in session.execute(
        select(Response.item_id, Response.criterion, func.count())
        .join(Item, Item.id == Response.item_id)
        .where(Item.study_id == study.id)
        .group_by(Response.item_id, Response.criterion)
    ).all():
        item_counts[(item_id, crit)] = n
    for it in session.scalars(select(Item).where(Item.study_id == study.id).order_by(Item.seq)):
        per_item.append(
            {
                "item_seq": it.seq,
                "kind": it.kind,
                "prompt_id": it.prompt_id,
                "caption": it.caption,
                "pair": f"{it.system_a} vs {it.system_b}",
                **{f"n_{c}": item_counts.get((it.id, c), 0) for c in CRITERION_KEYS},
            }
        )
    return {
        "study": study.name,
        "n_items": n_items,
        "n_items_by_kind": {
            k: sum(1 for r in per_item if r["kind"] == k) for k in (ITEM_MAIN, ITEM_CATCH_ANCHOR, ITEM_CATCH_REPEAT)
        },
        "participants": per_participant,
        "items": per_item,
        "owner_actions": owner_actions(session, study),
    }


def owner_actions(session: Session, study: Study) -> list[dict]:
    """The audit log of the study (re-issued invitations, rotated owner tokens), oldest first."""
    out = []
    for e in session.scalars(select(AuditEvent).where(AuditEvent.study_id == study.id).order_by(AuditEvent.id)):
        out.append(
            {
                "at": e.at,
                "at_utc": datetime.fromtimestamp(e.at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
                "action": e.action,
                "participant": e.participant,
                "detail": json.loads(e.detail_json),
            }
        )
    return out


def _items_done(session: Session, participant_id: int) -> int:
    sub = (
        select(Response.item_id)
        .where(Response.participant_id == participant_id)
        .group_by(Response.item_id)
        .having(func.count() == len(CRITERIA))
        .subquery()
    )
    return session.scalar(select(func.count()).select_from(sub)) or 0
