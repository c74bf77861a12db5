"""Command line: ``userstudy {create,invite,reissue,serve,export,analyze,owner-token}``.

Also reachable as ``python -m userstudy ...``; ``bench study ...`` forwards here through
``main(argv)``. Every command returns 0 on success, 2 on bad input (the message names the
file or value and the reason, on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .protocol import ExclusionRules, PlaybackRule

DEFAULT_DB_NAME = "study.db"


def _db_url(value: str) -> str:
    """A SQLAlchemy URL, or a plain file path taken as a SQLite database."""
    if "://" in value:
        return value
    from .db import default_sqlite_url

    return default_sqlite_url(value)


def _shown_url(url: str) -> str:
    """The database URL with any password masked (it is printed, and may be logged)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL SQLAlchemy parses; nothing to mask that we can find
        return url


def build_parser(prog: str = "userstudy") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Pairwise listening study (paper Table 5 protocol).")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("create", help="create a study from two or more systems' clips")
    c.add_argument("--name", required=True, help="study name (unique in the database; never shown to participants)")
    c.add_argument(
        "--system",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a system's clips: folder of <prompt_id>.wav or a bench run dir; repeat 2+ times; the first is A. "
        "Without --prompts/--split the prompts come from the runs' manifests",
    )
    src = c.add_mutually_exclusive_group()
    src.add_argument("--prompts", type=Path, help="CSV with columns id,caption (or audiocap_id,caption)")
    src.add_argument("--split", help="take prompts (and reference clips for anchors) from a bench split, e.g. demo")
    c.add_argument("--out", required=True, type=Path, help="study folder: media/ (normalised clips) and study.json")
    c.add_argument("--db", default=None, help=f"database URL or SQLite path (default: <out>/{DEFAULT_DB_NAME})")
    c.add_argument("--n-items", type=int, default=50, help="prompts drawn (default 50, as in the paper)")
    c.add_argument("--pool", type=int, default=200, help="draw from this many longest prompts (default 200)")
    c.add_argument("--seed", type=int, default=0, help="seed of the draw and of the catch trials (recorded)")
    c.add_argument(
        "--length-unit",
        choices=("words", "chars"),
        default="words",
        help="rank prompt length in words (default) or characters",
    )
    c.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="folder of real clips <prompt_id>.wav for the low-pass anchor catch trials "
        "(default with --split: the split's references)",
    )
    c.add_argument("--catch-anchor", type=int, default=2, help="anchor catch trials (needs --reference; default 2)")
    c.add_argument("--catch-repeat", type=int, default=2, help="repeated pairs with sides swapped (default 2)")
    c.add_argument(
        "--max-anchor-fail",
        type=float,
        default=ExclusionRules.max_anchor_fail_fraction,
        help="exclude a rater who prefers the anchor in more than this fraction of anchor judgements",
    )
    c.add_argument(
        "--max-repeat-inconsistent",
        type=float,
        default=ExclusionRules.max_repeat_inconsistent_fraction,
        help="exclude a rater inconsistent on more than this fraction of repeated pairs",
    )
    c.add_argument("--require-complete", action="store_true", help="also exclude raters who did not finish")
    c.add_argument(
        "--playback-tolerance",
        type=float,
        default=PlaybackRule.tolerance_s,
        help="seconds a play-through may fall short of the clip duration (server clock)",
    )

    i = sub.add_parser("invite", help="create one-time invitation links")
    i.add_argument("--db", required=True, help="database URL or SQLite path")
    i.add_argument("--study", default=None, help="study id or name (default: the only study)")
    i.add_argument("--n", type=int, required=True, help="number of participants to invite")
    i.add_argument("--base-url", default="http://127.0.0.1:8000", help="public address of the server")

    r = sub.add_parser("reissue", help="a new invitation link for a participant who lost theirs (answers kept)")
    r.add_argument("--db", required=True, help="database URL or SQLite path")
    r.add_argument("--study", default=None, help="study id or name (default: the only study)")
    r.add_argument("--participant", required=True, help="the participant's label as in the owner page, e.g. p003")
    r.add_argument("--base-url", default="http://127.0.0.1:8000", help="public address of the server")

    s = sub.add_parser("serve", help="run the web app")
    s.add_argument("--db", required=True, help="database URL or SQLite path (schema created on first start)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    s.add_argument("--port", type=int, default=8000, help="TCP port to listen on (default: %(default)s)")

    e = sub.add_parser("export", help="write all responses as CSV and JSON with the database SHA-256")
    e.add_argument("--db", required=True, help="database URL or SQLite path")
    e.add_argument("--study", default=None, help="study id or name (default: the only study)")
    e.add_argument("--out", required=True, type=Path, help="folder for responses.csv and responses.json")

    a = sub.add_parser("analyze", help="Table-5 analysis: CSVs, summary.json and a PNG chart")
    src = a.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", help="database URL or SQLite path")
    src.add_argument("--export", type=Path, help="a responses.json written by 'export'")
    a.add_argument("--study", default=None, help="study id or name (default: the only study)")
    a.add_argument("--out", required=True, type=Path, help="folder for the analysis CSVs, summary.json and the chart")
    a.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (items) for intervals")
    a.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    a.add_argument(
        "--confidence", type=float, default=0.95, help="level of the bootstrap intervals (default: %(default)s)"
    )

    o = sub.add_parser("owner-token", help="issue a new owner token (the old one stops working)")
    o.add_argument("--db", required=True, help="database URL or SQLite path")
    o.add_argument("--study", default=None, help="study id or name (default: the only study)")
    o.add_argument(
        "--base-url", default="http://127.0.0.1:8000", help="public address of the server (default: %(default)s)"
    )
    return p


def _cmd_create(args: argparse.Namespace) -> int:
    from .create import StudySpec, create_study
    from .db import init_db, make_engine, session_factory
    from .protocol import LoudnessRule
    from .sources import parse_system_arg

    systems = [parse_system_arg(x) for x in args.system]
    rules = ExclusionRules(
        max_anchor_fail_fraction=args.max_anchor_fail,
        max_repeat_inconsistent_fraction=args.max_repeat_inconsistent,
        require_complete=args.require_complete,
    )
    spec = StudySpec(
        name=args.name,
        systems=systems,
        prompts_csv=args.prompts,
        split=args.split,
        out_dir=args.out,
        n_items=args.n_items,
        pool=args.pool,
        seed=args.seed,
        length_unit=args.length_unit,
        reference_dir=args.reference,
        n_catch_anchor=args.catch_anchor,
        n_catch_repeat=args.catch_repeat,
        rules=rules,
        playback=PlaybackRule(tolerance_s=args.playback_tolerance),
        loudness=LoudnessRule(),
    )
    url = _db_url(args.db) if args.db else _db_url(str(Path(args.out) / DEFAULT_DB_NAME))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    init_db(engine)
    try:
        with session_factory(engine)() as s:
            made = create_study(s, spec, log=lambda m: print(m, file=sys.stderr))
    finally:
        engine.dispose()
    cfg = made.config
    print(f"created study {made.name!r} (id {made.study_id}) in {_shown_url(url)}")
    print(f"  protocol {cfg['protocol_version']}, config sha256 {made.config_sha256}")
    print(
        f"  {cfg['sampling']['n_items']} prompts drawn with seed {cfg['sampling']['seed']} from the "
        f"{len(cfg['sampling']['pool_ids'])} longest; sample sha256 {cfg['sampling']['sample_sha256']}"
    )
    print(
        f"  {made.n_items} items (incl. {cfg['catch_trials']['anchor']['n']} anchor and "
        f"{cfg['catch_trials']['repeat']['n']} repeat catch trials); frozen config in {Path(args.out) / 'study.json'}"
    )
    for name, ids in cfg["missing"]["by_system"].items():
        if ids:
            shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
            print(f"  missing clips for {name}: {len(ids)} ({shown})")
    print(f"  owner token (shown once; keep it): {made.owner_token}")
    _print_owner_access(made.study_id, "<server>")
    return 0


def _print_owner_access(study_id: int, base: str) -> None:
    # The token is never put in a URL: URLs end up in access logs and browser history.
    print(f"  owner page: {base}/owner/{study_id}/login (paste the token), or send it as a header:")
    print(f"    curl -H 'Authorization: Bearer <owner token>' {base}/owner/{study_id}/export.csv")


def _cmd_invite(args: argparse.Namespace) -> int:
    from .create import find_study
    from .db import init_db, make_engine, session_factory
    from .participation import invite

    engine = make_engine(_db_url(args.db))
    init_db(engine)
    try:
        with session_factory(engine)() as s:
            st = find_study(s, args.study)
            invs = invite(s, st, args.n, args.base_url)
    finally:
        engine.dispose()
    print("participant\ttoken\turl")
    for inv in invs:
        print(f"{inv.label}\t{inv.token}\t{inv.url}")
    return 0


def _cmd_reissue(args: argparse.Namespace) -> int:
    from .create import find_study
    from .db import make_engine, session_factory
    from .participation import reissue

    engine = make_engine(_db_url(args.db))
    try:
        with session_factory(engine)() as s:
            st = find_study(s, args.study)
            inv = reissue(s, st, args.participant, args.base_url)
            study_name = st.name
    finally:
        engine.dispose()
    print("participant\ttoken\turl")
    print(f"{inv.label}\t{inv.token}\t{inv.url}")
    print(
        f"logged: study {study_name!r}: re-issued the invitation of {inv.label}; answers kept, the old link and "
        "session no longer work; the new link resumes at the next unanswered question",
        file=sys.stderr,
    )
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .logs import uvicorn_log_config
    from .server import create_app

    app = create_app(_db_url(args.db))
    print(f"serving {_shown_url(_db_url(args.db))} at http://{args.host}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
    # uvicorn's own logging, with invitation / audio / owner tokens redacted from every line
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", log_config=uvicorn_log_config())
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .create import find_study
    from .db import make_engine, session_factory
    from .export import export_study

    engine = make_engine(_db_url(args.db))
    try:
        with session_factory(engine)() as s:
            ex = export_study(s, find_study(s, args.study))
    finally:
        engine.dispose()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "responses.json").write_text(ex.json_text + "\n", encoding="utf-8")
    (args.out / "responses.csv").write_text(ex.csv_text, encoding="utf-8")
    print(f"{ex.n_responses} responses -> {args.out}/responses.{{csv,json}}; database sha256 {ex.database_sha256}")
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis import analyze, load_from_db, load_from_export, write_outputs

    data = load_from_export(args.export) if args.export else load_from_db(_db_url(args.db), args.study)
    res = analyze(data, n_boot=args.n_boot, seed=args.seed, confidence=args.confidence)
    files = write_outputs(res, args.out)
    print(res.table5.to_string(index=False))
    s = res.summary
    print(
        f"{s['n_main_votes_used']} main votes from {s['n_raters_included']} of the {s['n_raters']} raters who "
        f"answered ({s['n_invited']} invited); excluded: {s['excluded'] or 'none'}"
    )
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


def _cmd_owner_token(args: argparse.Namespace) -> int:
    from .create import find_study, rotate_owner_token
    from .db import make_engine, session_factory

    engine = make_engine(_db_url(args.db))
    try:
        with session_factory(engine)() as s:
            st = find_study(s, args.study)
            token = rotate_owner_token(s, st)
            sid = st.id
    finally:
        engine.dispose()
    print(f"owner token: {token}")
    _print_owner_access(sid, args.base_url.rstrip("/"))
    return 0


COMMANDS = {
    "create": _cmd_create,
    "invite": _cmd_invite,
    "reissue": _cmd_reissue,
    "serve": _cmd_serve,
    "export": _cmd_export,
    "analyze": _cmd_analyze,
    "owner-token": _cmd_owner_token,
}


def main(argv: list[str] | None = None, prog: str = "userstudy") -> int:
    """`prog` is the name usage lines show (`bench study` when forwarded from bench)."""
    from .audio import ClipError
    from .create import StudyError
    from .sources import SourceError

    args = build_parser(prog).parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (StudyError, SourceError, ClipError, ValueError) as e:
        print(f"userstudy {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
