"""`bench`: one command line over every model, split and metric.

bench models                       list plugins, their settings and checkpoint status
bench splits                       list splits with counts and paths
bench run --models A,B --split S   generate, score, store one results record per model
bench score --gen DIR --split S    score any folder of audio files (or --ref DIR)
bench leaderboard --split S        export leaderboards/<split>.csv + .png
bench report --split S             one HTML page: clips, per-prompt scores, leaderboard, pairs
bench compare A B --split S        paired significance of every metric (--all: every pair)
bench study ...                    the pairwise listening study (userstudy)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from bench.errors import GenauBenchError, MissingFileError, UsageError, one_line
from genau_core.files import atomic_path

DEFAULT_ROOT = "bench-runs"


def _parse_kv(values: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for v in values or []:
        if "=" not in v:
            raise UsageError(f"{what} expects NAME=PATH, got {v!r}")
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
        raise MissingFileError(f"config file {p} not found") from None
    except yaml.YAMLError as e:
        raise UsageError(f"{p}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{p}: expected a mapping with keys checkpoints/backbones/models")
    unknown = set(data) - {"checkpoints", "tokenizers", "backbones", "models", "metrics", "resampler"}
    if unknown:
        raise UsageError(f"{p}: unknown key(s) {sorted(unknown)}")
    return data


def _add_scoring_args(p: argparse.ArgumentParser) -> None:
    from bench.arguments import non_negative_int
    from bench.audio import known_resamplers
    from bench.metrics.protocols import PROTOCOLS
    from bench.protocol import PROTOCOL

    g = p.add_argument_group("scoring")
    g.add_argument(
        "--protocols",
        default="genau",
        help=f"comma-separated scoring protocols, all from one decode of each clip: {', '.join(PROTOCOLS)} "
        "(default: %(default)s; see the README's protocols table)",
    )
    g.add_argument(
        "--metrics",
        default=None,
        help="comma-separated subset of the protocols' metrics (default: all of them), e.g. FD,CLAP_LAION",
    )
    g.add_argument(
        "--backbones",
        choices=["official", "random"],
        default="official",
        help="metric backbone weights: official checkpoint files (default) or fixed-seed random weights "
        "(smoke tests / demo only: results are labelled NOT COMPARABLE)",
    )
    g.add_argument(
        "--checkpoint",
        action="append",
        metavar="BACKBONE=PATH",
        help="official checkpoint file of a metric backbone (repeatable)",
    )
    g.add_argument(
        "--tokenizer",
        action="append",
        metavar="BACKBONE=DIR",
        help="local tokenizer folder of a CLAP text tower (e.g. laion-clap-htsat-base=/data/roberta-base); default: "
        "the hub id / HF cache",
    )
    g.add_argument(
        "--config",
        help="YAML file with `checkpoints: {backbone: path}`, `backbones: {role: name}`, `models: {model: checkpoint}`",
    )
    g.add_argument(
        "--bootstrap", type=non_negative_int, default=100, help="bootstrap resamples for 95%% intervals (0 = none)"
    )
    g.add_argument(
        "--resampler",
        default=None,
        help=f"resampler for backbone inputs: {', '.join(known_resamplers())} "
        f"(default: the protocol's, {PROTOCOL.scoring_resampler}: each backbone's reference tool's own)",
    )
    g.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    g.add_argument(
        "--device",
        default="cpu",
        help="torch device of the metric backbones (and of the models in `run`): cpu (default), cuda, cuda:N, mps",
    )


def _score_config(args, cfg_file: dict):
    """The scoring settings, every name checked (metrics, resampler, backbones, device) before any work."""
    from bench.arguments import (
        check_backbone_keys,
        check_backbone_roles,
        check_device,
        check_metrics,
        check_protocols,
        check_resampler,
    )
    from bench.metrics.suite import DEFAULT_BACKBONES, ScoreConfig
    from bench.protocol import PROTOCOL

    where = f"--config {args.config}"
    models = [m.strip() for m in getattr(args, "models", "").split(",") if m.strip()]
    for key, flag in (("checkpoints", "--checkpoint"), ("tokenizers", "--tokenizer")):
        check_backbone_keys(cfg_file.get(key) or {}, f"{where}: {key}:", models)
        check_backbone_keys(_parse_kv(getattr(args, key[:-1]), flag), flag, models)
    check_backbone_roles(cfg_file.get("backbones") or {}, where)
    if cfg_file.get("resampler"):
        check_resampler(str(cfg_file["resampler"]), f"{where}: resampler:")
    if args.resampler:
        check_resampler(args.resampler)
    check_device(args.device)
    checkpoints = {**(cfg_file.get("checkpoints") or {}), **_parse_kv(args.checkpoint, "--checkpoint")}
    tokenizers = {**(cfg_file.get("tokenizers") or {}), **_parse_kv(args.tokenizer, "--tokenizer")}
    backbones = {**DEFAULT_BACKBONES, **(cfg_file.get("backbones") or {})}
    protocols = check_protocols(args.protocols)
    return ScoreConfig(
        protocols=protocols,
        metrics=check_metrics(args.metrics, protocols),
        backbones=backbones,
        weights=args.backbones,
        checkpoints=checkpoints,
        tokenizers=tokenizers,
        resampler=args.resampler or cfg_file.get("resampler") or PROTOCOL.scoring_resampler,
        bootstrap=args.bootstrap,
        device=args.device,
    )


def _print_record(rec: dict) -> None:
    from bench.checkpoints import describe_weights
    from bench.metrics.suite import unmatched_lines

    label = describe_weights(rec.get("model_weights", "-"), rec["backbone_weights"])
    proto = rec.get("protocol") or {"name": "genau", "version": rec.get("protocol_version", "-")}
    print(
        f"\n== {rec.get('model', 'folder')} on {rec.get('split', '-')} [{label}] "
        f"protocol {proto['name']} {proto['version']}"
    )
    print(
        f"   evaluated {rec['n_evaluated']} / missing reference {rec['n_missing_reference']} / failed files "
        f"{rec['n_failed']}"
    )
    for line in unmatched_lines(rec):
        print(f"   {line}")
    for m in rec["metrics"]:
        if math.isnan(m["value"]):
            print(f"   {m['column']:<40} missing: {m['reason']}")
        else:
            ci = f"  95% CI [{m['ci_low']:.4g}, {m['ci_high']:.4g}]" if not math.isnan(m["ci_low"]) else ""
            print(f"   {m['column']:<40} {m['value']:.4f}{ci}  (n={m['n']})")
            if m.get("ci_note"):
                print(f"   {'':<40} note: {m['ci_note']}")
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
            dict(
                model=name,
                sampler=d.sampler,
                steps=d.steps,
                guidance=d.guidance,
                duration_s=d.duration_s,
                native_sr=cls.info.native_sample_rate,
                native_ch=cls.info.native_channels,
                tiny=cls.info.tiny,
                checkpoint="available" if ok else "missing",
                where=status,
                source=cls.info.source,
                license=cls.info.license,
            )
        )
    for name, why in PLANNED_PLUGINS.items():
        rows.append(dict(model=name, checkpoint="not implemented", where=why))
    df = pd.DataFrame(rows)
    if args.json:
        print(df.to_json(orient="records", indent=2))
    elif args.wide:
        with pd.option_context("display.max_colwidth", 70, "display.width", 250):
            print(df.to_string(index=False))
    else:  # fits 120 columns: where each checkpoint is looked for and the sources are behind --wide / --json
        narrow = df[[c for c in MODELS_NARROW_COLUMNS if c in df.columns]]
        print(narrow.to_string(index=False))
        print("where each checkpoint is looked for, and sources: bench models --wide (or --json)")
    return 0


MODELS_NARROW_COLUMNS = ("model", "sampler", "steps", "guidance", "duration_s", "native_sr", "native_ch", "checkpoint")


def cmd_splits(args) -> int:
    import pandas as pd

    from bench.splits import data_root, split_table

    print(f"data root: {data_root()} (set GENAU_BENCH_DATA to change)")
    with pd.option_context("display.max_colwidth", 90, "display.width", 250):
        df = pd.DataFrame(split_table())
        for c in ("n_prompts", "n_with_reference", "n_missing", "n_excluded"):
            df[c] = df[c].astype("Int64")
        print(df.to_string(index=False))
    return 0


def _parse_shard(text: str | None):
    from bench.harness import shard_from_env

    if text:
        from bench.arguments import check_shard

        return check_shard(text), False
    env = shard_from_env()
    return (env, True) if env else ((0, 1), False)


def _weights_option(name: str, cls, weights: str | None) -> dict:
    """`--weights raw|ema` for a plugin that offers a weight set (`WEIGHT_SETS`, the GenAu releases);
    naming it for a model without that choice is an error, never silently ignored."""
    if weights is None:
        return {}
    offered = getattr(cls, "WEIGHT_SETS", ())
    if weights not in offered:
        have = f"offers {', '.join(offered)}" if offered else "has no choice of weight set"
        raise UsageError(f"--weights {weights}: {name} {have}; run it without --weights (or in its own `bench run`)")
    return {"weight_set": weights}


def cmd_run(args) -> int:
    from bench.arguments import check_device, check_model_checkpoint_keys, check_split_locations
    from bench.harness import GenerationConfig, generate_run, score_run_protocols
    from bench.metrics.cache import EmbeddingCache
    from bench.plugins.registry import get_plugin_class
    from bench.runs.store import RunStore
    from bench.splits import load_split

    # Every argument, and every model's checkpoint, is checked before the first clip is generated.
    cfg_file = _load_config(args.config)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not names:
        raise UsageError(f"--models {args.models!r}: no model named; see `bench models`")
    classes = {n: get_plugin_class(n) for n in names}  # an UnknownModelError names the closest models
    check_split_locations(args.split, csv=args.split_csv, ref_dir=args.ref_dir, ref_flag="--ref-dir")
    shard, distributed = _parse_shard(args.shard)
    check_model_checkpoint_keys(cfg_file.get("models") or {}, names)
    check_model_checkpoint_keys(_parse_kv(args.model_checkpoint, "--model-checkpoint"), names)
    model_ckpts = {**(cfg_file.get("models") or {}), **_parse_kv(args.model_checkpoint, "--model-checkpoint")}
    check_device(args.device)
    score_cfg = None if args.no_score else _score_config(args, cfg_file)
    plugins = {
        name: cls(checkpoint=model_ckpts.get(name), device=args.device, **_weights_option(name, cls, args.weights))
        for name, cls in classes.items()
    }
    for name, plugin in plugins.items():
        ok, status = plugin.checkpoint_status()
        if not ok:
            raise UsageError(f"{name}: {status}")
    split = load_split(args.split, csv=args.split_csv, ref_dir=args.ref_dir)
    missing = split.missing_references
    run_ids = [it.id for it in (split.items[: args.limit] if args.limit else split.items)]  # what this run really runs
    running = (
        f"running the first {len(run_ids)} (--limit {args.limit})"
        if len(run_ids) < len(split.items)
        else f"running all {len(run_ids)}"
    )
    print(
        f"split {split.name}: {len(split.items)} prompts, {split.n_with_reference} with reference audio, "
        f"{len(missing)} missing; {running}"
    )
    for line in split.console_notes():
        print(f"note: {line}")
    store = RunStore(args.out)
    cache = EmbeddingCache(enabled=not args.no_cache)
    if score_cfg is not None:
        items = split.items[: args.limit] if args.limit else split.items
        _print_input_notes([it.reference for it in items if it.reference is not None], "reference", score_cfg)
    for name in classes:
        plugin = plugins.pop(name)
        gen_cfg = GenerationConfig(
            seed=args.seed,
            steps=args.steps,
            guidance=args.guidance,
            duration_s=args.duration,
            batch_size=args.batch_size,
            limit=args.limit,
            shard=shard,
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
            print(
                f"{name}: shard {shard[0]}/{shard[1]} done; score once all shards finished (`bench run` without "
                "--shard)"
            )
            continue
        if score_cfg is not None:
            for rec, path in score_run_protocols(run, split, score_cfg, cache, clip_ids=run_ids).values():
                _print_record(rec)
                print(f"   results record: {path}")
    if args.leaderboard and score_cfg is not None and shard[0] == 0:
        return cmd_leaderboard(
            argparse.Namespace(split=split.name, root=args.out, out=args.leaderboard_dir, rank_by=None, with_paper=None)
        )
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
    from bench.metrics.reference_impl import score_with_reference_tools

    if args.tokenizer or cfg_file.get("tokenizers"):
        print(
            "note: --tokenizer / tokenizers: ignored by --impl reference (the reference tools load their own "
            "tokenizers)"
        )
    if args.resampler or cfg_file.get("resampler"):
        print("note: --resampler: ignored by --impl reference (each reference tool resamples with its own resampler)")
    print(f"scoring with the reference tools in {args.reference_python} ...", flush=True)
    fields = score_with_reference_tools(gen, ref, texts, _score_config(args, cfg_file), args.reference_python)
    rec = {**_folder_record_fields(args, gen, ref), "n_evaluated": len(gen), "n_failed": None, **fields}
    rec["model_weights"] = rec["backbone_weights"]
    return rec


def _print_reference_record(rec: dict) -> None:
    tools = ", ".join(
        f"{p} {v}" for p, v in rec["reference_tools"].items() if p in ("audioldm_eval", "laion_clap", "msclap") and v
    )
    print(
        f"\n== {rec['model']} on {rec['split']} [reference implementation: {tools or 'no tool ran'}; "
        f"python {rec['reference_python']}] protocol {rec['protocol_version']}"
    )
    print(
        f"   evaluated {rec['n_evaluated']} / missing reference {rec['n_missing_reference']} / failed files unknown "
        "(the reference tools report none)"
    )
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
    for tool, info in rec.get("reference_backbones", {}).items():
        print(f"   network {tool}: {info.get('backbone')} ({info.get('argument')}; {tool} {info.get('version')})")
    for tool, how in rec["resamplers"].items():
        print(f"   resampler {tool}: {how}")
    for note in rec["reference_notes"]:
        print(f"   note: {note}")


def cmd_score(args) -> int:
    from bench.audio import AUDIO_EXTENSIONS, list_audio_files
    from bench.metrics.cache import EmbeddingCache
    from bench.metrics.suite import score_protocols
    from bench.process_policy import current_policy
    from bench.splits import load_split

    if args.impl == "reference" and args.backbones == "random":
        raise UsageError(
            "--impl reference needs the official checkpoint files (the reference tools cannot run "
            "with random weights); drop --backbones random and give --checkpoint NAME=PATH"
        )
    cfg_file = _load_config(args.config)
    score_cfg, prompt_texts = _check_score_args(args, cfg_file)
    gen = {p.stem: p for p in list_audio_files(args.gen)}
    if not gen:
        raise UsageError(f"--gen {args.gen}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder")
    texts: dict[str, str] = {}
    if args.split:
        split = load_split(args.split, csv=args.split_csv, ref_dir=args.ref)
        ref = {it.id: it.reference for it in split.items if it.reference is not None}
        texts = {it.id: it.prompt for it in split.items}
    elif args.ref:
        ref = {p.stem: p for p in list_audio_files(args.ref)}
        if not ref:
            raise UsageError(f"--ref {args.ref}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder")
    else:
        raise UsageError("give --ref DIR or --split NAME")
    if args.prompts:
        texts.update(prompt_texts)
    unmatched = sorted(set(gen) - set(texts)) if texts else []
    if unmatched:
        print(f"note: {len(unmatched)} generated files have no prompt (e.g. {unmatched[:3]}); CLAP scores use the rest")
    if args.impl == "reference":
        rec = _score_with_reference_tools(args, cfg_file, gen, ref, texts)
        _print_reference_record(rec)
    else:
        _print_input_notes(gen.values(), "generated", score_cfg)
        _print_input_notes(ref.values(), "reference", score_cfg)
        results = score_protocols(gen, ref, texts, score_cfg, EmbeddingCache(enabled=not args.no_cache))
        records = []
        for result in results.values():
            rec = {
                **_folder_record_fields(args, gen, ref),
                "n_evaluated": result.n_generated - sum(1 for f in result.failures if f["side"] == "generated"),
                "n_failed": len(result.failures),
                "model_weights": "n/a",
                "protocol_version": result.protocol["version"],
                **result.to_dict(),
                "process_policy": current_policy(),  # CPU kernels, allocator, fast exit (bench.process_policy)
            }
            rec["model_weights"] = rec["backbone_weights"]
            _print_record(rec)
            records.append(rec)
        if args.per_clip:
            _write_per_clip(Path(args.per_clip), results)
            print(f"   per-clip values: {args.per_clip}")
        rec = (
            records[0]
            if len(records) == 1
            else {"records": records, "metrics": [m for r in records for m in r["metrics"]]}
        )
    if args.out:
        from bench.runs.store import atomic_write_json

        # one protocol: the record; several: {"records": [one per protocol]}
        atomic_write_json(Path(args.out), rec if "records" not in rec else {"records": rec["records"]})
        print(f"   written: {args.out}")
    if rec["metrics"] and all(_is_nan(m["value"]) for m in rec["metrics"]):
        raise NothingScoredError(
            "every metric is NaN (the reasons are listed above): nothing was scored; "
            "fix the inputs or checkpoints named there and run again"
        )
    return 0


def _write_per_clip(path: Path, results: dict) -> None:
    """`bench score --per-clip FILE.parquet|csv`: one row per clip id, one column per per-clip metric
    column (prefixed "<protocol>:" when several protocols are scored)."""

    import pandas as pd

    frames = []
    for name, result in results.items():
        f = result.per_clip_frame().set_index("clip_id")
        if len(results) > 1:
            f.columns = [f"{name}:{c}" for c in f.columns]
        frames.append(f)
    frame = pd.concat(frames, axis=1).reset_index() if frames else pd.DataFrame({"clip_id": []})
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False) if path.suffix == ".csv" else frame.to_parquet(tmp, index=False)


class NothingScoredError(UsageError):
    """`bench score` computed no metric at all (the record is still written, with every reason)."""


def _is_nan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _check_score_args(args, cfg_file: dict):
    """`bench score`'s folders, split, prompt file, output path and scoring settings, before any work.
    -> (score config, {clip id: prompt} of --prompts)."""
    from bench.arguments import check_folder, check_split_locations
    from bench.splits import SplitError
    from bench.splits.manifest import load_manifest

    check_folder(args.gen, "--gen", "the folder of generated clips named <clip-id>.wav")
    if args.split:
        check_split_locations(args.split, csv=args.split_csv, ref_dir=args.ref, ref_flag="--ref")
        if args.ref:
            check_folder(args.ref, "--ref", f"the folder of the {args.split} split's reference clips")
    elif args.ref:
        check_folder(args.ref, "--ref", "the folder of reference clips named <clip-id>.wav")
    if args.out and Path(args.out).is_dir():
        raise UsageError(f"--out {args.out}: is a folder; give the path of the JSON file to write")
    if args.per_clip:
        if Path(args.per_clip).suffix not in (".parquet", ".csv"):
            raise UsageError(f"--per-clip {args.per_clip}: name a .parquet or .csv file")
        if Path(args.per_clip).is_dir():
            raise UsageError(f"--per-clip {args.per_clip}: is a folder; give the path of the file to write")
        if args.impl == "reference":
            raise UsageError("--per-clip: the reference tools report set values only; drop --impl reference")
    score_cfg = _score_config(args, cfg_file)
    try:
        prompts = {it.id: it.prompt for it in load_manifest(Path(args.prompts)).items} if args.prompts else {}
    except SplitError as e:
        raise UsageError(f"--prompts {e}") from None
    return score_cfg, prompts


def _print_input_notes(files, side: str, score_cfg) -> None:
    """One line per kind of accepted-but-converted input (several channels, another rate), before scoring."""
    from bench.input_notes import input_notes, scoring_rules

    rules = scoring_rules(score_cfg)
    for note in input_notes(files, side):
        print(note.line(rules))


def cmd_leaderboard(args) -> int:
    import pandas as pd

    from bench.leaderboard import build_leaderboard, write_leaderboard

    _check_leaderboard_split(args.root, args.split)
    from bench.leaderboard import SUFFIXES, split_protocols

    protocols = split_protocols(args.root, args.split) or ["genau"]
    for protocol in protocols:  # one table per protocol: rows of different protocols are never ranked together
        try:
            df = build_leaderboard(
                args.root, args.split, rank_by=args.rank_by, with_paper=args.with_paper, protocol=protocol
            )
        except FileNotFoundError as e:  # a plain one from the run store's files: the message names the file
            raise MissingFileError(str(e)) from None
        csv_path, png_path = write_leaderboard(df, args.out, args.split, protocol)
        several = df["comparison_group"].nunique() > 1 if "comparison_group" in df else False  # rows rank per group
        labels = ("rank", "model", "weights", *(("comparison_group",) if several else ()))
        show = [c for c in df.columns if c in labels or (("@" in c) and not c.endswith(SUFFIXES))]
        print(f"\n== protocol {protocol}")
        with pd.option_context(
            "display.width", 250, "display.max_colwidth", 60, "display.float_format", "{:.4g}".format
        ):
            print(df[show].to_string(index=False))
        print(f"\nleaderboard: {csv_path}\nchart:       {png_path}")
    return 0


def _check_leaderboard_split(root: str, split: str) -> None:
    """A split without a folder under the run store: suggest the closest split that has one (or is known)."""
    from bench.arguments import did_you_mean
    from bench.splits import SPLITS

    if (Path(root) / split).is_dir():
        return
    base = Path(root)
    scored = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name[0] != ".") if base.is_dir() else []
    hint = did_you_mean(split, scored) or did_you_mean(split, SPLITS)
    have = f"splits with runs there: {', '.join(scored)}" if scored else "no runs there yet"
    raise UsageError(
        f"--split {split}: no runs for this split under {root}.{hint} ({have}; "
        f"`bench run --split {split} ...` makes them, --root names another run store)"
    )


COMMANDS_GROUP = (
    "genau_bench.commands"  # apps above bench (userstudy) add `bench <name>` here; bench never imports them
)


def cmd_study(args, rest: list[str]) -> int:
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group=COMMANDS_GROUP) if ep.name == "study"]
    if not found:
        raise UsageError(
            f"the study app is not installed (no 'study' in entry-point group {COMMANDS_GROUP!r}): "
            "pip install -e '.[study]'"
        )
    try:
        study_main = found[0].load()
    except ImportError as e:
        raise UsageError(f"the study app needs the [study] extra: pip install -e '.[study]' ({e})") from None
    return study_main(rest, prog="bench study")


def cmd_report(args) -> int:
    """`bench report`: one self-contained HTML page for a split's scored runs (bench/report)."""
    from bench.compare import CompareConfig
    from bench.report.collect import collect_split
    from bench.report.page import ReportConfig, check_out_dir, write_report

    models = [m.strip() for m in (args.models or "").split(",") if m.strip()] or None
    out = Path(args.out) if args.out else Path("reports") / args.split
    check_out_dir(out)
    runs = collect_split(args.root, args.split, models, split_csv=args.split_csv, ref_dir=args.ref_dir)
    cfg = CompareConfig(
        per_clip_resamples=args.per_clip_resamples,
        set_resamples=args.set_resamples,
        seed=args.seed,
        set_metrics=not args.per_clip_only,
        device=args.device,
    )
    path = write_report(runs, ReportConfig(out, compare=not args.no_compare, compare_config=cfg))
    for note in runs.all_notes():
        print(f"note: {note}")
    n = len(runs.systems)
    print(f"report: {path} ({n} model{'s' if n != 1 else ''}; open it in a browser, audio in {path.parent / 'audio'})")
    return 0


