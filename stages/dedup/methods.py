"""The three dedup stages (exact, MinHash LSH, SimHash) and the map that applies their clusters.

A dedup stage says how a batch of documents turns into bucket records (two 64-bit key halves per
record, several records per document for LSH bands or SimHash tables) and how a candidate pair is
confirmed. Everything global (the shuffle of records, connected components, survivors) is the same
for all three and lives in `stages/dedup/driver.py`.

Nodes: a document is the 64-bit number `shard_index << 32 | row`, shards in key order, so nodes are
small, stable for a given input and tell where a document lives without a lookup.
"""

from __future__ import annotations

import difflib
import re
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field, model_validator

from pipeline.config import StrictModel
from pipeline.stage import Stage
from stages import minhash, minhash_torch
from stages.dedup.apply import DedupApply
from stages.dedup.driver import GlobalStageDriver
from stages.dedup.planner import plan_stage
from stages.minhash import band_keys, optimal_bands
from stages.shingles import shingle, shingle_set
from stages.simhash import fingerprints, table_keys, table_masks


class DedupConfig(StrictModel):
    mode: Literal["drop", "keep"] = Field(
        "drop",
        description="drop: duplicates go to rejects; keep: every row stays, annotated, for the weights stage to down-weight by cluster size.",
    )
    rank_by: str | None = Field(
        "quality",
        description="Column whose highest value survives in a cluster (when the column exists); ties and missing values fall back to the smallest id.",
    )
    partitions: int | None = Field(
        None,
        gt=0,
        description="Hash partitions of each shuffle; empty: planned from the document count and memory per worker.",
    )
    memory_per_worker_mb: int | None = Field(
        None, gt=0, description="Memory a worker may use; empty: Ray's memory divided by its CPUs."
    )
    max_rounds: int = Field(
        60, gt=0, description="Most connected-component rounds before giving up (each round is checkpointed)."
    )
    keep_work: bool = Field(
        False, description="Keep the intermediate shuffle files (_work/) after the stage finishes."
    )


class ShingleConfig(StrictModel):
    ngram: int = Field(5, gt=0, description="Words per shingle for spaced languages (English).")
    zh_ngram: int = Field(5, gt=0, description="Characters (or jieba words) per shingle for Chinese.")
    zh_shingle: Literal["char", "word"] = Field(
        "char", description="Chinese shingles of characters, or of jieba words (slower; see docs/benchmarks.md)."
    )


