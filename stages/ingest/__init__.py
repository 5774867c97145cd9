"""Ingest: raw input files into the document schema, one reader module per format.

Each input file is one task. Its documents are cut into shards of `rows_per_shard` rows, each with a
stable id: the input's own id when it has one, else a hash of (source, path, row number), so a rerun
or another worker count gives the same ids. Rows that cannot become documents are rejects with a
reason and a `detail` naming the file and line (or record); damage that ends a file early is a file
error, raised after every row read before it.

Layout: `base` (Chunk, Reader, ids, rejects), `spec` (InputSpec), `readers/` (the registry and one
module per format: jsonl, parquet, warc for WARC and WET, html), `web/` (WARC records, HTTP,
charsets, HTML extraction, shared by the warc and html readers).
"""

from stages.ingest.base import Chunk, InputFileError, Reader, make_id, rejects_table
from stages.ingest.readers import READERS, detect_format, expand_input, read_chunks
from stages.ingest.spec import InputSpec

VERSION = "ingest_v1"

__all__ = [
    "VERSION",
    "Chunk",
    "InputFileError",
    "InputSpec",
    "READERS",
    "Reader",
    "detect_format",
    "expand_input",
    "make_id",
    "read_chunks",
    "rejects_table",
]
