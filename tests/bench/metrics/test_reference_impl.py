"""`bench score --impl reference` against a fake reference environment.

The fake packages (audioldm_eval, laion_clap, msclap) expose the reference tools' call
signatures and return numbers derived from what they were given (checkpoint contents, file
counts, clip ids, captions), so the record proves which inputs reached which tool. They are
put on the PYTHONPATH of the driver subprocess, run by this interpreter (sys.executable).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from bench.checkpoints import sha256_file
from bench.cli import main as bench_main
from bench.leaderboard import (
    REFERENCE_WEIGHTS_LABEL,
    build_leaderboard,
    write_leaderboard,
)
from bench.runs.store import RunStore, read_record
from tests.bench.test_leaderboard import _record

CNN14_W, VGGISH_V, LAION_S, MSCLAP_S = 10.0, 0.75, 2.0, 3.0
CLIP_IDS = ["c0", "c1", "c2"]  # c2 has no reference

FAKE_PANNS = """
import torch


class Cnn14(torch.nn.Module):  # audioldm_eval.feature_extractors.panns.Cnn14 reads its checkpoint when built
    def __init__(self, path):
        super().__init__()
        self.w = float(torch.load(path)["w"])
"""
FAKE_AUDIOLDM_EVAL = """
import os
import torch
import torch.hub
from audioldm_eval.feature_extractors.panns import Cnn14

VGGISH_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
FILES = ("Cnn14_16k_mAP=0.438.pth", "Cnn14_mAP=0.431.pth")


class MERT:
    def __init__(self):
        raise RuntimeError("would download m-a-p/MERT-v1-95M from the Hugging Face hub")


def cnn14_from(folder):
    for name in FILES:
        if not os.path.exists(os.path.join(folder, name)):
            raise RuntimeError(f"would wget {name}")  # as the real constructor does
    return Cnn14(os.path.join(folder, FILES[0]))


class EvaluationHelper:
%(init)s
    def _vggish(self, sampling_rate):
        assert sampling_rate == 16000
        self.vggish = torch.hub.load_state_dict_from_url(VGGISH_URL)

    def calculate_lsd(self, *a, **k):
        raise ImportError("ssr_eval is not installed")

    def calculate_psnr_ssim(self, *a, **k):
        raise TypeError("pad_center() takes 1 positional argument")

    def main(self, generate_files_path, groundtruth_path, limit_num=None):
        out = {}
        out.update(self.calculate_lsd())
        out.update(self.calculate_psnr_ssim())
        n_gen, n_ref = len(os.listdir(generate_files_path)), len(os.listdir(groundtruth_path))
        return {
            "frechet_distance": self.mel_model.w * n_gen + n_ref,
            "inception_score_mean": 1.5, "inception_score_std": 0.25,
            "kullback_leibler_divergence_softmax": 0.5, "kullback_leibler_divergence_sigmoid": 2.5,
            "frechet_audio_distance": float(self.vggish["v"]),
            "kernel_inception_distance_mean": -3.0, "kernel_inception_distance_std": 0.125,
            "lsd": float("nan"), "psnr": float("nan"), "ssim": float("nan"), "ssim_stft": float("nan"),
        }
"""
# EvaluationHelper.__init__ of each audioldm_eval generation (haoheliu/audioldm_eval audioldm_eval/eval.py):
AUDIOLDM_EVAL_INITS = {
    # PyPI 0.0.3 (2023-06) .. GitHub 2024-06: `backbone` accepted and ignored, Cnn14 from ./ckpt (later ~/.cache)
    "0.0.3": """
    def __init__(self, sampling_rate, device, backbone="cnn14"):
        self.device, self.backbone = device, backbone
        self._vggish(sampling_rate)
        self.mel_model = cnn14_from("ckpt")
""",
    # GitHub main since 2024-09-28 ("Add Parallel Eval and MERT"): MERT by default, Cnn14 from ~/.cache/audioldm_eval
    "0.0.5": """
    def __init__(self, sampling_rate, device, backbone="mert"):
        self.device, self.backbone = device, backbone
        self._vggish(sampling_rate)
        if self.backbone == "mert":
            self.mel_model = MERT()
        elif self.backbone == "cnn14":
            self.mel_model = cnn14_from(os.path.join(os.path.expanduser("~"), ".cache", "audioldm_eval", "ckpt"))
        else:
            raise ValueError("Backbone not supported")
