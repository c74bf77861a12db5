"""The web app: participant pages and API, opaque audio, owner views.

Routes (participants)
  GET  /join/{token}                   consume a one-time invitation -> session cookie -> /study
  GET  /study                          the study page (static HTML + JS)
  GET  /api/state                      current item, question, progress (prompt only once revealed)
  POST /api/items/{position}/events    {"side": "left"|"right", "event": "play"|"ended", "client_ts": float}
  POST /api/items/{position}/votes     {"criterion": ..., "choice": "left"|"right"}
  GET  /audio/{token}                  an opaque per-participant clip URL (no system name, no path)
Routes (owner; the owner token as ``Authorization: Bearer <token>`` or ``?token=``)
  GET  /owner/{study}                  progress page (per participant, per item)
  GET  /owner/{study}/progress.json
  GET  /owner/{study}/export.json      all responses + protocol version + database SHA-256
  GET  /owner/{study}/export.csv
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel
from sqlalchemy.orm import Session

from . import participation as flow
from .create import StudyError, find_study, study_config
from .db import Study, init_db, make_engine, session_factory
from .export import export_study, progress
from .protocol import STUDY_PROTOCOL_VERSION
from .tokens import token_matches

SESSION_COOKIE = "gb_session"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self'; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # invitation and owner tokens never leave in a Referer
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class EventIn(BaseModel):
    side: Literal["left", "right"]
    event: Literal["play", "ended"]
    client_ts: float | None = None


class VoteIn(BaseModel):
    criterion: Literal["realism", "quality", "alignment", "overall"]
    choice: Literal["left", "right"]


def _templates() -> Environment:
    return Environment(loader=PackageLoader("userstudy", "templates"), autoescape=select_autoescape(["html"]))


def create_app(db_url: str, clock: Callable[[], float] = time.time) -> FastAPI:
    """The app for the database at `db_url`; the schema is created if missing."""
    engine = make_engine(db_url)
    init_db(engine)
    Sessions = session_factory(engine)
    templates = _templates()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        engine.dispose()

    app = FastAPI(title="genau-bench listening study", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.engine = engine
    app.state.clock = clock

    static_dir = resources.files("userstudy") / "static"
    app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.exception_handler(flow.FlowError)
    async def flow_error(request: Request, exc: flow.FlowError):
        if request.url.path.startswith(("/api/", "/audio/", "/owner/")) and not _wants_html(request):
            return JSONResponse({"detail": {"code": exc.code, "message": exc.message}}, status_code=exc.status)
        html = templates.get_template("message.html").render(title="Listening study", message=exc.message)
        return HTMLResponse(html, status_code=exc.status)

    def db() -> Iterator[Session]:
        with Sessions() as s:
            yield s

    def participant(request: Request, s: Session = Depends(db)):
        return flow.participant_for_session(s, request.cookies.get(SESSION_COOKIE))

    def owned_study(study: str, request: Request, s: Session = Depends(db)) -> Study:
        token = request.query_params.get("token")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        try:
            st = find_study(s, study)
        except StudyError:
            raise flow.FlowError(404, "unknown_study", "No such study.") from None
        if not token or not token_matches(token, st.owner_token_hash):
            raise flow.FlowError(403, "owner_only", "This page needs the study owner's token.")
        return st

    @app.get("/", response_class=HTMLResponse)
    def index():
        return templates.get_template("message.html").render(
            title="Listening study", message="Open the invitation link you were given to take part."
        )

    @app.get("/join/{token}")
    def join(token: str, request: Request, s: Session = Depends(db)):
        _, session_token = flow.join(s, token, app.state.clock(), request.cookies.get(SESSION_COOKIE))
        resp = RedirectResponse("/study", status_code=303)
        if session_token is None:  # already this participant's browser: resume
            return resp
        resp.set_cookie(
            SESSION_COOKIE, session_token, httponly=True, samesite="lax",
            secure=request.url.scheme == "https", max_age=60 * 60 * 24 * 30, path="/",
        )
        return resp

    @app.get("/study", response_class=HTMLResponse)
    def study_page():
        return HTMLResponse((static_dir / "study.html").read_text(encoding="utf-8"))

    @app.get("/api/state")
    def api_state(p=Depends(participant), s: Session = Depends(db)):
        return flow.state(s, p)

    @app.post("/api/items/{position}/events")
    def api_event(position: int, body: EventIn, p=Depends(participant), s: Session = Depends(db)):
        return flow.record_event(s, p, position, body.side, body.event, body.client_ts, app.state.clock())

    @app.post("/api/items/{position}/votes")
    def api_vote(position: int, body: VoteIn, p=Depends(participant), s: Session = Depends(db)):
        return flow.vote(s, p, position, body.criterion, body.choice, app.state.clock())

    @app.get("/audio/{token}")
    def audio(token: str, p=Depends(participant), s: Session = Depends(db)):
        path = flow.media_path(s, p, token)
        if not path.is_file():
            raise flow.FlowError(404, "audio_missing", "This audio file is missing on the server.")
        # No filename, no Content-Disposition: nothing in the response names the system.
        resp = FileResponse(path, media_type="audio/wav")
        resp.headers["Cache-Control"] = "private, max-age=3600"
        return resp

    @app.get("/owner/{study}", response_class=HTMLResponse)
    def owner_page(request: Request, st: Study = Depends(owned_study), s: Session = Depends(db)):
        token = request.query_params.get("token", "")
        return templates.get_template("owner.html").render(
            study=st, config=study_config(st), progress=progress(s, st), token=token,
            protocol_version=STUDY_PROTOCOL_VERSION,
        )

    @app.get("/owner/{study}/progress.json")
    def owner_progress(st: Study = Depends(owned_study), s: Session = Depends(db)):
        return progress(s, st)

    @app.get("/owner/{study}/export.json")
    def owner_export_json(st: Study = Depends(owned_study), s: Session = Depends(db)):
        ex = export_study(s, st)
        return Response(ex.json_text, media_type="application/json",
                        headers={"X-Database-SHA256": ex.database_sha256,
                                 "Content-Disposition": f'attachment; filename="study-{st.id}-responses.json"'})

    @app.get("/owner/{study}/export.csv")
    def owner_export_csv(st: Study = Depends(owned_study), s: Session = Depends(db)):
        ex = export_study(s, st)
        return Response(ex.csv_text, media_type="text/csv; charset=utf-8",
                        headers={"X-Database-SHA256": ex.database_sha256,
                                 "Content-Disposition": f'attachment; filename="study-{st.id}-responses.csv"'})

    return app


def _wants_html(request: Request) -> bool:
    return request.url.path.startswith("/owner/") and "text/html" in request.headers.get("accept", "") and not any(
        request.url.path.endswith(x) for x in (".json", ".csv")
    )
