"""`bench`: one command line over every model, split and metric.

    bench models                       list plugins, their settings and checkpoint status
    bench splits                       list splits with counts and paths
    bench run --models A,B --split S   generate, score, store one results record per model
    bench score --gen DIR --split S    score any folder of audio files (or --ref DIR)
    bench leaderboard --split S        export leaderboards/<split>.csv + .png
    bench study ...                    the pairwise listening study (userstudy)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

DEFAULT_ROOT = "bench-runs"


def _parse_kv(values: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for v in values or []:
        if "=" not in v:
            raise SystemExit(f"error: {what} expects NAME=PATH, got {v!r}")
        k, _, p = v.partition("=")
        out[k.strip()] = p.strip()
    return out


def _load_config(path: str | None) -> dict:
    if not path:
        return {}
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except FileNotFoundError:
        raise SystemExit(f"error: config file {p} not found") from None
    except yaml.YAMLError as e:
        raise SystemExit(f"error: {p}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise SystemExit(f"error: {p}: expected a mapping with keys checkpoints/backbones/models")
    unknown = set(data) - {"checkpoints", "tokenizers", "backbones", "models", "metrics", "resampler"}
    if unknown:
        raise SystemExit(f"error: {p}: unknown key(s) {sorted(unknown)}")
    return data


def _add_scoring_args(p: argparse.ArgumentParser) -> None:
    from bench.metrics.suite import METRICS

    g = p.add_argument_group("scoring")
    g.add_argument("--metrics", default=",".join(METRICS), help="comma-separated subset of %(default)s")
    g.add_argument(
        "--backbones",
        choices=["official", "random"],
        default="official",
        help="metric backbone weights: official checkpoint files (default) or fixed-seed random weights "
        "(smoke tests / demo only: results are labelled NOT COMPARABLE)",
    )
    g.add_argument("--checkpoint", action="append", metavar="BACKBONE=PATH", help="official checkpoint file of a metric backbone (repeatable)")
    g.add_argument("--tokenizer", action="append", metavar="BACKBONE=DIR", help="local tokenizer folder of a CLAP text tower (e.g. laion-clap-htsat-base=/data/roberta-base); default: the hub id / HF cache")
    g.add_argument("--config", help="YAML file with `checkpoints: {backbone: path}`, `backbones: {role: name}`, `models: {model: checkpoint}`")
    g.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples for 95%% intervals (0 = none)")
    g.add_argument("--resampler", default=None, help="resampler for backbone inputs (default: the protocol's, soxr-hq)")
    g.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    g.add_argument("--device", default="cpu")


def _score_config(args, cfg_file: dict):
    from bench.metrics.suite import DEFAULT_BACKBONES, ScoreConfig
    from bench.protocol import PROTOCOL

    checkpoints = {**(cfg_file.get("checkpoints") or {}), **_parse_kv(args.checkpoint, "--checkpoint")}
    tokenizers = {**(cfg_file.get("tokenizers") or {}), **_parse_kv(args.tokenizer, "--tokenizer")}
    backbones = {**DEFAULT_BACKBONES, **(cfg_file.get("backbones") or {})}
    return ScoreConfig(
        metrics=[m.strip() for m in args.metrics.split(",") if m.strip()],
        backbones=backbones,
        weights=args.backbones,
        checkpoints=checkpoints,
        tokenizers=tokenizers,
        resampler=args.resampler or cfg_file.get("resampler") or PROTOCOL.resampler,
        bootstrap=args.bootstrap,
        device=args.device,
    )


def _print_record(rec: dict) -> None:
    label = "official weights" if rec.get("model_weights", "official") == "official" and rec["backbone_weights"] == "official" else (
        f"NOT COMPARABLE: model weights {rec.get('model_weights', '-')}, backbone weights {rec['backbone_weights']}"
    )
    print(f"\n== {rec.get('model', 'folder')} on {rec.get('split', '-')} [{label}] protocol {rec['protocol_version']}")
    print(f"   evaluated {rec['n_evaluated']} / missing reference {rec['n_missing_reference']} / failed files {rec['n_failed']}")
    for m in rec["metrics"]:
        if math.isnan(m["value"]):
            print(f"   {m['column']:<40} missing: {m['reason']}")
        else:
            ci = f"  95% CI [{m['ci_low']:.4g}, {m['ci_high']:.4g}]" if not math.isnan(m["ci_low"]) else ""
            print(f"   {m['column']:<40} {m['value']:.4f}{ci}  (n={m['n']})")
    for f in rec["failures"]:
        print(f"   unreadable {f['side']} file {f['file']}: {f['reason']}")


def cmd_models(args) -> int:
    import pandas as pd

    from bench.plugins.registry import PLANNED_PLUGINS, available_names, get_plugin_class

    rows = []
    for name in available_names():
        cls = get_plugin_class(name)
        ok, status = cls().checkpoint_status()
        d = cls.info.defaults
        rows.append(
            dict(model=name, sampler=d.sampler, steps=d.steps, guidance=d.guidance, duration_s=d.duration_s,
                 native_sr=cls.info.native_sample_rate, tiny=cls.info.tiny, checkpoint="available" if ok else "missing",
                 where=status, source=cls.info.source)
        )
    for name, why in PLANNED_PLUGINS.items():
        rows.append(dict(model=name, checkpoint="not implemented", where=why))
    df = pd.DataFrame(rows)
    if args.json:
        print(df.to_json(orient="records", indent=2))
    else:
        with pd.option_context("display.max_colwidth", 70, "display.width", 250):
            print(df.to_string(index=False))
    return 0


def cmd_splits(args) -> int:
    import pandas as pd

    from bench.splits import data_root, split_table

    print(f"data root: {data_root()} (set GENAU_BENCH_DATA to change)")
    with pd.option_context("display.max_colwidth", 90, "display.width", 250):
        df = pd.DataFrame(split_table())
        for c in ("n_prompts", "n_with_reference", "n_missing"):
            df[c] = df[c].astype("Int64")
        print(df.to_string(index=False))
    return 0


def _parse_shard(text: str | None):
    from bench.harness import shard_from_env

    if text:
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise SystemExit(f"error: --shard expects i/n (e.g. 0/4), got {text!r}") from None
        return (i, n), False
    env = shard_from_env()
    return (env, True) if env else ((0, 1), False)


def cmd_run(args) -> int:
    from bench.harness import GenerationConfig, generate_run, score_run
    from bench.metrics.cache import EmbeddingCache
    from bench.plugins.registry import UnknownModelError, get_plugin_class
    from bench.runs.store import RunStore
    from bench.splits import SplitError, load_split

    cfg_file = _load_config(args.config)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        classes = {n: get_plugin_class(n) for n in names}
    except UnknownModelError as e:
        raise SystemExit(f"error: {e}") from None
    try:
        split = load_split(args.split, csv=args.split_csv, ref_dir=args.ref_dir)
    except SplitError as e:
        raise SystemExit(f"error: {e}") from None
    missing = split.missing_references
    print(f"split {split.name}: {len(split.items)} prompts, {split.n_with_reference} with reference audio, {len(missing)} missing")
    shard, distributed = _parse_shard(args.shard)
    model_ckpts = {**(cfg_file.get("models") or {}), **_parse_kv(args.model_checkpoint, "--model-checkpoint")}
    store = RunStore(args.out)
    score_cfg = None if args.no_score else _score_config(args, cfg_file)
    cache = EmbeddingCache(enabled=not args.no_cache)
    for name, cls in classes.items():
        plugin = cls(checkpoint=model_ckpts.get(name), device=args.device)
        ok, status = plugin.checkpoint_status()
        if not ok:
            raise SystemExit(f"error: {name}: {status}")
        gen_cfg = GenerationConfig(
            seed=args.seed, steps=args.steps, guidance=args.guidance, duration_s=args.duration,
            batch_size=args.batch_size, limit=args.limit, shard=shard,
        )
        run = generate_run(plugin, split, gen_cfg, store)
        print(f"{name}: clips in {run.clips_dir}")
        del plugin  # the generator's memory (GPU included) goes back before the metric networks load
        _free_memory()
        if distributed and shard[1] > 1:
            _barrier()
            if shard[0] != 0:
                continue
        if shard[1] > 1 and not distributed:
            print(f"{name}: shard {shard[0]}/{shard[1]} done; score once all shards finished (`bench run` without --shard)")
            continue
        if score_cfg is not None:
            rec, path = score_run(run, split, score_cfg, cache)
            _print_record(rec)
            print(f"   results record: {path}")
    if args.leaderboard and score_cfg is not None and shard[0] == 0:
        return cmd_leaderboard(argparse.Namespace(split=split.name, root=args.out, out=args.leaderboard_dir, rank_by="FD", with_paper=None))
    return 0


def _free_memory() -> None:
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _barrier() -> None:
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    dist.barrier()


def _folder_record_fields(args, gen: dict, ref: dict) -> dict:
    """The fields of a `bench score` record that describe its inputs (both implementations)."""
    from bench.protocol import PROTOCOL

    return {
        "protocol_version": PROTOCOL.version,
        "model": f"folder {args.gen}",
        "split": args.split or f"references in {args.ref}",
        "gen_dir": str(args.gen),
        "ref": str(args.ref or args.split),
        "n_missing_reference": len(set(gen) - set(ref)),
    }


def _score_with_reference_tools(args, cfg_file: dict, gen: dict, ref: dict, texts: dict) -> dict:
    """`--impl reference`: the field's tools, run by --reference-python, never imported here."""
    from bench.metrics.reference_impl import ReferenceImplError, score_with_reference_tools

    if args.tokenizer or cfg_file.get("tokenizers"):
        print("note: --tokenizer / tokenizers: ignored by --impl reference (the reference tools load their own tokenizers)")
    if args.resampler or cfg_file.get("resampler"):
        print("note: --resampler: ignored by --impl reference (each reference tool resamples with its own resampler)")
    print(f"scoring with the reference tools in {args.reference_python} ...", flush=True)
    try:
        fields = score_with_reference_tools(gen, ref, texts, _score_config(args, cfg_file), args.reference_python)
    except ReferenceImplError as e:
        raise SystemExit(f"error: {e}") from None
    rec = {**_folder_record_fields(args, gen, ref), "n_evaluated": len(gen), "n_failed": None, **fields}
    rec["model_weights"] = rec["backbone_weights"]
    return rec


