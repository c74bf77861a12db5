import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.cli import main
from bench.harness import GenerationConfig, generate_run
from bench.plugins import available_names, create_plugin
from bench.plugins.registry import UnknownModelError, get_plugin_class
from bench.runs.store import RunStore, RunStoreError
from bench.splits import load_split


def test_plugin_from_entry_point_generates_at_protocol_rate(toy_plugin_path):
    assert "toy-sine" in available_names()
    plugin = create_plugin("toy-sine")
    waves = plugin.generate(["a dog", "a cat"], seed=[1, 2], duration=2.0)
    assert [w.shape for w in waves] == [(32000,), (32000,)]
    assert waves[0].dtype == np.float32
    rec = plugin.last_record
    assert rec.native_sample_rate == 22050 and rec.output_sample_rate == 16000
    assert rec.resampled and rec.resampler == "soxr-hq"


def test_unknown_model_suggests_closest():
    with pytest.raises(UnknownModelError, match="Did you mean 'audioldm-l-tiny'"):
        get_plugin_class("audioldm-l-tin")
    with pytest.raises(SystemExit, match="unknown model 'genau-xxl'"):
        main(["run", "--models", "genau-xxl", "--split", "demo", "--no-score"])


def _clips(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.rglob("clips/*.wav"))}


def _run_cli(args, env_extra, toy_plugin_path, **kw):
    env = {**os.environ, "PYTHONPATH": f"{toy_plugin_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **env_extra}
    return subprocess.Popen([sys.executable, "-m", "bench.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def test_killed_run_resumes_to_identical_outputs(tmp_path, toy_plugin_path):
    args = ["run", "--models", "toy-sine", "--split", "demo", "--no-score", "--batch-size", "2", "--duration", "2"]
    # reference: one uninterrupted run
    ref = _run_cli([*args, "--out", str(tmp_path / "a")], {}, toy_plugin_path)
    assert ref.wait(120) == 0, ref.stdout.read().decode()
    # interrupted: kill -9 once a few clips exist
    root_b = tmp_path / "b"
    proc = _run_cli([*args, "--out", str(root_b)], {"TOY_PLUGIN_SLEEP": "0.4"}, toy_plugin_path)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(root_b.rglob("clips/*.wav"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(list(root_b.rglob("clips/*.wav")))
    assert 3 <= partial < 10, f"kill came too late or too early ({partial} clips)"
    resumed = _run_cli([*args, "--out", str(root_b)], {}, toy_plugin_path)
    assert resumed.wait(120) == 0, resumed.stdout.read().decode()
    a, b = _clips(tmp_path / "a"), _clips(root_b)
    assert len(a) == 10 and a == b  # byte-identical
    assert not list(root_b.rglob("clips/.*.tmp"))


def test_shards_merge_into_the_same_result(tmp_path, toy_plugin_path):
    split = load_split("demo")
    plugin = create_plugin("toy-sine")
    whole = generate_run(plugin, split, GenerationConfig(batch_size=3, duration_s=1.5, progress=False), RunStore(tmp_path / "whole"))
    sharded_store = RunStore(tmp_path / "sharded")
    for i in range(3):
        run = generate_run(plugin, split, GenerationConfig(batch_size=3, duration_s=1.5, shard=(i, 3), progress=False), sharded_store)
        assert run.path.name == whole.path.name  # same settings hash whatever the shard
    assert _clips(tmp_path / "whole") == _clips(tmp_path / "sharded")
    manifest = run.manifest()
    assert len(manifest["clips"]) == 10 and manifest["settings"]["duration_s"] == 1.5
    assert manifest["settings"]["overrides"] == {"duration_s": 1.5}
    assert manifest["generation"]["resampler"] == "soxr-hq"
    assert manifest["protocol"]["version"] == "gb-1"
    # a rerun with nothing left to generate keeps what the first run recorded
    again = generate_run(plugin, split, GenerationConfig(batch_size=3, duration_s=1.5, progress=False), sharded_store).manifest()
    assert again["generation"] == manifest["generation"] and again["parameter_count"] == manifest["parameter_count"]
    assert again["created"] == manifest["created"]


def test_malformed_manifest_is_a_clear_error(tmp_path, toy_plugin_path):
    split = load_split("demo")
    plugin = create_plugin("toy-sine")
    cfg = GenerationConfig(batch_size=5, duration_s=1.0, limit=2, progress=False)
    run = generate_run(plugin, split, cfg, RunStore(tmp_path))
    text = run.manifest_path.read_text().splitlines()
    assert text[2].lstrip().startswith('"created"')
    text[2] = '  "created": oops,'
    run.manifest_path.write_text("\n".join(text))
    with pytest.raises(RunStoreError, match=r"manifest\.json:3:14: malformed JSON"):
        generate_run(plugin, split, cfg, RunStore(tmp_path))


def test_changed_prompt_for_existing_clip_is_refused(tmp_path, toy_plugin_path):
    m = tmp_path / "s.csv"
    m.write_text("id,caption\nx,a dog barks\n")
    plugin = create_plugin("toy-sine")
    cfg = GenerationConfig(duration_s=1.0, progress=False)
    generate_run(plugin, load_split(str(m)), cfg, RunStore(tmp_path / "runs"))
    m.write_text("id,caption\nx,a cat meows\n")
    with pytest.raises(RunStoreError, match="clip 'x' was generated with"):
        generate_run(plugin, load_split(str(m)), cfg, RunStore(tmp_path / "runs"))


def test_same_seed_same_audio_different_seed_different(tmp_path, toy_plugin_path):
    split = load_split("demo")
    plugin = create_plugin("toy-sine")
    r1 = generate_run(plugin, split, GenerationConfig(seed=1, duration_s=1.0, limit=2, progress=False), RunStore(tmp_path / "1"))
    r2 = generate_run(plugin, split, GenerationConfig(seed=1, duration_s=1.0, limit=2, progress=False), RunStore(tmp_path / "2"))
    r3 = generate_run(plugin, split, GenerationConfig(seed=2, duration_s=1.0, limit=2, progress=False), RunStore(tmp_path / "3"))
    assert _clips(tmp_path / "1") == _clips(tmp_path / "2")
    assert r3.path.name != r1.path.name
    a, _ = sf.read(r1.clip_path("demo-01"))
    b, _ = sf.read(r3.clip_path("demo-01"))
    assert np.abs(a - b).max() > 1e-3


def test_torchrun_two_processes_split_the_prompts(tmp_path, toy_plugin_path):
    """Launched by torchrun (RANK / WORLD_SIZE set), each process takes every other batch;
    the result equals a single-process run."""
    args = ["--split", "demo", "--models", "toy-sine", "--no-score", "--batch-size", "2", "--duration", "1"]
    single = _run_cli(["run", *args, "--out", str(tmp_path / "single")], {}, toy_plugin_path)
    assert single.wait(120) == 0
    env = {**os.environ, "PYTHONPATH": f"{toy_plugin_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533",
         "-m", "bench.cli", "run", *args, "--out", str(tmp_path / "multi")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _clips(tmp_path / "multi") == _clips(tmp_path / "single")