""",
    # hypothetical versions that cannot be pinned to Cnn14
    "mert-only": """
    def __init__(self, sampling_rate, device, backbone="mert"):
        if backbone != "mert":
            raise ValueError("Backbone not supported")
        self.mel_model = MERT()
""",
    "no-argument": """
    def __init__(self, sampling_rate, device):
        self.mel_model = MERT()
""",
    "other-network": """
    def __init__(self, sampling_rate, device, backbone="cnn14"):
        self.backbone = backbone
        self.mel_model = torch.nn.Identity()
""",
}
FAKE_FAD = {  # audioldm_eval/metrics/fad.py, read (never imported) by the driver to describe the FAD resampler
    "0.0.3": "import resampy\n\n\ndef load_audio_task(fname):\n    return resampy.resample\n",
    "0.0.5": "from audioldm_eval.datasets.load_mel import WaveDataset\n",
}
FAKE_LAION_CLAP = """
import numpy as np
import torch


class CLAP_Module:
    def __init__(self, enable_fusion=False, device=None, amodel="HTSAT-tiny", tmodel="roberta"):
        assert (enable_fusion, amodel, tmodel) == (False, "HTSAT-base", "roberta")

    def load_ckpt(self, ckpt=None, model_id=-1, verbose=True):
        self.scale = float(torch.load(ckpt)["s"])

    def get_audio_embedding_from_data(self, x, use_tensor=False):
        # clip k lasts 1 + k/2 s: 3 * 16000 * (1 + k/2) samples at 48 kHz
        return np.array([[1.0, len(w) / 24000 - 2] for w in x], dtype=np.float32)

    def get_text_embedding(self, x, tokenizer=None, use_tensor=False):
        return np.array([[1.0, self.scale * int(t.split()[-1])] for t in x], dtype=np.float32)
"""
FAKE_LAION_CLAP_BROKEN = """
class CLAP_Module:
    def __init__(self, enable_fusion=False, device=None, amodel="HTSAT-tiny", tmodel="roberta"):
        pass

    def load_ckpt(self, ckpt=None, model_id=-1, verbose=True):
        raise RuntimeError("checkpoint layout not understood")
"""
FAKE_MSCLAP_WRAPPER = """
import random
from pathlib import Path

import torch


class CLAPWrapper:
    def __init__(self, model_fp=None, version="2023", use_cuda=False):
        assert version == "2023"
        self.scale = float(torch.load(model_fp)["s"])

    def get_audio_embeddings(self, audio_files, resample=True):
        offsets = [random.randrange(0, 1000) for _ in audio_files]  # the real wrapper's random crop
        return torch.tensor([[1.0 + o, float(Path(f).stem[1:])] for f, o in zip(audio_files, offsets)])

    def get_text_embeddings(self, class_labels):
        return torch.tensor([[1.0, self.scale * int(t.split()[-1])] for t in class_labels])