def cmd_compare(args) -> int:
    """`bench compare A B --split S` / `bench compare --all --split S`: paired significance per metric."""
    from bench.arguments import did_you_mean
    from bench.compare import CompareConfig, common_protocols, compare_all, compare_pair, format_all, format_pair
    from bench.report.collect import ReportError, collect_split

    if args.all and args.models:
        raise UsageError(f"give two models A B or --all, not both (got {' '.join(args.models)} and --all)")
    if not args.all and len(args.models) != 2:
        raise UsageError(
            f"give exactly two models to compare (got {len(args.models)}: {' '.join(args.models) or 'none'}), "
            "or --all for every pair"
        )
    if not args.all and args.models[0] == args.models[1]:
        raise UsageError(f"{args.models[0]} compared with itself; name two different models")
    runs = collect_split(
        args.root, args.split, None if args.all else args.models, split_csv=args.split_csv, ref_dir=args.ref_dir
    )
    cfg = CompareConfig(
        per_clip_resamples=args.per_clip_resamples,
        set_resamples=args.set_resamples,
        permutations=args.permutations,
        seed=args.seed,
        set_metrics=not args.per_clip_only,
        device=args.device,
    )
    if args.all:
        protocols = runs.protocols
    else:
        protocols = common_protocols(runs.system(args.models[0]), runs.system(args.models[1]))
        if not protocols:
            raise ReportError(f"{args.models[0]} and {args.models[1]} share no scoring protocol on {args.split}")
    if args.protocol:
        if args.protocol not in protocols:
            raise UsageError(
                f"--protocol {args.protocol}: not among the protocols these runs share "
                f"({', '.join(protocols)}).{did_you_mean(args.protocol, protocols)}"
            )
        protocols = [args.protocol]
    results = []
    for protocol in protocols:
        if args.all:
            pairs = compare_all(runs, protocol, cfg)
            print(f"== every pair on {args.split}, protocol {protocol}")
            print(format_all(pairs))
            for pc in pairs:
                for n in pc.notes:
                    print(f"   note ({pc.a} vs {pc.b}): {n}")
            results += pairs
        else:
            pc = compare_pair(runs, args.models[0], args.models[1], protocol, cfg)
            print(format_pair(pc))
            results.append(pc)
    for note in runs.all_notes():
        print(f"note: {note}")
    if args.json:
        from bench.runs.store import atomic_write_json

        atomic_write_json(Path(args.json), {"split": args.split, "comparisons": [pc.to_dict() for pc in results]})
        print(f"written: {args.json}")
    return 0


