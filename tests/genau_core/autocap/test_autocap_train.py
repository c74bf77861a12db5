"""AutoCap training: overfitting a 4-clip batch, the two-stage `train` loop with manifests,
metadata columns, checkpoints and exact resume, 2-process CPU data parallel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from genau_core.autocap.configs import micro_config
from genau_core.autocap.data import CaptionDataset, load_records
from genau_core.autocap.model import build_autocap
from genau_core.autocap.train import TrainConfig, latest_checkpoint, set_stage, train

ROOT = Path(__file__).resolve().parents[3]
SR = 32000
CAPTIONS = ["a steady sine tone", "loud white noise hissing", "sharp clicks ticking", "a tone sweeping upward"]


def _sounds(seconds: float = 2.0, sr: int = SR) -> list[np.ndarray]:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    return [
        0.3 * np.sin(2 * np.pi * 440 * t),
        0.3 * rng.standard_normal(len(t)),
        np.where(np.arange(len(t)) % (sr // 4) == 0, 0.9, 0.0),
        0.3 * np.sin(2 * np.pi * (100 * t + 900 * t**2)),
    ]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("autocap-data")
    for i, x in enumerate(_sounds(sr=16000)):
        sf.write(d / f"clip{i}.wav", x.astype(np.float32), 16000)
    rows = ["id,caption,audio,title,description"]
    rows += [f'c{i},"{c}",clip{i}.wav,"video {i}",' for i, c in enumerate(CAPTIONS)]
    m = d / "train.csv"
    m.write_text("\n".join(rows) + "\n")
    cfg = d / "micro.json"
    cfg.write_text(json.dumps(micro_config().to_dict()))
    return m


def test_overfitting_four_clips_then_beam_search_reproduces_the_captions():
    m = build_autocap(micro_config(), seed=0)
    batch = m.prepare([x.astype(np.float32) for x in _sounds()], None, CAPTIONS)
    batch.features = m.frozen_features(batch.waveform, batch.clap_waveform)  # frozen: computed once
    trainable = set_stage(m, 2)
    opt = torch.optim.Adam(trainable, lr=3e-3)
    m.train()
    first = None
    for step in range(400):
        torch.manual_seed(step)
        loss = m(batch)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        final = float(m(batch))
    assert first > 5.0 and final < 0.15, (first, final)
    assert m.generate(batch) == CAPTIONS  # beam search (2) on each clip gives its own caption


def test_manifest_records_carry_metadata_and_every_caption(manifest):
    split, records = load_records(str(manifest))
    assert [r.id for r in records] == ["c0", "c1", "c2", "c3"]
    assert records[1].metadata == {"title": "video 1"} and records[1].captions == (CAPTIONS[1],)
    cfg = micro_config()
    ds = CaptionDataset(records, cfg, source=str(manifest))
    cid, wave, clap, caption, meta = ds[2]
    assert cid == "c2" and wave.shape == (cfg.frontend.clip_samples,) and clap.shape == (cfg.clap.clip_samples,)
    assert abs(float(np.abs(wave).max()) - 0.5) < 1e-4  # official peak normalisation to 0.5
    _, demo = load_records("demo")
    assert len(demo) == 10 and all(r.audio is not None and len(r.captions) == 1 for r in demo)


def _tc(manifest, out, **kw) -> TrainConfig:
    base = dict(stage=1, manifest=str(manifest), out_dir=str(out), model=str(manifest.parent / "micro.json"), steps=4,
                batch_size=2, lr=1e-3, save_every=2, log_every=1, seed=3, meta_drop_p=0.5, progress=False)  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_stage_one_checkpoints_and_exact_resume(manifest, tmp_path):
    straight = train(_tc(manifest, tmp_path / "a"))
    assert straight["step"] == 4 and Path(straight["final"]).is_dir()
    train(_tc(manifest, tmp_path / "b", stop_at=2))
    assert latest_checkpoint(tmp_path / "b").name == "step-0000002" and not (tmp_path / "b" / "final").exists()
    resumed = train(_tc(manifest, tmp_path / "b", resume=True))
    assert resumed["loss"] == straight["loss"]
    a, b = _weights(tmp_path / "a" / "final"), _weights(tmp_path / "b" / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    start = build_autocap(micro_config(), seed=3)
    init = {k: v for k, v in start.state_dict().items()}
    changed = {k for k in a if not torch.equal(a[k], init[k])}
    assert changed and all(
        k.startswith(("qformer", "audio_", "htsat_proj", "clap_proj", "clap_norm", "delimiters")) for k in changed
    )
    logs = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in logs] == [1, 2, 3, 4]


def test_stage_two_starts_from_stage_one_and_trains_bart(manifest, tmp_path):
    train(_tc(manifest, tmp_path / "s1", steps=2))
    train(_tc(manifest, tmp_path / "s2", stage=2, steps=2, init_from=str(tmp_path / "s1" / "final"), lr=None))
    s1, s2 = _weights(tmp_path / "s1" / "final"), _weights(tmp_path / "s2" / "final")
    changed = {k for k in s1 if not torch.equal(s1[k], s2[k])}
    assert any(k.startswith("bart.model.decoder.layers") for k in changed)
    assert "bart.model.shared.weight" not in changed and not any(k.startswith(("htsat.", "clap.")) for k in changed)
    cfg = json.loads((tmp_path / "s2" / "train_config.json").read_text())
    assert cfg["stage"] == 2 and TrainConfig(**{**cfg, "betas": tuple(cfg["betas"])}).resolved_lr() == 1e-5
    with pytest.raises(ValueError, match="stage 1 checkpoint"):
        train(_tc(manifest, tmp_path / "s1", stage=2, steps=4, resume=True))


def test_training_errors_are_clear(manifest, tmp_path):
    with pytest.raises(ValueError, match="4 captioned clips for a global batch of 8"):
        train(_tc(manifest, tmp_path / "x", batch_size=8))
    with pytest.raises(ValueError, match="stage must be 1 or 2"):
        TrainConfig(stage=3, manifest="demo", out_dir=str(tmp_path))


@pytest.mark.slow
def test_two_process_cpu_data_parallel(manifest, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "genau_core.autocap.cli", "train", "--stage", "2", "--manifest", str(manifest),
           "--out", str(tmp_path / "ddp"),
           "--model", str(manifest.parent / "micro.json"), "--steps", "2", "--batch-size", "4", "--save-every", "2",
           "--log-every", "1", "--lr", "1e-3", "--seed", "1", "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert metrics["world_size"] == 2 and metrics["replicas_in_sync"] is True and metrics["step"] == 2