def _print_reference_record(rec: dict) -> None:
    tools = ", ".join(f"{p} {v}" for p, v in rec["reference_tools"].items() if p in ("audioldm_eval", "laion_clap", "msclap") and v)
    print(f"\n== {rec['model']} on {rec['split']} [reference implementation: {tools or 'no tool ran'}; "
          f"python {rec['reference_python']}] protocol {rec['protocol_version']}")
    print(f"   evaluated {rec['n_evaluated']} / missing reference {rec['n_missing_reference']} / failed files unknown (the reference tools report none)")
    for name, ident in sorted(rec["backbones"].items()):
        what = ident.get("error") or f"{ident['checkpoint_id']}  {ident['source']}"
        print(f"   checkpoint {name:<24} {what}")
    for m in rec["metrics"]:
        if math.isnan(m["value"]):
            print(f"   {m['column']:<40} missing: {m['reason']}")
        else:
            note = f"  ({m['reason']})" if m["reason"] else ""
            print(f"   {m['column']:<40} {m['value']:.6g}  (n={m['n']}){note}")
    if rec["metrics"]:
        print(f"   no confidence intervals: {rec['metrics'][0]['ci_reason']}")
    for tool, how in rec["resamplers"].items():
        print(f"   resampler {tool}: {how}")
    for note in rec["reference_notes"]:
        print(f"   note: {note}")


