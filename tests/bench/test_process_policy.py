"""bench.process_policy (issue 16, item 4): one function applies the CPU kernels choice, the glibc
thresholds and the exit without teardown per command; a misspelt variable is one error line before any
work; what was applied is stored in the results records of `bench run` and `bench score`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bench.process_policy as pp
from bench.audio import write_wav
from bench.cli import main

SCORE = ["--backbones", "random", "--metrics", "FD", "--bootstrap", "0", "--no-cache"]


@pytest.fixture(autouse=True)
def _fresh_policy(monkeypatch):
    """Each test starts as a process no command has set up; the variables start unset."""
    monkeypatch.setattr(pp, "_applied", None)
    for name in pp.ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if any clip is generated or embedded."""
    import bench.harness
    import bench.metrics.suite

    def forbidden(*_a, **_k):
        raise AssertionError("work started before the environment was checked")

    monkeypatch.setattr(bench.harness, "generate_run", forbidden)
    monkeypatch.setattr(bench.metrics.suite._Embedder, "embed", forbidden)


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    out = []
    for side, seed in (("gen", 1), ("ref", 2)):
        folder = tmp_path / side
        folder.mkdir()
        rng = np.random.default_rng(seed)
        for i in range(3):
            write_wav(folder / f"c{i}.wav", (0.1 * rng.standard_normal(32000)).astype(np.float32), 16000)
        out.append(folder)
    return out[0], out[1]


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("GENAU_BENCH_CPU_KERNELS", "foo", "expected 'fast' (the default: faster CPU kernels) or 'default'"),
        ("GENAU_BENCH_MALLOC", "big", "expected 'fast' (the default: keep large freed blocks in the heap)"),
        ("GENAU_BENCH_FAST_EXIT", "yes", "expected '1' (the default: end scoring commands without module teardown)"),
    ],
)
@pytest.mark.parametrize("command", ["score", "run"])
def test_a_misspelt_variable_is_one_line_before_any_work(name, value, expected, command, folders, no_work, monkeypatch):
    gen, ref = folders
    monkeypatch.setenv(name, value)
    argv = (
        ["score", "--gen", str(gen), "--ref", str(ref), *SCORE]
        if command == "score"
        else ["run", "--models", "tango-tiny", "--split", "demo", *SCORE]
    )
    with pytest.raises(SystemExit) as e:
        main(argv)
    message = str(e.value.code)
    assert message.startswith(f"error: environment variable {name}={value!r}: {expected}") and "\n" not in message
    assert message.endswith("unset it or set one of those")


def test_commands_that_embed_nothing_use_and_check_nothing(monkeypatch, capsys):
    monkeypatch.setenv("GENAU_BENCH_CPU_KERNELS", "foo")  # not used by `bench splits`: not an error there
    assert main(["splits"]) == 0
    applied = pp.current_policy()
    assert applied["command"] == "splits" and applied["fast_exit"] is False
    assert applied["cpu_kernels"] == applied["allocator"] == "not applied (`bench splits` embeds no audio)"
    assert not pp.fast_exit_applies()


def test_score_record_stores_what_was_applied(folders, tmp_path, monkeypatch, capsys):
    gen, ref = folders
    monkeypatch.setenv("GENAU_BENCH_MALLOC", "default")  # keep this test process's allocator as it is
    monkeypatch.setenv("GENAU_BENCH_CPU_KERNELS", "default")
    out = tmp_path / "score.json"
    assert main(["score", "--gen", str(gen), "--ref", str(ref), *SCORE, "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["process_policy"] == {
        "command": "score",
        "cpu_kernels": "default",
        "allocator": "allocator defaults (GENAU_BENCH_MALLOC=default)",
        "fast_exit": True,
        "env": {"GENAU_BENCH_CPU_KERNELS": "default", "GENAU_BENCH_MALLOC": "default", "GENAU_BENCH_FAST_EXIT": None},
    }
    assert record["kernels"] == "pytorch-default"  # the kernels that embedded the clips agree with the policy
    assert pp.fast_exit_applies()  # console_main ends this process without teardown


def test_run_record_stores_what_was_applied(tmp_path, toy_plugin_path, monkeypatch, capsys):
    monkeypatch.setenv("GENAU_BENCH_MALLOC", "default")
    monkeypatch.setenv("GENAU_BENCH_FAST_EXIT", "0")
    wav = tmp_path / "a.wav"
    write_wav(wav, (0.3 * np.sin(np.arange(32000) / 5.0)).astype(np.float32), 16000)
    (tmp_path / "mini.csv").write_text("id,caption,audio\na,a low tone,a.wav\nb,a high tone,a.wav\n")
    rc = main(
        [
            "run",
            "--models",
            "toy-sine",
            "--split",
            str(tmp_path / "mini.csv"),
            "--duration",
            "2",
            *SCORE,
            "--out",
            str(tmp_path / "runs"),
        ]
    )
    assert rc == 0
    record = json.loads(next((tmp_path / "runs").rglob("results/*.json")).read_text())
    policy = record["process_policy"]
    assert policy["command"] == "run" and policy["cpu_kernels"] == "fast" and policy["fast_exit"] is False
    assert policy["allocator"] == "allocator defaults (GENAU_BENCH_MALLOC=default)"
    assert policy["env"] == {
        "GENAU_BENCH_CPU_KERNELS": None,
        "GENAU_BENCH_MALLOC": "default",
        "GENAU_BENCH_FAST_EXIT": "0",
    }
    assert not pp.fast_exit_applies()


def test_library_use_says_no_command_set_the_process_up():
    policy = pp.current_policy()
    assert policy["command"] is None and policy["fast_exit"] is False and policy["cpu_kernels"] == "fast"
    assert isinstance(policy["allocator"], str) and policy["allocator"]
