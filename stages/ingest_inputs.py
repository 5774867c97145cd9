"""The `input:` entries of a config and the files each names."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Literal

from pydantic import Field

from pipeline.config import StrictModel


class InputSpec(StrictModel):
    path: str = Field(description="A file, a folder (searched recursively) or a glob of JSONL (.jsonl, .jsonl.gz, .jsonl.zst) or Parquet files.")
    source: str = Field(description="Corpus name written to the `source` column; used for mixing and per-source loss.")
    format: Literal["auto", "jsonl", "parquet", "warc", "wet"] = Field("auto", description="File format; `auto` goes by the file extension (.warc[.gz] and .wet[.gz] are web archives).")
    text_field: str = Field("text", description="Field or column holding the document text.")
    url_field: str | None = Field("url", description="Field holding the URL, if any.")
    id_field: str | None = Field("id", description="Field holding an existing document id; kept as it is when present.")
    lang_field: str | None = Field(None, description="Field holding a language code, if the input has one.")
    lang: str | None = Field(None, description="Language code for every document of this input (when known in advance).")



def expand_input(path: str) -> list[str]:
    """Input files for a path: the file itself, every JSONL/Parquet file under a folder, or glob matches."""
    p = Path(path)
    if p.is_file():
        return [str(p)]
    if p.is_dir():
        candidates = sorted(str(f) for f in p.rglob("*") if f.is_file())
    else:
        candidates = sorted(glob.glob(path, recursive=True))
    return [c for c in candidates if detect_format(c) is not None]


def detect_format(path: str) -> str | None:
    """`jsonl`, `parquet`, `warc` or `wet` by extension, None for files that are not inputs (READMEs, licences)."""
    name = path.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".ndjson")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".wet", ".wet.gz")):  # Common Crawl names them *.warc.wet.gz
        return "wet"
    if name.endswith((".warc", ".warc.gz")):
        return "warc"
    return None