"""


def _write_package(root: Path, name: str, version: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    dist = root / f"{name}-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def _fake_env(
    root: Path, *, broken_laion: bool = False, with_msclap: bool = True, audioldm_eval: str = "0.0.3"
) -> Path:
    root.mkdir()
    (root / "bench").mkdir()  # shadows ours on the driver's path: importing it would fail the run
    (root / "bench" / "__init__.py").write_text("raise ImportError('the reference driver must never import bench')\n")
    version = audioldm_eval if audioldm_eval in FAKE_FAD else "0.0.9"
    _write_package(
        root,
        "audioldm_eval",
        version,
        {
            "__init__.py": FAKE_AUDIOLDM_EVAL % {"init": AUDIOLDM_EVAL_INITS[audioldm_eval]},
            "feature_extractors/__init__.py": "",
            "feature_extractors/panns/__init__.py": FAKE_PANNS,
            "metrics/__init__.py": "",
            "metrics/fad.py": FAKE_FAD.get(audioldm_eval, ""),
            "audio/__init__.py": "",
            "audio/stft.py": "pad_center = None\nlibrosa_mel_fn = None\n",
        },
    )
    _write_package(
        root, "laion_clap", "1.1.7", {"__init__.py": FAKE_LAION_CLAP_BROKEN if broken_laion else FAKE_LAION_CLAP}
    )
    if with_msclap:
        _write_package(
            root,
            "msclap",
            "1.3.4",
            {
                "__init__.py": "from .CLAPWrapper import CLAPWrapper as CLAP\n",
                "CLAPWrapper.py": FAKE_MSCLAP_WRAPPER,
            },
        )
    return root


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("reference_inputs")
    gen, ref, ckpt = root / "gen", root / "ref", root / "ckpt"
    for d in (gen, ref, ckpt):
        d.mkdir()
    rng = np.random.default_rng(0)
    for k, cid in enumerate(CLIP_IDS):
        sf.write(gen / f"{cid}.wav", 0.1 * rng.standard_normal(int(16000 * (1 + k / 2))), 16000, subtype="PCM_16")
        if cid != "c2":
            sf.write(ref / f"{cid}.wav", 0.1 * rng.standard_normal(32000), 32000, subtype="PCM_16")
    (root / "prompts.csv").write_text("id,caption\n" + "".join(f"{cid},sound number {cid[1:]}\n" for cid in CLIP_IDS))
    files = {
        "panns-cnn14-16k": (ckpt / "my_cnn14.pth", {"w": torch.tensor(CNN14_W)}),
        "vggish": (ckpt / "my_vggish.pth", {"v": torch.tensor(VGGISH_V)}),
        "laion-clap-htsat-base": (ckpt / "laion.pt", {"s": torch.tensor(LAION_S)}),
        "ms-clap-2023": (ckpt / "msclap.pth", {"s": torch.tensor(MSCLAP_S)}),
    }
    for path, state in files.values():
        torch.save(state, path)
    return {
        "root": root,
        "gen": gen,
        "ref": ref,
        "prompts": root / "prompts.csv",
        "checkpoints": {k: p for k, (p, _) in files.items()},
    }


def _score_args(inputs: dict, out: Path, python: str = sys.executable, extra: tuple[str, ...] = ()) -> list[str]:
    args = [
        "score",
        "--impl",
        "reference",
        "--reference-python",
        python,
        "--gen",
        str(inputs["gen"]),
        "--ref",
        str(inputs["ref"]),
        "--prompts",
        str(inputs["prompts"]),
        "--out",
        str(out),
        *extra,
    ]
    for name, path in inputs["checkpoints"].items():
        args += ["--checkpoint", f"{name}={path}"]
    return args


def _run_reference(inputs: dict, env: Path, out: Path, monkeypatch) -> dict:
    monkeypatch.setenv("PYTHONPATH", str(env))
    monkeypatch.delenv("GENAU_BENCH_REFERENCE_SHIMS", raising=False)
    assert bench_main(_score_args(inputs, out)) == 0
    return read_record(out)


def _clap_expected(scale: float) -> float:
    k = np.arange(len(CLIP_IDS), dtype=np.float32)
    audio = np.stack([np.ones_like(k), k], 1)
    text = np.stack([np.ones_like(k), np.float32(scale) * k], 1)
    return float(((audio * text).sum(1) / (np.linalg.norm(audio, axis=1) * np.linalg.norm(text, axis=1))).mean())


@pytest.fixture(scope="module")
def record(inputs, tmp_path_factory) -> dict:
    monkeypatch = pytest.MonkeyPatch()
    try:
        env = _fake_env(tmp_path_factory.mktemp("envs") / "good")
        return _run_reference(inputs, env, inputs["root"] / "record.json", monkeypatch)
    finally:
        monkeypatch.undo()


def test_record_carries_the_reference_tools_numbers(record, inputs):
    by_metric = {m["metric"]: m for m in record["metrics"]}
    assert by_metric["FD"]["value"] == CNN14_W * 3 + 2  # 3 generated + 2 reference clips staged, the user's Cnn14 file
    assert by_metric["FAD"]["value"] == VGGISH_V  # the user's VGGish file, read through torch.hub's cache lookup
    assert by_metric["IS"]["value"] == 1.5 and "std over 10 splits = 0.2500" in by_metric["IS"]["reason"]
    assert (by_metric["KL_softmax"]["value"], by_metric["KL_sigmoid"]["value"]) == (0.5, 2.5)
    assert by_metric["KL_softmax"]["n"] == 2  # pairs by clip id
    assert by_metric["KID"]["value"] == -3.0  # recorded as an extra metric
    assert math.isnan(by_metric["KAD"]["value"]) and "no KAD" in by_metric["KAD"]["reason"]
    assert by_metric["CLAP_LAION"]["value"] == pytest.approx(_clap_expected(LAION_S), rel=1e-6)
    assert by_metric["CLAP_MS"]["value"] == pytest.approx(
        _clap_expected(MSCLAP_S), rel=1e-6
    )  # first-window crop: offsets 0
    assert by_metric["CLAP_MS"]["n"] == 3


def test_record_keys_label_columns_and_intervals(record, inputs):
    ours_keys = {
        "protocol_version",
        "model",
        "split",
        "gen_dir",
        "ref",
        "n_missing_reference",
        "n_evaluated",
        "n_failed",
        "model_weights",
        "metrics",
        "backbones",
        "backbone_weights",
        "failures",
        "n_generated",
        "n_reference",
        "n_paired",
        "resampler",
        "cache",
    }
    assert ours_keys <= set(record)
    assert record["impl"] == "reference" and record["reference_python"] == sys.executable
    assert (record["n_generated"], record["n_reference"], record["n_paired"], record["n_missing_reference"]) == (
        3,
        2,
        2,
        1,
    )
    assert record["reference_tools"]["audioldm_eval"] == "0.0.3"
    assert record["reference_tools"]["laion_clap"] == "1.1.7" and record["reference_tools"]["msclap"] == "1.3.4"
    assert set(record["resamplers"]) == {"audioldm_eval-cnn14", "audioldm_eval-vggish", "laion_clap", "msclap"}
    assert "soxr_hq" in record["resamplers"]["laion_clap"] and "resampy" in record["resamplers"]["audioldm_eval-vggish"]
    assert set(record["reference_seconds"]) == {"audioldm_eval", "laion_clap", "msclap"}
    assert any("first 7 s" in n for n in record["reference_notes"])
    columns = {m["column"] for m in record["metrics"]}
    assert {
        "FD_audioldm_eval-cnn14@16k",
        "FAD_audioldm_eval-vggish@16k",
        "CLAP_LAION_laion_clap-htsat-base@48k",
        "CLAP_MS_msclap-2023@44.1k",
        "KID_audioldm_eval-cnn14@16k",
    } <= columns
    assert not columns & {
        "FD_panns-cnn14@16k",
        "FAD_vggish@16k",
        "CLAP_LAION_laion-clap-htsat-base@48k",
        "CLAP_MS_ms-clap-2023@44.1k",
    }
    for m in record["metrics"]:
        assert math.isnan(m["ci_low"]) and math.isnan(m["ci_high"])
        assert m["ci_reason"] == "the reference tools compute no intervals"
    for name, path in inputs["checkpoints"].items():
        assert record["backbones"][name]["checkpoint_id"] == f"sha256:{sha256_file(path)}"


def test_record_names_each_tools_version_and_network(record):
    """Issue 13 item 5: the record says which audioldm_eval ran and that it ran Cnn14."""
    assert record["reference_backbones"]["audioldm_eval"] == {
        "version": "0.0.3",
        "backbone": "cnn14",
        "argument": "backbone='cnn14' (its default: 'cnn14')",
        "network": "audioldm_eval.feature_extractors.panns.Cnn14",
    }
    assert record["reference_backbones"]["laion_clap"]["backbone"] == "HTSAT-base + roberta"
    assert record["reference_backbones"]["msclap"]["backbone"] == "2023 (HTSAT + GPT-2)"


def test_audioldm_eval_whose_default_is_mert_is_pinned_to_cnn14(inputs, tmp_path, monkeypatch):
    """audioldm_eval's GitHub main since 2024-09 builds MERT unless told backbone='cnn14', and reads its
    Cnn14 file from ~/.cache/audioldm_eval/ckpt: the driver names the backbone and serves the user's file there."""
    env = _fake_env(tmp_path / "env", audioldm_eval="0.0.5")
    rec = _run_reference(inputs, env, tmp_path / "record.json", monkeypatch)
    by_metric = {m["metric"]: m for m in rec["metrics"]}
    assert by_metric["FD"]["value"] == CNN14_W * 3 + 2, by_metric["FD"]["reason"]
    assert rec["reference_backbones"]["audioldm_eval"]["version"] == "0.0.5"
    assert rec["reference_backbones"]["audioldm_eval"]["argument"] == "backbone='cnn14' (its default: 'mert')"
    assert (
        "WaveDataset" in rec["resamplers"]["audioldm_eval-vggish"]
    )  # this version's FAD reads files as Cnn14's path does


