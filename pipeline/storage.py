"""Files under an output root, local or remote, written atomically.

Everything goes through a pyarrow FileSystem so `s3://` and `gs://` outputs work like local folders.
A write goes to a temporary name in the same folder and is then moved into place; on a local disk
that move is an atomic rename, so a crash never leaves a half-written file under its final name.
Object stores have no atomic rename, which is why a shard only counts as done once its stats
sidecar (written last) exists.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


class Storage:
    """An output root on some filesystem, with helpers that keep writes atomic."""

    def __init__(self, root: str):
        self.uri = root
        self.fs, self.root = (
            pafs.FileSystem.from_uri(root) if "://" in root else (pafs.LocalFileSystem(), _abspath(root))
        )

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *[p.strip("/") for p in parts if p]])

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def makedirs(self, path: str) -> None:
        self.fs.create_dir(path, recursive=True)

    def list_files(self, folder: str, prefix: str = "", suffix: str = "") -> list[str]:
        """Base names of the files directly in `folder` (sorted), or [] when it does not exist."""
        if not self.exists(folder):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(folder, recursive=False))
        names = [i.base_name for i in infos if i.type == pafs.FileType.File]
        return sorted(n for n in names if n.startswith(prefix) and n.endswith(suffix))

    def delete(self, path: str) -> None:
        if self.exists(path):
            self.fs.delete_file(path)

    def delete_dir(self, path: str) -> None:
        if self.exists(path):
            self.fs.delete_dir(path)

    def remove_temporaries(self, folder: str) -> int:
        """Deletes what writers killed mid-write left in `folder` (their `.tmp-*` files); returns how many.
        Only safe once no writer of that folder is running, i.e. after its stage finished."""
        names = self.list_files(folder, prefix=".tmp-")
        for name in names:
            self.delete(f"{folder}/{name}")
        return len(names)

    def _tmp_name(self, path: str) -> str:
        folder, _, name = path.rpartition("/")
        return f"{folder}/.tmp-{uuid.uuid4().hex[:12]}-{name}"

    @contextmanager
    def atomic_stream(self, path: str) -> Iterator[Any]:
        """An output stream that appears under `path` only if the block finishes without error."""
        self.makedirs(path.rpartition("/")[0])
        tmp = self._tmp_name(path)
        try:
            with self.fs.open_output_stream(tmp) as stream:
                yield stream
            self.fs.move(tmp, path)
        except BaseException:
            self.delete(tmp)
            raise

    def write_json(self, path: str, payload: Any) -> None:
        with self.atomic_stream(path) as stream:
            stream.write(json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False, default=str).encode())

    def read_json(self, path: str) -> Any:
        with self.fs.open_input_stream(path) as stream:
            return json.loads(stream.read().decode())

    def read_json_or_none(self, path: str) -> Any:
        try:
            return self.read_json(path)
        except (FileNotFoundError, OSError, json.JSONDecodeError):
            return None

    def read_parquet(self, path: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(path, filesystem=self.fs, columns=columns)

    def parquet_file(self, path: str) -> pq.ParquetFile:
        return pq.ParquetFile(self.fs.open_input_file(path))

    def file_size(self, path: str) -> int:
        return self.fs.get_file_info(path).size


def _abspath(path: str) -> str:
    return os.path.abspath(path)


class AtomicParquetWriter:
    """Writes Arrow batches to a Parquet file that becomes visible, under its final name, on `commit`.

    Settings are fixed (zstd, no statistics that depend on timing) so the same rows give the same
    bytes on every run and every worker count.
    """

    def __init__(self, storage: Storage, path: str, schema: pa.Schema):
        self.storage, self.path, self.schema = storage, path, schema
        storage.makedirs(path.rpartition("/")[0])
        self.tmp = storage._tmp_name(path)
        self._sink = storage.fs.open_output_stream(self.tmp)
        self._writer = pq.ParquetWriter(self._sink, schema, compression="zstd", write_page_index=False)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.schema != self.schema:
            table = table.select(self.schema.names).cast(self.schema)
        self._writer.write_table(table, row_group_size=max(1, min(table.num_rows, 1 << 16)))
        self.rows += table.num_rows

    def commit(self) -> None:
        self._writer.close()
        self._sink.close()
        self.storage.fs.move(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
            self._sink.close()
        finally:
            self.storage.delete(self.tmp)
