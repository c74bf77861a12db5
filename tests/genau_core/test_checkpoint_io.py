"""Loading checkpoints without initialising parameters, trimming text padding, parallel hashing."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from torch import nn

from genau_core.checkpoints import cache_root, sha256_file, sha256_files
from genau_core.checkpoint_io import CheckpointFormatError, build_from_state, parameters_on_meta
from genau_core.tokenizers import trim_right_padding


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3)
        self.norm = nn.BatchNorm1d(3)
        self.register_buffer("window", torch.hann_window(8), persistent=False)  # computed, not stored
        self.scale = nn.Parameter(torch.tensor(2.0))


def test_parameters_on_meta_leaves_buffers_real():
    with parameters_on_meta():
        net = _Net()
    assert all(p.device.type == "meta" for p in net.parameters())
    assert net.window.device.type == "cpu" and torch.equal(net.window, torch.hann_window(8))
    assert net.norm.running_var.device.type == "cpu"
    assert nn.Linear(2, 2).weight.device.type == "cpu"  # the patch is gone after the block


def test_build_from_state_takes_the_files_tensors(tmp_path):
    torch.manual_seed(0)
    state = _Net().state_dict()
    net = build_from_state(_Net, state, tmp_path / "net.pth", "toy")
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert net.conv.weight.requires_grad
    assert torch.equal(net.window, torch.hann_window(8))


def test_build_from_state_errors_name_the_file(tmp_path):
    state = _Net().state_dict()
    missing = {k: v for k, v in state.items() if k != "scale"}
    with pytest.raises(CheckpointFormatError, match=r"net\.pth.*missing keys.*scale"):
        build_from_state(_Net, missing, tmp_path / "net.pth", "toy")
    wrong = dict(state, **{"conv.weight": torch.zeros(3, 2, 5)})
    with pytest.raises(CheckpointFormatError, match=r"net\.pth.*size mismatch"):
        build_from_state(_Net, wrong, tmp_path / "net.pth", "toy")


def test_trim_right_padding():
    enc = {
        "input_ids": torch.tensor([[5, 6, 7, 1, 1], [5, 6, 1, 1, 1]]),
        "attention_mask": torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]]),
    }
    out = trim_right_padding(enc)
    assert out["input_ids"].tolist() == [[5, 6, 7], [5, 6, 1]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    left = {"input_ids": torch.tensor([[1, 1, 5], [1, 5, 6]]), "attention_mask": torch.tensor([[0, 0, 1], [0, 1, 1]])}
    assert all(torch.equal(left[k], v) for k, v in trim_right_padding(left).items())  # left padding: untouched


def test_sha256_files_in_parallel_keeps_every_memo_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAU_BENCH_CACHE", str(tmp_path / "cache"))
    files = []
    for i in range(5):
        f = tmp_path / f"f{i}.bin"
        f.write_bytes(bytes([i]) * (1 << 20) + b"x" * i)
        files.append(f)
    digests = sha256_files(files, workers=4)
    assert digests == {f.resolve(): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    memo = json.loads((cache_root() / "sha256-memo.json").read_text())
    assert len(memo) == 5 and sorted(memo.values()) == sorted(digests.values())
    assert sha256_file(files[0]) == digests[files[0].resolve()]


class _TrainingCallback:
    """Stands for a Lightning callback pickled into a training checkpoint; unpickling it must run nothing."""

    ran = []

    def __setstate__(self, state):
        _TrainingCallback.ran.append(state)


def test_training_objects_need_inert_reading_and_run_no_code(tmp_path, monkeypatch):
    """One reader for every checkpoint: weights-only refuses a pickled object (naming the switches); with
    inert_objects the tensors load and the object's code never runs; GENAU_BENCH_ALLOW_PICKLE is the
    baselines' switch for plain pickle."""
    from genau_core.baselines._state import read_checkpoint
    from genau_core.checkpoint_io import read_state_dict

    callback = _TrainingCallback()
    callback.__dict__["monitor"] = "val_loss"
    path = tmp_path / "release.ckpt"
    weight = torch.arange(6.0).reshape(2, 3)
    torch.save({"state_dict": {"w": weight}, "callbacks": {"cb": callback}, "epoch": 3}, path)
    with pytest.raises(CheckpointFormatError, match=r"release\.ckpt: cannot read .*allow_pickle=True"):
        read_state_dict(path, ("state_dict",), what="a release")
    state = read_state_dict(path, ("state_dict",), what="a release", inert_objects=True)
    assert list(state) == ["w"] and torch.equal(state["w"], weight) and _TrainingCallback.ran == []
    monkeypatch.delenv("GENAU_BENCH_ALLOW_PICKLE", raising=False)
    assert torch.equal(read_checkpoint(path, what="a baseline")["w"], weight) and _TrainingCallback.ran == []
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointFormatError, match=r"junk\.ckpt: cannot read .*GENAU_BENCH_ALLOW_PICKLE=1"):
        read_checkpoint(tmp_path / "junk.ckpt", what="a baseline")