@pytest.mark.parametrize("version", ["mert-only", "no-argument", "other-network"])
def test_audioldm_eval_that_cannot_be_pinned_to_cnn14_is_refused(inputs, tmp_path, monkeypatch, version):
    env = _fake_env(tmp_path / "env", audioldm_eval=version)
    monkeypatch.setenv("PYTHONPATH", str(env))
    monkeypatch.delenv("GENAU_BENCH_REFERENCE_SHIMS", raising=False)
    out = tmp_path / "record.json"
    with pytest.raises(SystemExit) as err:
        bench_main(_score_args(inputs, out))
    message = str(err.value)
    assert "\n" not in message and message.startswith("error: audioldm_eval 0.0.9 at ")
    assert "cannot be pinned to its Cnn14 backbone" in message and "backbone='cnn14'" in message
    why = {
        "mert-only": "raised ValueError: Backbone not supported",
        "no-argument": "takes no backbone argument",
        "other-network": "it built torch.nn.modules.linear.Identity",
    }[version]
    assert why in message
    assert not out.exists()  # nothing is recorded


def test_missing_package_and_failing_tool_give_nan_with_reasons(inputs, tmp_path, monkeypatch):
    env = _fake_env(tmp_path / "env", broken_laion=True, with_msclap=False)
    rec = _run_reference(inputs, env, tmp_path / "record.json", monkeypatch)
    by_metric = {m["metric"]: m for m in rec["metrics"]}
    assert math.isnan(by_metric["CLAP_MS"]["value"])
    assert by_metric["CLAP_MS"]["reason"] == f"msclap is not installed for {sys.executable}"
    assert math.isnan(by_metric["CLAP_LAION"]["value"])
    assert "checkpoint layout not understood" in by_metric["CLAP_LAION"]["reason"]
    assert by_metric["FD"]["value"] == CNN14_W * 3 + 2  # the other groups still ran
    assert rec["reference_tools"]["msclap"] is None


