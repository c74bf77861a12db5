"""Timed transcripts -> cues: WebVTT, SubRip (SRT) and YouTube's json3 timed text.

Only *when* something is said matters to the pipeline (the paper keeps the parts of a video
that no subtitle covers), so a cue is (start_ms, end_ms, text) in integer milliseconds.

Rules (one place, applied the same way to the three formats):
- a cue whose text is empty once markup is removed (YouTube's auto captions carry many such
  layout cues) is skipped and counted in `Transcript.n_empty`; a cue with text, even
  "[Music]", counts as speech/music;
- a zero-length cue (start == end) is kept: it marks an instant that splits a gap;
- a cue that ends before it starts, a negative or unparsable timestamp, a block without a
  timing line, a missing header, invalid JSON or an empty file make the transcript
  malformed: `TranscriptError` names the file, the line (or event) and the reason;
- a file with a valid header and no cues is valid and has no speech.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

from genau_core.errors import GenauBenchError

FORMATS = ("vtt", "srt", "json3")


class TranscriptError(GenauBenchError, ValueError):
    """A transcript that cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True)
class Transcript:
    format: str
    cues: tuple[Cue, ...]
    n_empty: int = 0  # cues skipped because their text was empty


_TAG = re.compile(r"<[^>]*>")
_SRT_STYLE = re.compile(r"\{\\[^}]*\}")
_VTT_TS = r"(?:(\d+):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_VTT_TIMING = re.compile(rf"^\s*{_VTT_TS}[ \t]+-->[ \t]+{_VTT_TS}(?:[ \t]+.*)?$")
_SRT_TS = r"(\d+):([0-5]?\d):([0-5]?\d)[,.](\d{1,3})"
_SRT_TIMING = re.compile(rf"^\s*{_SRT_TS}[ \t]*-->[ \t]*{_SRT_TS}(?:[ \t]+.*)?$")


def _ms(h: str | None, m: str, s: str, frac: str) -> int:
    frac = (frac + "00")[:3]  # SRT writers sometimes use 1 or 2 digits: ",5" is 500 ms
    return ((int(h or 0) * 60 + int(m)) * 60 + int(s)) * 1000 + int(frac)


def _clean(text: str) -> str:
    text = _SRT_STYLE.sub("", _TAG.sub("", text))
    return " ".join(html.unescape(text).split())


