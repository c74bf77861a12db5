"""The Ray Data engine: the same stages as the local engine, spread over a Ray cluster.

One shard is two Ray Data executions:

    from_items(videos)
      .map_batches(plan + decode, tasks)                 one video per task, CPU
      .map_batches(caption, ActorPoolStrategy actors)     one actor per GPU (num_gpus=1) when the
                                                          cluster has GPUs, else `caption_actors`
                                                          CPU actors; the model loads once per actor
    -> driver: merge + keyword filter (cheap, per video)
    from_items(write jobs).map_batches(write clips, tasks)

Rows carry the audio as float32 bytes at the media's native rate; the actor resamples it as the
local engine does (to the clip rate, as written, then to its captioner's rate). Plans travel as
JSON on their own rows through the caption stage. The driver sorts everything by (video,
segment), so the result does not depend on the order in which Ray finishes work: with a
captioner whose caption of a clip does not depend on the other clips in its batch, the manifest
is byte-identical to the local engine's.

Uses `compute=` (ActorPoolStrategy / TaskPoolStrategy): `concurrency=` is deprecated since 2.51.

On a multi-node cluster (`--ray-address`), every node needs this package installed (with
`[recap]`), and the media, the transcripts and the --out folder on storage all nodes see:
clips are written by the workers, shard tables and done markers by the driver.

A local Ray instance (no `--ray-address`) is recorded in `OUT/.ray_processes.json`; a run killed
with SIGKILL leaves Ray agent processes behind, and the next run on the same folder (with either
engine) stops them (`ray_procs.py`, which also says how to stop them by hand).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from genau_core.recap import ray_procs
from genau_core.recap.engine import CaptionedShard, Engine, EngineSettings
from genau_core.recap.inputs import VideoItem
from genau_core.recap.stages import (
    CaptionedSegment,
    DecodedSegment,
    VideoPlan,
    WriteJob,
    WriteResult,
    caption_segments,
    decode_segments,
    plan_video,
    write_clips,
)

DECODED = pa.schema(
    [
        ("vidx", pa.int64()),
        ("seg_idx", pa.int64()),  # -1 on the plan row of a video
        ("start_ms", pa.int64()),
        ("end_ms", pa.int64()),
        ("sample_rate", pa.int64()),
        ("wave", pa.binary()),
        ("meta", pa.string()),
        ("plan", pa.string()),
    ]
)
CAPTIONED = pa.schema(
    [
        ("vidx", pa.int64()),
        ("seg_idx", pa.int64()),
        ("start_ms", pa.int64()),
        ("end_ms", pa.int64()),
        ("caption", pa.string()),
        ("captioner", pa.string()),
        ("plan", pa.string()),
    ]
)
WRITTEN = pa.schema([("result", pa.string())])


def _plan_decode(batch: pa.Table, segments, fetcher) -> pa.Table:
    rows = []
    for vidx, text in zip(batch.column("vidx").to_pylist(), batch.column("item").to_pylist()):
        item = VideoItem.from_json(text)
        plan = plan_video(vidx, item, segments, fetcher)
        meta = json.dumps(item.metadata, ensure_ascii=False)
        for d in decode_segments(plan, fetcher, segments):
            rows.append(
                {
                    "vidx": vidx,
                    "seg_idx": d.seg_idx,
                    "start_ms": d.start_ms,
                    "end_ms": d.end_ms,
                    "sample_rate": d.sample_rate,
                    "wave": np.ascontiguousarray(d.wave, dtype="<f4").tobytes(),
                    "meta": meta,
                    "plan": "",
                }
            )
        rows.append(
            {
                "vidx": vidx,
                "seg_idx": -1,
                "start_ms": 0,
                "end_ms": 0,
                "sample_rate": 0,
                "wave": b"",
                "meta": "",
                "plan": plan.to_json(),
            }
        )
    return pa.Table.from_pylist(rows, schema=DECODED)


class _CaptionActor:
    def __init__(
        self, captioner: str, checkpoint: str | None, device: str, batch_size: int, clip_sample_rate: int | None = None
    ):
        import ray

        from genau_core.recap.caption import captioner_label, load_captioner, resolve_device

        if device == "auto":
            device = "cuda" if ray.get_gpu_ids() else "cpu"
        self.cap = load_captioner(captioner, device=resolve_device(device), checkpoint=checkpoint)
        self.label = captioner_label(self.cap)
        self.batch_size = batch_size
        self.clip_sample_rate = clip_sample_rate

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        segs = [r for r in rows if r["seg_idx"] >= 0]
        decoded = [
            DecodedSegment(
                r["vidx"],
                r["seg_idx"],
                r["start_ms"],
                r["end_ms"],
                np.frombuffer(r["wave"], dtype="<f4"),
                r["sample_rate"],
            )
            for r in segs
        ]
        meta = [json.loads(r["meta"]) for r in segs]
        caps = []
        if segs:
            caps = caption_segments(self.cap, self.label, decoded, meta, self.batch_size, self.clip_sample_rate)
        out = [
            {
                "vidx": d.vidx,
                "seg_idx": c.seg_idx,
                "start_ms": c.start_ms,
                "end_ms": c.end_ms,
                "caption": c.caption,
                "captioner": c.captioner,
                "plan": "",
            }
            for d, c in zip(decoded, caps)
        ]
        out += [
            {
                "vidx": r["vidx"],
                "seg_idx": -1,
                "start_ms": 0,
                "end_ms": 0,
                "caption": "",
                "captioner": "",
                "plan": r["plan"],
            }
            for r in rows
            if r["seg_idx"] < 0
        ]
        return pa.Table.from_pylist(out, schema=CAPTIONED)


def _write(batch: pa.Table, out_root: str, clip_sample_rate, fetcher) -> pa.Table:
    results = [
        write_clips(WriteJob.from_json(t), out_root, clip_sample_rate, fetcher).to_json()
        for t in batch.column("job").to_pylist()
    ]
    return pa.Table.from_pylist([{"result": r} for r in results], schema=WRITTEN)


class RayEngine(Engine):
    name = "ray"

    def __init__(
        self,
        settings: EngineSettings,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        caption_actors: int | None = None,
    ):
        super().__init__(settings)
        import ray

        self._ray = ray
        self._owns = False
        self._proc_file: Path | None = None
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": settings.progress}
            if address:
                kwargs["address"] = address
            else:
                self._proc_file = Path(settings.out_root) / ray_procs.PROC_FILE  # runner stopped stale ones
                if num_cpus:
                    kwargs["num_cpus"] = num_cpus
            ray.init(**kwargs)
            self._owns = True
            self._record()
        res = ray.cluster_resources()
        self.n_gpus = int(res.get("GPU", 0))
        self.n_cpus = max(1, int(res.get("CPU", 1)))
        self.caption_actors = self.n_gpus if self.n_gpus else max(1, caption_actors or 1)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = settings.progress

    def _record(self) -> None:
        """(Re)write the list of this driver's Ray processes (agents start after `ray.init`)."""
        if self._proc_file is not None:
            self._proc_file.parent.mkdir(parents=True, exist_ok=True)
            ray_procs.record(self._proc_file)

    def _blocks(self, n: int) -> int:
        return max(1, min(n, 4 * self.n_cpus))

    def caption_shard(self, items: Sequence[VideoItem], desc: str = "") -> CaptionedShard:
        rd = self._ray.data
        s = self.s
        ds = rd.from_items(
            [{"vidx": i, "item": it.to_json()} for i, it in enumerate(items)],
            override_num_blocks=self._blocks(len(items)),
        )
        ds = ds.map_batches(
            _plan_decode,
            batch_size=1,
            batch_format="pyarrow",
            fn_kwargs={"segments": s.segments, "fetcher": s.fetcher},
            compute=rd.TaskPoolStrategy(),
            num_cpus=1,
        )
        gpu = {"num_gpus": 1} if self.n_gpus else {"num_cpus": 1}
        ds = ds.map_batches(
            _CaptionActor,
            batch_size=s.batch_size,
            batch_format="pyarrow",
            fn_constructor_kwargs={
                "captioner": s.captioner,
                "checkpoint": s.checkpoint,
                "device": s.device,
                "batch_size": s.batch_size,
                "clip_sample_rate": s.clip_sample_rate,
            },  # fmt: skip
            compute=rd.ActorPoolStrategy(size=self.caption_actors),
            **gpu,
        )
        plans: dict[int, VideoPlan] = {}
        captioned: dict[int, list[CaptionedSegment]] = {}
        for r in ds.take_all():
            if r["seg_idx"] < 0:
                plans[r["vidx"]] = VideoPlan.from_json(r["plan"])
            else:
                captioned.setdefault(r["vidx"], []).append(
                    CaptionedSegment(r["seg_idx"], r["start_ms"], r["end_ms"], r["caption"], r["captioner"])
                )
        self._record()
        missing = [i for i in range(len(items)) if i not in plans]
        if missing:
            raise RuntimeError(f"ray engine lost the plans of videos {missing[:10]} ({len(missing)} in all)")
        return [plans[i] for i in range(len(items))], {
            k: sorted(v, key=lambda c: c.seg_idx) for k, v in captioned.items()
        }

    def write_shard(self, jobs: Sequence[WriteJob], desc: str = "") -> list[WriteResult]:
        if not jobs:
            return []
        rd = self._ray.data
        ds = rd.from_items([{"job": j.to_json()} for j in jobs], override_num_blocks=self._blocks(len(jobs)))
        ds = ds.map_batches(
            _write,
            batch_size=1,
            batch_format="pyarrow",
            fn_kwargs={
                "out_root": str(self.s.out_root),
                "clip_sample_rate": self.s.clip_sample_rate,
                "fetcher": self.s.fetcher,
            },
            compute=rd.TaskPoolStrategy(),
            num_cpus=1,
        )
        by_vidx = {res.vidx: res for res in (WriteResult.from_json(r["result"]) for r in ds.take_all())}
        return [by_vidx[j.vidx] for j in jobs]

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns = False
            if self._proc_file is not None:
                ray_procs.clear(self._proc_file)
