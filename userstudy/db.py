"""Database schema (SQLAlchemy 2 ORM) and engine set-up.

Any SQLAlchemy URL works (e.g. ``postgresql+psycopg://...``). For SQLite the engine turns on
WAL journaling, a 30 s busy timeout, foreign keys, and emits ``BEGIN IMMEDIATE`` for every
transaction so that concurrent writers queue on the busy handler instead of failing with
``database is locked`` when a read transaction is upgraded to a write.

Times are stored as float seconds since the epoch (server clock) so that the playback gate
compares plain numbers and the database digest is identical on every backend.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Boolean,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    protocol_version: Mapped[str] = mapped_column(String(32))
    seed: Mapped[int] = mapped_column(Integer)
    config_json: Mapped[str] = mapped_column(Text)  # frozen at creation, never updated
    config_sha256: Mapped[str] = mapped_column(String(64))
    media_dir: Mapped[str] = mapped_column(Text)
    owner_token_hash: Mapped[str] = mapped_column(String(64))


class Clip(Base):
    __tablename__ = "clips"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    media_name: Mapped[str] = mapped_column(String(64), unique=True)  # opaque random file name
    system: Mapped[str] = mapped_column(String(200))
    prompt_id: Mapped[str] = mapped_column(String(200))
    source_path: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str] = mapped_column(String(64))
    sample_rate: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)
    loudness_in: Mapped[float | None] = mapped_column(Float, nullable=True)
    gain_db: Mapped[float] = mapped_column(Float)
    loudness_method: Mapped[str] = mapped_column(String(32))
    peak_limited: Mapped[bool] = mapped_column(Boolean)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("study_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    prompt_id: Mapped[str] = mapped_column(String(200))
    caption: Mapped[str] = mapped_column(Text)
    clip_a_id: Mapped[int] = mapped_column(ForeignKey("clips.id"))
    clip_b_id: Mapped[int] = mapped_column(ForeignKey("clips.id"))
    system_a: Mapped[str] = mapped_column(String(200))
    system_b: Mapped[str] = mapped_column(String(200))
    repeat_of_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), nullable=True)


class Participant(Base):
    __tablename__ = "participants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_at: Mapped[float] = mapped_column(Float)
    joined_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    session_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    completed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    completion_code: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Assignment(Base):
    """One item as one participant sees it: its position in their sequence and its sides."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("participant_id", "position"), UniqueConstraint("participant_id", "item_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    a_on_left: Mapped[bool] = mapped_column(Boolean)
    left_token: Mapped[str] = mapped_column(String(64), unique=True)  # opaque audio URL parts
    right_token: Mapped[str] = mapped_column(String(64), unique=True)


class PlayEvent(Base):
    __tablename__ = "play_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), index=True)
    side: Mapped[str] = mapped_column(String(8))  # left | right
    event: Mapped[str] = mapped_column(String(8))  # play | ended
    server_ts: Mapped[float] = mapped_column(Float)
    client_ts: Mapped[float | None] = mapped_column(Float, nullable=True)


class Response(Base):
    __tablename__ = "responses"
    __table_args__ = (UniqueConstraint("participant_id", "item_id", "criterion", name="uq_one_vote"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    criterion: Mapped[str] = mapped_column(String(32))
    choice_side: Mapped[str] = mapped_column(String(8))  # left | right, as shown on screen
    chose_a: Mapped[bool] = mapped_column(Boolean)  # resolved through the stored sides
    server_ts: Mapped[float] = mapped_column(Float)


class AuditEvent(Base):
    """Owner actions that change a participant or the study's access (re-issued invitation,
    rotated owner token). Never holds a token, only what was done, to whom and when."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    at: Mapped[float] = mapped_column(Float)
    action: Mapped[str] = mapped_column(String(64))
    participant: Mapped[str | None] = mapped_column(String(64), nullable=True)  # label, not id
    detail_json: Mapped[str] = mapped_column(Text)


def default_sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, busy timeout, foreign keys and BEGIN IMMEDIATE."""
    if url.startswith("sqlite"):
        if ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite+pysqlite:"):
            raise ValueError(f"{url}: an in-memory SQLite database cannot be shared; give a file path")
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:  # pragma: no cover - exercised by every test
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:  # pragma: no cover
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def init_db(engine: Engine) -> None:
    """Create the schema if it is not there yet (idempotent)."""
    Base.metadata.create_all(engine)


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)
