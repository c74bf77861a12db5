"""The GenAu benchmark scripts run (FIT vs DiT on tiny shapes; the GPU sampling script on CPU-only machines)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from genau_core.genau import GENAU_S, GENAU_TINY

BENCH = Path(__file__).resolve().parents[3] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dit_twin_matches_the_fit_interface_and_depth():
    b = _load("bench_genau_fit_vs_dit")
    cfg = GENAU_TINY.fit
    assert b.fit_depth(GENAU_S.fit) == 26  # 5 blocks x 2 local + 4 blocks x 4 global
    torch.manual_seed(0)
    fit = b.FITBackbone(cfg).eval()
    dit = b.dit_for(cfg, cfg.patch_channels).eval()
    assert len(dit.blocks) == b.fit_depth(cfg)
    inputs = b._inputs(cfg, 2, "cpu")
    with torch.no_grad():
        assert fit(*inputs)[0].shape == dit(*inputs)[0].shape == (2, cfg.input_channels, cfg.input_length)
    # FLOPs on meta tensors = the real run's matmuls + the attention products (the fused CPU attention kernel
    # is not counted by FlopCounterMode; on meta tensors attention runs as bmm and is), counted by hand here
    meta_fit = b.on_meta(lambda: b.FITBackbone(cfg))
    assert b.count_flops(meta_fit, cfg, 2) == 2 * b.count_flops(meta_fit, cfg, 1) > 0
    from torch.utils.flop_counter import FlopCounterMode

    fit.requires_grad_(False)  # FlopCounterMode's module tracker needs either grads enabled or no trainable inputs
    with FlopCounterMode(display=False) as counter:
        fit(*b._inputs(cfg, 1, "cpu"))
    inner = cfg.local_attention.inner  # all tiny attentions have the same inner width

    def qk_and_av(queries: int, keys: int, times: int) -> int:
        return 2 * 2 * queries * keys * inner * times

    g, lpg = cfg.groups, cfg.latents_per_group
    attention = (
        qk_and_av(cfg.group_size, cfg.group_size, g * cfg.local_layers_per_block * (cfg.blocks + 1))  # local
        + qk_and_av(cfg.latent_count, 3, cfg.blocks)  # latents read the 3 context tokens
        + qk_and_av(lpg, cfg.group_size, g * cfg.blocks)  # read
        + qk_and_av(cfg.latent_count, cfg.latent_count, cfg.global_layers_per_block * cfg.blocks)  # global
        + qk_and_av(cfg.group_size, lpg, g * cfg.blocks)  # write
    )
    assert b.count_flops(meta_fit, cfg, 1) == counter.get_total_flops() + attention
    lat = b.latency(cfg, cfg.patch_channels, repeats=1, warmup=0)
    assert lat["fit_s"] > 0 and lat["dit_s"] > 0 and lat["fit_params"] == sum(p.numel() for p in fit.parameters())


def test_gpu_sampling_script_exits_cleanly_without_cuda(capsys, monkeypatch):
    b = _load("bench_genau_gpu_sampling")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert b.main([]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out
    # the same code path, on the CPU with the tiny configuration
    assert (
        b.main(["--device", "cpu", "--config", "genau-tiny", "--steps", "2", "--batch-sizes", "1", "--repeats", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "| genau-tiny | cpu | fp32 | 1 | 2 |" in out


def test_fit_vs_dit_takes_a_release_yaml_as_the_authority(tmp_path):
    """Without a yaml the rows use our sizes fitted to the paper's counts (and say so); with
    `--release-yaml genau-s=PATH` the genau-s rows are computed on the yaml's backbone."""
    from genau_core.genau import GENAU_L
    from tests.genau_core.genau.test_genau_mapping import _tiny_official_yaml, _write_yaml_with_module_tags

    b = _load("bench_genau_fit_vs_dit")
    fitted = b.fit_configs()
    assert fitted["genau-s"] == (GENAU_S.fit, b.FITTED) and fitted["genau-l"] == (GENAU_L.fit, b.FITTED)
    assert "fitted to the paper's parameter count" in b.FITTED and "not in the official repo" in b.FITTED
    path = tmp_path / "genau-full-s.yaml"
    _write_yaml_with_module_tags(path, _tiny_official_yaml())
    configs = b.fit_configs({"genau-s": str(path)})
    assert configs["genau-s"] == (GENAU_TINY.fit, f"release yaml {path}")
    assert configs["genau-l"][1] == b.FITTED
    rows = b.static_rows({"genau-s": configs["genau-s"]})
    fit_row = next(r for r in rows if r["config"] == "genau-s" and r["model"] == "FIT")
    assert fit_row["params"] == sum(p.numel() for p in b.FITBackbone(GENAU_TINY.fit).parameters())
    md = b.markdown(
        rows,
        {"fit_s": 1.0, "dit_s": 1.0, "ratio_dit_over_fit": 1.0, "repeats": 1},
        "x",
        {n: s for n, (_, s) in configs.items()},
    )
    assert f"Sizes of genau-s: release yaml {path}." in md and f"Sizes of genau-l: {b.FITTED}." in md
