"""InputSpec: one configured input (path, source name, format, field names), as the readers read it.

A copy of pipeline.config's InputSpec, with `html` among the formats; the config will import it from
here. Readers only read its fields, so either class works with them meanwhile.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.config import StrictModel


class InputSpec(StrictModel):
    path: str = Field(
        description=(
            "A file, a folder (searched recursively) or a glob of input files: JSONL (.jsonl, .jsonl.gz, .jsonl.zst), "
            "Parquet, WARC/WET or HTML (.html, .htm, .html.gz)."
        )
    )
    source: str = Field(description="Corpus name written to the `source` column; used for mixing and per-source loss.")
    format: Literal["auto", "jsonl", "parquet", "warc", "wet", "html"] = Field(
        "auto",
        description=(
            "File format; `auto` goes by the file extension (.warc[.gz] and .wet[.gz] are web archives, "
            ".html, .htm and .html.gz web pages)."
        ),
    )
    text_field: str = Field("text", description="Field or column holding the document text.")
    url_field: str | None = Field("url", description="Field holding the URL, if any.")
    id_field: str | None = Field(
        "id", description="Field holding an existing document id; kept as it is when present."
    )
    lang_field: str | None = Field(None, description="Field holding a language code, if the input has one.")
    lang: str | None = Field(
        None, description="Language code for every document of this input (when known in advance)."
    )
