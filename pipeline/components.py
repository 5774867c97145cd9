"""Connected components of the duplicate graph with bounded memory: alternating large-star and
small-star rounds (Kiveris et al., "Connected Components in MapReduce and Beyond", 2014).

Each step is a reduce over one hash partition of the edges, grouped by node; its output is
re-partitioned for the next step through files (pipeline/exchange.py). A worker never holds more
than one partition of edges, and every round is checkpointed. The edge set converges to one star
per component around its smallest node, in O(log n) rounds in practice; the driver stops when a
round leaves the edge set unchanged (an order-independent checksum of the canonical edges).

- large-star, for each node u: m = min(u, neighbours); emit (v, m) for every neighbour v > u.
- small-star, for each node u: m = min(u, neighbours below u); emit (v, m) for u and those neighbours.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.exchange import PhaseFailed, partition_of, read_part, write_parts
from pipeline.hashing import mix64
from pipeline.storage import Storage

EDGES = pa.schema([("u", pa.uint64()), ("v", pa.uint64())])
ASSIGN = pa.schema([("node", pa.uint64()), ("root", pa.uint64())])


def unique_edges(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (u, v) pairs without self-loops, sorted by u then v."""
    keep = u != v
    u, v = u[keep], v[keep]
    if len(u) == 0:
        return u, v
    order = np.lexsort((v, u))
    u, v = u[order], v[order]
    new = np.r_[True, (u[1:] != u[:-1]) | (v[1:] != v[:-1])]
    return u[new], v[new]


def group_min(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """For edges sorted by u: the smallest v of each edge's group, per edge."""
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    mins = np.minimum.reduceat(v, starts)
    return np.repeat(mins, np.diff(np.r_[starts, len(u)]))


def both_ways(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([u, v]), np.concatenate([v, u])


def _read(storage: Storage, folder: str, j: int) -> tuple[np.ndarray, np.ndarray]:
    t = read_part(storage, folder, j, EDGES)
    return unique_edges(t.column("u").to_numpy(), t.column("v").to_numpy())


def write_edges(storage: Storage, folder: str, writer: str, u: np.ndarray, v: np.ndarray, parts: int) -> int:
    """Writes directed edges partitioned by their first node."""
    table = pa.table({"u": pa.array(u, pa.uint64()), "v": pa.array(v, pa.uint64())})
    return write_parts(storage, folder, writer, table, partition_of(u, parts))


def checksum(u: np.ndarray, v: np.ndarray) -> int:
    """Order-independent digest of the canonical (u < v) edges: sum of mixed pair hashes mod 2^64."""
    a = u < v
    with np.errstate(over="ignore"):
        h = mix64(mix64(u[a]) ^ v[a])
        return int(np.sum(h, dtype=np.uint64))


def large_star(storage: Storage, *, src: str, dst: str, j: int, parts: int) -> dict:
    """One partition of a large-star step; input has both directions, grouped by u."""
    u, v = _read(storage, src, j)
    result = {"edges": int(np.count_nonzero(u < v)), "checksum": str(checksum(u, v))}
    if len(u) == 0:
        return result
    m = np.minimum(group_min(u, v), u)
    out = v > u
    a, b = v[out], m[out]  # a > b always, since v > u >= m
    write_edges(storage, dst, f"w{j:05d}", a, b, parts)  # small-star reads (larger, smaller) grouped by larger
    return result


def small_star(storage: Storage, *, src: str, dst: str, j: int, parts: int) -> dict:
    """One partition of a small-star step; input is (larger, smaller), grouped by the larger."""
    u, v = _read(storage, src, j)
    if len(u) == 0:
        return {"edges": 0}
    m = group_min(u, v)  # every v < u, so this is min(u, neighbours below u)
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    a = np.concatenate([v, u[starts]])
    b = np.concatenate([m, m[starts]])
    keep = a != b
    a, b = both_ways(a[keep], b[keep])
    write_edges(storage, dst, f"w{j:05d}", a, b, parts)
    return {"edges": int(keep.sum())}


def assign_roots(storage: Storage, *, src: str, dst: str, j: int) -> dict:
    """After convergence: every node's component root (the smallest node of its component)."""
    u, v = _read(storage, src, j)
    if len(u) == 0:
        return {"nodes": 0}
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    roots = np.minimum(np.minimum.reduceat(v, starts), u[starts])
    table = pa.table({"node": pa.array(u[starts], pa.uint64()), "root": pa.array(roots, pa.uint64())})
    write_parts(storage, dst, "roots", table, np.full(len(starts), j, dtype=np.int64))
    return {"nodes": len(starts)}


def round_folder(work: str, r: int, step: str) -> str:
    return f"{work}/cc/r{r:03d}/{step}"


def solve(work: str, parts: int, run_step, max_rounds: int) -> tuple[str, int, int]:
    """Large-star/small-star rounds until a round leaves the edge set unchanged. `run_step(name, fn,
    kwargs_per_partition)` runs one step (on Ray, or in-process in tests) and returns its results.
    Returns (folder of the final edges, rounds, final edge count)."""
    previous = None
    for r in range(max_rounds):
        src, mid, nxt = round_folder(work, r, "ls"), round_folder(work, r, "ss"), round_folder(work, r + 1, "ls")
        ls = run_step(
            f"cc/r{r:03d}/large", "large_star", [dict(src=src, dst=mid, j=j, parts=parts) for j in range(parts)]
        )
        digest = (sum(int(x["checksum"]) for x in ls) % (1 << 64), sum(x["edges"] for x in ls))
        if digest == previous:
            return src, r, digest[1]
        previous = digest
        run_step(f"cc/r{r:03d}/small", "small_star", [dict(src=mid, dst=nxt, j=j, parts=parts) for j in range(parts)])
    raise PhaseFailed(
        f"connected components did not converge in {max_rounds} rounds; raise `max_rounds` "
        "(finished rounds are checkpointed, a rerun continues)"
    )
