"""`run_recap`: the list -> shards -> engine -> shard tables -> manifest, statistics, figures.

Re-running with the same settings skips finished shards, redoes unfinished ones from
scratch (their leftovers are removed first) and rebuilds the combined outputs from the shard
tables; the combined outputs are deterministic, so an uninterrupted run, a resumed run and a
run with the other engine produce the same bytes.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from genau_core.files import atomic_write_json
from genau_core.recap import ray_procs
from genau_core.recap import tables as T
from genau_core.recap.engine import Engine, EngineSettings, make_engine
from genau_core.recap.fetch import Fetcher, LocalFetcher
from genau_core.recap.filters import FilterRules
from genau_core.recap.inputs import read_video_list
from genau_core.recap.segments import SegmentRules
from genau_core.recap.stages import (
    MEDIA_ERROR,
    NO_TRANSCRIPT,
    OK,
    CaptionedSegment,
    VideoPlan,
    WriteJob,
    clip_id,
    finalize_video,
)
from genau_core.recap.stats import compute_stats, write_figures
from genau_core.recap.store import Shard, Store, make_shards


@dataclass
class RecapConfig:
    videos: str | Path
    out: str | Path
    engine: str = "local"  # local | ray
    captioner: str = "autocap-tiny"
    checkpoint: str | None = None
    device: str = "auto"
    batch_size: int = 8
    shard_size: int = 100
    dataset_id: str = "autocap"  # GenAu's dataset-id name for AutoCap-captioned data
    write_clips: bool = True  # False: rows point into the source media (source, start, end)
    clip_sample_rate: int | None = 16000  # None: the source's rate
    segments: SegmentRules = field(default_factory=SegmentRules)
    filters: FilterRules = field(default_factory=FilterRules)
    fetcher: Fetcher = field(default_factory=LocalFetcher)
    ray_address: str | None = None
    ray_num_cpus: int | None = None
    caption_actors: int | None = None  # CPU caption actors when the Ray cluster has no GPU
    restart: bool = False
    progress: bool = True
    figures: bool = True

    def settings(self) -> dict:
        """What the outputs depend on: a folder made with other settings is not resumed."""
        return {
            "captioner": self.captioner,
            "checkpoint": self.checkpoint,
            "dataset_id": self.dataset_id,
            "write_clips": self.write_clips,
            "clip_sample_rate": self.clip_sample_rate,
            "segments": asdict(self.segments),
            "filters": {
                "merge": self.filters.merge,
                "max_clip_s": self.filters.max_clip_s,
                "keywords": list(self.filters.keywords),
            },
        }


@dataclass
class RecapResult:
    out: Path
    shards: int
    shards_skipped: int
    shards_run: int
    videos_run: int
    segments_run: int
    wall_s: float
    stats: dict
    errors: list[dict]
    warnings: list[dict] = field(default_factory=list)  # media that decode short, with both durations

    @property
    def manifest(self) -> Path:
        return self.out / "manifest.jsonl"

    @property
    def segments_per_s(self) -> float:
        return self.segments_run / self.wall_s if self.wall_s > 0 else 0.0


def _s(ms: int) -> float:
    return ms / 1000.0


def _error_entry(plan: VideoPlan) -> dict:
    return {
        "video_id": plan.item.video_id,
        "line": plan.item.line,
        "status": plan.status,
        "stage": plan.stage,
        "file": plan.error_file,
        "reason": plan.error,
    }


def _short_entry(plan: VideoPlan) -> dict:
    """A video whose audio decodes shorter than its file (or the list) declares."""
    declared = plan.media_declared_ms if plan.short_declared_by == "media" else plan.duration_ms
    return {
        "video_id": plan.item.video_id,
        "line": plan.item.line,
        "kind": "decoded_short",
        "file": plan.item.media or plan.item.video_id,
        "declared_by": plan.short_declared_by,
        "declared_duration": _s(declared),
        "decoded_duration": _s(plan.decoded_ms),
        "reason": plan.short_note,
    }


def _opt_s(ms: int) -> float | None:
    return None if ms < 0 else _s(ms)


def run_shard(shard: Shard, engine: Engine, cfg: RecapConfig, store: Store, settings_h: str) -> tuple[int, int]:
    """Process one shard and write its tables, then its done marker. Returns (videos, segments)."""
    store.reset(shard)
    desc = f"shard {shard.name}"
    plans, captioned = engine.caption_shard(shard.items, desc=desc)
    outcomes = {}
    jobs = []
    folder = store.clip_folder(shard)
    for plan in plans:
        segs: list[CaptionedSegment] = captioned.get(plan.vidx, []) if plan.status == OK else []
        kept, dropped = finalize_video(segs, cfg.filters, plan.segment_gaps)
        outcomes[plan.vidx] = (segs, kept, dropped)
        if cfg.write_clips and kept:
            jobs.append(WriteJob(plan.vidx, plan.item, kept, folder))
    written = {r.vidx: r for r in engine.write_shard(jobs, desc=desc)}

    rows = {"videos": [], "segments": [], "clips": [], "dropped": []}
    errors, warnings = [], []
    for plan in plans:
        segs, kept, dropped = outcomes[plan.vidx]
        vid = plan.item.video_id
        res = written.get(plan.vidx)
        if res is not None and res.error:
            plan.fail(MEDIA_ERROR, "write", res.error_file, res.error)
            kept = []
        label = segs[0].captioner if segs else ""
        for c in segs:
            rows["segments"].append(
                {
                    "video_id": vid,
                    "seg_idx": c.seg_idx,
                    "start": _s(c.start_ms),
                    "end": _s(c.end_ms),
                    "duration": _s(c.end_ms - c.start_ms),
                    "caption": c.caption,
                    "captioner": c.captioner,
                }
            )
        for c, hit in dropped:
            rows["dropped"].append(
                {
                    "video_id": vid, "start": _s(c.start_ms), "end": _s(c.end_ms), "duration": _s(c.duration_ms),
                    "n_segments": c.n_segments, "caption": c.caption, "keyword": hit.keyword, "reason": hit.reason,
                }
            )  # fmt: skip
        for k, c in enumerate(kept):
            rows["clips"].append(
                {
                    "id": clip_id(vid, c.start_ms, c.end_ms),
                    "caption": c.caption,
                    "audio": res.audio[k] if res is not None else "",
                    "dataset_id": cfg.dataset_id,
                    "video_id": vid,
                    "start": _s(c.start_ms),
                    "end": _s(c.end_ms),
                    "duration": _s(c.duration_ms),
                    "n_segments": c.n_segments,
                    "source": plan.item.media,
                    "sample_rate": res.sample_rate if res is not None else 0,
                    "captioner": label,
                }
            )
        rows["videos"].append(
            {
                "video_id": vid,
                "status": plan.status,
                "stage": plan.stage,
                "error_file": plan.error_file,
                "error": plan.error,
                "transcript_format": plan.transcript_format,
                "duration": _s(plan.duration_ms),
                "declared_duration": _opt_s(plan.media_declared_ms),
                "decoded_duration": _opt_s(plan.decoded_ms),
                "covered": _s(plan.covered_ms),
                "gap": _s(plan.gap_ms),
                "n_cues": plan.n_cues,
                "n_empty_cues": plan.n_empty_cues,
                "n_cues_past_end": plan.n_cues_past_end,
                "n_gaps": plan.n_gaps,
                "n_gaps_kept": plan.n_gaps_kept,
                "n_planned_segments": len(plan.segments),
                "n_short_audio": plan.n_short_audio,
                "n_segments": len(segs),
                "segment_time": _s(sum(c.end_ms - c.start_ms for c in segs)),
                "n_merged_clips": len(kept) + len(dropped) if plan.status == OK else 0,
                "n_dropped": len(dropped),
                "n_clips": len(kept),
                "clip_time": _s(sum(c.duration_ms for c in kept)),
            }
        )
        if plan.status not in (OK, NO_TRANSCRIPT):
            errors.append(_error_entry(plan))
        elif plan.short_note:
            warnings.append(_short_entry(plan))
    d = store.shard_dir(shard)
    for name, schema in T.SCHEMAS.items():
        T.write_parquet(T.to_table(rows[name], schema), d / f"{name}.parquet")
    atomic_write_json(d / "report.json", {"shard": shard.name, "errors": errors, "warnings": warnings})
    n_segments = len(rows["segments"])
    store.mark_done(
        shard,
        settings_h,
        {"videos": len(plans), "segments": n_segments, "clips": len(rows["clips"]), "errors": len(errors)},
    )
    cfg.fetcher.release(shard.items)
    return len(plans), n_segments


def combine(store: Store, shards: list[Shard], cfg: RecapConfig) -> tuple[dict, list[dict], list[dict]]:
    """Rebuild the combined outputs from the shard tables (deterministic)."""
    parts = {name: [] for name in T.SCHEMAS}
    errors: list[dict] = []
    warnings: list[dict] = []
    for shard in shards:
        d = store.shard_dir(shard)
        for name, schema in T.SCHEMAS.items():
            parts[name].append(T.read_parquet(d / f"{name}.parquet", schema))
        report = json.loads((d / "report.json").read_text())
        errors.extend(report["errors"])
        warnings.extend(report.get("warnings", []))
    tables = {name: T.concat(parts[name], schema) for name, schema in T.SCHEMAS.items()}
    clips = tables["clips"]
    ids = clips.column("id").to_pylist()
    if len(set(ids)) != len(ids):
        raise RuntimeError(f"{store.root}: duplicate clip ids across shards; rerun with --restart")
    root = store.root
    T.write_parquet(clips, root / "manifest.parquet")
    T.write_jsonl(clips.to_pylist(), root / "manifest.jsonl")
    for name in ("segments", "dropped", "videos"):
        T.write_parquet(tables[name], root / f"{name}.parquet")
    stats = compute_stats(tables["videos"], tables["segments"], clips, tables["dropped"])
    stats["settings"] = cfg.settings()
    stats["errors"] = len(errors)
    stats["warnings"] = len(warnings)
    atomic_write_json(root / "stats.json", stats)
    atomic_write_json(root / "report.json", {"errors": errors, "warnings": warnings})
    if cfg.figures:
        write_figures(stats, root / "figures")
    return stats, errors, warnings


def run_recap(cfg: RecapConfig) -> RecapResult:
    t0 = time.perf_counter()
    items = read_video_list(cfg.videos)
    _ = cfg.filters.keyword_filter  # compile the rules now: a bad rule stops the run before any work
    shards = make_shards(items, cfg.shard_size)
    store = Store(cfg.out)
    store.lock()
    engine: Engine | None = None
    try:
        stopped = ray_procs.stop_stale(Path(cfg.out) / ray_procs.PROC_FILE)  # a killed Ray run's agents
        if stopped:
            names = ", ".join(f"{e['name']} (pid {e['pid']})" for e in stopped)
            print(f"recap: stopped {len(stopped)} Ray processes left by a killed run on {cfg.out}: {names}",
                  file=sys.stderr)  # fmt: skip
        settings_h = store.check_settings(cfg.settings(), restart=cfg.restart)
        store.remove_stale(len(shards))
        todo = [s for s in shards if not store.is_done(s, settings_h)]
        n_videos = n_segments = 0
        if todo:
            es = EngineSettings(
                captioner=cfg.captioner,
                checkpoint=cfg.checkpoint,
                device=cfg.device,
                batch_size=cfg.batch_size,
                segments=cfg.segments,
                fetcher=cfg.fetcher,
                out_root=str(Path(cfg.out).resolve()),
                clip_sample_rate=cfg.clip_sample_rate,
                progress=cfg.progress,
            )
            ray_opts = (
                {"address": cfg.ray_address, "num_cpus": cfg.ray_num_cpus, "caption_actors": cfg.caption_actors}
                if cfg.engine == "ray"
                else {}
            )
            engine = make_engine(cfg.engine, es, **ray_opts)
            for shard in tqdm(todo, desc="shards", unit="shard", disable=not cfg.progress or len(todo) < 2):
                v, s = run_shard(shard, engine, cfg, store, settings_h)
                n_videos += v
                n_segments += s
        stats, errors, warnings = combine(store, shards, cfg)
        wall = time.perf_counter() - t0
        result = RecapResult(
            Path(cfg.out), len(shards), len(shards) - len(todo), len(todo), n_videos, n_segments, wall, stats, errors,
            warnings,
        )  # fmt: skip
        with open(Path(cfg.out) / "runs.jsonl", "a", encoding="utf-8") as f:
            f.write(
                json.dumps(
                    {
                        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                        "engine": cfg.engine,
                        "shards": len(shards),
                        "shards_skipped": result.shards_skipped,
                        "shards_run": result.shards_run,
                        "videos_run": n_videos,
                        "segments_run": n_segments,
                        "wall_s": round(wall, 3),
                        "segments_per_s": round(result.segments_per_s, 3),
                    }
                )
                + "\n"
            )
        return result
    finally:
        if engine is not None:
            engine.close()
        store.unlock()
