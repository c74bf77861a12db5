"""Reading the official CSV formats strictly: every bad row is an error naming file and line."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

from bench.splits.base import SplitError


def read_csv_rows(path: Path, required: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number where the record starts, row) with quoted commas/newlines handled by csv."""
    try:
        f = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise SplitError(f"{path}: cannot open ({e.strerror})") from None
    with f:
        reader = csv.reader(f)
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
                raise SplitError(f"{path}:{start}: malformed CSV ({e})") from None
            line, start = start, reader.line_num + 1
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise SplitError(f"{path}:{line}: expected {len(header)} fields ({', '.join(header)}), got {len(values)}")
            yield line, dict(zip(header, values))


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
