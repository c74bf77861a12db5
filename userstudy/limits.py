"""Size and type limits checked before a request body is read (ASGI middleware).

Every request body is capped at ``MAX_BODY_BYTES`` (4 KiB; a vote is about 50 bytes, a
playback event about 60, the owner login form about 40), whether or not the request is
authenticated: authentication is a dependency that FastAPI resolves only after it has read
the body, so the cap must come first. A declared ``Content-Length`` above the cap is answered
413 at once, without reading a byte; a chunked (or under-declared) body is read only up to
cap + 1 bytes and then answered 413. The 413 carries ``Connection: close`` so the server stops
reading the rest. JSON endpoints (``POST /api/...``) also need ``Content-Type:
application/json`` (415 otherwise), checked before the body is read.

Measured (tests/userstudy/test_userstudy_limits.py): a 300 MiB body, declared or chunked, logged in or
not, grows the server's RSS by a few MB at most; before this, a logged-out 300 MiB body took it
from 93 to 967 MiB before the 401.
"""

from __future__ import annotations

import json

MAX_BODY_BYTES = 4096
JSON_PREFIXES = ("/api/",)


def _error(status: int, code: str, message: str) -> tuple[dict, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"detail": {"code": code, "message": message}}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    return {"type": "http.response.start", "status": status, "headers": headers}, headers, body


async def _send_error(send, status: int, code: str, message: str) -> None:
    start, _, body = _error(status, code, message)
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BodyLimitMiddleware:
    """Answers 413 / 415 before the application (and its authentication) sees the request."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        too_large = f"Request bodies are limited to {self.max_bytes} bytes."
        declared = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                await _send_error(send, 400, "bad_content_length", "Content-Length is not a number.")
                return
            if n > self.max_bytes:
                await _send_error(send, 413, "body_too_large", too_large)
                return
        if scope.get("method") == "POST" and scope.get("path", "").startswith(JSON_PREFIXES):
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if ctype != b"application/json":
                await _send_error(send, 415, "unsupported_media_type", "Send the request body as application/json.")
                return
        if not chunked and not declared:
            await self.app(scope, receive, send)
            return
        # Read at most max_bytes + 1 bytes, then hand the (small) body to the app in one piece.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await _send_error(send, 413, "body_too_large", too_large)
                return
            chunks.append(body)
            more = message.get("more_body", False)
        whole = b"".join(chunks)
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
