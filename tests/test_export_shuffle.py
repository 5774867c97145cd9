"""The export's exchange through gather groups, run in this process on real text (no Ray): a scatter
task writes at most one file per group however small the output shards are, and the groups give the
same shards, byte for byte, as an exchange with one partition per output shard."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import REPO

from pipeline.storage import Storage
from pipeline.worker import text_bytes
from stages.export.shuffle import (
    count_groups,
    count_parts,
    gather_group_task,
    gather_task,
    group_of,
    group_shards,
    output_names,
    scatter_task,
)

SOURCE = REPO / "tests" / "data" / "dedup" / "en.parquet"  # real English text, 430 documents
COLUMNS = ["id", "text", "source", "lang"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    """The documents as three input shards, as an upstream stage would leave them."""
    table = pq.read_table(SOURCE, columns=COLUMNS)
    where = tmp_path_factory.mktemp("upstream")
    paths = []
    for i, lo in enumerate(range(0, table.num_rows, 150)):
        path = where / f"part-{i:04d}.parquet"
        pq.write_table(table.slice(lo, 150), path)
        paths.append(str(path))
    return paths


def _total(inputs: list[str]) -> tuple[int, int]:
    tables = [pq.read_table(p) for p in inputs]
    return sum(t.num_rows for t in tables), sum(text_bytes(t) for t in tables)


def _scatter(storage: Storage, inputs: list[str], parts: int, groups: int | None) -> None:
    for i, path in enumerate(inputs):
        scatter_task(
            storage, path=path, writer=f"part-{i:04d}", columns=COLUMNS, seed=3, parts=parts, work="w", groups=groups
        )


def _files_per_writer(root: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in (root / "w" / "scatter").glob("p*/*.parquet"):
        counts[f.stem] = counts.get(f.stem, 0) + 1
    return counts


def test_groups_partition_the_shards_into_contiguous_ranges():
    for parts, groups in [(1, 1), (7, 3), (10, 10), (1749, 5), (12, 5)]:
        covered = [j for g in range(groups) for j in group_shards(g, parts, groups)]
        assert covered == list(range(parts))
        for g in range(groups):
            shards = np.array(list(group_shards(g, parts, groups)), dtype=np.int64)
            assert len(shards) in (parts // groups, -(-parts // groups))
            assert (group_of(shards, parts, groups) == g).all()


def test_scatter_files_stay_bounded_as_output_shards_shrink(inputs, tmp_path):
    rows, nbytes = _total(inputs)
    gather_bytes = nbytes // 3 + 1  # three groups
    per_shard_files = []
    for shard_docs in (200, 50, 10, 2):
        parts = count_parts(rows, nbytes, shard_docs, None)
        groups = count_groups(parts, nbytes, gather_bytes)
        assert groups == min(parts, 3)
        grouped, per_shard = tmp_path / f"g{shard_docs}", tmp_path / f"s{shard_docs}"
        _scatter(Storage(str(grouped)), inputs, parts, groups)
        _scatter(Storage(str(per_shard)), inputs, parts, None)
        counts = _files_per_writer(grouped)
        assert len(counts) == len(inputs) and max(counts.values()) <= groups
        per_shard_files.append(max(_files_per_writer(per_shard).values()))
    # one partition per output shard: the files grow with the shards (what the groups avoid)
    assert per_shard_files[-1] > 20 * 3 and per_shard_files == sorted(per_shard_files)


def _digests(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.glob("shard-*.parquet"))}


@pytest.mark.parametrize("shard_docs", [60, 7])
def test_groups_write_the_same_shards_as_one_partition_per_shard(inputs, tmp_path, shard_docs):
    rows, nbytes = _total(inputs)
    parts = count_parts(rows, nbytes, shard_docs, None)
    names = output_names(parts)
    common = dict(work="w", folder="out", schema_from=inputs[0], columns=COLUMNS, chash="h")

    before = Storage(str(tmp_path / "before"))  # the exchange as it was: a partition per shard
    _scatter(before, inputs, parts, None)
    for j, name in enumerate(names):
        gather_task(before, j=j, name=name, **common)

    after = Storage(str(tmp_path / "after"))
    groups = count_groups(parts, nbytes, nbytes // 4 + 1)
    assert 1 < groups < parts
    _scatter(after, inputs, parts, groups)
    written = 0
    for g in range(groups):
        shards = {j: names[j] for j in group_shards(g, parts, groups)}
        written += gather_group_task(after, group=g, parts=parts, shards=shards, **common)["rows"]
    assert written == rows
    old, new = _digests(tmp_path / "before" / "out"), _digests(tmp_path / "after" / "out")
    assert len(new) == parts and new == old
    ids = [i for f in sorted((tmp_path / "after" / "out").glob("shard-*.parquet")) for i in pq.read_table(f)["id"]]
    assert len(ids) == rows == len({i.as_py() for i in ids})
