"""`autocap` command line: caption audio, train the two stages, evaluate on a split.

    autocap caption clips/ --model autocap-tiny -o captions.csv
    autocap caption a.wav b.flac --meta meta.yaml --model autocap --checkpoint ~/autocap-files -o out.csv
    autocap train --stage 1 --manifest demo --out runs/s1 --steps 100
    autocap eval --split demo --model autocap-tiny
    autocap eval --split audiocaps --model autocap --split-csv test.csv --ref-dir clips/

Metadata files (`--meta`): YAML `{file_name: {title: ..., video_caption: ..., description: ...}}`
(the official `meta_data.yaml` layout) or CSV with a `file` column (or `fname` / `path` / `id`)
and any of the columns title, video_caption, description. Rows are matched to audio files by
file name, path as given, or stem.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Sequence

from genau_core.autocap.configs import META_FIELDS
from genau_core.files import atomic_path


# ------------------------------------------------------------------------------- caption ---
def collect_audio(inputs: Sequence[str]) -> list[Path]:
    from genau_core.audio.io import list_audio_files

    files: list[Path] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            found = list_audio_files(p)
            if not found:
                raise SystemExit(f"autocap: {p}: no audio files (.wav .flac .ogg .mp3 .aiff) in this folder")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise SystemExit(f"autocap: {p}: no such file or folder")
    return files


def read_metadata_file(path: str | Path) -> dict[str, dict[str, str]]:
    """key (file name / path / stem) -> {field: text}; unknown fields are an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"autocap: {path}: metadata file not found")
    entries: dict[str, dict] = {}
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise SystemExit(f"autocap: {path}: invalid YAML ({e})") from None
        if not isinstance(data, dict):
            raise SystemExit(f"autocap: {path}: expected a mapping of file name -> metadata")
        for key, value in data.items():
            if not isinstance(value, dict):
                raise SystemExit(f"autocap: {path}: entry {key!r} is not a mapping of field -> text")
            entries[str(key)] = value
    elif path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            key_col = next((c for c in ("file", "fname", "path", "id") if c in cols), None)
            if key_col is None:
                raise SystemExit(f"autocap: {path}: needs a 'file' (or fname / path / id) column; found {cols}")
            for row in reader:
                entries[row[key_col].strip()] = {k: v for k, v in row.items() if k != key_col}
    else:
        raise SystemExit(f"autocap: {path}: metadata must be .yaml or .csv")
    out = {}
    for key, value in entries.items():
        unknown = [k for k in value if k not in META_FIELDS and value[k] not in (None, "")]
        if unknown and path.suffix.lower() != ".csv":
            raise SystemExit(
                f"autocap: {path}: entry {key!r} has unknown fields {unknown}; known: {', '.join(META_FIELDS)}"
            )
        out[key] = {k: "" if value.get(k) is None else str(value[k]) for k in META_FIELDS if k in value}
    return out


def match_metadata(files: Sequence[Path], table: dict[str, dict[str, str]], source: str) -> list[dict[str, str]]:
    out, used = [], set()
    for f in files:
        for key in (str(f), f.name, f.stem):
            if key in table:
                out.append(table[key])
                used.add(key)
                break
        else:
            out.append({})
    unused = [k for k in table if k not in used]
    if unused:
        print(
            f"autocap: {source}: {len(unused)} metadata entries match no input file, e.g. {unused[:3]}", file=sys.stderr
        )
    return out


def cmd_caption(args: argparse.Namespace) -> int:
    from genau_core.audio.io import AudioError
    from genau_core.autocap.captioner import load_captioner

    files = collect_audio(args.inputs)
    meta = match_metadata(files, read_metadata_file(args.meta), args.meta) if args.meta else None
    cap = load_captioner(
        args.model, checkpoint=args.checkpoint, device=args.device, num_beams=args.beams, allow_pickle=args.allow_pickle
    )
    try:
        results = cap.caption_files(
            files, meta, batch_size=args.batch_size, on_error="skip" if args.skip_bad else "raise"
        )
    except AudioError as e:
        raise SystemExit(f"autocap: {e} (use --skip-bad to caption the other files and record the error)") from None
    out = Path(args.output)
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "caption", "model", "identity", "error"])
        for r in results:
            w.writerow([str(r.path), r.caption or "", cap.name, cap.identity, r.error or ""])
    bad = [r for r in results if r.error]
    for r in bad:
        print(f"autocap: skipped {r.error}", file=sys.stderr)
    print(f"{out}: {len(results) - len(bad)} captions" + (f", {len(bad)} files skipped" if bad else ""))
    return 1 if bad and len(bad) == len(results) else 0


