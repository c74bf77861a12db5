"""Comparison rows and the markdown table shared by passt_parity.py and openl3_parity.py.

`rel` follows benchmarks/parity/our_side.py: max|ours - ref| / max|ref| for tensors and
|ours - ref| / |ref| for scalars; pass = rel <= 1e-4.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

RTOL = 1e-4


@dataclass
class Row:
    backbone: str
    level: str
    quantity: str
    ours: str
    ref: str
    abs: float
    rel: float
    ok: bool


class Rows(list):
    def tensor(self, backbone: str, level: str, quantity: str, ours, ref) -> Row:
        a, b = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
        if a.shape != b.shape:
            row = Row(backbone, level, quantity, str(a.shape), str(b.shape), math.nan, math.nan, False)
        else:
            d = float(np.max(np.abs(a - b))) if a.size else 0.0
            scale = float(np.max(np.abs(b))) if b.size else 0.0
            rel = d / scale if scale > 0 else d
            row = Row(backbone, level, quantity, str(a.shape), f"max abs {scale:.4g}", d, rel, rel <= RTOL)
        self.append(row)
        return row

    def scalar(self, backbone: str, level: str, quantity: str, ours: float, ref: float) -> Row:
        d = abs(float(ours) - float(ref))
        rel = d / abs(float(ref)) if ref != 0 else d
        row = Row(backbone, level, quantity, f"{ours:.8g}", f"{ref:.8g}", d, rel, rel <= RTOL)
        self.append(row)
        return row

    def exact(self, backbone: str, level: str, quantity: str, n_diff: int, n_total: int) -> Row:
        row = Row(
            backbone,
            level,
            quantity,
            f"{n_total} tensors",
            "bit-exact",
            float(n_diff),
            0.0 if n_diff == 0 else math.nan,
            n_diff == 0,
        )
        self.append(row)
        return row

    def markdown(self, intro: str) -> str:
        def fmt(v: float) -> str:
            return "nan" if isinstance(v, float) and math.isnan(v) else f"{v:.2e}"

        lines = [
            intro,
            "",
            "| backbone | level | quantity | ours | reference | abs diff | rel diff | pass |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self:
            lines.append(
                f"| {r.backbone} | {r.level} | {r.quantity} | {r.ours} | {r.ref} | {fmt(r.abs)} | "
                f"{fmt(r.rel)} | {'yes' if r.ok else 'NO'} |"
            )
        return "\n".join(lines) + "\n"

    def save(self, path: Path) -> None:
        path.write_text(json.dumps([asdict(r) for r in self], indent=1))

    def print(self) -> None:
        for r in self:
            print(
                f"{'ok ' if r.ok else 'BAD'} {r.backbone:8s} {r.level:10s} {r.quantity:60s} "
                f"abs={r.abs:9.2e} rel={r.rel:9.2e}"
            )
