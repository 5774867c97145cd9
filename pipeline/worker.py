"""What a worker does with one shard task of a map: read, apply the stage batch by batch, write, record stats.

Outputs are written under temporary names and moved into place; the stats sidecar goes last and is
the commit marker. Memory per worker is bounded by one batch (`batch_rows`) of the shard, not the
shard or the corpus.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from pipeline import faults
from pipeline.layout import REJECTS_DIR, REMOVED_DIR, sidecar_path
from pipeline.schema import check_core_columns, with_reject_columns
from pipeline.shards import Task, build_sidecar, output_fingerprint
from pipeline.stage import MapStage, StageOutput
from pipeline.storage import AtomicParquetWriter, Storage

HIST_BINS = 41  # edges from 1e-3 to 1e7: four bins per decade


def text_chars(table: pa.Table, column: str = "text") -> int:
    """Characters (code points) of a text column."""
    if table.num_rows == 0:
        return 0
    return int(pc.sum(pc.utf8_length(table.column(column))).as_py() or 0)


def text_bytes(table: pa.Table) -> int:
    if table.num_rows == 0:
        return 0
    return int(pc.sum(pc.binary_length(table.column("text").cast(pa.large_binary()))).as_py() or 0)


class SignalHistograms:
    """Per-shard histograms of a stage's numeric signals, per language, on fixed log-spaced bins
    so that shards can be summed into corpus-wide histograms without rereading any data."""

    def __init__(self):
        self.counts: dict[str, dict[str, np.ndarray]] = {}

    def add(self, signals: dict[str, np.ndarray], langs: pa.ChunkedArray) -> None:
        if not signals:
            return
        edges = histogram_edges()
        lang_values = np.asarray(pc.fill_null(langs, "unknown").to_numpy(zero_copy_only=False), dtype=object)
        for name, values in signals.items():
            values = np.asarray(values, dtype=float)
            per_lang = self.counts.setdefault(name, {})
            for lang in np.unique(lang_values):
                chosen = values[(lang_values == lang) & np.isfinite(values)]
                counts, _ = np.histogram(np.clip(chosen, edges[0], edges[-1]), bins=edges)
                per_lang[lang] = per_lang.get(lang, 0) + counts

    def to_json(self) -> dict:
        edges = histogram_edges().tolist()
        return {
            name: {"edges": edges, "counts": {lang: c.tolist() for lang, c in sorted(per_lang.items())}}
            for name, per_lang in sorted(self.counts.items())
        }


def histogram_edges() -> np.ndarray:
    """Fixed edges: 0, then 1e-3 to 1e7 in quarter-decade steps (works for ratios and lengths)."""
    return np.concatenate([[0.0], np.logspace(-3, 7, HIST_BINS)])


def run_map_task(
    stage: MapStage, task: Task, storage: Storage, folder: str, stage_config_hash: str, batch_rows: int
) -> dict:
    """Runs a map stage over one shard and commits its output, rejects and sidecar."""
    started = time.perf_counter()
    parquet = storage.parquet_file(task.input_path)
    out_path = storage.path(folder, f"{task.key}.parquet")
    rej_name = f"{task.key}.parquet"
    writer = rejects = removed = None
    removed_by_reason: dict[str, dict[str, int]] = {}
    rewrites = getattr(stage, "rewrites", False)
    chars = Counter()  # in, out, rejected, removed: conservation of characters for rewriting stages
    drops: Counter = Counter()
    drops_by_lang: dict[str, Counter] = {}
    hist = SignalHistograms()
    rows_in = bytes_in = bytes_out = 0
    try:
        stage.start_shard(task.key)
        batches = parquet.iter_batches(batch_size=batch_rows)
        tables = (pa.Table.from_batches([b]) for b in batches)
        first = True
        for table in tables:
            first = False
            rows_in += table.num_rows
            bytes_in += text_bytes(table)
            chars["in"] += text_chars(table)
            result = stage(table)
            check_core_columns(result.table, f"stage {stage.name} on {task.input_path}")
            hist.add(result.signals, result.table.column("lang"))
            kept = result.table.filter(pa.array(result.keep))
            if writer is None:
                writer = AtomicParquetWriter(storage, out_path, kept.schema)
            writer.write(kept)
            faults.hit(f"map:{folder}")
            bytes_out += text_bytes(kept)
            chars["out"] += text_chars(kept)
            if result.removed is not None and result.removed.num_rows:
                spans = removed_table(result, stage.name)
                chars["removed"] += text_chars(spans, "span")
                chars["inserted"] += text_chars(spans, "replacement")
                _count_removed(spans, removed_by_reason)
                if removed is None:
                    removed = AtomicParquetWriter(storage, storage.path(folder, REMOVED_DIR, rej_name), spans.schema)
                removed.write(spans)
            dropped_mask = pa.array(~result.keep)
            if not result.keep.all():
                dropped = result.table.filter(dropped_mask)
                chars["rejected"] += text_chars(dropped)
                reasons = result.reasons.filter(dropped_mask)
                drops.update(reasons.to_pylist())
                pairs = pa.table({"lang": pc.fill_null(dropped.column("lang"), "unknown"), "reason": reasons})
                for row in pairs.group_by(["lang", "reason"]).aggregate([([], "count_all")]).to_pylist():
                    drops_by_lang.setdefault(row["lang"], Counter())[row["reason"]] += row["count_all"]
                dropped = with_reject_columns(dropped, stage.name, reasons)
                if rejects is None:
                    rejects = AtomicParquetWriter(storage, storage.path(folder, REJECTS_DIR, rej_name), dropped.schema)
                rejects.write(dropped)
        if first:  # an empty shard still gets an (empty) output with the stage's schema
            result = stage(parquet.schema_arrow.empty_table())
            writer = AtomicParquetWriter(storage, out_path, result.table.schema)
        writer.commit()
        for w in (rejects, removed):
            if w is not None:
                w.commit()
    except BaseException:
        for w in (writer, rejects, removed):
            if w is not None:
                w.abort()
        raise
    rows_rejected = sum(drops.values())
    sidecar = build_sidecar(
        stage=stage.name,
        folder=folder,
        task=task,
        config_hash=stage_config_hash,
        version=stage.version,
        outputs=[
            {
                "name": f"{task.key}.parquet",
                "rows": writer.rows,
                "fingerprint": output_fingerprint(task.fingerprint, stage_config_hash, task.key),
            }
        ],
        rejects={"name": rej_name, "rows": rows_rejected} if rejects is not None else None,
        rows_in=rows_in,
        rows_out=writer.rows,
        rows_rejected=rows_rejected,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        drops=drops,
        drops_by_lang={lang: dict(sorted(c.items())) for lang, c in sorted(drops_by_lang.items())},
        signals=hist.to_json(),
        seconds=time.perf_counter() - started,
        node=node_id(),
        **(
            {
                "removed": {"name": rej_name, "rows": removed.rows} if removed is not None else None,
                "chars": dict(chars),
                "removed_by_reason": removed_by_reason,
            }
            if rewrites
            else {}
        ),
    )
    if rows_in != writer.rows + rows_rejected:  # conservation is checked where it could break
        raise AssertionError(f"{task.key}: {rows_in} rows in but {writer.rows} kept + {rows_rejected} rejected")
    if rewrites and chars["in"] + chars["inserted"] != chars["out"] + chars["rejected"] + chars["removed"]:
        raise AssertionError(
            f"{task.key}: {chars['in']} characters in (+ {chars['inserted']} of placeholders) but {chars['out']} out "
            f"+ {chars['rejected']} rejected + {chars['removed']} removed: a rewriting stage must report every span "
            "it removes"
        )
    storage.write_json(sidecar_path(storage, folder, task.key), sidecar)
    return sidecar


def node_id() -> str | None:
    """The Ray node that ran the task (None outside Ray): which machines did the work."""
    try:
        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 - bookkeeping must never fail a task
        return None


def guarded(run, task: Task) -> dict:
    """Runs `run(task)`, turning an exception into a failure record so the other shards' work survives."""
    try:
        return {"ok": True, "sidecar": run(task)}
    except Exception as err:
        return {
            "ok": False,
            "key": task.key,
            "input": task.input_path,
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(),
        }


