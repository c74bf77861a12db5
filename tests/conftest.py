import os
import sys
import tempfile
from pathlib import Path

import pytest

# Hermetic caches: tests never read or write the user's ~/.cache/genau-bench.
_CACHE = tempfile.mkdtemp(prefix="genau-bench-test-cache-")
os.environ["GENAU_BENCH_CACHE"] = _CACHE
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def toy_plugin_path(tmp_path_factory) -> Path:
    """A folder that holds a fake installed distribution whose entry point adds `toy-sine`.

    importlib.metadata finds `*.dist-info/entry_points.txt` on sys.path exactly as it finds
    a pip-installed package, so this exercises the real entry-point group.
    """
    root = tmp_path_factory.mktemp("site")
    (root / "toy_plugin.py").write_text((FIXTURES / "toy_plugin.py").read_text())
    dist = root / "toy_bench_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-bench-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[genau_bench.plugins]\ntoy-sine = toy_plugin:ToySinePlugin\n")
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No Hugging Face cache, no network and no checkpoint folders: what a fresh offline machine sees."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GENAU_BENCH_CACHE", str(tmp_path / "genau-cache"))
    monkeypatch.delenv("GENAU_BENCH_CHECKPOINTS", raising=False)
