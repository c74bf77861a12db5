"""`genau recap`: videos with transcripts -> captioned ambient clips (the AutoReCap pipeline).

    genau recap --videos videos.csv --out data/recap
    genau recap --videos videos.jsonl --out data/recap --engine ray --captioner autocap --checkpoint ckpts/
    python -m genau_core.recap --videos ... --out ...      (the same, without the genau entry point)

Outputs in --out: manifest.jsonl / manifest.parquet (id, caption, audio, dataset_id, video_id,
start, end, ...; readable by `bench run --split OUT/manifest.jsonl` and `genau train ldm
--manifest OUT/manifest.jsonl`), clips/, segments.parquet, dropped.parquet, videos.parquet,
report.json ("errors": one entry per failing file; "warnings": media that decode shorter than
declared, with both durations), stats.json, figures/*.png, runs.jsonl.
Re-running the same command skips finished shards and resumes a killed run.

The speech/music filter's rules: genau_core/recap/data/speech_music_rules.txt (documented
there and in docs/recap.md); `--keywords FILE` replaces them with yours (same format; a plain
keyword per line works), `--extra-keyword` adds one.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--videos",
        required=True,
        help="CSV or JSONL: id, media, transcript[, title, description, video_caption, duration, url]",
    )
    p.add_argument("--out", required=True, help="output folder (resumable)")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--captioner", default="autocap-tiny", help="autocap-tiny, autocap, or package.module:Class")
    p.add_argument("--checkpoint", default=None, help="captioner checkpoint (file or folder), e.g. for autocap")
    p.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (Ray: auto = one GPU per caption actor)"
    )
    p.add_argument("--batch-size", type=int, default=8, help="captioner batch size")
    p.add_argument("--shard-size", type=int, default=100, help="videos per shard (the unit of resume)")
    p.add_argument("--dataset-id", default="autocap", help="dataset_id column (a GenAu dataset-id name)")
    g = p.add_argument_group("segments")
    g.add_argument("--min-segment", type=float, default=1.0, help="keep cue-free gaps strictly longer than this (s)")
    g.add_argument("--max-segment", type=float, default=10.0, help="cut gaps into pieces of at most this (s)")
    g.add_argument("--cue-margin", type=float, default=0.0, help="widen every cue by this on both sides (s)")
    f = p.add_argument_group("filters")
    f.add_argument("--no-merge", action="store_true", help="do not merge consecutive segments with identical captions")
    f.add_argument("--max-clip", type=float, default=None, help="cap on a merged clip's duration (s)")
    f.add_argument(
        "--keywords", "--keywords-file", dest="keywords_file", default=None, metavar="FILE",
        help="speech/music rules, one per line (a keyword, or a rule as in "
        "genau_core/recap/data/speech_music_rules.txt); replaces the default rules",
    )  # fmt: skip
    f.add_argument("--extra-keyword", action="append", default=[], help="add a keyword or rule line (repeatable)")
    f.add_argument("--no-keyword-filter", action="store_true", help="keep every caption")
    o = p.add_argument_group("output")
    o.add_argument("--no-clips", action="store_true", help="write no audio: rows locate clips by source, start, end")
    o.add_argument("--clip-rate", type=int, default=16000, help="sample rate of written clips; 0 = the source's rate")
    o.add_argument("--no-figures", action="store_true")
    o.add_argument("--restart", action="store_true", help="discard finished shards of --out and start over")
    o.add_argument("--no-progress", action="store_true")
    m = p.add_argument_group("media")
    m.add_argument("--fetcher", default="local", help="local (paths in the list), command, or package.module:Factory")
    m.add_argument(
        "--fetch-command",
        default=None,
        help='for --fetcher command, e.g. "yt-dlp -q -f bestaudio -o {out}.%%(ext)s {url}"',
    )
    m.add_argument("--fetch-cache", default=None, help="for --fetcher command: folder for fetched media")
    m.add_argument("--keep-fetched", action="store_true", help="keep fetched media after their shard is done")
    r = p.add_argument_group("ray")
    r.add_argument("--ray-address", default=None, help="an existing cluster (default: start a local one)")
    r.add_argument("--ray-cpus", type=int, default=None, help="CPUs for a local Ray instance")
    r.add_argument(
        "--caption-actors", type=int, default=None, help="CPU caption actors when the cluster has no GPU (default 1)"
    )


def config_from_args(args: argparse.Namespace):
    from genau_core.recap.fetch import make_fetcher
    from genau_core.recap.filters import DEFAULT_KEYWORDS, FilterRules, read_keywords
    from genau_core.recap.runner import RecapConfig
    from genau_core.recap.segments import SegmentRules

    if args.no_keyword_filter:
        keywords: tuple[str, ...] = ()
    else:
        keywords = read_keywords(args.keywords_file) if args.keywords_file else DEFAULT_KEYWORDS
        from genau_core.recap.keyword_rules import default_classes, parse_lines

        parse_lines([("--extra-keyword", k) for k in args.extra_keyword], default_classes())  # bad ones stop here
        keywords = keywords + tuple(args.extra_keyword)
    return RecapConfig(
        videos=args.videos,
        out=args.out,
        engine=args.engine,
        captioner=args.captioner,
        checkpoint=args.checkpoint,
        device=args.device,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        dataset_id=args.dataset_id,
        write_clips=not args.no_clips,
        clip_sample_rate=args.clip_rate or None,
        segments=SegmentRules(
            min_segment_s=args.min_segment, max_segment_s=args.max_segment, cue_margin_s=args.cue_margin
        ),
        filters=FilterRules(merge=not args.no_merge, max_clip_s=args.max_clip, keywords=keywords),
        fetcher=make_fetcher(
            args.fetcher, command=args.fetch_command, cache_dir=args.fetch_cache, keep=args.keep_fetched
        ),
        ray_address=args.ray_address,
        ray_num_cpus=args.ray_cpus,
        caption_actors=args.caption_actors,
        restart=args.restart,
        progress=not args.no_progress,
        figures=not args.no_figures,
    )


def cmd_recap(args: argparse.Namespace) -> int:
    from genau_core.recap.caption import CaptionerError
    from genau_core.recap.inputs import VideoListError
    from genau_core.recap.runner import run_recap
    from genau_core.recap.store import RecapStoreError

    try:
        cfg = config_from_args(args)
        res = run_recap(cfg)
    except (VideoListError, RecapStoreError, CaptionerError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    st = res.stats
    print(
        f"shards: {res.shards} ({res.shards_skipped} already done, {res.shards_run} run) in {res.wall_s:.1f} s",
        file=sys.stderr,
    )
    if res.shards_run:
        print(
            f"this run: {res.videos_run} videos, {res.segments_run} segments, {res.segments_per_s:.2f} segments/s",
            file=sys.stderr,
        )
    v, c = st["videos"], st["counts"]
    rej = st["rejected_time_fraction"]
    print(
        f"videos: {v['listed']} listed, {v['ok']} usable, {v['no_transcript']} without transcript, "
        f"{v['transcript_error']} bad transcript, {v['media_error']} media errors",
        file=sys.stderr,
    )
    print(
        f"segments: {c['raw_segments']} raw -> {c['clips_after_merge']} after merge -> {c['final_clips']} clips "
        f"({c['dropped_by_keyword']} dropped as speech/music); "
        f"rejected time: {'-' if rej is None else f'{100 * rej:.1f} %'}",
        file=sys.stderr,
    )
    for w in res.warnings[:20]:
        print(f"  {w['video_id']}: decoded short: {w['file']}: {w['reason']}", file=sys.stderr)
    if len(res.warnings) > 20:
        print(f"  ... {len(res.warnings) - 20} more warnings in {res.out / 'report.json'}", file=sys.stderr)
    for e in res.errors[:20]:
        print(f"  {e['video_id']}: {e['stage']}: {e['file']}: {e['reason']}", file=sys.stderr)
    if len(res.errors) > 20:
        print(f"  ... {len(res.errors) - 20} more in {res.out / 'report.json'}", file=sys.stderr)
    print(json.dumps({"manifest": str(res.manifest), "clips": c["final_clips"], "errors": len(res.errors),
                      "warnings": len(res.warnings)}))  # fmt: skip
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `recap` on a parent command's subparsers (used by `genau`)."""
    p = subparsers.add_parser(
        "recap",
        help="AutoReCap: videos with transcripts -> captioned ambient clips",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=cmd_recap)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genau recap", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(p)
    p.set_defaults(func=cmd_recap)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
