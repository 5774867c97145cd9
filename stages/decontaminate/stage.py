"""`decontaminate`: drop (or cut) the documents that contain items of a benchmark, so that evaluation sets
stay out of the training data.

Phases: the index of the benchmark files is built once on the driver into the stage's work folder
(`index.py`), then a map over the shards loads it once per worker and looks up every n-gram of every
document.

When is a document contaminated by an item? When it holds at least `threshold` (default half) of the
item's distinct n-grams, or `enough_matches` (default 20) of them for long items. A share of the item,
not of the document, because a benchmark paragraph pasted into a long page is a small share of the page
but all of the paragraph; and a share rather than "any 13-gram" (GPT-3's rule) because a single shared
13-gram is often a quotation, a title or a licence sentence, which the realweb false-positive benchmark
counts (docs/decontaminate.md). The cap makes a whole article usable as one item: 20 distinct 13-grams of it
in a document mean a passage of 32 or more words copied from it, about two sentences.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from pipeline.config import StrictModel
from pipeline.layout import REMOVED_DIR, read_sidecars
from pipeline.stage import MapStage, StageOutput, keep_all, removed_spans
from pipeline.storage import Storage
from stages.decontaminate.grams import batch_ngrams, chinese_mask, located_ngrams
from stages.decontaminate.index import (
    BenchmarkError,
    Index,
    build_index,
    files_digest,
    index_exists,
    resolve_paths,
    write_index,
)
from stages.decontaminate.spans import cut, merge

REASON = "contaminated:{}"
REPORT = "_decontaminate.json"


class Benchmark(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Names the benchmark in reasons: contaminated:<name>.")
    path: str | list[str] = Field(description="A file, a glob, or a list of them: JSONL (.gz, .zst), Parquet or CSV.")
    text_field: str = Field("text", description="The column or JSON field holding an item's text.")


class DecontaminateConfig(StrictModel):
    benchmarks: list[Benchmark] = Field(
        default_factory=list, description="Benchmarks to keep out; empty: the stage keeps everything."
    )
    ngram: int = Field(13, ge=3, le=64, description="Words per n-gram for English and other spaced scripts.")
    zh_ngram: int = Field(20, ge=5, le=100, description="Characters per n-gram for Chinese (about 13 words' worth).")
    threshold: float = Field(0.5, gt=0, le=1, description="Share of an item's distinct n-grams a document must hold.")
    enough_matches: int = Field(20, ge=1, description="...or this many of them, for items longer than that.")
    mode: Literal["drop", "remove_spans"] = Field("drop", description="Drop the document, or cut the matching spans.")
    min_chars: int = Field(50, ge=0, description="remove_spans: a document shorter than this after the cut goes.")

    @field_validator("benchmarks")
    @classmethod
    def _unique_names(cls, v: list[Benchmark]):
        names = [b.name for b in v]
        if len(names) != len(set(names)):
            raise ValueError(f"benchmark names must be unique: {names}")
        return v


class Decontaminate(MapStage):
    name = "decontaminate"
    version = "decontaminate_v1"
    Config = DecontaminateConfig
    stateful: ClassVar[bool] = True  # each worker loads the index once
    rewrites: ClassVar[bool] = True  # remove_spans mode cuts text out

    @classmethod
    def check(cls, config: DecontaminateConfig) -> list[tuple[tuple, str]]:
        problems = []
        for i, bench in enumerate(config.benchmarks):
            try:
                resolve_paths(bench.name, bench.path)
            except BenchmarkError as err:
                problems.append((("benchmarks", i, "path"), str(err)))
        return problems

    @classmethod
    def hash_payload(cls, config: DecontaminateConfig) -> dict:
        """The settings and the benchmark files' contents: an edited benchmark redoes the stage."""
        files = {b.name: [[p, files_digest([p])] for p in resolve_paths(b.name, b.path)] for b in config.benchmarks}
        return {**super().hash_payload(config), "benchmark_files": files}

    @classmethod
    def run_phases(cls, ctx) -> None:
        config = ctx.config
        if not config.benchmarks:
            ctx.map_shards(cls, {"config": config})
            return
        folder = ctx.storage.path(ctx.work, "index")
        if not index_exists(ctx.storage, folder):  # a resumed run reuses the index of the same benchmarks
            ngrams, items, summaries = build_index(config.benchmarks, ngram=config.ngram, zh_ngram=config.zh_ngram)
            write_index(ctx.storage, folder, ngrams, items)
            report = {
                "config_hash": ctx.config_hash,
                "benchmarks": {
                    s.name: {"files": s.files, "items": s.items, "empty_items": s.empty, "ngrams_indexed": s.ngrams}
                    for s in summaries
                },
            }
            ctx.storage.write_json(ctx.storage.path(ctx.folder, REPORT), report)
            indexed = ", ".join(f"{s.name} ({s.items:,} items, {s.ngrams:,} n-grams)" for s in summaries)
            ctx.say(f"{ctx.folder}: indexed {indexed}")
        ctx.map_shards(cls, {"config": config, "storage_uri": ctx.storage.uri, "index_folder": folder}, stateful=True)

    @classmethod
    def finish(cls, ctx) -> None:
        """The stage report: per benchmark, what was indexed and what it hit."""
        if ctx.config.benchmarks:
            write_report(ctx.storage, ctx.folder, [b.name for b in ctx.config.benchmarks])

    def __init__(self, config: DecontaminateConfig, storage_uri: str | None = None, index_folder: str | None = None):
        super().__init__(config)
        self.index = Index.load(Storage(storage_uri), index_folder) if index_folder else None
        self.names = [b.name for b in config.benchmarks]

    def __call__(self, table: pa.Table) -> StageOutput:
        if self.index is None or table.num_rows == 0:
            return keep_all(table)
        cfg = self.config
        texts = table.column("text").combine_chunks()
        zh = chinese_mask(texts, table.column("lang").combine_chunks() if "lang" in table.column_names else None)
        grams = batch_ngrams(texts, zh, ngram=cfg.ngram, zh_ngram=cfg.zh_ngram)
        found = self.index.contains(grams.hashes)
        doc, item, hashes = self.index.lookup(*_distinct(grams.hashes[found], grams.doc[found]))
        hits = self.find_hits(doc, item, table.num_rows)
        n = table.num_rows
        keep = np.ones(n, dtype=bool)
        reasons = np.full(n, None, dtype=object)
        signals = {"contamination": hits.share}
        hit_docs = np.flatnonzero(hits.bench >= 0)
        if cfg.mode == "drop" or not len(hit_docs):
            keep[hit_docs] = False
            reasons[hit_docs] = [REASON.format(self.names[b]) for b in hits.bench[hit_docs]]
            return StageOutput(table, keep, pa.array(reasons, pa.string()), signals)
        return self.remove(table, texts, zh, hits, doc, item, hashes, signals)

    def find_hits(self, doc: np.ndarray, item: np.ndarray, n_docs: int) -> Hits:
        """Which (document, item) pairs pass the threshold, and each document's benchmark (the one of its
        best-covered item; ties to the first benchmark in the config)."""
        idx = self.index
        n_items = len(idx.item_ngrams)
        pairs, found = np.unique(doc * n_items + item, return_counts=True)
        pair_doc, pair_item = pairs // n_items, pairs % n_items
        total = idx.item_ngrams[pair_item]
        share = np.zeros(n_docs)
        np.maximum.at(share, pair_doc, found / total)
        need = np.maximum(1, np.minimum(np.ceil(self.config.threshold * total - 1e-9), self.config.enough_matches))
        passed = found >= need
        bench = np.full(n_docs, -1, np.int64)
        p_doc, p_found, p_bench = pair_doc[passed], found[passed], idx.item_bench[pair_item[passed]]
        order = np.lexsort((p_bench, -p_found, p_doc))
        first = np.ones(len(order), dtype=bool)
        first[1:] = p_doc[order][1:] != p_doc[order][:-1]
        bench[p_doc[order][first]] = p_bench[order][first]
        return Hits(share, bench, pairs[passed], n_items)

    def remove(self, table, texts, zh, hits: Hits, doc, item, hashes, signals) -> StageOutput:
        """remove_spans: cut the n-grams of the items a document holds; too little left: drop it."""
        cfg = self.config
        n = table.num_rows
        keep = np.ones(n, dtype=bool)
        reasons = np.full(n, None, dtype=object)
        matched = np.isin(doc * hits.n_items + item, hits.pairs)
        doc, item, hashes = doc[matched], item[matched], hashes[matched]
        order = np.lexsort((self.index.item_bench[item], doc))  # per document, the first benchmark of each hash
        doc, hashes, bench = doc[order], hashes[order], self.index.item_bench[item][order]
        rows, spans, span_reasons, changed, new_texts = [], [], [], [], []
        for d in np.flatnonzero(hits.bench >= 0):
            sel = doc == d
            label = {}
            for h, b in zip(hashes[sel].tolist(), bench[sel].tolist(), strict=True):
                label.setdefault(h, REASON.format(self.names[b]))
            text = texts[int(d)].as_py()
            located = located_ngrams(text, bool(zh[d]), ngram=cfg.ngram, zh_ngram=cfg.zh_ngram)
            at = np.flatnonzero(np.isin(located.hashes, np.fromiter(label, np.uint64, len(label))))
            merged = merge(located.start[at], located.end[at], [label[h] for h in located.hashes[at].tolist()])
            new_text, removed = cut(text, merged)
            if len(new_text.strip()) < cfg.min_chars:  # the rejected row keeps its whole text, no spans
                keep[d] = False
                reasons[d] = REASON.format(self.names[hits.bench[d]])
                continue
            changed.append(int(d))
            new_texts.append(new_text)
            for span, reason in removed:
                rows.append(int(d))
                spans.append(span)
                span_reasons.append(reason)
        if changed:
            mask = np.zeros(n, dtype=bool)
            mask[changed] = True
            texts = pc.replace_with_mask(texts, pa.array(mask), pa.array(new_texts, texts.type))
            table = table.set_column(table.schema.get_field_index("text"), "text", texts)
        return StageOutput(
            table,
            keep,
            pa.array(reasons, pa.string()),
            signals,
            removed=removed_spans(rows, spans, span_reasons) if rows else None,
        )


