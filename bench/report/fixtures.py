"""Synthetic run stores in the records' format, for tests and benchmarks/bench_report_load.py.

Each run folder gets a manifest, one short WAV per clip (one file written, the others hard links
to it, so 8000 clips cost one file), a results record with a `protocol` object and a per-clip
parquet sidecar named by `per_clip_file`, exactly as `bench run` writes them. Values are drawn
from a seeded generator, or given by `values(model, clip_index, column)`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.runs.store import RunStore
from bench.splits.base import clip_set_identity

GENAU_COLUMNS = {  # column -> (metric, backbone, per clip)
    "FD_panns-cnn14@16k": ("FD", "panns-cnn14-16k", False),
    "IS_panns-cnn14@16k": ("IS", "panns-cnn14-16k", False),
    "KL_softmax_panns-cnn14@16k": ("KL_softmax", "panns-cnn14-16k", True),
    "FAD_vggish@16k": ("FAD", "vggish", False),
    "CLAP_LAION_laion-clap-htsat-base@48k": ("CLAP_LAION", "laion-clap-htsat-base", True),
    "CLAP_MS_ms-clap-2023@44.1k": ("CLAP_MS", "ms-clap-2023", True),
}


@dataclass
class FakeRun:
    model: str
    settings_hash: str
    path: Path
    record: dict
    per_clip: pd.DataFrame | None


@dataclass
class FakeStoreSpec:
    split: str = "demo"
    models: tuple[str, ...] = ("model-a", "model-b")
    n_prompts: int = 10
    prompts: dict[int, str] = field(default_factory=dict)  # clip index -> prompt (others: "sound number i")
    columns: dict[str, tuple[str, str, bool]] = field(default_factory=lambda: dict(GENAU_COLUMNS))
    weights: str = "random"  # model and backbone weights of every record
    protocol: str = "genau"
    per_clip_file: bool = True  # False: records as written before per-clip sidecars
    seconds: float = 1.0
    seed: int = 0


def _wav(path: Path, seconds: float, freq: float) -> None:
    import soundfile as sf

    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000, subtype="FLOAT")


def _link_or_write(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        dst.write_bytes(src.read_bytes())


def make_store(
    root: str | Path, spec: FakeStoreSpec | None = None, values: Callable[[str, int, str], float] | None = None
) -> list[FakeRun]:
    """Write a run store under `root`; -> the runs written (record and per-clip table included)."""
    spec = spec or FakeStoreSpec()
    root = Path(root)
    rng = np.random.default_rng(spec.seed)
    ids = [f"clip{i:05d}" for i in range(spec.n_prompts)]
    prompts = {cid: spec.prompts.get(i, f"sound number {i}") for i, cid in enumerate(ids)}
    store = RunStore(root)
    master = root / ".fixture-audio"
    master.mkdir(parents=True, exist_ok=True)
    out = []
    for m_i, model in enumerate(spec.models):
        digest = hashlib.sha256(f"{model}-{spec.seed}".encode()).hexdigest()[:16]
        run = store.run_dir(spec.split, model, digest)
        run.clips_dir.mkdir(parents=True, exist_ok=True)
        run.results_dir.mkdir(parents=True, exist_ok=True)
        src = master / f"{model}.wav"
        if not src.exists():
            _wav(src, spec.seconds, 220.0 * (m_i + 1))
        for cid in ids:
            if not run.clip_path(cid).exists():
                _link_or_write(src, run.clip_path(cid))
        manifest = {
            "manifest_version": 1,
            "created": "2026-12-06T00:00:00+00:00",
            "settings_hash": digest,
            "split": {"name": spec.split, "n_prompts": len(ids), "prompt_list_sha256": "ab" * 32},
            "settings": {"model": model},
            "clips": {cid: {"prompt": prompts[cid], "seed": i} for i, cid in enumerate(ids)},
        }
        (run.path / "manifest.json").write_text(__import__("json").dumps(manifest), encoding="utf-8")
        per = {"clip_id": ids}
        metrics = []
        for column, (metric, backbone, is_per_clip) in spec.columns.items():
            if is_per_clip:
                vals = np.array([values(model, i, column) if values else rng.normal(0.3, 0.1) for i in range(len(ids))])
                per[column] = vals
                value = float(np.nanmean(vals))
            else:
                value = float(values(model, -1, column)) if values else float(rng.uniform(1, 30))
            metrics.append(
                {
                    "metric": metric,
                    "column": column,
                    "value": value,
                    "ci_low": value * 0.9,
                    "ci_high": value * 1.1,
                    "n": len(ids),
                    "backbone": backbone,
                    "reason": "",
                }
            )
        key = hashlib.sha256(f"{model}-{spec.protocol}".encode()).hexdigest()[:16]
        table = pd.DataFrame(per)
        record = _record(spec, model, digest, key, ids, metrics)
        if spec.per_clip_file:
            name = f"{key}.per_clip.parquet"
            table.to_parquet(run.results_dir / name, index=False)
            record["per_clip_file"] = name
        run.write_result(key, record)
        out.append(FakeRun(model, digest, run.path, record, table if spec.per_clip_file else None))
    return out


def _record(spec: FakeStoreSpec, model: str, digest: str, key: str, ids: list[str], metrics: list[dict]) -> dict:
    backbones = sorted({m["backbone"] for m in metrics})
    return {
        "record_version": 2,
        "scoring_key": key,
        "date": "2026-12-06T00:00:00+00:00",
        "protocol_version": "gb-2",
        "protocol": {"name": spec.protocol, "version": "gb-2"},
        "split": spec.split,
        "prompt_list_sha256": "ab" * 32,
        "split_n_prompts": len(ids),
        "reference_list_sha256": "cd" * 32,
        "model": model,
        "model_weights": spec.weights,
        "checkpoint_identity": f"{spec.weights}:{model}",
        "parameter_count": 1000,
        "training_data": "synthetic",
        "text_encoder": "none",
        "settings": {
            "model": model,
            "sampler": "DDIM",
            "steps": 10,
            "guidance": 3.0,
            "seed": 0,
            "candidates_per_prompt": 1,
            "output_sample_rate": 16000,
            "duration_s": spec.seconds,
            "overrides": {},
        },
        "settings_hash": digest,
        "n_prompts": len(ids),
        "n_generated": len(ids),
        "n_not_generated": 0,
        "n_failed": 0,
        "n_evaluated": len(ids),
        "n_missing_reference": 0,
        "metrics": metrics,
        "backbones": {
            b: {"name": b, "sample_rate": 16000, "checkpoint_id": f"{spec.weights}:seed=0", "weights": spec.weights}
            for b in backbones
        },
        "backbone_weights": spec.weights,
        "failures": [],
        "resampler": "reference",
        "prompt_set": clip_set_identity(ids),
        "reference_set": {"sha256": "ef" * 32, "n": len(ids)},
    }
