"""Issue 15, items 4 and 5: hints are commands that work (tested by running them), unknown names get
the closest one, `bench study --help` names itself, long steps show progress, every option has help
text, and `bench models` fits 120 columns."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pytest

from bench.audio import write_wav
from bench.cli import build_parser, main
from bench.plugins.registry import BUILTIN_PLUGINS

FAST_RUN = ["--split", "demo", "--limit", "1", "--steps", "2", "--duration", "1", "--no-score", "--batch-size", "1"]


def _error(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as err:
        main(argv)
    message = str(err.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


def _run_the_hint(message: str, folder, argv: list[str]) -> int:
    """The hint in `message` (`--model-checkpoint NAME=PATH`) with PATH replaced, appended to `argv`, run."""
    found = re.search(r"--model-checkpoint (\S+)=PATH", message)
    assert found, f"no runnable hint in: {message}"
    return main([*argv, "--model-checkpoint", f"{found.group(1)}={folder}"])


# --- item 4: missing-checkpoint hints, run -------------------------------------------------------


def test_audioldm_l_hint_runs(tmp_path, offline):
    """The old hint, `--checkpoint audioldm-l-full=PATH`, gave the same error again."""
    import warnings

    from diffusers import AudioLDMPipeline

    from bench.plugins.audioldm import build_tiny_audioldm_components

    argv = ["run", "--models", "audioldm-l", *FAST_RUN, "--out", str(tmp_path / "runs")]
    message = _error(argv)
    assert "--model-checkpoint audioldm-l=PATH" in message and "--checkpoint audioldm-l-full" not in message
    folder = tmp_path / "audioldm-l-full"
    with warnings.catch_warnings():  # diffusers' deprecation notice for AudioLDMPipeline
        warnings.simplefilter("ignore")
        AudioLDMPipeline(**build_tiny_audioldm_components(0)).save_pretrained(str(folder))  # the released layout
    assert _run_the_hint(message, folder, argv) == 0
    assert len(list((tmp_path / "runs").rglob("clips/*.wav"))) == 1


def test_tango_hint_runs(tmp_path, offline, monkeypatch):
    """tango's loader passes no model name to the hub lookup: the hint still names `tango`."""
    from bench.plugins.tango import TANGO_TINY_CONFIG, Tango, build_tiny_tango
    from genau_core.baselines.tango import save_official_tango_folder
    from tests.bench.plugins.test_plugin_tango import official_main_file, official_vae_file

    argv = ["run", "--models", "tango", *FAST_RUN, "--out", str(tmp_path / "runs")]
    message = _error(argv)
    assert "--model-checkpoint tango=PATH" in message
    folder = tmp_path / "tango-release"
    save_official_tango_folder(
        folder,
        official_main_file(),
        official_vae_file(),
        TANGO_TINY_CONFIG.vae,
        tokenizer=build_tiny_tango(seed=9).tokenizer,
    )
    monkeypatch.setattr(Tango, "config", TANGO_TINY_CONFIG)  # tiny dimensions; the folder layout and loader are real
    assert _run_the_hint(message, folder, argv) == 0
    assert len(list((tmp_path / "runs").rglob("clips/*.wav"))) == 1


def test_a_folder_without_weights_gets_the_same_working_hint(tmp_path, offline):
    empty = tmp_path / "empty"
    empty.mkdir()
    message = _error(
        [
            "run",
            "--models",
            "audioldm2-l",
            *FAST_RUN,
            "--out",
            str(tmp_path),
            "--model-checkpoint",
            f"audioldm2-l={empty}",
        ]
    )
    assert f"{empty}: no weight files" in message and "--model-checkpoint audioldm2-l=PATH" in message


@pytest.mark.parametrize("name", [n for n in BUILTIN_PLUGINS if not n.endswith("-tiny")])
def test_every_missing_model_checkpoint_names_the_flag_that_works(name, offline, monkeypatch, tmp_path):
    from bench.plugins.registry import get_plugin_class

    monkeypatch.setenv("GENAU_BENCH_CHECKPOINTS", str(tmp_path / "none"))
    ok, status = get_plugin_class(name)().checkpoint_status()
    assert not ok
    assert f"--model-checkpoint {name}=" in status, status
    assert not re.search(r"(?<!model)-checkpoint \S+=", status.replace(f"--model-checkpoint {name}=", "")), status


def test_backbone_hint_names_the_backbone(tmp_path, monkeypatch):
    """A missing metric checkpoint: the NaN reason says `--checkpoint <backbone>=PATH`, a key the CLI accepts."""
    from bench.arguments import check_backbone_keys
    from bench.metrics.suite import ScoreConfig, locate_checkpoint

    monkeypatch.setenv("GENAU_BENCH_CHECKPOINTS", str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError) as err:
        locate_checkpoint("vggish", ScoreConfig(metrics=["FAD"]))
    assert "--checkpoint vggish=PATH" in str(err.value)
    check_backbone_keys({"vggish": "x"}, "--checkpoint")  # accepted


