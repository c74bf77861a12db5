"""Training: manifest, LR schedule, LDM / VAE steps, checkpoints with exact resume, 2-process CPU data parallel."""

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

from genau_core.genau.model import WEIGHTS_NAME
from genau_core.genau.train import TrainConfig, latest_checkpoint, random_crops, read_manifest, train, warmup_cosine

ROOT = Path(__file__).resolve().parents[3]
CAPTIONS = [
    "a dog barks",
    "rain falls on a tin roof",
    "a bell rings twice",
    "birds chirp",
    "an engine idles",
    "water flows",
]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("demo")
    rng = np.random.default_rng(0)
    rows = []
    for i, cap in enumerate(CAPTIONS):
        sr = 16000 if i % 2 else 22050
        t = np.arange(int(sr * (1.5 + 0.3 * i))) / sr
        x = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.02 * rng.standard_normal(len(t))
        sf.write(d / f"clip{i}.wav", x.astype(np.float32), sr)
        rows.append({"audio": f"clip{i}.wav", "caption": cap, "dataset": ["audiocaps", "clotho", 9][i % 3]})
    m = d / "demo.jsonl"
    m.write_text("\n".join(json.dumps(r) for r in rows))
    return m


def _params(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model" / WEIGHTS_NAME))


def test_manifest_formats_and_errors(manifest, tmp_path):
    rows = read_manifest(manifest)
    assert len(rows) == 6 and rows[0].audio.is_absolute() and rows[0].audio.exists()
    assert [r.dataset for r in rows[:3]] == ["audiocaps", "clotho", 9]
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("audio,caption,dataset\n" + f"{rows[0].audio},a dog barks,3\n")
    (r,) = read_manifest(csv_path)
    assert r.dataset == 3 and r.caption == "a dog barks"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"audio": "x.wav"}))
    with pytest.raises(ValueError, match="caption"):
        read_manifest(bad)
    with pytest.raises(ValueError, match="jsonl or .csv"):
        read_manifest(tmp_path / "m.txt")


