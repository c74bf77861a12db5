"""What a participant downloads for one opaque audio URL: the clip with its own inaudible dither.

Blinding (protocol gb-2, issue 14): the bytes of an audio response depend on the clip's samples
and on the URL token, never on which system made the clip, when its file was written, or whether
the item is a repeat.

- Dither: each URL token adds its own triangular (TPDF) dither of +-1 LSB at 16 bits to every
  sample: values -1, 0, +1 LSB with probabilities 1/4, 1/2, 1/4, i.e. RMS 0.71 LSB = -93.3 dBFS,
  peak 1 LSB = -90.3 dBFS (inaudible under any listening level that does not clip). About half of
  the samples change, so two downloads of the same clip under different tokens (a repeated pair
  and its first showing, the same clip in two comparisons, two participants) never hash alike.
  The dither's seed is HMAC-SHA256(key = the clip's random media file name, which never leaves
  the server, message = the token): a participant who knows the token and this code still cannot
  subtract the dither, and the same URL always returns the same bytes (range requests agree).
- Format: a canonical 44-byte RIFF/WAVE header (PCM, 16 bits, mono, the study's one rate) written
  here, not by the audio library, so headers are identical for every clip of a study.
- No validators: no Last-Modified and no ETag (the old ETag hashed the file's modification time).

A determined participant can still correlate two downloads sample by sample and see that a
repeat carries the same audio as its original, just as an attentive listener can hear it; the
repeat catch trial measures consistency, and what it must not allow is matching by file identity.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

DITHER_LSB = 1  # peak of the TPDF dither, in 16-bit LSBs


def dither_seed(media_name: str, token: str) -> int:
    digest = hmac.new(media_name.encode("utf-8"), token.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:16], "little")


def tpdf_dither(n: int, seed: int) -> np.ndarray:
    """n values in {-1, 0, +1} (difference of two fair bits): triangular, RMS sqrt(1/2) LSB."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, n, dtype=np.int8)
    b = rng.integers(0, 2, n, dtype=np.int8)
    return (a - b).astype(np.int32) * DITHER_LSB


def wav_header(n_samples: int, sample_rate: int) -> bytes:
    """The canonical 44-byte header of a 16-bit mono PCM WAV file."""
    data_bytes = 2 * n_samples
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, 2 * sample_rate, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def served_wav(path: Path, media_name: str, token: str) -> bytes:
    """The bytes served under `token` for the media file at `path` (mono 16-bit PCM WAV)."""
    x, sr = sf.read(str(path), dtype="int16", always_2d=True)
    pcm = x[:, 0].astype(np.int32) if x.shape[1] == 1 else np.round(x.mean(axis=1)).astype(np.int32)
    pcm += tpdf_dither(len(pcm), dither_seed(media_name, token))
    np.clip(pcm, -32768, 32767, out=pcm)
    return wav_header(len(pcm), int(sr)) + pcm.astype("<i2").tobytes()


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, total: int) -> ByteRange | None | str:
    """None: serve everything (no header, or a form we do not support such as several ranges);
    "unsatisfiable": answer 416; else the single inclusive range asked for."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":  # suffix range: the last N bytes
        n = int(last)
        if n == 0:
            return "unsatisfiable"
        return ByteRange(max(0, total - n), total - 1)
    start = int(first)
    end = total - 1 if last == "" else min(int(last), total - 1)
    if start >= total or end < start:
        return "unsatisfiable"
    return ByteRange(start, end)
