"""Run store: generated clips, manifests and results records on disk."""

from bench.runs.store import RunDir, RunStore, RunStoreError, atomic_write_json, read_json, read_record

__all__ = ["RunDir", "RunStore", "RunStoreError", "atomic_write_json", "read_json", "read_record"]