def removed_table(result: StageOutput, stage_name: str) -> pa.Table:
    """A batch's removed spans with the document's id, source and lang, as `removed/` keeps them."""
    spans = result.removed
    rows = pa.array(spans.column("row").to_numpy(zero_copy_only=False))
    return pa.table(
        {
            "id": result.table.column("id").take(rows),
            "source": result.table.column("source").take(rows),
            "lang": result.table.column("lang").take(rows),
            "stage": pa.array([stage_name] * spans.num_rows, pa.string()),
            "reason": spans.column("reason").cast(pa.string()),
            "span": spans.column("span").cast(pa.large_string()),
            "replacement": (
                spans.column("replacement").cast(pa.string())
                if "replacement" in spans.column_names
                else pa.array([""] * spans.num_rows, pa.string())
            ),
        }
    )


def _count_removed(spans: pa.Table, into: dict[str, dict[str, int]]) -> None:
    lengths = pc.utf8_length(spans.column("span")).to_numpy(zero_copy_only=False)
    for reason, n in zip(spans.column("reason").to_pylist(), lengths):
        entry = into.setdefault(reason, {"spans": 0, "chars": 0})
        entry["spans"] += 1
        entry["chars"] += int(n)


def map_runner(storage: Storage, folder: str, config_hash: str, batch_rows: int, *, build, kwargs: dict):
    """The per-task function of a map phase: builds the map (`build(**kwargs)`, once per worker) and runs it
    over one shard at a time."""
    stage = build(**kwargs)
    return lambda task: run_map_task(stage, task, storage, folder, config_hash, batch_rows)
