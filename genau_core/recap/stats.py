"""Statistics and figures as in the paper's appendix A (figures 4-9): segments per video,
caption length and clip duration, each for the raw captioned segments ("AutoReCap-Raw") and
for the final clips, plus the rejection rate (the paper: 83 % of video time rejected).

Definitions (all over videos whose transcript and media were usable, status "ok"):
    rejected_time_fraction  1 - (time in captioned raw segments) / (total video time)
    kept_time_fraction      (time in final clips) / (total video time)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from genau_core.files import atomic_path
from genau_core.recap.stages import STATUSES


def _hist(values, edges) -> dict:
    counts, _ = np.histogram(np.asarray(values, dtype=float), bins=np.asarray(edges, dtype=float))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _int_edges(values, cap: int) -> list[float]:
    top = int(min(cap, max([1, *[int(v) for v in values]])))
    return [k - 0.5 for k in range(1, top + 2)]


def _dur_edges(values, step: float = 0.5, max_bins: int = 400) -> list[float]:
    top = max([1.0, *[float(v) for v in values]])
    step = max(step, float(np.ceil(top / max_bins / step)) * step)  # long merged clips: wider bins
    return [round(k * step, 3) for k in range(int(np.ceil(top / step)) + 1)]


def _words(captions) -> list[int]:
    return [len(str(c).split()) for c in captions]


def _summary(values) -> dict:
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return {"n": 0}
    return {
        "n": int(v.size),
        "mean": round(float(v.mean()), 4),
        "median": round(float(np.median(v)), 4),
        "min": round(float(v.min()), 4),
        "max": round(float(v.max()), 4),
    }


def compute_stats(videos: pa.Table, segments: pa.Table, clips: pa.Table, dropped: pa.Table) -> dict:
    v = videos.to_pylist()
    ok = [r for r in v if r["status"] == "ok"]
    total = sum(r["duration"] for r in ok)
    seg_time = sum(r["segment_time"] for r in ok)
    clip_time = sum(r["clip_time"] for r in ok)
    seg_per_video = [r["n_segments"] for r in ok if r["n_segments"] > 0]
    clips_per_video = [r["n_clips"] for r in ok if r["n_clips"] > 0]
    seg_caps, clip_caps = segments.column("caption").to_pylist(), clips.column("caption").to_pylist()
    seg_dur, clip_dur = segments.column("duration").to_pylist(), clips.column("duration").to_pylist()
    keywords: dict[str, int] = {}
    for k in dropped.column("keyword").to_pylist():
        keywords[k] = keywords.get(k, 0) + 1
    n_merged = sum(r["n_merged_clips"] for r in ok)
    r6 = lambda x: round(float(x), 6)  # noqa: E731
    return {
        "videos": {
            "listed": len(v),
            **{s: sum(1 for r in v if r["status"] == s) for s in STATUSES},
            "with_segments": len(seg_per_video),
            "with_clips": len(clips_per_video),
        },
        "time_s": {
            "total": r6(total),
            "covered_by_cues": r6(sum(r["covered"] for r in ok)),
            "cue_free": r6(sum(r["gap"] for r in ok)),
            "raw_segments": r6(seg_time),
            "final_clips": r6(clip_time),
        },
        "rejected_time_fraction": r6(1 - seg_time / total) if total else None,
        "kept_time_fraction": r6(clip_time / total) if total else None,
        "counts": {
            "cues": sum(r["n_cues"] for r in ok),
            "cues_past_end": sum(r["n_cues_past_end"] for r in ok),
            "empty_cues_skipped": sum(r["n_empty_cues"] for r in v),
            "planned_segments": sum(r["n_planned_segments"] for r in ok),
            "segments_too_short_after_decoding": sum(r["n_short_audio"] for r in ok),
            "raw_segments": len(seg_caps),
            "empty_captions": sum(1 for c in seg_caps if not c),
            "clips_after_merge": n_merged,
            "dropped_by_keyword": dropped.num_rows,
            "final_clips": clips.num_rows,
        },
        "dropped_keywords": dict(sorted(keywords.items(), key=lambda kv: (-kv[1], kv[0]))),
        "summary": {
            "raw": {
                "segments_per_video": _summary(seg_per_video),
                "caption_words": _summary(_words(seg_caps)),
                "duration_s": _summary(seg_dur),
            },
            "final": {
                "clips_per_video": _summary(clips_per_video),
                "caption_words": _summary(_words(clip_caps)),
                "duration_s": _summary(clip_dur),
            },
        },
        "histograms": {
            "raw": {
                "segments_per_video": _hist(seg_per_video, _int_edges(seg_per_video, 100)),
                "caption_words": _hist(_words(seg_caps), _int_edges(_words(seg_caps), 60)),
                "duration_s": _hist(seg_dur, _dur_edges(seg_dur)),
            },
            "final": {
                "clips_per_video": _hist(clips_per_video, _int_edges(clips_per_video, 100)),
                "caption_words": _hist(_words(clip_caps), _int_edges(_words(clip_caps), 60)),
                "duration_s": _hist(clip_dur, _dur_edges(clip_dur)),
            },
        },
    }


FIGURES = {
    "segments_per_video.png": (
        ("segments_per_video", "clips_per_video"),
        "segments per video",
        "paper figures 4 and 5",
    ),
    "caption_length.png": (("caption_words", "caption_words"), "caption length (words)", "paper figures 6 and 7"),
    "duration.png": (("duration_s", "duration_s"), "duration (s)", "paper figures 8 and 9"),
}


def write_figures(stats: dict, folder: str | Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, ((raw_key, final_key), xlabel, ref) in FIGURES.items():
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for ax, (part, key, title) in zip(
            axes, (("raw", raw_key, "raw captioned segments"), ("final", final_key, "final clips"))
        ):
            h = stats["histograms"][part][key]
            edges, counts = np.asarray(h["edges"]), np.asarray(h["counts"])
            ax.bar(
                edges[:-1],
                counts,
                width=np.diff(edges),
                align="edge",
                color="#4472c4" if part == "raw" else "#70ad47",
                edgecolor="white",
                linewidth=0.3,
            )
            ax.set_title(f"{title} (n={int(counts.sum())})", fontsize=10)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("count")
        fig.suptitle(f"AutoReCap {xlabel} ({ref})", fontsize=11)
        fig.tight_layout()
        path = folder / fname
        try:
            with atomic_path(path, suffix=".png") as tmp:
                fig.savefig(tmp, dpi=100)
        finally:
            plt.close(fig)
        written.append(path)
    return written
