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
from tests.bench.metrics.test_scoring import fake_backbones  # noqa: F401  (fixture: cheap stand-in backbones)


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
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw
    )


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
    whole = generate_run(
        plugin, split, GenerationConfig(batch_size=3, duration_s=1.5, progress=False), RunStore(tmp_path / "whole")
    )
    sharded_store = RunStore(tmp_path / "sharded")
    for i in range(3):
        run = generate_run(
            plugin, split, GenerationConfig(batch_size=3, duration_s=1.5, shard=(i, 3), progress=False), sharded_store
        )
        assert run.path.name == whole.path.name  # same settings hash whatever the shard
    assert _clips(tmp_path / "whole") == _clips(tmp_path / "sharded")
    manifest = run.manifest()
    assert len(manifest["clips"]) == 10 and manifest["settings"]["duration_s"] == 1.5
    assert manifest["settings"]["overrides"] == {"duration_s": 1.5}
    # the run store keeps what the model produced (22.05 kHz here); each scoring protocol resamples
    assert manifest["generation"]["resampler"] is None and manifest["generation"]["native_output"] is True
    assert manifest["settings"]["output_sample_rate"] == 22050
    assert sf.info(str(next(iter(run.clips_dir.glob("*.wav"))))).samplerate == 22050
    from bench.protocol import PROTOCOL

    assert manifest["protocol"]["version"] == PROTOCOL.version
    # a rerun with nothing left to generate keeps what the first run recorded
    again = generate_run(
        plugin, split, GenerationConfig(batch_size=3, duration_s=1.5, progress=False), sharded_store
    ).manifest()
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
    r1 = generate_run(
        plugin, split, GenerationConfig(seed=1, duration_s=1.0, limit=2, progress=False), RunStore(tmp_path / "1")
    )
    generate_run(
        plugin, split, GenerationConfig(seed=1, duration_s=1.0, limit=2, progress=False), RunStore(tmp_path / "2")
    )
    r3 = generate_run(
        plugin, split, GenerationConfig(seed=2, duration_s=1.0, limit=2, progress=False), RunStore(tmp_path / "3")
    )
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
    env = {
        **os.environ,
        "PYTHONPATH": f"{toy_plugin_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-port",
            "29533",
            "-m",
            "bench.cli",
            "run",
            *args,
            "--out",
            str(tmp_path / "multi"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _clips(tmp_path / "multi") == _clips(tmp_path / "single")


# -- issue 15: a partial run is not a full run; no debris ----------------------------------------------------
def _dead_pid() -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_limit_run_has_its_own_results_key_and_prompt_set(
    tmp_path,
    toy_plugin_path,
    fake_backbones,  # noqa: F811
    capsys,
):
    """Issue 15 item 1: `bench run --limit 2` after the full run scores exactly its 2 prompts, under its own
    key, and the record says which prompts (sorted ids hashed + count); the header says 2 are run."""
    import json

    config = tmp_path / "fake.yaml"  # the cheap stand-in backbones of test_scoring, through --config
    config.write_text(
        "backbones: {panns: fake-spectral, vggish: fake-spectral, clap_laion: fake-clap, clap_ms: fake-clap}\n"
    )
    args = [
        "run",
        "--models",
        "toy-sine",
        "--split",
        "demo",
        "--duration",
        "1",
        "--backbones",
        "random",
        "--metrics",
        "FD",
        "--bootstrap",
        "0",
        "--config",
        str(config),
        "--out",
        str(tmp_path / "runs"),
    ]
    assert main(args) == 0
    assert "10 prompts, 10 with reference audio, 0 missing; running all 10" in capsys.readouterr().out
    assert main([*args, "--limit", "2"]) == 0
    assert "; running the first 2 (--limit 2)" in capsys.readouterr().out
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "runs").rglob("results/*.json"))]
    assert len(records) == 2 and records[0]["scoring_key"] != records[1]["scoring_key"]
    by_n = {r["prompt_set"]["n"]: r for r in records}
    assert set(by_n) == {2, 10}
    two, full = by_n[2], by_n[10]
    assert two["n_prompts"] == 2 and two["n_generated"] == 2 and two["n_evaluated"] == 2
    assert two["reference_set"]["n"] == 2 and full["reference_set"]["n"] == 10
    assert two["prompt_list_sha256"] == full["prompt_list_sha256"]  # same split, different prompt set
    assert two["prompt_set"]["sha256"] != full["prompt_set"]["sha256"] and two["split_n_prompts"] == 10