def test_warmup_cosine_schedule():
    kw = dict(total=100, warmup=10, lr=5e-3, final_lr=1.5e-3)
    assert warmup_cosine(0, **kw) == pytest.approx(5e-4)
    assert warmup_cosine(9, **kw) == pytest.approx(5e-3)
    assert warmup_cosine(10, **kw) == pytest.approx(5e-3)
    assert warmup_cosine(55, **kw) == pytest.approx((5e-3 + 1.5e-3) / 2)
    assert warmup_cosine(100, **kw) == pytest.approx(1.5e-3)
    lrs = [warmup_cosine(s, **kw) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_random_crops_are_aligned_windows_and_seeded():
    mel = torch.arange(3 * 2 * 40, dtype=torch.float32).reshape(3, 2, 40)
    a = random_crops(mel, 16, 4, torch.Generator().manual_seed(0))
    b = random_crops(mel, 16, 4, torch.Generator().manual_seed(0))
    assert a.shape == (3, 2, 16) and torch.equal(a, b)
    for clip, crop in zip(mel, a):
        start = int(crop[0, 0] - clip[0, 0])
        assert start % 4 == 0 and 0 <= start <= 24 and torch.equal(crop, clip[:, start : start + 16])
    starts = {int(c[0, 0]) for g in range(20) for c in random_crops(mel[:1], 16, 4, torch.Generator().manual_seed(g))}
    assert len(starts) > 3  # windows move
    with pytest.raises(ValueError):
        random_crops(mel, 18, 4, torch.Generator())
    with pytest.raises(ValueError, match="vae stage only"):
        train(TrainConfig(stage="ldm", manifest="m.jsonl", out_dir="x", crop_frames=16))


def _ldm_cfg(manifest, out, **kw) -> TrainConfig:
    base = dict(
        stage="ldm",
        manifest=str(manifest),
        out_dir=str(out),
        steps=6,
        batch_size=2,
        save_every=3,
        log_every=1,
        lr=2e-3,
        warmup_steps=2,
        seed=3,
    )
    return TrainConfig(**{**base, **kw})


def test_ldm_training_checkpoints_and_exact_resume(manifest, tmp_path):
    full = train(_ldm_cfg(manifest, tmp_path / "full"))
    assert full["step"] == 6 and np.isfinite(full["loss"]) and full["world_size"] == 1
    ckpts = sorted(p.name for p in (tmp_path / "full" / "checkpoints").iterdir())
    assert ckpts == ["step-0000003", "step-0000006"]
    log = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert [m["step"] for m in log] == [1, 2, 3, 4, 5, 6]
    assert log[0]["lr"] == pytest.approx(1e-3) and log[1]["lr"] == pytest.approx(2e-3)  # linear warm-up
    assert log[5]["lr"] < log[2]["lr"]  # then cosine decay
    # interrupted after step 3, then resumed: bit-identical to the uninterrupted run
    train(_ldm_cfg(manifest, tmp_path / "split", stop_at=3))
    assert latest_checkpoint(tmp_path / "split").name == "step-0000003"
    resumed = train(_ldm_cfg(manifest, tmp_path / "split", resume=True))
    assert resumed["step"] == 6
    a, b = _params(latest_checkpoint(tmp_path / "full")), _params(latest_checkpoint(tmp_path / "split"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa = torch.load(latest_checkpoint(tmp_path / "full") / "trainer.pt", weights_only=False)
    sb = torch.load(latest_checkpoint(tmp_path / "split") / "trainer.pt", weights_only=False)
    assert sa["scheduler"]["last_epoch"] == sb["scheduler"]["last_epoch"] == 6
    for pa, pb in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values()):
        assert torch.equal(pa["exp_avg"], pb["exp_avg"])
    # the backbone trained, the frozen parts did not; latents were rescaled to unit std (scale_by_std)
    first = _params(tmp_path / "full" / "checkpoints" / "step-0000003")
    assert not torch.equal(first["backbone.latents"], a["backbone.latents"])
    assert torch.equal(first["vae.decoder.conv_out.weight"], a["vae.decoder.conv_out.weight"])
    assert torch.equal(first["conditioner.t5.shared.weight"], a["conditioner.t5.shared.weight"])
    assert float(a["scale_factor"]) != 1.0
    assert json.loads((tmp_path / "full" / "train_config.json").read_text())["optimizer"] == "lamb"


def test_vae_training_with_discriminator_switch(manifest, tmp_path):
    import dataclasses

    from genau_core.genau import GENAU_TINY

    cfg_json = tmp_path / "vae_config.json"
    tiny = GENAU_TINY.replace(vae_loss=dataclasses.replace(GENAU_TINY.vae_loss, disc_start=2))
    cfg_json.write_text(json.dumps(tiny.to_dict()))
    out = train(
        TrainConfig(
            stage="vae",
            manifest=str(manifest),
            out_dir=str(tmp_path / "vae"),
            model=str(cfg_json),
            steps=4,
            batch_size=2,
            save_every=2,
            log_every=1,
            lr=1e-3,
            seed=0,
            crop_frames=256,
        )
    )
    assert out["step"] == 4 and np.isfinite(out["rec_loss"])
    log = [json.loads(line) for line in (tmp_path / "vae" / "log.jsonl").read_text().splitlines()]
    assert ["g_loss" in m for m in log] == [False, False, True, True]  # adversarial terms from step 2 (0-based) on
    assert [m["disc_loss"] > 0 for m in log] == [False, False, True, True]
    ckpts = tmp_path / "vae" / "checkpoints"
    s2 = torch.load(ckpts / "step-0000002" / "trainer.pt", weights_only=False)
    s4 = torch.load(ckpts / "step-0000004" / "trainer.pt", weights_only=False)
    d2 = {k: v for k, v in s2["vae_loss"].items() if k.startswith("discriminator.") and v.is_floating_point()}
    assert not s2["disc_optimizer"]["state"]  # the discriminator has not stepped before disc_start
    assert any(not torch.equal(v, s4["vae_loss"][k]) for k, v in d2.items())
    assert float(s4["vae_loss"]["logvar"]) == 0.0  # not optimised (as the reference)
    p2, p4 = _params(ckpts / "step-0000002"), _params(ckpts / "step-0000004")
    assert not torch.equal(p2["vae.decoder.conv_out.weight"], p4["vae.decoder.conv_out.weight"])
    assert torch.equal(p2["backbone.latents"], p4["backbone.latents"])  # the VAE stage leaves the FIT alone


def test_two_process_cpu_data_parallel(manifest, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "genau_core.genau.train",
        "ldm",
        "--manifest",
        str(manifest),
        "--out",
        str(tmp_path / "ddp"),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--save-every",
        "2",
        "--log-every",
        "1",
        "--lr",
        "1e-3",
        "--seed",
        "1",
    ]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert metrics["world_size"] == 2 and metrics["replicas_in_sync"] is True and metrics["step"] == 2
    assert latest_checkpoint(tmp_path / "ddp").name == "step-0000002"