# ---------------------------------------------------------------------------------- eval ---
def cmd_eval(args: argparse.Namespace) -> int:
    from genau_core.autocap.captioner import load_captioner
    from genau_core.autocap.evaluate import evaluate, table1
    from genau_core.autocap.metrics import FAMILIES, CaptionMetricsError

    families = tuple(f.strip() for f in args.metrics.split(",") if f.strip())
    bad = [f for f in families if f not in FAMILIES]
    if bad:
        raise SystemExit(f"autocap: unknown metrics {bad}; choose from {', '.join(FAMILIES)}")
    cap = load_captioner(
        args.model, checkpoint=args.checkpoint, device=args.device, num_beams=args.beams, allow_pickle=args.allow_pickle
    )
    try:
        res = evaluate(
            cap, args.split, split_csv=args.split_csv, ref_dir=args.ref_dir, batch_size=args.batch_size,
            limit=args.limit, families=families, use_metadata=not args.no_metadata, captions_out=args.captions_out,
        )  # fmt: skip
    except CaptionMetricsError as e:
        kept = f"; the captions are in {args.captions_out}" if args.captions_out else "; --captions-out FILE keeps them"
        raise SystemExit(f"autocap: {e}{kept}") from None
    print(table1([res]))
    if res.missing:
        print(
            f"\n{len(res.missing)} clips missing, e.g. "
            + "; ".join(f"{k}: {v}" for k, v in list(res.missing.items())[:5])
        )
    if args.json:
        Path(args.json).write_text(json.dumps(res.as_dict(), indent=2) + "\n")
    return 0


# ---------------------------------------------------------------------------------- train ---
def cmd_train(args: argparse.Namespace) -> int:
    import os

    from genau_core.autocap.train import config_from_args, train

    metrics = train(config_from_args(args))
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(metrics))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from genau_core.autocap.train import build_parser as train_parser

    p = argparse.ArgumentParser(prog="autocap", description="AutoCap audio captioning: caption, train, evaluate.")
    sub = p.add_subparsers(dest="command", required=True)

    def model_args(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--model",
            default="autocap-tiny",
            help="autocap (release files), autocap-tiny (shipped) or a trained folder",
        )
        q.add_argument(
            "--checkpoint", default=None, help="autocap: folder of release files; autocap-tiny: another trained folder"
        )
        q.add_argument("--beams", type=int, default=None, help="beam size (default: the model's, 2)")
        q.add_argument("--batch-size", type=int, default=8)
        q.add_argument("--device", default="cpu")
        q.add_argument(
            "--allow-pickle", action="store_true", help="load a trusted .ckpt that pickles non-tensor objects"
        )

    c = sub.add_parser("caption", help="caption audio files / folders into a CSV")
    c.add_argument("inputs", nargs="+", help="audio files and/or folders")
    c.add_argument("-o", "--output", required=True, help="captions CSV (file, caption, model, identity, error)")
    c.add_argument("--meta", default=None, help="metadata .yaml or .csv (title, video_caption, description per file)")
    c.add_argument("--skip-bad", action="store_true", help="record unreadable files in the CSV instead of stopping")
    model_args(c)
    c.set_defaults(func=cmd_caption)

    t = sub.add_parser("train", help="train stage 1 or 2")
    train_parser(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="caption a split and print Table-1 rows")
    e.add_argument("--split", required=True, help="audiocaps, demo, or a .csv/.jsonl manifest")
    e.add_argument("--split-csv", default=None, help="audiocaps: path of test.csv")
    e.add_argument("--ref-dir", default=None, help="audiocaps: folder of the clips")
    e.add_argument("--limit", type=int, default=None, help="first N clips only")
    e.add_argument("--metrics", default="bleu,rouge,meteor,cider,spice")
    e.add_argument("--no-metadata", action="store_true", help="ignore the split's metadata columns")
    e.add_argument(
        "--captions-out", default=None, help="write id, caption, references CSV (before the metrics, which need Java)"
    )
    e.add_argument("--json", default=None, help="write the result as JSON")
    model_args(e)
    e.set_defaults(func=cmd_eval)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from genau_core.autocap.metrics import CaptionMetricsError
    from genau_core.autocap.text import TokenizerError
    from genau_core.checkpoint_io import CheckpointFormatError
    from genau_core.checkpoints import CheckpointNotFound
    from genau_core.errors import SplitError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CheckpointNotFound, CheckpointFormatError, SplitError, CaptionMetricsError, TokenizerError) as e:
        raise SystemExit(f"autocap: {e}") from None


if __name__ == "__main__":
    raise SystemExit(main())
