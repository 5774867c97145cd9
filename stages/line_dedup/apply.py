"""The last phase of line dedup as a map: each document loses the units the count phase chose."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.stage import MapStage, StageOutput, removed_spans
from pipeline.storage import Storage
from stages.line_dedup.phases import doc_keys, read_removals


class LineDedupApply(MapStage):
    """Removes the chosen lines (with their line breaks) and drops documents left too short."""

    name = "line_dedup"
    version = "1"
    rewrites = True

    def __init__(self, config, *, storage_uri: str, work: str, shard_index: dict[str, int]):
        super().__init__(config)
        self.storage = Storage(storage_uri)
        self.work, self.shard_index = work, shard_index
        self.removals: dict[int, set[int]] = {}
        self.row = 0

    def start_shard(self, key: str) -> None:
        self.row = 0
        self.removals = read_removals(self.storage, self.work, self.shard_index[key])

    def __call__(self, table: pa.Table) -> StageOutput:
        cfg = self.config
        texts, langs = table.column("text").to_pylist(), table.column("lang").to_pylist()
        out, keep, reasons = [], np.ones(len(texts), bool), [None] * len(texts)
        rows, spans, why = [], [], []
        removed_units = np.zeros(len(texts))
        reason = f"line_dedup:{cfg.mode}"
        for i, (text, lang) in enumerate(zip(texts, langs)):
            drop_keys = self.removals.get(self.row + i)
            if not drop_keys:
                out.append(text)
                continue
            units, keys = doc_keys(text, lang, cfg.unit, cfg.min_unit_chars)
            kept = []
            for u, k in zip(units, keys):
                if k is not None and k in drop_keys:
                    rows.append(i)
                    spans.append(u)
                    why.append(reason)
                    removed_units[i] += 1
                else:
                    kept.append(u)
            new = "".join(kept)
            out.append(new)
            if len(new.strip()) < cfg.min_doc_chars:
                keep[i] = False
                reasons[i] = "line-dedup-too-short"
        self.row += len(texts)
        idx = table.schema.get_field_index("text")
        table = table.set_column(idx, table.schema.field(idx), pa.array(out, table.schema.field(idx).type))
        return StageOutput(
            table,
            keep,
            pa.array(reasons, pa.string()),
            {"line_dedup_units_removed": removed_units},
            removed=removed_spans(rows, spans, why),
        )
