"""Issue 15, item 2 (and two cases of item 3): every user mistake is one line naming the file, line or
value and what to do, a non-zero exit, and it is found before any work starts (no clip generated,
no clip embedded, nothing cached).

`bench.cli.main` turns a user error into `SystemExit("error: ...")` in one place; the executable
prints that one line on stderr and exits 1. `_fails` asserts exactly that, and that no other
exception (a traceback) escapes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.audio import write_wav
from bench.cli import main


def _fails(argv: list[str], *needles: str) -> str:
    """Run `bench argv`; it must end with one line `error: ...` containing every needle."""
    with pytest.raises(SystemExit) as err:
        main(argv)
    message = str(err.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if any clip is generated or embedded."""
    import bench.harness
    import bench.metrics.suite

    def forbidden(*_a, **_k):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(bench.harness, "generate_run", forbidden)
    monkeypatch.setattr(bench.metrics.suite, "score", forbidden)
    monkeypatch.setattr(bench.metrics.suite._Embedder, "embed", forbidden)


def _clips(folder: Path, n: int = 3, seed: int = 0, sr: int = 16000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        write_wav(folder / f"c{i}.wav", (0.1 * rng.standard_normal(sr * 2)).astype(np.float32), sr)
    return folder


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    return _clips(tmp_path / "gen", seed=1), _clips(tmp_path / "ref", seed=2)


SCORE = ["--backbones", "random", "--metrics", "FD", "--bootstrap", "0"]
RUN = ["run", "--models", "genau-tiny", "--split", "demo", "--backbones", "random", "--no-cache"]


# --- bench score on a missing folder ------------------------------------------------------------


def test_score_gen_folder_missing(tmp_path, folders, no_work):
    _, ref = folders
    _fails(
        ["score", "--gen", str(tmp_path / "nope"), "--ref", str(ref), *SCORE],
        f"--gen {tmp_path / 'nope'}: no such folder",
        "generated clips",
    )


def test_score_ref_folder_missing(tmp_path, folders, no_work):
    gen, _ = folders
    _fails(
        ["score", "--gen", str(gen), "--ref", str(tmp_path / "nope"), *SCORE],
        f"--ref {tmp_path / 'nope'}: no such folder",
        "reference clips",
    )


def test_score_gen_is_a_file(tmp_path, folders, no_work):
    _, ref = folders
    _fails(["score", "--gen", str(ref / "c0.wav"), "--ref", str(ref), *SCORE], "c0.wav: not a folder")


# --- --shard, --metrics, --resampler ------------------------------------------------------------


@pytest.mark.parametrize("shard", ["5/4", "4/4", "-1/4", "0/0"])
def test_shard_out_of_range(shard, tmp_path, no_work):
    _fails([*RUN, "--out", str(tmp_path), f"--shard={shard}"], f"--shard {shard}", "0 <= i < n")


def test_shard_not_i_over_n(tmp_path, no_work):
    _fails([*RUN, "--out", str(tmp_path), "--shard", "two"], "--shard expects i/n", "'two'")


def test_unknown_metric_in_score(folders, no_work):
    gen, ref = folders
    _fails(
        ["score", "--gen", str(gen), "--ref", str(ref), "--backbones", "random", "--metrics", "FD,FDX"],
        "unknown metric 'FDX'",
        "Did you mean 'FD'",
        "Choose from FD,",
    )


def test_unknown_metric_in_run_is_found_before_generating(tmp_path, no_work):
    _fails([*RUN, "--out", str(tmp_path), "--metrics", "FDX"], "unknown metric 'FDX'")
    assert not list(tmp_path.rglob("*.wav"))


def test_unknown_resampler_is_an_error_even_without_resampling(folders, tmp_path, no_work):
    """16 kHz mono clips and the 16 kHz FD backbone: nothing to resample, and still an error (the old code
    scored and recorded "resampler": "foo")."""
    gen, ref = folders
    _fails(
        [
            "score",
            "--gen",
            str(gen),
            "--ref",
            str(ref),
            *SCORE,
            "--resampler",
            "foo",
            "--out",
            str(tmp_path / "r.json"),
        ],
        "--resampler 'foo': unknown resampler",
        "soxr-hq",
    )
    assert not (tmp_path / "r.json").exists()


def test_unknown_resampler_in_run_and_in_a_config_file(tmp_path, no_work):
    _fails(
        [*RUN, "--out", str(tmp_path), "--resampler", "soxr-hqq"], "--resampler 'soxr-hqq'", "Did you mean 'soxr-hq'"
    )
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("resampler: foo\n")
    _fails([*RUN, "--out", str(tmp_path), "--config", str(cfg)], f"--config {cfg}: resampler: 'foo': unknown resampler")


def test_every_known_resampler_is_accepted():
    """Every resampler of bench.audio's registry, and "reference" (each backbone's own), is accepted."""
    from bench.arguments import check_resampler
    from bench.audio import RESAMPLERS, known_resamplers

    assert set(RESAMPLERS) < set(known_resamplers()) and "reference" in known_resamplers()
    for name in known_resamplers():
        assert check_resampler(name) == name


def test_bad_numbers_are_one_line_too(tmp_path, capsys):
    for flag, value in (
        ("--batch-size", "0"),
        ("--limit", "-1"),
        ("--steps", "0"),
        ("--duration", "nan"),
        ("--bootstrap", "-5"),
    ):
        with pytest.raises(SystemExit) as err:
            main([*RUN, "--out", str(tmp_path), flag, value])
        assert err.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and f"argument {flag}" in lines[0] and repr(value) in lines[0], lines


def test_unknown_device(tmp_path, no_work):
    _fails([*RUN, "--out", str(tmp_path), "--device", "gpu0"], "--device 'gpu0'", "cuda:N")


# --- model and backbone checkpoints -------------------------------------------------------------


def test_model_checkpoint_folder_without_weights(tmp_path, offline, no_work):
    empty = tmp_path / "audioldm-l-full"
    empty.mkdir()
    (empty / "model_index.json").write_text("{}")
    msg = _fails(
        [
            "run",
            "--models",
            "audioldm-l",
            "--split",
            "demo",
            "--no-score",
            "--out",
            str(tmp_path / "runs"),
            "--model-checkpoint",
            f"audioldm-l={empty}",
        ],
        f"audioldm-l: {empty}: no weight files",
        "--model-checkpoint audioldm-l=PATH",
    )
    assert "cvssp/audioldm-l-full" in msg


def test_model_checkpoint_missing_folder(tmp_path, offline, no_work):
    _fails(
        [
            "run",
            "--models",
            "tango",
            "--split",
            "demo",
            "--no-score",
            "--out",
            str(tmp_path / "runs"),
            "--model-checkpoint",
            f"tango={tmp_path / 'nope'}",
        ],
        f"{tmp_path / 'nope'}: no such folder",
        "--model-checkpoint tango=PATH",
    )


def test_model_checkpoint_for_a_model_not_in_the_run(tmp_path, no_work):
    """The old hint's `audioldm-l-full=PATH` was silently ignored: a key that is not one of --models is an error."""
    _fails(
        [
            "run",
            "--models",
            "audioldm-l",
            "--split",
            "demo",
            "--no-score",
            "--out",
            str(tmp_path),
            "--model-checkpoint",
            f"audioldm-l-full={tmp_path}",
        ],
        "--model-checkpoint audioldm-l-full=...",
        "not in --models audioldm-l",
        "Did you mean 'audioldm-l'",
    )


def test_every_models_checkpoint_is_checked_before_the_first_is_generated(tmp_path, offline, no_work):
    _fails(
        ["run", "--models", "genau-tiny,audioldm-l", "--split", "demo", "--no-score", "--out", str(tmp_path)],
        "audioldm-l:",
        "--model-checkpoint audioldm-l=PATH",
    )


def test_backbone_checkpoint_flag_given_a_model_or_a_typo(folders, no_work):
    gen, ref = folders
    _fails(
        ["score", "--gen", str(gen), "--ref", str(ref), *SCORE, "--checkpoint", "audioldm-l=/x"],
        "'audioldm-l' is a model",
        "--model-checkpoint audioldm-l=PATH",
    )
    _fails(
        ["score", "--gen", str(gen), "--ref", str(ref), *SCORE, "--checkpoint", "vgish=/x"],
        "unknown metric backbone 'vgish'",
        "Did you mean 'vggish'",
    )


# --- bench score --prompts: every malformed file --------------------------------------------------


PROMPT_FILES = {
    "missing-column.csv": (b"id,text\nc0,rain\n", ["missing-column.csv:1", "missing column(s) ['caption']"]),
    "duplicate-id.csv": (
        b"id,caption\nc0,rain\nc1,dog\nc0,wind\n",
        ["duplicate-id.csv:4", "duplicate id 'c0'", "line 2"],
    ),
    "not-utf8.csv": (
        b"id,caption\nc0,rain\nc1,caf\xe9 noise\n",
        ["not-utf8.csv:3", "byte 0xe9", "not UTF-8", "save the file as UTF-8"],
    ),
    "empty.csv": (b"", ["empty.csv", "empty file", "id', 'caption"]),
    "header-only.csv": (b"id,caption\n", ["header-only.csv", "no rows after the header", "add one row per clip"]),
    "not-utf8.jsonl": (b'{"id": "c0", "caption": "caf\xe9"}\n', ["not-utf8.jsonl:1", "byte 0xe9", "not UTF-8"]),
    "empty.jsonl": (b"", ["empty.jsonl", "no rows"]),
}


@pytest.mark.parametrize("name", sorted(PROMPT_FILES))
def test_malformed_prompt_file(name, folders, tmp_path, no_work):
    gen, ref = folders
    content, needles = PROMPT_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    _fails(
        ["score", "--gen", str(gen), "--ref", str(ref), *SCORE, "--prompts", str(path)],
        f"--prompts {tmp_path}",
        *needles,
    )


def test_missing_prompt_file(folders, tmp_path, no_work):
    gen, ref = folders
    _fails(
        ["score", "--gen", str(gen), "--ref", str(ref), *SCORE, "--prompts", str(tmp_path / "nope.csv")],
        f"--prompts {tmp_path / 'nope.csv'}: manifest not found",
        "id,caption",
    )


def test_non_utf8_split_manifest_in_run(tmp_path, no_work):
    bad = tmp_path / "m.csv"
    bad.write_bytes(b"id,caption\nc0,\xff\n")
    _fails(
        ["run", "--models", "genau-tiny", "--split", str(bad), "--no-score", "--out", str(tmp_path)],
        f"{bad}:2",
        "byte 0xff",
    )


# --- item 3: --ref-dir with --split demo; all-NaN exits non-zero --------------------------------


def test_ref_dir_with_the_demo_split_is_refused(tmp_path, folders, no_work):
    _, ref = folders
    _fails(
        [*RUN, "--out", str(tmp_path), "--ref-dir", str(ref)],
        f"--ref-dir {ref}: not used with --split demo",
        "embedded",
    )
    _fails(
        [*RUN, "--out", str(tmp_path), "--split-csv", str(ref / "x.csv")], "--split-csv", "not used with --split demo"
    )
    gen, _ = folders
    _fails(
        ["score", "--gen", str(gen), "--split", "demo", "--ref", str(ref), *SCORE],
        f"--ref {ref}: not used with --split demo",
    )


def test_ref_dir_with_a_manifest_split_is_refused(tmp_path, folders, no_work):
    _, ref = folders
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,caption\nc0,rain\n")
    _fails(
        [
            "run",
            "--models",
            "genau-tiny",
            "--split",
            str(manifest),
            "--ref-dir",
            str(ref),
            "--no-score",
            "--out",
            str(tmp_path),
        ],
        "--ref-dir",
        "audio column",
    )


def test_score_with_every_metric_nan_exits_non_zero(folders, tmp_path, monkeypatch, capsys):
    """Official backbones with no checkpoint files anywhere: every metric NaN with its reason; the record is
    still written, and the exit status says nothing was scored."""
    monkeypatch.setenv("GENAU_BENCH_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    monkeypatch.setenv("GENAU_BENCH_CACHE", str(tmp_path / "cache"))
    gen, ref = folders
    out = tmp_path / "r.json"
    _fails(
        ["score", "--gen", str(gen), "--ref", str(ref), "--metrics", "FD,FAD", "--bootstrap", "0", "--out", str(out)],
        "every metric is NaN",
    )
    printed = capsys.readouterr().out
    assert "FD_panns-cnn14" in printed and "missing:" in printed  # the reasons were shown first
    assert len(json.loads(out.read_text())["metrics"]) == 2


def test_score_with_a_metric_computed_exits_zero(folders, tmp_path):
    gen, ref = folders
    assert main(["score", "--gen", str(gen), "--ref", str(ref), *SCORE]) == 0


# --- the executable: one line on stderr, exit status 1, no traceback -----------------------------


def test_the_executable_prints_one_line_and_exits_1(tmp_path):
    code = "import sys; from bench.cli import console_main; sys.argv = ['bench'] + sys.argv[1:]; console_main()"
    env = {**os.environ, "GENAU_BENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", code, "score", "--gen", str(tmp_path / "nope"), "--ref", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1
    assert done.stdout == "" and done.stderr.strip().splitlines() == [
        f"error: --gen {tmp_path / 'nope'}: no such folder; give the folder of generated clips named <clip-id>.wav"
    ]


def test_user_errors_share_one_base_class():
    from bench.errors import GenauBenchError, MissingFileError, UsageError
    from genau_core.errors import GenauBenchError as CoreBase

    assert GenauBenchError is CoreBase
    assert issubclass(UsageError, GenauBenchError) and issubclass(UsageError, ValueError)
    assert issubclass(MissingFileError, GenauBenchError) and issubclass(MissingFileError, FileNotFoundError)
