"""The export stage's settings: the final shards a trainer reads, and the dataset card beside them.

It is not a map: every output shard draws documents from every input shard (a global, seeded
shuffle), so the runner drives it through `pipeline/export.py`.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from pipeline.config import StrictModel

# What a trainer and a reader of the card need; columns absent from a run are left out.
DEFAULT_COLUMNS = [
    "id", "text", "source", "lang", "url", "weight", "tokens_est", "quality", "safety",
    "dup_cluster", "dup_cluster_size", "dup_copies", "w_quality", "w_cluster", "w_safety", "w_boost", "w_mix",
]
REQUIRED_COLUMNS = ["id", "text", "source", "lang"]


class ExportConfig(StrictModel):
    shard_docs: int | None = Field(None, gt=0, description="Documents per output shard (about: documents go to shards by a hash).")
    shard_bytes: int | None = Field(None, gt=0, description="UTF-8 text bytes per output shard (about); the files are smaller, being compressed.")
    seed: int = Field(0, ge=0, description="Shuffle seed: the same seed and input give the same shards, byte for byte.")
    columns: list[str] | None = Field(None, description="Columns to export; empty: id, text, source, lang, url, weight, tokens_est, the main scores and the weight terms.")
    dataset_name: str | None = Field(None, description="Dataset name for the card; empty: the output folder's name.")

    @model_validator(mode="after")
    def _one_size(self):
        if self.shard_docs is not None and self.shard_bytes is not None:
            raise ValueError("set shard_docs or shard_bytes, not both")
        if self.columns is not None:
            missing = [c for c in REQUIRED_COLUMNS if c not in self.columns]
            if missing:
                raise ValueError(f"columns must include {missing}")
        return self

    def target_shard_bytes(self) -> int | None:
        if self.shard_docs is None and self.shard_bytes is None:
            return 256_000_000  # a few hundred MB per file suits object storage and data loaders
        return self.shard_bytes


class Export:
    """Final shards `shard-NNNNN-of-MMMMM.parquet`, shuffled, plus `dataset.json` and `README.md`."""

    name = "export"
    version = "export_v1"
    Config = ExportConfig
    kind: ClassVar[str] = "export"
    uses_gpu: ClassVar[bool] = False
    stateful: ClassVar[bool] = False