# --- item 4: closest names; bench study's usage line ----------------------------------------------


def test_leaderboard_unknown_split_suggests_the_closest(tmp_path):
    assert "Did you mean 'demo'?" in _error(["leaderboard", "--split", "dmeo", "--root", str(tmp_path / "runs")])
    (tmp_path / "runs" / "my-manifest").mkdir(parents=True)
    message = _error(["leaderboard", "--split", "my-manifset", "--root", str(tmp_path / "runs")])
    assert "Did you mean 'my-manifest'?" in message and "splits with runs there: my-manifest" in message


def test_study_help_names_bench_study(capsys):
    pytest.importorskip("fastapi")
    with pytest.raises(SystemExit) as err:
        main(["study", "--help"])
    assert err.value.code == 0
    assert capsys.readouterr().out.startswith("usage: bench study")
    with pytest.raises(SystemExit):
        main(["study", "serve", "--help"])
    assert capsys.readouterr().out.startswith("usage: bench study serve")


# --- item 5: progress ---------------------------------------------------------------------------


def test_embedding_bar_counts_clips(tmp_path, capsys, monkeypatch):
    """10 clips used to be one step (`0/1 ... batch`) for the whole embedding; 20 clips are 2 batches of 16.
    The network is stubbed out (the bar, not Cnn14, is under test)."""
    from bench.metrics.cache import EmbeddingCache
    from bench.metrics.suite import LazyBackbone, ScoreConfig, _Embedder

    monkeypatch.setattr(
        LazyBackbone, "embed", lambda self, waves: [{"embedding": np.zeros(4, np.float32)} for _ in waves]
    )

    rng = np.random.default_rng(0)
    files = []
    for i in range(20):
        files.append(str(tmp_path / f"c{i}.wav"))
        write_wav(files[-1], (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    cfg = ScoreConfig(metrics=["FD"], weights="random", bootstrap=0, progress=True)
    backbones = {"panns-cnn14-16k": LazyBackbone("panns-cnn14-16k", cfg)}
    out = _Embedder(backbones, cfg, EmbeddingCache(enabled=False)).embed(files, "embedding generated clips")
    assert len(out["panns-cnn14-16k"]) == 20
    err = capsys.readouterr().err
    assert re.search(r"embedding generated clips: +80%.*\b16/20 \[.*clip", err), err[-2000:]  # after the first batch
    assert re.search(r"embedding generated clips: 100%.*\b20/20 \[.*clip", err), err[-2000:]
    assert "panns-cnn14-16k on 16 clips" in err and "panns-cnn14-16k on 4 clips" in err  # which backbone is running
    assert "batch" not in err


def test_genau_generate_shows_loading_and_denoising(tmp_path, capsys):
    from genau_core.cli import main as genau_main

    out = tmp_path / "x.wav"
    assert genau_main(["generate", "rain on a roof", "-o", str(out), "--steps", "3", "--duration", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)  # stdout: only the written path
    assert "loading genau-tiny on cpu" in captured.err and re.search(r"loaded genau-tiny in \d+\.\d s", captured.err)
    assert re.search(r"denoising 1 prompt: 100%.*3/3", captured.err), captured.err
    assert "decoding latents to audio" in captured.err


def test_genau_generate_too_long_is_one_line(tmp_path):
    from genau_core.cli import main as genau_main

    with pytest.raises(SystemExit) as err:
        genau_main(["generate", "rain", "-o", str(tmp_path / "x.wav"), "--duration", "30"])
    assert str(err.value.code).startswith("error: --duration 30: genau-tiny generates clips of up to")


def _options_without_help(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += _options_without_help(sub, f"{path} {name}")
        elif action.help is None and not isinstance(action, argparse._HelpAction):
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_has_help_text():
    from genau_core.cli import build_parser as genau_parser

    missing = _options_without_help(build_parser(), "bench")
    missing += [m for m in _options_without_help(genau_parser(), "genau") if m.startswith("genau generate")]
    try:
        from userstudy.cli import build_parser as study_parser
    except ImportError:
        pass
    else:
        missing += _options_without_help(study_parser("bench study"), "bench study")
    assert missing == []


# --- item 5: bench models -----------------------------------------------------------------------


def test_models_fits_120_columns_with_details_behind_wide_and_json(capsys):
    assert main(["models"]) == 0
    narrow = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in narrow) <= 120, max(narrow, key=len)
    assert any(line.split()[:1] == ["audioldm-l"] and line.split()[-1] == "missing" for line in narrow)
    assert "bench models --wide" in narrow[-1]
    assert main(["models", "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "cvssp/audioldm-l-full" in wide and "where" in wide.splitlines()[0]
    assert main(["models", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"where", "source", "checkpoint", "steps"} <= set(rows["audioldm-l"])
