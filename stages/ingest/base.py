"""What every reader shares: the Reader it declares, the Chunk it yields, ids, reject rows, file errors.

Kept apart from the readers and the registry so that a reader module imports only this, and the
registry imports the readers: no module imports another in a loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import xxhash

from pipeline.schema import CORE_COLUMNS, REJECT_FIELDS, core_schema

RESERVED = set(CORE_COLUMNS) | {f.name for f in REJECT_FIELDS} | {"detail"}
REJECT_TEXT_CHARS = 1000  # how much of a rejected page's decoded bytes the reject keeps for inspection


class InputFileError(Exception):
    """A whole-file problem (corrupt Parquet, missing text column, truncated stream), with file and line."""


@dataclass
class Chunk:
    """Up to rows_per_shard documents and the rejects met while reading them."""

    docs: pa.Table
    rejects: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # records that are not documents (WARC requests), by kind


# read_chunks(path, relpath, spec, rows_per_shard): `relpath` is the path as ids see it (relative to
# the input folder), `spec` an InputSpec (only its fields are read, so pipeline.config's works too).
ReadChunks = Callable[[str, str, Any, int], Iterator[Chunk]]


@dataclass(frozen=True)
class Reader:
    """One input format: its name (InputSpec.format), the file-name suffixes it claims, how to read a file."""

    format: str
    suffixes: tuple[str, ...]  # lowercase, with the dot; the longest suffix a name ends with decides
    read_chunks: ReadChunks
    extracts_html: bool = False  # read_chunks takes `extractor=`: the name of the HTML extractor to use


def make_id(source: str, relpath: str, row: int) -> str:
    """A 96-bit id from where the document came from; ids never collide across sources or files."""
    return xxhash.xxh3_128_hexdigest(f"{source}\x1f{relpath}\x1f{row}".encode())[:24]


def reject_row(spec, relpath: str, row: int, reason: str, detail: str, text: str = "", url: str | None = None) -> dict:
    """A reject as the ingest writes it: the id the document would have had, and why it is not one."""
    return {
        "id": make_id(spec.source, relpath, row),
        "text": text,
        "url": url,
        "source": spec.source,
        "lang": spec.lang,
        "stage": "ingest",
        "reason": reason,
        "detail": detail,
    }


def extra_column_name(key: str) -> str:
    """Input fields that clash with schema columns keep their data under `orig_<name>`."""
    return f"orig_{key}" if key in RESERVED else key


def empty_docs() -> pa.Table:
    return core_schema().empty_table()


def rejects_table(rejects: list[dict]) -> pa.Table:
    schema = pa.schema(
        [
            pa.field("id", pa.string()),
            pa.field("text", pa.large_string()),
            pa.field("url", pa.string()),
            pa.field("source", pa.string()),
            pa.field("lang", pa.string()),
            *REJECT_FIELDS,
            pa.field("detail", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rejects, schema=schema)
