"""`--engine ray` runs the same stages on Ray Data and writes the same bytes as the local engine."""

from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'genau-bench[distributed]')")

from genau_core.recap import run_recap  # noqa: E402
from tests.genau_core.recap.test_recap_pipeline import (  # noqa: E402
    CAPTIONER,
    EXPECTED_CLIPS,
    clip_files,
    config,
    make_dataset,
    read_jsonl,
)  # noqa: E402

# Ray's own DataContext warns about its deprecated fields when it copies itself
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_manifest_identical_to_local(ray_cluster, tmp_path):
    videos = make_dataset(tmp_path / "data")
    local, distributed = tmp_path / "local", tmp_path / "ray"
    a = run_recap(config(videos, local, batch_size=3, shard_size=7))
    b = run_recap(config(videos, distributed, batch_size=3, shard_size=7, engine="ray"))
    assert (a.shards_run, b.shards_run) == (1, 1)
    assert a.segments_run == b.segments_run == 11
    rows = read_jsonl(distributed / "manifest.jsonl")
    assert [
        (r["video_id"], round(r["start"] * 1000), round(r["end"] * 1000), r["caption"], r["n_segments"]) for r in rows
    ] == EXPECTED_CLIPS
    for name in (
        "manifest.jsonl",
        "manifest.parquet",
        "segments.parquet",
        "dropped.parquet",
        "videos.parquet",
        "stats.json",
        "report.json",
    ):
        assert (local / name).read_bytes() == (distributed / name).read_bytes(), name
    assert clip_files(local) == clip_files(distributed) == {r["audio"] for r in rows}
    for p in clip_files(local):
        assert (local / p).read_bytes() == (distributed / p).read_bytes(), p
    assert [e["video_id"] for e in json.loads((distributed / "report.json").read_text())["errors"]] == ["v4", "v6"]
    # resuming a local run with the Ray engine: finished shards are skipped
    again = run_recap(config(videos, local, batch_size=3, shard_size=7, engine="ray"))
    assert (again.shards_skipped, again.shards_run) == (1, 0)


@pytest.mark.slow
def test_ray_several_shards_and_resume(ray_cluster, tmp_path):
    """Three shards on Ray; one shard's outputs removed as if killed; the resumed Ray run
    redoes only that shard and matches a local run byte for byte."""
    import shutil

    videos = make_dataset(tmp_path / "data")
    local, distributed = tmp_path / "local", tmp_path / "ray"
    run_recap(config(videos, local, batch_size=2, shard_size=3))
    first = run_recap(config(videos, distributed, batch_size=2, shard_size=3, engine="ray"))
    assert first.shards_run == 3
    (distributed / "shards" / "00000" / "done.json").unlink()
    shutil.rmtree(distributed / "clips" / "00000")
    resumed = run_recap(config(videos, distributed, batch_size=2, shard_size=3, engine="ray"))
    assert (resumed.shards_skipped, resumed.shards_run) == (2, 1)
    for name in ("manifest.jsonl", "manifest.parquet", "segments.parquet", "stats.json"):
        assert (local / name).read_bytes() == (distributed / name).read_bytes(), name
    assert clip_files(local) == clip_files(distributed)
    assert CAPTIONER.endswith(":BandCaptioner")