def test_missing_interpreter_is_a_clear_error(inputs, tmp_path):
    missing = tmp_path / "no-venv" / "bin" / "python"
    with pytest.raises(SystemExit, match=f"--reference-python {missing}: no such interpreter"):
        bench_main(_score_args(inputs, tmp_path / "r.json", python=str(missing)))


def test_driver_failure_shows_its_stderr(inputs, tmp_path, monkeypatch):
    shim = tmp_path / "shim.py"
    shim.write_text("raise RuntimeError('stand-in exploded')\n")
    monkeypatch.setenv("GENAU_BENCH_REFERENCE_SHIMS", str(shim))
    with pytest.raises(SystemExit) as err:
        bench_main(_score_args(inputs, tmp_path / "r.json"))
    assert f"the reference driver failed in {sys.executable}" in str(err.value)
    assert "stand-in exploded" in str(err.value)


def test_random_backbones_are_refused(inputs, tmp_path):
    with pytest.raises(SystemExit, match="--impl reference needs the official checkpoint files"):
        bench_main(_score_args(inputs, tmp_path / "r.json", extra=("--backbones", "random")))


def test_driver_never_imports_bench():
    """Statically; at run time the fake environment's `bench` raises on import (see _fake_env)."""
    code = Path(__file__).parents[3].joinpath("bench", "metrics", "_reference_driver.py").read_text()
    assert "import bench" not in code and "from bench" not in code


def test_leaderboard_shows_reference_records_unranked(record, tmp_path):
    store = RunStore(tmp_path / "runs")
    ours = _record("genau-l", 6000.0, date="2026-01-01T00:00:00+00:00")
    run = store.run_dir("audiocaps", "genau-l", ours["settings_hash"])
    run.path.mkdir(parents=True)
    (run.path / "manifest.json").write_text("{}")
    run.write_result("ours", ours)
    run.write_result("reference", {**record, "date": "2027-01-01T00:00:00+00:00"})  # newer, lower FD
    df = build_leaderboard(tmp_path / "runs", "audiocaps", with_paper=False)
    assert len(df) == 2
    ours_row = df[df["source"] == "this benchmark"].iloc[0]
    ref_row = df[df["weights"] == REFERENCE_WEIGHTS_LABEL].iloc[0]
    assert ours_row["rank"] == 1 and ours_row["FD_panns-cnn14@16k"] == 6000.0  # ours kept, ranked on our column
    assert pd.isna(ref_row["rank"]) and not ref_row["comparable"]
    assert ref_row["FD_audioldm_eval-cnn14@16k"] == CNN14_W * 3 + 2 and pd.isna(ref_row["FD_panns-cnn14@16k"])
    assert ref_row["source"].startswith("reference tools (audioldm_eval 0.0.3")
    _, png = write_leaderboard(df, tmp_path / "lb", "audiocaps")
    assert png.stat().st_size > 1000
