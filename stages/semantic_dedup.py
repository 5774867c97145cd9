"""Semantic dedup: documents whose embeddings are nearly parallel (paraphrases, reordered or lightly
reworded copies) form `sem_cluster`s, which the weights stage shares out like near-duplicate clusters.

Phases (each a set of checkpointed Ray tasks):
1. `embed`: per shard, each document embedded by its language's encoder (stages/embedders.py),
   L2-normalised; written with its node (`shard << 32 | row`), id and rank.
2. `centroids`: one task fits spherical k-means per encoder space on a fixed sample (the documents
   with the smallest hashed node, so the same for any worker count), seed fixed; clusters of the
   sample larger than twice `cluster_docs` are split again (balanced clusters bound the next phase).
3. `assign`: per shard, each document goes to its nearest centroid; records are shuffled by cluster.
4. `pairs`: per partition, cosine similarity within each k-means cluster (blocks of rows), pairs at or
   above `threshold` joined into components; per component the survivor (highest rank, then
   smallest id) and the size, sent to the shard of each member.
5. apply: `sem_cluster` (the survivor's id) and `sem_cluster_size` on every row; `mode: drop` also
   drops the non-survivors (reason `semantic-dup`).

Two documents in different k-means clusters are never compared: that is the price of not comparing
all pairs; near-parallel vectors almost always share their nearest centroid.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from pipeline.config import StrictModel
from pipeline.exchange import PhaseTask, partition_of, read_part, write_parts
from pipeline.hashing import mix64
from pipeline.resources import worker_budget
from pipeline.stage import Stage, StageError
from pipeline.storage import AtomicParquetWriter, Storage
from stages.dedup.apply import DedupApply
from stages.dedup.driver import RESOLVED, ROW_BITS
from stages.embedders import available, get_encoder, normalise

GROUPS = pa.schema(
    [("space", pa.string()), ("cid", pa.int64()), ("node", pa.uint64()), ("id", pa.string()), ("rank", pa.float64()),
     ("emb", pa.list_(pa.float32()))]
)  # fmt: skip


class SemanticDedupConfig(StrictModel):
    mode: Literal["keep", "drop"] = Field(
        "keep", description="keep: annotate for the weights stage to down-weight; drop: drop non-survivors."
    )
    threshold: float = Field(0.9, gt=0, le=1, description="Cosine similarity that makes two documents duplicates.")
    encoders: dict[str, str] = Field(
        default_factory=lambda: {"en": "minilm", "zh": "e5_small", "*": "minilm"},
        description="Language prefix -> encoder (minilm, e5_small, hf:<directory>); `*` for the rest.",
    )
    max_chars: int = Field(2000, gt=0, description="Characters of each document embedded (its beginning).")
    cluster_docs: int = Field(2000, gt=1, description="Target documents per k-means cluster.")
    sample_docs: int = Field(100_000, gt=0, description="Documents per encoder space the k-means is fitted on.")
    kmeans_iters: int = Field(20, gt=0, description="Lloyd iterations.")
    seed: int = Field(0, ge=0, description="k-means seed.")
    rank_by: str | None = Field("quality", description="Column whose highest value survives in a cluster.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where the encoders run.")
    batch_size: int = Field(64, gt=0, description="Documents per encoder batch.")
    gpus_per_task: float = Field(0.5, gt=0, le=1, description="Share of a GPU per embed task (clusters with GPUs).")
    partitions: int | None = Field(None, gt=0, description="Partitions of the pairs phase; empty: planned.")
    memory_per_worker_mb: int | None = Field(None, gt=0, description="Memory a worker may use; empty: Ray's.")
    keep_work: bool = Field(False, description="Keep the intermediate files (_work/).")


def encoder_for(lang: str | None, encoders: dict[str, str]) -> str:
    """The encoder of the longest language prefix that matches, else `*`."""
    lang = lang or ""
    best = max((k for k in encoders if k != "*" and lang.startswith(k)), key=len, default=None)
    return encoders[best] if best else encoders.get("*", "minilm")


# --- phase 1: embed -----------------------------------------------------------------------------------


def embed_task(storage: Storage, *, work: str, settings: dict, path: str, shard: int, batch_rows: int) -> dict:
    cfg = SemanticDedupConfig.model_validate(settings)
    pf = storage.parquet_file(path)
    rank_col = cfg.rank_by if cfg.rank_by in pf.schema_arrow.names else None
    cols = ["id", "text"] + (["lang"] if "lang" in pf.schema_arrow.names else []) + ([rank_col] if rank_col else [])
    writer, offset, spaces = None, 0, {}
    for batch in pf.iter_batches(batch_size=batch_rows, columns=cols):
        t = pa.Table.from_batches([batch])
        n = t.num_rows
        texts = [(s or "")[: cfg.max_chars] for s in t.column("text").to_pylist()]
        langs = t.column("lang").to_pylist() if "lang" in t.column_names else [None] * n
        space = [encoder_for(lang, cfg.encoders) for lang in langs]
        emb = [None] * n
        for name in sorted(set(space)):
            rows = [i for i in range(n) if space[i] == name]
            vecs = get_encoder(name, cfg.device, cfg.batch_size).embed([texts[i] for i in rows])
            for i, v in zip(rows, vecs):
                emb[i] = v
            spaces[name] = spaces.get(name, 0) + len(rows)
        nodes = (np.uint64(shard) << ROW_BITS) | (np.uint64(offset) + np.arange(n, dtype=np.uint64))
        rank = pc.cast(t.column(rank_col), pa.float64()) if rank_col else pa.nulls(n, pa.float64())
        out = pa.table(
            {
                "space": pa.array(space, pa.string()),
                "cid": pa.array(np.full(n, -1), pa.int64()),
                "node": pa.array(nodes, pa.uint64()),
                "id": t.column("id").cast(pa.string()),
                "rank": rank,
                "emb": pa.array([np.asarray(e, np.float32) for e in emb], pa.list_(pa.float32())),
            }
        )
        if writer is None:
            writer = AtomicParquetWriter(storage, storage.path(f"{work}/emb/s{shard:05d}.parquet"), GROUPS)
        writer.write(out)
        offset += n
    if writer is None:
        writer = AtomicParquetWriter(storage, storage.path(f"{work}/emb/s{shard:05d}.parquet"), GROUPS)
        writer.write(GROUPS.empty_table())
    writer.commit()
    return {"docs": offset, "spaces": spaces}


def matrix(table: pa.Table) -> np.ndarray:
    col = table.column("emb").combine_chunks() if table.num_rows else None
    if col is None:
        return np.zeros((0, 0), np.float32)
    return col.values.to_numpy().reshape(table.num_rows, -1).astype(np.float32)


# --- phase 2: centroids -------------------------------------------------------------------------------


def spherical_kmeans(x: np.ndarray, k: int, iters: int, seed: int) -> np.ndarray:
    """Unit-length centroids; empty clusters are re-seeded with the point farthest from its centroid."""
    k = max(1, min(k, len(x)))
    rng = np.random.default_rng(seed)
    c = x[np.sort(rng.choice(len(x), k, replace=False))].copy()
    for _ in range(iters):
        sims = x @ c.T
        assign = sims.argmax(1)
        new = np.zeros_like(c)
        np.add.at(new, assign, x)
        counts = np.bincount(assign, minlength=k)
        for e in np.flatnonzero(counts == 0):
            far = int(sims[np.arange(len(x)), assign].argmin())
            new[e] = x[far]
        new = normalise(new)
        if np.array_equal(new, c):
            break
        c = new
    return c


def balanced_centroids(x: np.ndarray, target: int, iters: int, seed: int, depth: int = 3) -> np.ndarray:
    """k-means with k = n / target, then clusters over 2 x target split again (up to `depth` times)."""
    c = spherical_kmeans(x, math.ceil(len(x) / target), iters, seed)
    if depth == 0:
        return c
    assign = (x @ c.T).argmax(1)
    out = []
    for j in range(len(c)):
        members = x[assign == j]
        if len(members) > 2 * target:
            out.append(balanced_centroids(members, target, iters, seed + 1 + j, depth - 1))
        else:
            out.append(c[j : j + 1])
    return np.concatenate(out)


def centroids_task(storage: Storage, *, work: str, settings: dict, shards: int) -> dict:
    cfg = SemanticDedupConfig.model_validate(settings)
    t = pa.concat_tables([storage.read_parquet(storage.path(f"{work}/emb/s{i:05d}.parquet")) for i in range(shards)])
    out, sizes = [], {}
    for space in sorted(set(t.column("space").to_pylist())):
        sub = t.filter(pc.equal(t.column("space"), space))
        order = np.argsort(mix64(sub.column("node").to_numpy()), kind="stable")[: cfg.sample_docs]
        x = matrix(sub.take(pa.array(np.sort(order))))
        scale = len(x) / sub.num_rows  # the target in sample documents
        c = balanced_centroids(x, max(2, int(cfg.cluster_docs * scale)), cfg.kmeans_iters, cfg.seed)
        out.append(pa.table({"space": [space] * len(c), "cid": np.arange(len(c)), "emb": list(c)}))
        sizes[space] = len(c)
    table = pa.concat_tables(out).cast(pa.schema([("space", pa.string()), ("cid", pa.int64()),
                                                  ("emb", pa.list_(pa.float32()))]))  # fmt: skip
    w = AtomicParquetWriter(storage, storage.path(f"{work}/centroids.parquet"), table.schema)
    w.write(table)
    w.commit()
    return {"centroids": sizes}


# --- phase 3: assign ----------------------------------------------------------------------------------


def assign_task(storage: Storage, *, work: str, shard: int, parts: int) -> dict:
    t = storage.read_parquet(storage.path(f"{work}/emb/s{shard:05d}.parquet"))
    cents = storage.read_parquet(storage.path(f"{work}/centroids.parquet"))
    cid = np.full(t.num_rows, -1, np.int64)
    space = np.asarray(t.column("space").to_pylist(), dtype=object)
    x = matrix(t)
    for s in np.unique(space):
        rows = np.flatnonzero(space == s)
        c = cents.filter(pc.equal(cents.column("space"), s))
        cid[rows] = (x[rows] @ matrix(c).T).argmax(1)
    t = t.set_column(1, "cid", pa.array(cid, pa.int64()))
    key = np.array([hash_group(s, int(k)) for s, k in zip(space, cid)], np.uint64)
    write_parts(storage, f"{work}/groups", f"s{shard:05d}", t, partition_of(key, parts))
    return {"docs": t.num_rows}


def hash_group(space: str, cid: int) -> int:
    import xxhash

    return xxhash.xxh3_64_intdigest(f"{space}\x00{cid}".encode())


# --- phase 4: pairs -----------------------------------------------------------------------------------


def pairs_task(storage: Storage, *, work: str, j: int, threshold: float, block: int = 1024) -> dict:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    t = read_part(storage, f"{work}/groups", j, GROUPS)
    if t.num_rows == 0:
        return {"docs": 0, "pairs": 0, "clusters": 0, "clustered": 0, "largest_kmeans": 0}
    t = t.sort_by([("space", "ascending"), ("cid", "ascending"), ("node", "ascending")])
    x = matrix(t)
    key = [f"{s}\x00{c}" for s, c in zip(t.column("space").to_pylist(), t.column("cid").to_pylist())]
    starts = [i for i in range(len(key)) if i == 0 or key[i] != key[i - 1]] + [len(key)]
    us, vs = [], []
    for a, b in zip(starts[:-1], starts[1:]):
        for lo in range(a, b, block):
            sims = x[lo : min(lo + block, b)] @ x[a:b].T
            r, c = np.nonzero(sims >= threshold)
            keep = a + c > lo + r
            us.append(lo + r[keep])
            vs.append(a + c[keep])
    u = np.concatenate(us) if us else np.zeros(0, np.int64)
    v = np.concatenate(vs) if vs else np.zeros(0, np.int64)
    n = t.num_rows
    _, label = connected_components(coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n)), directed=False)
    size = np.bincount(label)[label]
    inside = np.flatnonzero(size > 1)
    node = t.column("node").to_numpy()
    sub = pa.table(
        {
            "label": pa.array(label[inside], pa.int64()),
            "node": pa.array(node[inside], pa.uint64()),
            "id": t.column("id").take(pa.array(inside)),
            "rank": pc.fill_null(t.column("rank").take(pa.array(inside)), -np.inf),
        }
    ).sort_by([("label", "ascending"), ("rank", "descending"), ("id", "ascending")])
    lab = sub.column("label").to_numpy()
    first = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]]) if len(lab) else np.zeros(0, np.int64)
    counts = np.diff(np.r_[first, len(lab)])
    ids = sub.column("id").to_numpy(zero_copy_only=False)
    snode = sub.column("node").to_numpy()
    out = pa.table(
        {
            "node": pa.array(snode, pa.uint64()),
            "survivor": pa.array(np.repeat(ids[first], counts) if len(lab) else [], pa.string()),
            "size": pa.array(np.repeat(counts, counts), pa.int64()),
        }
    ).cast(RESOLVED)
    write_parts(storage, f"{work}/resolved", f"r{j:05d}", out, (snode >> ROW_BITS).astype(np.int64))
    return {
        "docs": n,
        "pairs": len(u),
        "clusters": len(first),
        "clustered": len(lab),
        "largest_kmeans": int(np.diff(starts).max()),
    }


# --- the stage ----------------------------------------------------------------------------------------


class SemanticDedup(Stage):
    """Embedding-based duplicate clusters (`sem_cluster`, `sem_cluster_size`); see the module docstring."""

    name = "semantic_dedup"
    method = "semantic"
    version = "1"
    Config = SemanticDedupConfig
    corpus_wide: ClassVar[bool] = True

    @classmethod
    def writes(cls, config) -> set[str]:
        return {"sem_cluster", "sem_cluster_size"}

    @classmethod
    def keeps_work(cls, config) -> bool:
        return config.keep_work

    @classmethod
    def check(cls, config) -> list[tuple[tuple, str]]:
        return [(("encoders", k), why) for k, v in config.encoders.items() if (why := available(v))]

    @classmethod
    def run_phases(cls, ctx) -> None:
        cfg = ctx.config
        settings = cfg.model_dump(mode="json")
        work = ctx.work
        paths = [t.input_path for t in ctx.inputs]
        docs = sum(o["rows"] for sc in ctx.upstream_sidecars() for o in sc["outputs"])
        parts = cfg.partitions or plan_partitions(docs, worker_budget(cfg.memory_per_worker_mb), cfg.sample_docs)
        ctx.say(f"{ctx.folder}: plan: {docs:,} documents, {parts} partitions")
        uses_torch = any(not v.startswith("e5") for v in cfg.encoders.values()) and cfg.device != "cpu"
        here = "stages.semantic_dedup"
        emb = ctx.run_tasks(
            "embed",
            [
                PhaseTask(
                    f"s{i:05d}",
                    f"{here}:embed_task",
                    dict(work=work, settings=settings, path=p, shard=i, batch_rows=ctx.batch_rows),
                )
                for i, p in enumerate(paths)
            ],
            gpus=cfg.gpus_per_task if uses_torch else 0,
        )
        cen = ctx.run_tasks(
            "centroids",
            [PhaseTask("c", f"{here}:centroids_task", dict(work=work, settings=settings, shards=len(paths)))],
        )
        ctx.run_tasks(
            "assign",
            [
                PhaseTask(f"s{i:05d}", f"{here}:assign_task", dict(work=work, shard=i, parts=parts))
                for i in range(len(paths))
            ],
        )
        pr = ctx.run_tasks(
            "pairs",
            [
                PhaseTask(f"p{j:05d}", f"{here}:pairs_task", dict(work=work, j=j, threshold=cfg.threshold))
                for j in range(parts)
            ],
        )
        report = {
            "docs": sum(r["docs"] for r in emb.values()),
            "spaces": {k: sum(r["spaces"].get(k, 0) for r in emb.values()) for k in cfg.encoders.values()},
            "centroids": cen["c"]["centroids"],
            "partitions": parts,
            "similar_pairs": sum(r["pairs"] for r in pr.values()),
            "clusters": sum(r["clusters"] for r in pr.values()),
            "clustered_docs": sum(r["clustered"] for r in pr.values()),
            "largest_kmeans_cluster": max((r["largest_kmeans"] for r in pr.values()), default=0),
        }
        ctx.storage.write_json(ctx.storage.path(ctx.folder, "_dedup.json"), report)
        apply = dict(
            storage_uri=ctx.storage.uri,
            work=work,
            shard_index={t.key: i for i, t in enumerate(ctx.inputs)},
            method=cls.method,
            name=ctx.spec.name,
            mode=cfg.mode,
            columns=("sem_cluster", "sem_cluster_size"),
        )
        ctx.map_shards(DedupApply, apply)

    def __init__(self, config):
        self.config = config


EMB_BYTES = 384 * 4 + 64  # one record of the pairs phase (embedding, node, id, rank)


def plan_partitions(docs: int, budget: int, sample_docs: int) -> int:
    """Partitions so that one partition's records (x3 for Arrow, numpy and sorting) fit a worker;
    refuses when the k-means sample alone would not fit."""
    if min(docs, sample_docs) * EMB_BYTES * 4 > budget:
        raise StageError(
            f"will not fit, so not started: the k-means sample of {min(docs, sample_docs):,} documents needs "
            f"~{min(docs, sample_docs) * EMB_BYTES * 4 >> 20} MB, more than the {budget >> 20} MB a worker has; "
            "lower `sample_docs` or raise `memory_per_worker_mb`"
        )
    return max(1, math.ceil(docs * EMB_BYTES * 3 / budget))