def _add_report_parsers(sub) -> None:
    """The `report` and `compare` subcommands (issue 19)."""
    from bench.arguments import non_negative_int, positive_int
    from bench.compare import PER_CLIP_RESAMPLES, PERMUTATIONS, SET_RESAMPLES

    def stats_args(p) -> None:
        p.add_argument("--root", default=DEFAULT_ROOT, help="run store root (default: %(default)s)")
        p.add_argument("--split-csv", help="the split's official CSV, for the reference clips (default: data root)")
        p.add_argument("--ref-dir", help="folder of the split's reference clips (default: data root)")
        p.add_argument(
            "--per-clip-resamples",
            type=positive_int,
            default=PER_CLIP_RESAMPLES,
            help="paired bootstrap resamples for per-clip metrics (default: %(default)s)",
        )
        p.add_argument(
            "--set-resamples",
            type=positive_int,
            default=SET_RESAMPLES,
            help="paired bootstrap resamples for set metrics FD / FAD / KAD / IS (default: %(default)s; "
            "each resample recomputes the metric for both models)",
        )
        p.add_argument(
            "--per-clip-only",
            action="store_true",
            help="skip set metrics (they need the clips' embeddings: cache or backbone)",
        )
        p.add_argument("--seed", type=non_negative_int, default=0, help="resampling seed (default: %(default)s)")
        p.add_argument("--device", default="cpu", help="torch device for embeddings not in the cache (default: cpu)")

    p = sub.add_parser("report", help="one self-contained HTML page per split: clips, per-prompt scores, leaderboard")
    p.add_argument("--split", required=True, help="the split whose scored runs to show")
    p.add_argument("--models", help="comma-separated models (or model@hash8 runs) to show; default: every scored run")
    p.add_argument("--out", help="output folder for index.html and audio/ (default: reports/<split>)")
    p.add_argument("--no-compare", action="store_true", help="leave out the all-pairs significance table")
    stats_args(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="paired significance of every metric between two models (or every pair)")
    p.add_argument("models", nargs="*", metavar="MODEL", help="two models (or model@hash8 runs): A B")
    p.add_argument("--split", required=True, help="the split both models ran")
    p.add_argument("--all", action="store_true", help="every pair of scored models on the split")
    p.add_argument("--protocol", help="only this scoring protocol (default: every protocol the runs share)")
    p.add_argument(
        "--permutations",
        type=positive_int,
        default=PERMUTATIONS,
        help="sign-flip permutations for per-clip metrics (exact when 2^n is fewer; default: %(default)s)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the comparisons as JSON")
    stats_args(p)
    p.set_defaults(func=cmd_compare)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (the usage block is behind --help), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list model plugins, their default settings and checkpoint status")
    p.add_argument(
        "--wide", action="store_true", help="also where each checkpoint is looked for and the model's source"
    )
    p.add_argument("--json", action="store_true", help="every field of every model as JSON")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("splits", help="list splits with counts and file locations")
    p.set_defaults(func=cmd_splits)

    from bench.arguments import positive_float, positive_int

    p = sub.add_parser("run", help="generate clips for a split with each model, then score and store results")
    p.add_argument("--models", required=True, help="comma-separated plugin names (see `bench models`)")
    p.add_argument("--split", required=True, help="demo | audiocaps | bigsoundbank | path/to/manifest.csv|jsonl")
    p.add_argument("--split-csv", help="the split's official CSV (default: under the data root)")
    p.add_argument("--ref-dir", help="folder of reference clips (default: under the data root)")
    p.add_argument("--out", default=DEFAULT_ROOT, help="run store root (default: %(default)s)")
    p.add_argument(
        "--seed", type=int, default=0, help="run seed; each clip's seed is derived from it and the clip id (default: 0)"
    )
    p.add_argument("--steps", type=positive_int, help="override the model's default sampler steps (recorded)")
    p.add_argument("--guidance", type=float, help="override the model's default guidance scale (recorded)")
    p.add_argument("--duration", type=positive_float, help="override the protocol's 10 s (recorded)")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=4,
        help="prompts per generation call; batches always hold the same clips (default: %(default)s)",
    )
    p.add_argument("--limit", type=positive_int, help="only the first N prompts (smoke tests)")
    p.add_argument("--shard", help="i/n: generate only this shard (torchrun / accelerate set it automatically)")
    p.add_argument(
        "--model-checkpoint",
        action="append",
        metavar="MODEL=PATH",
        help="a model's checkpoint folder / file or hub id, e.g. audioldm-l=/data/audioldm-l-full (repeatable)",
    )
    p.add_argument(
        "--weights",
        choices=("raw", "ema"),
        default=None,
        help="GenAu releases: raw weights (default, as the official generate_and_eval.py) or the "
        "checkpoint's EMA copy (model_ema.*, as inference_file.py and the Gradio demo); recorded in "
        "the run's identity",
    )
    p.add_argument("--no-score", action="store_true", help="generate only")
    p.add_argument("--leaderboard", action="store_true", help="also export the split's leaderboard afterwards")
    p.add_argument(
        "--leaderboard-dir", default="leaderboards", help="folder of the exported leaderboard (default: %(default)s)"
    )
    _add_scoring_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("score", help="score a folder of generated audio against references (like audioldm_eval)")
    p.add_argument("--gen", required=True, help="folder of generated clips named <clip-id>.wav")
    p.add_argument("--ref", help="folder of reference clips with the same names")
    p.add_argument("--split", help="take references and prompts from a split instead")
    p.add_argument(
        "--split-csv", help="with --split audiocaps / bigsoundbank: the split's official CSV (default: data root)"
    )
    p.add_argument("--prompts", help="CSV/JSONL with id,caption for the CLAP scores")
    p.add_argument("--out", help='write the results record (JSON) here (several protocols: {"records": [...]})')
    p.add_argument("--per-clip", help="write per-clip values (KL, CLAP, aesthetics) to FILE.parquet or FILE.csv")
    p.add_argument(
        "--impl",
        choices=["ours", "reference"],
        default="ours",
        help="ours (default), or the field's reference tools (audioldm_eval, laion_clap, msclap) on the same "
        "inputs and checkpoint files, run by --reference-python; recorded as impl=reference, never ranked",
    )
    p.add_argument(
        "--reference-python",
        default=sys.executable,
        metavar="PATH",
        help="python of the environment that holds the reference packages (default: this interpreter)",
    )
    _add_scoring_args(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("leaderboard", help="export leaderboards/<split>.csv and a PNG chart from scored runs")
    p.add_argument(
        "--split",
        required=True,
        help="the split whose scored runs to rank: demo, audiocaps, bigsoundbank or a manifest's name",
    )
    p.add_argument("--root", default=DEFAULT_ROOT, help="run store root (default: %(default)s)")
    p.add_argument("--out", default="leaderboards", help="output folder (default: %(default)s)")
    p.add_argument(
        "--rank-by",
        default=None,
        help="metric to rank comparable rows by (default: each protocol's first: FD, or PQ for aesthetics)",
    )
    p.add_argument(
        "--with-paper",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add the published numbers of leaderboards/reported/ for this split, labelled reported (default: on)",
    )
    p.set_defaults(func=cmd_leaderboard)

    _add_report_parsers(sub)
    sub.add_parser("study", help="pairwise listening study: `bench study --help`", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse (argparse's own usage errors: exit status 2), set up the process for the command
    (bench.process_policy), run it. The one place a user-fixable error (any `GenauBenchError`)
    becomes one line `error: ...` and exit status 1."""
    from bench.process_policy import apply_process_policy

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "study":
            apply_process_policy("study")
            return cmd_study(None, argv[1:])
        args = build_parser().parse_args(argv)
        apply_process_policy(args.command)
        return args.func(args)
    except GenauBenchError as e:
        raise SystemExit(f"error: {one_line(e)}") from None


def console_main() -> None:
    """The `bench` executable: `main`, then, after `bench score` / `bench run` returned normally,
    a process exit without the interpreter's module teardown. Tearing down torch, transformers
    and librosa takes about 1.2 s after every scoring run (measured: 1.15 s for importing those
    three alone, 0.07 s this way); everything of ours is on disk by then (records, cache and
    memo files are written atomically). atexit handlers still run. GENAU_BENCH_FAST_EXIT=0 turns
    it off."""
    from bench.process_policy import fast_exit_applies

    rc = main(sys.argv[1:])
    if fast_exit_applies():  # `bench score` / `bench run` unless GENAU_BENCH_FAST_EXIT=0 (bench.process_policy)
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
