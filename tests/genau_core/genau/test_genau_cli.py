"""`genau generate` / `genau train` command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from genau_core.cli import build_parser, main


def test_generate_writes_a_16k_wav(tmp_path, capsys):
    out = tmp_path / "out.wav"
    assert (
        main(
            [
                "generate",
                "a dog barks while rain falls",
                "-o",
                str(out),
                "--model",
                "genau-tiny",
                "--seed",
                "0",
                "--steps",
                "2",
                "--duration",
                "2",
            ]
        )
        == 0
    )
    x, sr = sf.read(out)
    assert sr == 16000 and x.shape == (32000,) and np.abs(x).max() > 0
    assert str(out) in capsys.readouterr().out
    # same seed -> same file content
    out2 = tmp_path / "again.wav"
    main(
        ["generate", "a dog barks while rain falls", "-o", str(out2), "--seed", "0", "--steps", "2", "--duration", "2"]
    )
    np.testing.assert_array_equal(sf.read(out2)[0], x)


def test_generate_official_model_needs_its_files(tmp_path):
    with pytest.raises(SystemExit, match="genau-full-s.ckpt"):
        main(["generate", "rain", "-o", str(tmp_path / "x.wav"), "--model", "genau-s", "--checkpoint", str(tmp_path)])
    with pytest.raises(SystemExit, match="--checkpoint"):
        main(["generate", "rain", "-o", str(tmp_path / "x.wav"), "--model", "genau-l"])


def test_train_arguments_reach_the_trainer():
    from genau_core.genau.train import config_from_args

    args = build_parser().parse_args(
        [
            "train",
            "ldm",
            "--manifest",
            "m.jsonl",
            "--out",
            "runs/x",
            "--steps",
            "7",
            "--optimizer",
            "adamw",
            "--resume",
            "--stop-at",
            "3",
        ]
    )
    tc = config_from_args(args)
    assert (tc.stage, tc.manifest, tc.out_dir, tc.steps, tc.optimizer, tc.resume, tc.stop_at) == (
        "ldm",
        "m.jsonl",
        "runs/x",
        7,
        "adamw",
        True,
        3,
    )
    assert (tc.weight_decay, tc.grad_clip, tc.resolved_lr(), tc.betas) == (0.1, 0.5, 5e-3, (0.9, 0.99))
    assert json.dumps(tc.__dict__)
