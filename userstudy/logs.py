"""Secrets stay out of logs: a logging filter that redacts tokens from every log line.

What is redacted, wherever it appears in a message, its arguments or a formatted traceback:
the path segment after ``/join/`` (invitation tokens) and ``/audio/`` (per-participant audio
tokens), the value of ``token=`` / ``key=`` / ``session=`` query parameters (the owner token is
refused in URLs, but a request that tries still reaches the access log), ``Bearer`` credentials,
and the values of the study's cookies (``gb_session``, ``gb_owner_<id>``).

``install`` puts the filter on the uvicorn and userstudy loggers and on their handlers (a logger
filter alone misses records propagated from child loggers; a handler filter alone misses
handlers added later); ``uvicorn_log_config`` is uvicorn's default logging configuration with
the filter on both of its handlers, for ``userstudy serve``.
"""

from __future__ import annotations

import copy
import logging
import re

REDACTED = "[redacted]"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(/(?:join|audio)/)[^\s/?#\"']+"), r"\1" + REDACTED),
    (re.compile(r"([?&](?:token|key|session|owner_token)=)[^&\s\"'#]*", re.IGNORECASE), r"\1" + REDACTED),
    (re.compile(r"(\bBearer\s+)[^\s\"',;]+", re.IGNORECASE), r"\1" + REDACTED),
    (re.compile(r"(\b(?:gb_session|gb_owner_\w+)=)[^;\s\"',]+"), r"\1" + REDACTED),
)
LOGGER_NAMES = ("uvicorn", "uvicorn.error", "uvicorn.access", "userstudy", "userstudy.owner")


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites the record in place (message, arguments, traceback); never drops it.

    The check is made on the formatted message (a token may sit in an argument while ``/join/``
    sits in the template). When redacting the string arguments one by one gives the same text,
    the record keeps its template and argument tuple (uvicorn's access formatter unpacks
    ``record.args`` positionally); otherwise the record carries the redacted text alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            full = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: redact what can be redacted
            full = None
        if full is None:
            if isinstance(record.msg, str):
                record.msg = redact(record.msg)
            if isinstance(record.args, tuple):
                record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        else:
            clean = redact(full)
            if clean != full:
                args = record.args
                if isinstance(args, tuple):
                    args = tuple(redact(a) if isinstance(a, str) else a for a in args)
                elif isinstance(args, dict):
                    args = {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}
                try:
                    same = (str(record.msg) % args if args else str(record.msg)) == clean
                except (TypeError, ValueError, KeyError):
                    same = False
                if same:
                    record.args = args
                else:
                    record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def _add(target: logging.Logger | logging.Handler) -> None:
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(RedactingFilter())


def install(names: tuple[str, ...] = LOGGER_NAMES) -> None:
    """Idempotent: the filter on each named logger, its handlers and the root logger's handlers."""
    for name in names:
        logger = logging.getLogger(name)
        _add(logger)
        for h in logger.handlers:
            _add(h)
    for h in logging.getLogger().handlers:
        _add(h)


def uvicorn_log_config() -> dict:
    """uvicorn's default LOGGING_CONFIG with the redacting filter on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg.setdefault("filters", {})["redact_tokens"] = {"()": "userstudy.logs.RedactingFilter"}
    for h in cfg.get("handlers", {}).values():
        h.setdefault("filters", []).append("redact_tokens")
    return cfg