def test_score_run_scores_only_the_given_prompts(tmp_path, toy_plugin_path, fake_backbones):  # noqa: F811
    from bench.harness import score_run

    split = load_split("demo")
    cfg = GenerationConfig(duration_s=1.0, progress=False)
    run = generate_run(create_plugin("toy-sine"), split, cfg, RunStore(tmp_path))
    fake_backbones.metrics = ["FD"]
    rec, path = score_run(run, split, fake_backbones, clip_ids=["demo-01", "demo-02"])
    assert rec["n_generated"] == 2 and rec["prompt_set"]["n"] == 2 and path.stem == rec["scoring_key"]
    full, full_path = score_run(run, split, fake_backbones)
    assert full["n_generated"] == 10 and full_path != path and path.exists()
    with pytest.raises(ValueError, match="never generated in this run folder"):
        score_run(run, split, fake_backbones, clip_ids=["nope"])


def test_stale_temporaries_in_the_run_folder_are_removed(tmp_path, toy_plugin_path):
    """Issue 15 item 7: temporaries of dead writers (manifest, records, clips) are removed by the next run;
    a live writer's are kept."""
    split = load_split("demo")
    cfg = GenerationConfig(duration_s=1.0, limit=1, progress=False)
    run = generate_run(create_plugin("toy-sine"), split, cfg, RunStore(tmp_path))
    dead = _dead_pid()
    run.results_dir.mkdir()
    stale = [
        run.path / f".manifest.json.{dead}.tmp",
        run.results_dir / f".abc.json.{dead}.tmp",
        run.clips_dir / f".demo-02.wav.{dead}.tmp",
    ]
    live = run.results_dir / f".abc.json.{os.getppid()}.tmp"
    for p in (*stale, live):
        p.write_bytes(b"")
    generate_run(create_plugin("toy-sine"), split, cfg, RunStore(tmp_path))
    assert not any(p.exists() for p in stale) and live.exists()


def test_record_never_calls_an_unverified_model_checkpoint_official(
    tmp_path,
    toy_plugin_path,
    fake_backbones,  # noqa: F811
    monkeypatch,
):
    """Issue 15 item 3: a plugin's real checkpoint is "checkpoint" in the record unless its sha256 is published."""
    import bench.checkpoints_known as known
    from bench.checkpoints import model_weights_label
    from bench.harness import score_run

    plugin = create_plugin("toy-sine")
    monkeypatch.setattr(type(plugin), "weights", property(lambda self: "official"))  # as a released model's plugin
    split = load_split("demo")
    run = generate_run(plugin, split, GenerationConfig(duration_s=1.0, limit=2, progress=False), RunStore(tmp_path))
    fake_backbones.metrics = ["FD"]
    rec, _ = score_run(run, split, fake_backbones, clip_ids=["demo-01", "demo-02"])
    assert rec["model_weights"] == "checkpoint" and rec["settings"]["weights"] == "checkpoint"
    assert run.manifest()["settings"]["weights"] == "official"  # hashed into the folder name: unchanged
    assert model_weights_label("official", "hub:cvssp/audioldm-l-full@abc") == "checkpoint"
    assert model_weights_label("tiny-trained", "sha256:" + "0" * 64) == "tiny-trained"
    monkeypatch.setattr(known, "PUBLISHED_HASHES", (known.PublishedHash("x.ckpt", "ab" * 32, "https://example.org"),))
    assert model_weights_label("official", "sha256:" + "ab" * 32) == "official"