def cmd_score(args) -> int:
    from bench.audio import list_audio_files
    from bench.metrics.cache import EmbeddingCache
    from bench.metrics.suite import score
    from bench.splits import SplitError, load_split

    if args.impl == "reference" and args.backbones == "random":
        raise SystemExit("error: --impl reference needs the official checkpoint files (the reference tools cannot run "
                         "with random weights); drop --backbones random and give --checkpoint NAME=PATH")
    cfg_file = _load_config(args.config)
    gen = {p.stem: p for p in list_audio_files(args.gen)}
    if not gen:
        raise SystemExit(f"error: {args.gen}: no audio files")
    texts: dict[str, str] = {}
    if args.split:
        try:
            split = load_split(args.split, csv=args.split_csv, ref_dir=args.ref)
        except SplitError as e:
            raise SystemExit(f"error: {e}") from None
        ref = {it.id: it.reference for it in split.items if it.reference is not None}
        texts = {it.id: it.prompt for it in split.items}
    elif args.ref:
        ref = {p.stem: p for p in list_audio_files(args.ref)}
    else:
        raise SystemExit("error: give --ref DIR or --split NAME")
    if args.prompts:
        from bench.splits.manifest import load_manifest

        texts.update({it.id: it.prompt for it in load_manifest(Path(args.prompts)).items})
    unmatched = sorted(set(gen) - set(texts)) if texts else []
    if unmatched:
        print(f"note: {len(unmatched)} generated files have no prompt (e.g. {unmatched[:3]}); CLAP scores use the rest")
    if args.impl == "reference":
        rec = _score_with_reference_tools(args, cfg_file, gen, ref, texts)
        _print_reference_record(rec)
    else:
        result = score(gen, ref, texts, _score_config(args, cfg_file), EmbeddingCache(enabled=not args.no_cache))
        rec = {
            **_folder_record_fields(args, gen, ref),
            "n_evaluated": result.n_generated - sum(1 for f in result.failures if f["side"] == "generated"),
            "n_failed": len(result.failures),
            "model_weights": "n/a",
            **result.to_dict(),
        }
        rec["model_weights"] = rec["backbone_weights"]
        _print_record(rec)
    if args.out:
        from bench.runs.store import atomic_write_json

        atomic_write_json(Path(args.out), rec)
        print(f"   written: {args.out}")
    return 0


