"""Secrets: invitation, session, owner and audio-URL tokens. Only SHA-256 hashes of the
invitation, session and owner tokens are stored, so a leaked database grants no access."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets


def new_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def completion_code() -> str:
    return "GB-" + secrets.token_hex(4).upper()


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
