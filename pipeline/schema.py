"""The document schema every stage reads and writes, and the extra columns of rejects."""

import pyarrow as pa

CORE_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("text", pa.large_string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("source", pa.string(), nullable=False),
    pa.field("lang", pa.string()),
]
CORE_COLUMNS = [f.name for f in CORE_FIELDS]

# Rejects carry the row as the stage saw it plus why it left.
REJECT_FIELDS = [pa.field("stage", pa.string(), nullable=False), pa.field("reason", pa.string(), nullable=False)]


def core_schema() -> pa.Schema:
    return pa.schema(CORE_FIELDS)


def check_core_columns(table: pa.Table, where: str) -> None:
    """Fails with the missing column names: a stage must never lose a core column."""
    missing = [c for c in CORE_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"{where}: missing core columns {missing}; got {table.column_names}")


def with_reject_columns(table: pa.Table, stage: str, reasons: pa.Array) -> pa.Table:
    """Appends `stage` and `reason` to rows that a stage dropped."""
    stage_col = pa.array([stage] * table.num_rows, pa.string())
    return table.append_column(REJECT_FIELDS[0], stage_col).append_column(REJECT_FIELDS[1], reasons.cast(pa.string()))
