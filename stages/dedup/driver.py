"""The phases of a dedup stage: signatures, a shuffle into buckets, candidate checks,
connected components, survivors, then a map over shards that writes the result.

Phases, each a set of Ray tasks that resume one by one (pipeline/exchange.py):
1. `records`: per shard, bucket records (key, node[, fingerprint]) partitioned by key, and node info
   (node, id, rank) partitioned by node.
2. `buckets`: per key partition, documents sharing a key become candidate edges (each member to the
   bucket's smallest node; SimHash: pairs within the Hamming distance).
3. `verify` (when the stage confirms candidates): per shard, each candidate edge is checked on the two
   texts; at most two shards' texts are in memory.
4. `cc`: connected components over the edges (pipeline/components.py), checkpointed per round.
5. `resolve`: per component, the survivor (highest rank, then smallest id) and the size, sent to
   the shard of each member.
6. apply: a map over the shards (the usual stats, rejects and sidecars), joining rows by position.

Work files live in `<stage folder>/_work/<fingerprint>/`, where the fingerprint covers the stage
config and every input shard; they are deleted when the stage completes (unless `keep_work`).
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import components as cc
from pipeline.exchange import PhaseTask, partition_of, read_part, write_parts
from pipeline.storage import Storage
from stages.simhash import hamming

RECORDS = pa.schema([("k_hi", pa.uint64()), ("k_lo", pa.uint64()), ("node", pa.uint64()), ("fp", pa.uint64())])
NODES = pa.schema([("node", pa.uint64()), ("id", pa.string()), ("rank", pa.float64())])
BYROOT = pa.schema([("root", pa.uint64()), ("node", pa.uint64()), ("id", pa.string()), ("rank", pa.float64())])
RESOLVED = pa.schema([("node", pa.uint64()), ("survivor", pa.string()), ("size", pa.int64())])
ROW_BITS = np.uint64(32)
ROW_MASK = np.uint64(0xFFFFFFFF)


def build_stage(stage, settings: dict):
    """The dedup method (a class of stages/dedup/methods.py) with its settings, on a worker."""
    return stage(stage.Config.model_validate(settings))


# --- phase 1: records ---------------------------------------------------------------------------


def records_task(
    storage: Storage, *, work: str, stage: type, settings: dict, path: str, shard: int, parts: int, batch_rows: int
) -> dict:
    st = build_stage(stage, settings)
    pf = storage.parquet_file(path)
    names = pf.schema_arrow.names
    rank_col = settings.get("rank_by") if settings.get("rank_by") in names else None
    columns = ["id", "text", "lang"] + ([rank_col] if rank_col else [])
    rec_tables, node_tables = [], []
    offset = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
        table = pa.Table.from_batches([batch])
        rows, hi, lo, fp = st.bucket_records(table)
        nodes = (np.uint64(shard) << ROW_BITS) | (np.uint64(offset) + np.arange(table.num_rows, dtype=np.uint64))
        rec_tables.append(
            pa.table(
                {
                    "k_hi": pa.array(hi, pa.uint64()),
                    "k_lo": pa.array(lo, pa.uint64()),
                    "node": pa.array(nodes[rows], pa.uint64()),
                    "fp": pa.array(fp if fp is not None else np.zeros(len(rows), np.uint64), pa.uint64()),
                }
            )
        )
        rank = pc.cast(table.column(rank_col), pa.float64()) if rank_col else pa.nulls(table.num_rows, pa.float64())
        node_tables.append(
            pa.table({"node": pa.array(nodes, pa.uint64()), "id": table.column("id").cast(pa.string()), "rank": rank})
        )
        offset += table.num_rows
    recs = pa.concat_tables(rec_tables) if rec_tables else RECORDS.empty_table()
    info = pa.concat_tables(node_tables) if node_tables else NODES.empty_table()
    write_parts(storage, f"{work}/records", f"s{shard:05d}", recs, partition_of(recs.column("k_lo").to_numpy(), parts))
    write_parts(storage, f"{work}/nodes", f"s{shard:05d}", info, partition_of(info.column("node").to_numpy(), parts))
    return {"docs": offset, "records": recs.num_rows}


# --- phase 2: buckets ---------------------------------------------------------------------------


def buckets_task(
    storage: Storage, *, work: str, stage: type, settings: dict, j: int, parts: int, verify: bool
) -> dict:
    st = build_stage(stage, settings)
    t = read_part(storage, f"{work}/records", j, RECORDS)
    hi, lo, node, fp = (t.column(c).to_numpy() for c in ("k_hi", "k_lo", "node", "fp"))
    order = np.lexsort((node, lo, hi))
    hi, lo, node, fp = hi[order], lo[order], node[order], fp[order]
    start = np.r_[True, (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])] if len(hi) else np.zeros(0, bool)
    group = np.cumsum(start) - 1
    first = np.flatnonzero(start)
    sizes = np.diff(np.r_[first, len(hi)])
    if st.star_buckets:
        member = ~start
        u, v = node[first][group[member]], node[member]  # (anchor = smallest node, member)
    else:
        u, v = _hamming_pairs(node, fp, first, sizes, st.config.max_distance)
    u, v = cc.unique_edges(np.maximum(u, v), np.minimum(u, v))
    u, v = v, u  # (smaller, larger)
    largest = int(sizes.max()) if len(sizes) else 0
    if verify:  # to the shard of the smaller node, where the candidate check runs
        table = pa.table({"u": pa.array(u, pa.uint64()), "v": pa.array(v, pa.uint64())})
        write_parts(storage, f"{work}/candidates", f"b{j:05d}", table, (u >> ROW_BITS).astype(np.int64))
    else:
        a, b = cc.both_ways(u, v)
        cc.write_edges(storage, cc.round_folder(work, 0, "ls"), f"b{j:05d}", a, b, parts)
    return {"records": len(hi), "candidate_pairs": len(u), "largest_bucket": largest}


def _hamming_pairs(node, fp, first, sizes, k):
    """Pairs of nodes in the same bucket whose fingerprints differ in at most k bits."""
    us, vs = [], []
    two = first[sizes == 2]
    close = hamming(fp[two], fp[two + 1]) <= k
    us.append(node[two][close])
    vs.append(node[two + 1][close])
    for s, n in zip(first[sizes > 2], sizes[sizes > 2]):
        nd, f = node[s : s + n], fp[s : s + n]
        # identical fingerprints first: a star to their smallest node, then pairs of distinct ones
        uniq, inverse = np.unique(f, return_inverse=True)
        rep = np.full(len(uniq), np.iinfo(np.uint64).max, dtype=np.uint64)
        np.minimum.at(rep, inverse, nd)
        us.append(rep[inverse])
        vs.append(nd)
        if len(uniq) > 1:
            ia, ib = np.triu_indices(len(uniq), 1)
            ok = hamming(uniq[ia], uniq[ib]) <= k
            us.append(rep[ia[ok]])
            vs.append(rep[ib[ok]])
    if not us:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    return np.concatenate(us).astype(np.uint64), np.concatenate(vs).astype(np.uint64)


# --- phase 3: verify ----------------------------------------------------------------------------


def verify_task(
    storage: Storage, *, work: str, stage: type, settings: dict, shard: int, shard_paths: list[str], parts: int
) -> dict:
    st = build_stage(stage, settings)
    t = read_part(storage, f"{work}/candidates", shard, cc.EDGES)
    u, v = cc.unique_edges(t.column("u").to_numpy(), t.column("v").to_numpy())
    if len(u) == 0:
        return {"checked": 0, "confirmed": 0}
    own = _texts(storage, shard_paths[shard])
    keep = np.zeros(len(u), dtype=bool)
    other_shard = (v >> ROW_BITS).astype(np.int64)
    for s in np.unique(other_shard):
        texts = own if s == shard else _texts(storage, shard_paths[s])
        for i in np.flatnonzero(other_shard == s):
            a, b = int(u[i] & ROW_MASK), int(v[i] & ROW_MASK)
            keep[i] = st.similar(own[0][a], texts[0][b], own[1][a], texts[1][b])
    a, b = cc.both_ways(u[keep], v[keep])
    cc.write_edges(storage, cc.round_folder(work, 0, "ls"), f"v{shard:05d}", a, b, parts)
    return {"checked": len(u), "confirmed": int(keep.sum())}


def _texts(storage: Storage, path: str) -> tuple[list, list]:
    t = storage.read_parquet(path, columns=["text", "lang"])
    return t.column("text").to_pylist(), t.column("lang").to_pylist()


# --- phase 5: resolve ---------------------------------------------------------------------------


def join_task(storage: Storage, *, work: str, j: int, parts: int) -> dict:
    roots = read_part(storage, f"{work}/roots", j, cc.ASSIGN)
    if roots.num_rows == 0:
        return {"nodes": 0}
    info = read_part(storage, f"{work}/nodes", j, NODES)
    joined = roots.join(info, "node", join_type="inner").select(["root", "node", "id", "rank"])
    if joined.num_rows != roots.num_rows:
        raise AssertionError(f"partition {j}: {roots.num_rows - joined.num_rows} clustered nodes have no node info")
    write_parts(storage, f"{work}/byroot", f"j{j:05d}", joined, partition_of(joined.column("root").to_numpy(), parts))
    return {"nodes": joined.num_rows}


def resolve_task(storage: Storage, *, work: str, j: int) -> dict:
    t = read_part(storage, f"{work}/byroot", j, BYROOT)
    if t.num_rows == 0:
        return {"clusters": 0, "nodes": 0}
    rank = pc.fill_null(t.column("rank"), -np.inf)
    t = t.set_column(3, "rank", rank).sort_by([("root", "ascending"), ("rank", "descending"), ("id", "ascending")])
    root = t.column("root").to_numpy()
    starts = np.flatnonzero(np.r_[True, root[1:] != root[:-1]])
    sizes = np.diff(np.r_[starts, len(root)])
    ids = t.column("id").to_numpy(zero_copy_only=False)
    survivor = np.repeat(ids[starts], sizes)
    node = t.column("node").to_numpy()
    out = pa.table(
        {
            "node": pa.array(node, pa.uint64()),
            "survivor": pa.array(survivor, pa.string()),
            "size": pa.array(np.repeat(sizes, sizes), pa.int64()),
        }
    )
    write_parts(storage, f"{work}/resolved", f"r{j:05d}", out, (node >> ROW_BITS).astype(np.int64))
    return {"clusters": len(starts), "nodes": len(node), "largest": int(sizes.max())}


def read_resolved(storage: Storage, work: str, shard: int) -> dict[int, tuple[str, int]]:
    """row -> (survivor id, cluster size) for the clustered rows of one shard."""
    t = read_part(storage, f"{work}/resolved", shard, RESOLVED)
    rows = (t.column("node").to_numpy() & ROW_MASK).tolist()
    return dict(zip(rows, zip(t.column("survivor").to_pylist(), t.column("size").to_pylist())))


# --- the driver ---------------------------------------------------------------------------------


class GlobalStageDriver:
    """Runs phases 1-5 of a dedup stage over the stage's input shards; the work folder is the context's."""

    def __init__(self, ctx, stage_cls: type, settings: dict):
        self.ctx, self.stage_cls, self.settings = ctx, stage_cls, settings
        self.work = ctx.work  # relative to the storage root
        self.stage = build_stage(stage_cls, settings)
        self.report: dict = {}

    def phase(self, name: str, tasks: list[PhaseTask], gpus: float = 0) -> dict[str, dict]:
        started = time.perf_counter()
        results = self.ctx.run_tasks(name, tasks, gpus=gpus) if gpus else self.ctx.run_tasks(name, tasks)
        seconds = self.report.setdefault("seconds", {})
        seconds[name] = round(seconds.get(name, 0) + time.perf_counter() - started, 3)
        return results

    def run(self, parts: int) -> dict:
        paths = [t.input_path for t in self.ctx.inputs]
        shards = len(paths)
        common = dict(work=self.work, stage=self.stage_cls, settings=self.settings)
        here = "stages.dedup.driver"
        rec = self.phase(
            "records",
            [
                PhaseTask(
                    f"s{i:05d}",
                    f"{here}:records_task",
                    dict(common, path=p, shard=i, parts=parts, batch_rows=self.ctx.batch_rows),
                )
                for i, p in enumerate(paths)
            ],
            gpus=self.stage.record_gpus(),
        )
        verify = self.stage.verifies()
        bk = self.phase(
            "buckets",
            [
                PhaseTask(f"p{j:05d}", f"{here}:buckets_task", dict(common, j=j, parts=parts, verify=verify))
                for j in range(parts)
            ],
        )
        self.report.update(
            docs=sum(r["docs"] for r in rec.values()),
            records=sum(r["records"] for r in rec.values()),
            candidate_pairs=sum(r["candidate_pairs"] for r in bk.values()),
            largest_bucket=max((r["largest_bucket"] for r in bk.values()), default=0),
            partitions=parts,
        )
        if verify:
            vf = self.phase(
                "verify",
                [
                    PhaseTask(
                        f"s{i:05d}", f"{here}:verify_task", dict(common, shard=i, shard_paths=paths, parts=parts)
                    )
                    for i in range(shards)
                ],
            )
            self.report["confirmed_pairs"] = sum(r["confirmed"] for r in vf.values())
        final = self.components(parts)
        self.phase(
            "roots",
            [
                PhaseTask(
                    f"p{j:05d}", "pipeline.components:assign_roots", dict(src=final, dst=f"{self.work}/roots", j=j)
                )
                for j in range(parts)
            ],
        )
        self.phase(
            "join",
            [
                PhaseTask(f"p{j:05d}", f"{here}:join_task", dict(work=self.work, j=j, parts=parts))
                for j in range(parts)
            ],
        )
        res = self.phase(
            "resolve",
            [PhaseTask(f"p{j:05d}", f"{here}:resolve_task", dict(work=self.work, j=j)) for j in range(parts)],
        )
        self.report.update(
            clusters=sum(r["clusters"] for r in res.values()),
            clustered_docs=sum(r["nodes"] for r in res.values()),
            largest_cluster=max((r.get("largest", 0) for r in res.values()), default=0),
        )
        return self.report

    def components(self, parts: int) -> str:
        """Connected components (pipeline/components.py), each step a phase of Ray tasks."""

        def run_step(name: str, fn: str, kwargs: list[dict]) -> list[dict]:
            tasks = [PhaseTask(f"p{j:05d}", f"pipeline.components:{fn}", kw) for j, kw in enumerate(kwargs)]
            return list(self.phase(name, tasks).values())

        final, rounds, edges = cc.solve(self.work, parts, run_step, self.settings.get("max_rounds", 60))
        self.report.update(cc_rounds=rounds, final_edges=edges)
        return final
