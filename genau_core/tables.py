"""Reading the official CSV formats strictly: every bad row is an error naming file and line.

Quotes are parsed strictly (csv `strict=True`): a quoted field that is never closed, or whose
closing quote is followed by anything but a comma or the line end, is an error naming the line
where the field opened. Without it, an unterminated quote silently swallows the following rows
into one caption (up to the next quote in the file, or to the end of the file). Quoted fields
that legitimately span lines (AudioCaps captions) are read as before.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

from genau_core.errors import SplitError


def require_utf8(path: Path) -> None:
    """A manifest is UTF-8 text: the first byte that is not names its line and column."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SplitError(f"{path}: cannot open ({e.strerror})") from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise SplitError(
            f"{path}:{line}: byte 0x{data[e.start]:02x} at column {column} is not UTF-8; save the file as UTF-8"
        ) from None


def read_csv_rows(path: Path, required: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number where the record starts, row) with quoted commas/newlines handled by csv."""
    try:
        f = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise SplitError(f"{path}: cannot open ({e.strerror})") from None
    with f:
        reader = csv.reader(f, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise SplitError(f"{path}: empty file, expected a header with columns {required}") from None
        except csv.Error as e:
            raise SplitError(f"{path}:1: malformed CSV header ({e})") from None
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise SplitError(f"{path}:1: missing column(s) {missing}; found {header}")
        start = reader.line_num + 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise SplitError(_csv_error(path, start, reader.line_num, e)) from None
            line, start = start, reader.line_num + 1
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise SplitError(
                    f"{path}:{line}: expected {len(header)} fields ({', '.join(header)}), got {len(values)}"
                )
            yield line, dict(zip(header, values))


def _csv_error(path: Path, start: int, reached: int, e: csv.Error) -> str:
    msg = str(e)
    if "unexpected end of data" in msg or "expected after" in msg:
        where = "the end of the file" if "end of data" in msg else f"line {reached}"
        return (
            f"{path}:{start}: unterminated quote: a quoted field opened on this line runs to {where} "
            f"({msg}), swallowing the rows in between; close the quote, and write a quote inside a "
            'quoted field as ""'
        )
    return f"{path}:{start}: malformed CSV ({msg})"


def read_jsonl_rows(path: Path, required: list[str]) -> Iterator[tuple[int, dict]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise SplitError(f"{path}: cannot open ({e.strerror})") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise SplitError(f"{path}:{n}: invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(row, dict):
            raise SplitError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
        missing = [c for c in required if c not in row]
        if missing:
            raise SplitError(f"{path}:{n}: missing field(s) {missing}")
        yield n, row