def cmd_leaderboard(args) -> int:
    import pandas as pd

    from bench.leaderboard import build_leaderboard, write_leaderboard

    try:
        df = build_leaderboard(args.root, args.split, rank_by=args.rank_by, with_paper=args.with_paper)
    except FileNotFoundError as e:
        raise SystemExit(f"error: {e}") from None
    csv_path, png_path = write_leaderboard(df, args.out, args.split)
    show = [c for c in df.columns if c in ("rank", "model", "weights") or (("@" in c) and not c.endswith(("_ci95_low", "_ci95_high", "_missing_reason")))]
    with pd.option_context("display.width", 250, "display.max_colwidth", 60, "display.float_format", "{:.4g}".format):
        print(df[show].to_string(index=False))
    print(f"\nleaderboard: {csv_path}\nchart:       {png_path}")
    return 0


def cmd_study(args, rest: list[str]) -> int:
    try:
        from userstudy.cli import main as study_main
    except ImportError as e:
        raise SystemExit(f"error: the study app needs the [study] extra: pip install -e '.[study]' ({e})") from None
    return study_main(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list model plugins, their default settings and checkpoint status")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("splits", help="list splits with counts and file locations")
    p.set_defaults(func=cmd_splits)

    p = sub.add_parser("run", help="generate clips for a split with each model, then score and store results")
    p.add_argument("--models", required=True, help="comma-separated plugin names (see `bench models`)")
    p.add_argument("--split", required=True, help="demo | audiocaps | bigsoundbank | path/to/manifest.csv|jsonl")
    p.add_argument("--split-csv", help="the split's official CSV (default: under the data root)")
    p.add_argument("--ref-dir", help="folder of reference clips (default: under the data root)")
    p.add_argument("--out", default=DEFAULT_ROOT, help="run store root (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="override the model's default sampler steps (recorded)")
    p.add_argument("--guidance", type=float, help="override the model's default guidance scale (recorded)")
    p.add_argument("--duration", type=float, help="override the protocol's 10 s (recorded)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--limit", type=int, help="only the first N prompts (smoke tests)")
    p.add_argument("--shard", help="i/n: generate only this shard (torchrun / accelerate set it automatically)")
    p.add_argument("--model-checkpoint", action="append", metavar="MODEL=PATH", help="model checkpoint folder/file or hub id")
    p.add_argument("--no-score", action="store_true", help="generate only")
    p.add_argument("--leaderboard", action="store_true", help="also export the split's leaderboard afterwards")
    p.add_argument("--leaderboard-dir", default="leaderboards")
    _add_scoring_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("score", help="score a folder of generated audio against references (like audioldm_eval)")
    p.add_argument("--gen", required=True, help="folder of generated clips named <clip-id>.wav")
    p.add_argument("--ref", help="folder of reference clips with the same names")
    p.add_argument("--split", help="take references and prompts from a split instead")
    p.add_argument("--split-csv")
    p.add_argument("--prompts", help="CSV/JSONL with id,caption for the CLAP scores")
    p.add_argument("--out", help="write the results record (JSON) here")
    p.add_argument("--impl", choices=["ours", "reference"], default="ours",
                   help="ours (default), or the field's reference tools (audioldm_eval, laion_clap, msclap) on the same "
                   "inputs and checkpoint files, run by --reference-python; recorded as impl=reference, never ranked")
    p.add_argument("--reference-python", default=sys.executable, metavar="PATH",
                   help="python of the environment that holds the reference packages (default: this interpreter)")
    _add_scoring_args(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("leaderboard", help="export leaderboards/<split>.csv and a PNG chart from scored runs")
    p.add_argument("--split", required=True)
    p.add_argument("--root", default=DEFAULT_ROOT, help="run store root (default: %(default)s)")
    p.add_argument("--out", default="leaderboards", help="output folder (default: %(default)s)")
    p.add_argument("--rank-by", default="FD", help="metric to rank comparable rows by (default: %(default)s)")
    p.add_argument("--with-paper", action=argparse.BooleanOptionalAction, default=None, help="add the paper's Table 4 rows (default: on for audiocaps)")
    p.set_defaults(func=cmd_leaderboard)

    sub.add_parser("study", help="pairwise listening study: `bench study --help`", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "study":
        return cmd_study(None, argv[1:])
    args = build_parser().parse_args(argv)
    if args.func in (cmd_score, cmd_run):
        from bench.allocator import keep_large_blocks_in_heap

        keep_large_blocks_in_heap()
    return args.func(args)


# Commands after which the process ends without Python's module teardown (see console_main).
FAST_EXIT_COMMANDS = ("score", "run")


def console_main() -> None:
    """The `bench` executable: `main`, then, after `bench score` / `bench run` returned normally,
    a process exit without the interpreter's module teardown. Tearing down torch, transformers
    and librosa takes about 1.2 s after every scoring run (measured: 1.15 s for importing those
    three alone, 0.07 s this way); everything of ours is on disk by then (records, cache and
    memo files are written atomically). atexit handlers still run. GENAU_BENCH_FAST_EXIT=0 turns
    it off."""
    argv = sys.argv[1:]
    rc = main(argv)
    if argv and argv[0] in FAST_EXIT_COMMANDS and os.environ.get("GENAU_BENCH_FAST_EXIT", "1") != "0":
        exit_without_teardown(rc)
    sys.exit(rc)


def exit_without_teardown(rc: int) -> None:
    """Run the atexit handlers, flush the standard streams and end the process now (os._exit).
    Falls back to a normal exit while any non-daemon thread is still running."""
    import atexit
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(rc)
    atexit._run_exitfuncs()  # logging.shutdown, concurrent.futures, tempfile finalizers, ...
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(rc if isinstance(rc, int) else 1)


if __name__ == "__main__":
    console_main()