def _blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Blank-line separated blocks as (1-based line number of the block's first line, lines)."""
    out, cur, first = [], [], 0
    for n, line in enumerate(lines, start=1):
        if line.strip():
            if not cur:
                first = n
            cur.append(line.rstrip("\r"))
        elif cur:
            out.append((first, cur))
            cur = []
    if cur:
        out.append((first, cur))
    return out


def _add(path, cues: list[Cue], where: str, start: int, end: int, text: str) -> int:
    if end < start:
        raise TranscriptError(path, f"{where}: cue ends ({end} ms) before it starts ({start} ms)")
    if not text:
        return 1
    cues.append(Cue(start, end, text))
    return 0


def parse_vtt(text: str, path: str | Path = "<vtt>") -> Transcript:
    if not text.lstrip("\ufeff").strip():
        raise TranscriptError(path, "empty file")
    lines = text.lstrip("\ufeff").split("\n")
    if not lines or not re.match(r"^WEBVTT(?:[ \t].*)?$", lines[0].rstrip("\r")):
        raise TranscriptError(path, "line 1: missing 'WEBVTT' header")
    cues: list[Cue] = []
    n_empty = 0
    for first, block in _blocks(lines):
        if first == 1:  # the header block: 'WEBVTT' plus header lines such as 'Kind: captions'
            bad = next((i for i, line in enumerate(block) if "-->" in line), None)
            if bad is not None:
                raise TranscriptError(
                    path, f"line {1 + bad}: cue inside the header block (a blank line must follow the header)"
                )
            continue
        head = block[0].lstrip()
        if head.startswith(("NOTE", "STYLE", "REGION")) and "-->" not in head:
            continue
        timing_at = next((i for i, line in enumerate(block[:2]) if "-->" in line), None)
        if timing_at is None:
            raise TranscriptError(path, f"line {first}: cue block without a timing line ({block[0][:60]!r})")
        m = _VTT_TIMING.match(block[timing_at])
        if not m:
            raise TranscriptError(path, f"line {first + timing_at}: malformed timing line {block[timing_at][:80]!r}")
        g = m.groups()
        start, end = _ms(*g[:4]), _ms(*g[4:])
        n_empty += _add(path, cues, f"line {first + timing_at}", start, end, _clean(" ".join(block[timing_at + 1 :])))
    return Transcript("vtt", tuple(cues), n_empty)


def parse_srt(text: str, path: str | Path = "<srt>") -> Transcript:
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise TranscriptError(path, "empty file")
    cues: list[Cue] = []
    n_empty = 0
    for first, block in _blocks(text.split("\n")):
        timing_at = 1 if len(block) > 1 and block[0].strip().isdigit() else 0
        m = _SRT_TIMING.match(block[timing_at])
        if not m:
            raise TranscriptError(
                path,
                f"line {first + timing_at}: expected a timing line 'HH:MM:SS,mmm --> HH:MM:SS,mmm', got "
                f"{block[timing_at][:80]!r}",
            )
        g = m.groups()
        start, end = _ms(*g[:4]), _ms(*g[4:])
        n_empty += _add(path, cues, f"line {first + timing_at}", start, end, _clean(" ".join(block[timing_at + 1 :])))
    return Transcript("srt", tuple(cues), n_empty)


def _number(path, where: str, value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TranscriptError(path, f"{where}: '{name}' is not a number ({value!r})")
    if value < 0:
        raise TranscriptError(path, f"{where}: negative '{name}' ({value})")
    return int(round(value))


def parse_json3(text: str, path: str | Path = "<json3>") -> Transcript:
    """YouTube timed text (`fmt=json3`): {"events": [{"tStartMs", "dDurationMs", "segs": [{"utf8"}]}]}.

    Events without `segs` set up windows and pens and carry no text. A text event without
    `dDurationMs` lasts until the next event starts (conservative: it is treated as speech).
    """
    if not text.strip():
        raise TranscriptError(path, "empty file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise TranscriptError(path, f"invalid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise TranscriptError(path, "no 'events' list (not YouTube json3 timed text)")
    parsed: list[tuple[int, int | None, str, str]] = []
    starts: list[int] = []
    for i, ev in enumerate(events):
        where = f"event {i}"
        if not isinstance(ev, dict):
            raise TranscriptError(path, f"{where}: expected an object, got {type(ev).__name__}")
        if "tStartMs" not in ev:
            raise TranscriptError(path, f"{where}: missing 'tStartMs'")
        start = _number(path, where, ev["tStartMs"], "tStartMs")
        starts.append(start)
        segs = ev.get("segs")
        if segs is None:
            continue
        if not isinstance(segs, list) or not all(isinstance(s, dict) for s in segs):
            raise TranscriptError(path, f"{where}: 'segs' must be a list of objects")
        dur = _number(path, where, ev["dDurationMs"], "dDurationMs") if "dDurationMs" in ev else None
        parsed.append((start, dur, _clean("".join(str(s.get("utf8", "")) for s in segs)), where))
    later = sorted(set(starts))
    cues: list[Cue] = []
    n_empty = 0
    for start, dur, body, where in parsed:
        if dur is None:
            nxt = next((s for s in later if s > start), start)
            dur = nxt - start
        n_empty += _add(path, cues, where, start, start + dur, body)
    return Transcript("json3", tuple(cues), n_empty)


PARSERS = {"vtt": parse_vtt, "srt": parse_srt, "json3": parse_json3}


def detect_format(path: Path, text: str) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("vtt", "webvtt"):
        return "vtt"
    if suffix == "srt":
        return "srt"
    if suffix in ("json3", "json"):
        return "json3"
    head = text.lstrip("\ufeff").lstrip()
    if head.startswith("WEBVTT"):
        return "vtt"
    if head.startswith("{"):
        return "json3"
    return "srt"


def read_transcript(path: str | Path, fmt: str | None = None) -> Transcript:
    """Parse a transcript file; the format comes from `fmt`, the suffix, or the content."""
    path = Path(path)
    if not path.is_file():
        raise TranscriptError(path, "transcript file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise TranscriptError(path, f"not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise TranscriptError(path, f"cannot read ({e.strerror})") from None
    fmt = fmt or detect_format(path, text)
    if fmt not in PARSERS:
        raise TranscriptError(path, f"unknown transcript format {fmt!r}; one of {', '.join(FORMATS)}")
    return PARSERS[fmt](text.replace("\r\n", "\n"), path)
