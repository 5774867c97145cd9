"""The input formats ingest reads, listed explicitly (no import side effects): READERS maps a format
name to its Reader, which claims file-name suffixes and reads one file as chunks of documents.

detect_format goes by the longest suffix a file name ends with, so Common Crawl's `x.warc.wet.gz` is
WET, not WARC; files no reader claims (READMEs, licences, urls.tsv) are not inputs.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path

from stages.ingest.base import Chunk, InputFileError, Reader
from stages.ingest.readers.html import HTML
from stages.ingest.readers.jsonl import JSONL
from stages.ingest.readers.parquet import PARQUET
from stages.ingest.readers.warc import WARC, WET

READERS: dict[str, Reader] = {reader.format: reader for reader in (JSONL, PARQUET, WARC, WET, HTML)}

_LONGEST_SUFFIX_FIRST = sorted(
    ((suffix, reader.format) for reader in READERS.values() for suffix in reader.suffixes), key=lambda sf: -len(sf[0])
)


def detect_format(path: str) -> str | None:
    """The format whose reader claims the file name's suffix; None for files that are not inputs."""
    name = path.lower()
    for suffix, fmt in _LONGEST_SUFFIX_FIRST:
        if name.endswith(suffix):
            return fmt
    return None


def expand_input(path: str) -> list[str]:
    """Input files for a path: the file itself, every input file under a folder, or glob matches."""
    p = Path(path)
    if p.is_file():
        return [str(p)]
    if p.is_dir():
        candidates = sorted(str(f) for f in p.rglob("*") if f.is_file())
    else:
        candidates = sorted(glob.glob(path, recursive=True))
    return [c for c in candidates if detect_format(c) is not None]


def read_chunks(path: str, relpath: str, spec, rows_per_shard: int, extractor: str | None = None) -> Iterator[Chunk]:
    """Chunks of documents from one input file, read by the reader of spec.format (or of its suffix);
    readers of web pages extract main text with `extractor` (None: the default one)."""
    fmt = spec.format if spec.format != "auto" else detect_format(path)
    reader = READERS.get(fmt)
    if reader is None:
        known = ", ".join(suffix for reader in READERS.values() for suffix in reader.suffixes)
        raise InputFileError(f"{path}: unknown input format; use one of {known}, or set format")
    if reader.extracts_html and extractor is not None:
        return reader.read_chunks(path, relpath, spec, rows_per_shard, extractor=extractor)
    return reader.read_chunks(path, relpath, spec, rows_per_shard)
