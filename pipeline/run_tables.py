"""Tables about a finished run for people: per-group counts and the domain of each URL.

`winnow stats`, `winnow report`, the dataset card and the notebooks share these (and read runs through
`pipeline.layout`), so they agree on how a domain is taken from a URL and how groups are counted.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def domains(table: pa.Table) -> pa.Array:
    """The host of each row's URL (the url_filter stage's `url_domain` when present); null without a URL."""
    if "url_domain" in table.column_names:
        have = table.column("url_domain")
    else:
        have = pa.nulls(table.num_rows, pa.string())
    if "url" not in table.column_names:
        return have.combine_chunks() if isinstance(have, pa.ChunkedArray) else have
    host = pc.extract_regex(
        table.column("url").cast(pa.string()), r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/]*@)?(?P<host>[^/:?#]+)"
    )
    host = pc.utf8_lower(pc.struct_field(host, "host"))
    host = pc.replace_substring_regex(host, r"^www\.", "")
    merged = pc.coalesce(have, host)
    return merged.combine_chunks() if isinstance(merged, pa.ChunkedArray) else merged


def count_by(table: pa.Table, columns: list[str], value: np.ndarray | None = None) -> list[dict]:
    """Rows (and the sum of `value`, when given) per combination of `columns`, nulls as "unknown", largest first."""
    data = {
        c: pc.fill_null(table.column(c).cast(pa.string()), "unknown")
        if c in table.column_names
        else pa.array(["unknown"] * table.num_rows)
        for c in columns
    }
    data["_v"] = pa.array(np.ones(table.num_rows) if value is None else np.asarray(value, dtype=np.float64))
    grouped = pa.table(data).group_by(columns).aggregate([("_v", "count"), ("_v", "sum")]).to_pylist()
    rows = [{**{c: r[c] for c in columns}, "docs": r["_v_count"], "value": r["_v_sum"]} for r in grouped]
    return sorted(rows, key=lambda r: (-r["value"], *[r[c] for c in columns]))