class GlobalStage(Stage):
    """Base of the dedup stages: phases over the whole corpus, then a map that applies the clusters.

    The phases (stages/dedup/driver.py) are planned first (stages/dedup/planner.py), so a run that
    would not fit refuses before any work, naming the setting to change."""

    corpus_wide: ClassVar[bool] = True
    name: ClassVar[str]
    method: ClassVar[str]
    version: ClassVar[str]
    Config: ClassVar[type[StrictModel]]
    records_per_doc: ClassVar[int] = 1
    needs_fingerprint: ClassVar[bool] = False  # bucket records carry a SimHash fingerprint
    star_buckets: ClassVar[bool] = True  # every member of a bucket joins its smallest node

    @classmethod
    def writes(cls, config) -> set[str]:
        return {"dup_cluster", "dup_cluster_size"}

    @classmethod
    def keeps_work(cls, config) -> bool:
        return config.keep_work

    @classmethod
    def run_phases(cls, ctx) -> None:
        settings = ctx.config.model_dump(mode="json")
        driver = GlobalStageDriver(ctx, cls, settings)
        p = plan_stage(
            ctx, records_per_doc=lambda docs, text_bytes: driver.stage.record_count(), verifies=driver.stage.verifies()
        )
        report = driver.run(p.partitions)
        report["plan"] = {
            "partitions": p.partitions,
            "budget_mb": p.budget >> 20,
            "peaks_mb": {k: v >> 20 for k, v in p.peaks.items()},
        }
        ctx.storage.write_json(ctx.storage.path(ctx.folder, "_dedup.json"), report)
        apply = dict(
            storage_uri=ctx.storage.uri,
            work=driver.work,
            shard_index={t.key: i for i, t in enumerate(ctx.inputs)},
            method=cls.method,
            name=ctx.spec.name,
            mode=ctx.config.mode,
        )
        ctx.map_shards(DedupApply, apply)

    def __init__(self, config: StrictModel):
        self.config = config

    def bucket_records(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(row index, key high, key low, fingerprint or None) for the rows of a batch."""
        raise NotImplementedError

    def verifies(self) -> bool:
        return False

    def similar(self, a: str, b: str, lang_a: str | None, lang_b: str | None) -> bool:
        return True

    def record_count(self) -> int:
        return self.records_per_doc

    def record_gpus(self) -> float:
        """GPUs per task of the records phase when the cluster has any (0: CPU tasks)."""
        return 0


class ExactDedup(GlobalStage):
    """xxh3-128 of the text after a light canonical form (case, whitespace): equal hash, same cluster."""

    class Config(DedupConfig):
        canonical: bool = Field(
            True, description="Hash the text lower-cased with whitespace runs collapsed; false hashes it as it is."
        )

    name = "exact_dedup"
    method = "exact"
    version = "1"

    def bucket_records(self, table):
        text = table.column("text")
        if self.config.canonical:
            text = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(text), r"\s+", " "))
        hi = np.empty(len(text), np.uint64)
        lo = np.empty(len(text), np.uint64)
        for i, t in enumerate(text.to_pylist()):
            h = xxhash.xxh3_128_intdigest((t or "").encode())
            hi[i], lo[i] = h >> 64, h & 0xFFFFFFFFFFFFFFFF
        return np.arange(len(text)), hi, lo, None


class MinHashDedup(GlobalStage):
    """MinHash LSH: documents sharing any band of their signature are candidates (Jaccard >= threshold
    with high probability); `verify: jaccard` keeps only pairs whose exact shingle Jaccard passes."""

    class Config(DedupConfig, ShingleConfig):
        num_perm: int = Field(128, gt=0, description="Permutations per signature.")
        threshold: float = Field(
            0.8,
            gt=0,
            lt=1,
            description="Jaccard similarity that counts as a near-duplicate; bands x rows are derived from it.",
        )
        bands: int | None = Field(
            None, gt=0, description="LSH bands; set with `rows` to override the derived choice (e.g. 14 x 8)."
        )
        rows: int | None = Field(None, gt=0, description="Signature rows per band.")
        seed: int = Field(1, ge=0, description="Permutation seed (datasketch's default is 1).")
        verify: Literal["none", "jaccard"] = Field(
            "none", description="Confirm candidates by exact shingle Jaccard >= threshold."
        )
        backend: Literal["numpy", "torch"] = Field(
            "numpy",
            description="Signature arithmetic: numpy, or torch (bit-identical; on a GPU when Ray has one).",
        )
        device: Literal["auto", "cpu", "cuda"] = Field(
            "auto", description="torch backend: auto takes the GPU a task was given, else the CPU."
        )
        gpus_per_task: float = Field(
            0.25,
            gt=0,
            le=1,
            description="torch backend on a cluster with GPUs: share of a GPU per records task.",
        )

        @model_validator(mode="after")
        def _bands_rows(self):
            if (self.bands is None) != (self.rows is None):
                raise ValueError("set both `bands` and `rows`, or neither (then they come from `threshold`)")
            if self.bands is not None and self.bands * self.rows > self.num_perm:
                raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
            return self

    name = "minhash_dedup"
    method = "minhash"
    version = "1"

    def __init__(self, config):
        super().__init__(config)
        if config.bands is not None:
            self.bands, self.rows = config.bands, config.rows
        else:
            self.bands, self.rows = optimal_bands(config.threshold, config.num_perm)

    def record_count(self) -> int:
        return self.bands

    def record_gpus(self) -> float:
        c = self.config
        return c.gpus_per_task if c.backend == "torch" and c.device != "cpu" else 0

    def signatures(self, sh):
        c = self.config
        if c.backend == "torch":
            return minhash_torch.signatures(sh, c.num_perm, c.seed, c.device)
        return minhash.signatures(sh, c.num_perm, c.seed)

    def bucket_records(self, table):
        c = self.config
        sh = shingle(
            table.column("text"),
            table.column("lang"),
            word_ngram=c.ngram,
            zh_ngram=c.zh_ngram,
            zh_shingle=c.zh_shingle,
        )
        sig, ok = self.signatures(sh)
        rows = np.flatnonzero(ok)
        keys = band_keys(sig[rows], self.bands, self.rows)
        band = np.tile(np.arange(self.bands, dtype=np.uint64), len(rows))
        return np.repeat(rows, self.bands), band, keys.reshape(-1), None

    def verifies(self) -> bool:
        return self.config.verify == "jaccard"

    def similar(self, a, b, lang_a, lang_b):
        return jaccard(self._set(a, lang_a), self._set(b, lang_b)) >= self.config.threshold

    def _set(self, text, lang):
        c = self.config
        return shingle_set(text, lang, word_ngram=c.ngram, zh_ngram=c.zh_ngram, zh_shingle=c.zh_shingle)


class SimHashDedup(GlobalStage):
    """SimHash: fingerprints within `max_distance` bits are candidates, found with permuted-block
    tables; candidates are then confirmed on the text (shingle Jaccard, or longest common substring
    as TigerBot does), since a 64-bit fingerprint alone confuses short or templated pages."""

    class Config(DedupConfig, ShingleConfig):
        ngram: int = Field(1, gt=0, description="Words per feature for spaced languages.")
        zh_ngram: int = Field(1, gt=0, description="Characters per feature for Chinese.")
        weights: Literal["none", "tf"] = Field(
            "tf",
            description="Feature weights: tf (1 + log count in the document) or none (each distinct feature once).",
        )
        max_distance: int = Field(4, ge=0, le=16, description="Most differing fingerprint bits for a candidate pair.")
        blocks: int = Field(
            6, gt=1, le=16, description="Pieces the 64 bits are cut into; tables = C(blocks, blocks - max_distance)."
        )
        verify: Literal["none", "jaccard", "lcs"] = Field(
            "jaccard", description="How candidates are confirmed on the text."
        )
        verify_threshold: float = Field(
            0.6,
            gt=0,
            le=1,
            description="Shingle Jaccard, or longest common substring / shorter length, needed to confirm.",
        )

        @model_validator(mode="after")
        def _blocks(self):
            if self.max_distance >= self.blocks:
                raise ValueError(f"blocks ({self.blocks}) must exceed max_distance ({self.max_distance})")
            return self

    name = "simhash_dedup"
    method = "simhash"
    version = "1"
    needs_fingerprint = True
    star_buckets = False

    def record_count(self) -> int:
        return len(table_masks(self.config.blocks, self.config.max_distance))

    def bucket_records(self, table):
        c = self.config
        sh = shingle(
            table.column("text"),
            table.column("lang"),
            word_ngram=c.ngram,
            zh_ngram=c.zh_ngram,
            zh_shingle=c.zh_shingle,
        )
        fp, ok = fingerprints(sh, c.weights)
        rows = np.flatnonzero(ok)
        keys = table_keys(fp[rows], c.blocks, c.max_distance)
        t = keys.shape[1]
        return (
            np.repeat(rows, t),
            np.tile(np.arange(t, dtype=np.uint64), len(rows)),
            keys.reshape(-1),
            np.repeat(fp[rows], t),
        )

    def verifies(self) -> bool:
        return self.config.verify != "none"

    def similar(self, a, b, lang_a, lang_b):
        c = self.config
        if c.verify == "lcs":
            return lcs_ratio(a, b) >= c.verify_threshold
        sa = shingle_set(a, lang_a, word_ngram=c.ngram, zh_ngram=c.zh_ngram, zh_shingle=c.zh_shingle)
        sb = shingle_set(b, lang_b, word_ngram=c.ngram, zh_ngram=c.zh_ngram, zh_shingle=c.zh_shingle)
        return jaccard(sa, sb) >= c.verify_threshold


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


_LCS_MAX_CHARS = 20_000  # difflib is quadratic in the worst case; long pages compare their first 20k


def lcs_ratio(a: str, b: str) -> float:
    """Longest common substring (of the simplified texts) over the shorter text's length."""
    simplify = re.compile(r"[\W_]+")
    a = simplify.sub(" ", a.lower())[:_LCS_MAX_CHARS]
    b = simplify.sub(" ", b.lower())[:_LCS_MAX_CHARS]
    if not a or not b:
        return 0.0
    match = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size / min(len(a), len(b))


DEDUP_STAGES = {cls.name: cls for cls in (ExactDedup, MinHashDedup, SimHashDedup)}