class Hits:
    """One batch's verdicts: per document the best item share and benchmark (-1: none); the passing
    (document, item) pairs as document * n_items + item."""

    def __init__(self, share: np.ndarray, bench: np.ndarray, pairs: np.ndarray, n_items: int):
        self.share, self.bench, self.pairs, self.n_items = share, bench, pairs, n_items


def _distinct(hashes: np.ndarray, doc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each document's distinct n-grams (a repeated sentence is one match, not many)."""
    if len(hashes) == 0:
        return hashes, doc
    order = np.lexsort((hashes, doc))
    hashes, doc = hashes[order], doc[order]
    new = np.ones(len(hashes), dtype=bool)
    new[1:] = (hashes[1:] != hashes[:-1]) | (doc[1:] != doc[:-1])
    return hashes[new], doc[new]


def write_report(storage: Storage, folder: str, names: list[str]) -> dict:
    """`_decontaminate.json`: the index part written with the index, plus hits summed over the sidecars
    (drops) and the removed spans (documents cut, spans, characters)."""
    path = storage.path(folder, REPORT)
    report = storage.read_json_or_none(path) or {"benchmarks": {}}
    counts = ("documents_dropped", "documents_cut", "spans_removed", "chars_removed")
    hits = {name: dict.fromkeys(counts, 0) for name in names}
    for sidecar in read_sidecars(storage, folder):
        for name in names:
            reason = REASON.format(name)
            hits[name]["documents_dropped"] += sidecar.get("drops", {}).get(reason, 0)
            entry = sidecar.get("removed_by_reason", {}).get(reason, {})
            hits[name]["spans_removed"] += entry.get("spans", 0)
            hits[name]["chars_removed"] += entry.get("chars", 0)
    removed = storage.path(folder, REMOVED_DIR)
    cut_docs: dict[str, set] = {name: set() for name in names}
    for file in storage.list_files(removed, suffix=".parquet"):
        if file.startswith("."):
            continue
        spans = storage.read_parquet(f"{removed}/{file}", columns=["id", "reason"])
        for doc_id, reason in zip(spans.column("id").to_pylist(), spans.column("reason").to_pylist(), strict=True):
            name = reason.removeprefix("contaminated:")
            if name in cut_docs:
                cut_docs[name].add(doc_id)
    for name in names:
        hits[name]["documents_cut"] = len(cut_docs[name])
        hits[name]["documents_hit"] = hits[name]["documents_dropped"] + hits[name]["documents_cut"]
        report["benchmarks"].setdefault(name, {}).update(hits[name])
    storage.write_json(path, report)
    return report
