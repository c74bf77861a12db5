"""The web app: participant pages and API, opaque audio, owner views.

Routes (participants)
  GET  /join/{token}                   consume a one-time invitation -> session cookie -> /study
  GET  /study                          the study page (static HTML + JS)
  GET  /api/state                      current item, question, progress (prompt only once revealed)
  POST /api/items/{position}/events    {"side": "left"|"right", "event": "play"|"ended", "client_ts": finite float}
  POST /api/items/{position}/votes     {"criterion": ..., "choice": "left"|"right"}; the same vote again
                                       returns 200 with the stored vote (a retry), another answer 409
  GET  /audio/{token}                  an opaque per-participant clip URL (no system name, no path,
                                       no file-time validators; per-URL dither, see ``media``)
Routes (owner; the owner token as ``Authorization: Bearer <token>`` or the ``gb_owner_<id>`` cookie
set by the login form; a token in the URL is refused with 400, since URLs end up in logs)
  GET  /owner/{study}/login            login form (the same page whether or not the study exists)
  POST /owner/{study}/login            form field ``token`` -> cookie -> /owner/{study}
  GET  /owner/{study}                  progress page (per participant, per item, owner actions)
  GET  /owner/{study}/progress.json
  GET  /owner/{study}/export.json      all responses + protocol version + database SHA-256
  GET  /owner/{study}/export.csv
An unknown study and a wrong or missing owner token get the same 403 answer, so study ids and
names cannot be probed. Bodies over 4 KiB get 413 before they are read (``limits``); tokens
are redacted from every log line (``logs``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Literal
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from . import logs
from . import participation as flow
from .create import StudyError, find_study, study_config
from .db import Study, init_db, make_engine, session_factory
from .export import export_study, progress
from .limits import MAX_BODY_BYTES, BodyLimitMiddleware
from .media import parse_range, served_wav
from .protocol import STUDY_PROTOCOL_VERSION
from .tokens import hash_token, token_matches

SESSION_COOKIE = "gb_session"
OWNER_COOKIE_PREFIX = "gb_owner_"  # + study id; path /owner/, HttpOnly, SameSite=Strict
MAX_POSITION = 2**31 - 1  # positions are small; 2**70 overflowed SQLite's INTEGER into a 500
_NO_STUDY_HASH = hash_token("no such study")  # compared against, so both failures cost the same
OWNER_DENIED = (
    "This page needs the study owner's token: send it as 'Authorization: Bearer <token>' "
    "or log in at /owner/<study>/login."
)
Position = Annotated[int, PathParam(ge=0, le=MAX_POSITION)]
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
    client_ts: float | None = Field(default=None, allow_inf_nan=False)  # NaN / Infinity -> 422


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

    logs.install()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        logs.install()  # again: the server configures its logging after the app is built
        yield
        engine.dispose()

    app = FastAPI(
        title="genau-bench listening study", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
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

    # Added last, so it runs first: no request body reaches routing or authentication unchecked.
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError):
        # Never echo the input: it may be NaN (not JSON) or large; where and why is enough.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        where = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse(
            {"detail": {"code": "invalid_request", "message": f"Invalid request ({where}).", "errors": errors}},
            status_code=422,
        )

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
        if "token" in request.query_params:
            raise flow.FlowError(
                400,
                "token_in_url",
                "Do not put the owner token in the URL (URLs end up in logs and browser history): " + OWNER_DENIED,
            )
        token = None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        try:
            st: Study | None = find_study(s, study)
        except StudyError:
            st = None
        if token is None and st is not None:
            token = request.cookies.get(f"{OWNER_COOKIE_PREFIX}{st.id}")
        # One answer for an unknown study and for a wrong or missing token: ids cannot be probed.
        ok = token_matches(token or "", st.owner_token_hash if st is not None else _NO_STUDY_HASH)
        if st is None or not token or not ok:
            raise flow.FlowError(403, "owner_only", OWNER_DENIED)
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
            SESSION_COOKIE,
            session_token,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            max_age=60 * 60 * 24 * 30,
            path="/",
        )
        return resp

    @app.get("/study", response_class=HTMLResponse)
    def study_page():
        return HTMLResponse((static_dir / "study.html").read_text(encoding="utf-8"))

    @app.get("/api/state")
    def api_state(p=Depends(participant), s: Session = Depends(db)):
        return flow.state(s, p)

    @app.post("/api/items/{position}/events")
    def api_event(position: Position, body: EventIn, p=Depends(participant), s: Session = Depends(db)):
        return flow.record_event(s, p, position, body.side, body.event, body.client_ts, app.state.clock())

    @app.post("/api/items/{position}/votes")
    def api_vote(position: Position, body: VoteIn, p=Depends(participant), s: Session = Depends(db)):
        return flow.vote(s, p, position, body.criterion, body.choice, app.state.clock())

    @app.get("/audio/{token}")
    def audio(token: str, request: Request, p=Depends(participant), s: Session = Depends(db)):
        path, media_name = flow.media_for(s, p, token)
        if not path.is_file():
            raise flow.FlowError(404, "audio_missing", "This audio file is missing on the server.")
        # Bytes depend on the samples and the token only (per-URL dither); headers are the same for
        # every clip: no filename, no Last-Modified, no ETag (the old one hashed the file time).
        data = served_wav(path, media_name, token)
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600, no-transform"}
        rng = parse_range(request.headers.get("range"), len(data))
        if rng == "unsatisfiable":
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{len(data)}"})
        if rng is None:
            return Response(data, media_type="audio/wav", headers=headers)
        assert not isinstance(rng, str)
        return Response(
            data[rng.start : rng.end + 1],
            status_code=206,
            media_type="audio/wav",
            headers={**headers, "Content-Range": f"bytes {rng.start}-{rng.end}/{len(data)}"},
        )

    @app.get("/owner/{study}/login", response_class=HTMLResponse)
    def owner_login_page(study: str):
        return templates.get_template("owner_login.html").render(study=study, message=None)

    @app.post("/owner/{study}/login")
    async def owner_login(study: str, request: Request):
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        with Sessions() as s:
            try:
                st: Study | None = find_study(s, study)
            except StudyError:
                st = None
        ok = token_matches(token, st.owner_token_hash if st is not None else _NO_STUDY_HASH)
        if st is None or not token or not ok:
            html = templates.get_template("owner_login.html").render(study=study, message=OWNER_DENIED)
            return HTMLResponse(html, status_code=403)
        resp = RedirectResponse(f"/owner/{study}", status_code=303)
        resp.set_cookie(
            f"{OWNER_COOKIE_PREFIX}{st.id}",
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=60 * 60 * 12,
            path="/owner/",
        )
        return resp

    @app.get("/owner/{study}", response_class=HTMLResponse)
    def owner_page(st: Study = Depends(owned_study), s: Session = Depends(db)):
        return templates.get_template("owner.html").render(
            study=st,
            config=study_config(st),
            progress=progress(s, st),
            protocol_version=STUDY_PROTOCOL_VERSION,
        )

    @app.get("/owner/{study}/progress.json")
    def owner_progress(st: Study = Depends(owned_study), s: Session = Depends(db)):
        return progress(s, st)

    @app.get("/owner/{study}/export.json")
    def owner_export_json(st: Study = Depends(owned_study), s: Session = Depends(db)):
        ex = export_study(s, st)
        return Response(
            ex.json_text,
            media_type="application/json",
            headers={
                "X-Database-SHA256": ex.database_sha256,
                "Content-Disposition": f'attachment; filename="study-{st.id}-responses.json"',
            },
        )

    @app.get("/owner/{study}/export.csv")
    def owner_export_csv(st: Study = Depends(owned_study), s: Session = Depends(db)):
        ex = export_study(s, st)
        return Response(
            ex.csv_text,
            media_type="text/csv; charset=utf-8",
            headers={
                "X-Database-SHA256": ex.database_sha256,
                "Content-Disposition": f'attachment; filename="study-{st.id}-responses.csv"',
            },
        )

    return app


def _wants_html(request: Request) -> bool:
    return (
        request.url.path.startswith("/owner/")
        and "text/html" in request.headers.get("accept", "")
        and not any(request.url.path.endswith(x) for x in (".json", ".csv"))
    )
