"""Text normalisation: one canonical form before any rule, hash or model looks at the text.

Done with Arrow compute kernels over whole columns; only documents that hold full-width
characters take a Python `str.translate`. Choices:
- Unicode NFC, so the same visible text has the same bytes (exact dedup depends on it).
- Line breaks unified to `\\n`; C0/C1 control characters, zero-width spaces and BOMs removed
  (NUL bytes and other binary debris from bad extraction).
- Unicode spaces (no-break, ideographic, thin, ...) become ASCII spaces; trailing spaces on each line
  and runs of 3+ blank lines go; runs of spaces inside a line are kept, because code indentation
  and aligned tables need them.
- Full-width ASCII letters and digits (ＡＢＣ１２３) become half-width. Full-width punctuation
  (，。！？：；) is kept by default: it is correct Chinese typography and a signal for the Chinese
  rules; set `fullwidth_punctuation: true` to fold it too.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from pipeline.config import StrictModel
from pipeline.stage import MapStage, StageOutput, keep_all

_CONTROL = r"[\x{0000}-\x{0008}\x{000B}\x{000C}\x{000E}-\x{001F}\x{007F}-\x{009F}\x{200B}\x{FEFF}]"
_SPACES = r"[\x{00A0}\x{1680}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}]"
_FULLWIDTH_ALNUM = r"[\x{FF10}-\x{FF19}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}]"
_FULLWIDTH_ANY = r"[\x{FF01}-\x{FF5E}]"

_ALNUM_TABLE = {
    cp: cp - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A)) for cp in range(r[0], r[1] + 1)
}
_ANY_TABLE = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}


class NormalizeConfig(StrictModel):
    form: str = Field(
        "NFC",
        pattern="^(NFC|NFKC)$",
        description="Unicode normal form; NFKC also folds ligatures, circled digits and more.",
    )
    fullwidth_punctuation: bool = Field(
        False, description="Also fold full-width punctuation (，。！) to ASCII; off keeps Chinese typography."
    )


class Normalize(MapStage):
    name = "normalize"
    version = "normalize_v1"  # same output as before the fast path, so no bump
    Config = NormalizeConfig

    def __call__(self, table: pa.Table) -> StageOutput:
        idx = table.schema.get_field_index("text")
        text = normalize_text(table.column("text"), self.config)
        return keep_all(table.set_column(idx, "text", text))


# Anything the whitespace/control chain below would change; most documents match none of it.
_NEEDS_CLEANING = r"[\r\x{2028}\x{2029}\x{0085}]|" + _CONTROL + "|" + _SPACES + r"|[ \t]\n|\n\n\n|^\s|\s$"


def normalize_text(text: pa.Array | pa.ChunkedArray, config: NormalizeConfig) -> pa.Array:
    """The whole normalisation chain over one text column."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    text = _fold_width(text, config.fullwidth_punctuation)
    text = pc.utf8_normalize(text, form=config.form)
    # One combined match finds the rows that need the five-pass chain; only those pay for it.
    mask = pc.fill_null(pc.match_substring_regex(text, _NEEDS_CLEANING), False)
    if not pc.any(mask).as_py():
        return text
    return pc.replace_with_mask(text, mask, _clean_whitespace(text.filter(mask)))


def _clean_whitespace(text: pa.Array) -> pa.Array:
    text = pc.replace_substring_regex(text, r"\r\n?|[\x{2028}\x{2029}\x{0085}]", "\n")
    text = pc.replace_substring_regex(text, _CONTROL, "")
    text = pc.replace_substring_regex(text, _SPACES, " ")
    text = pc.replace_substring_regex(text, r"[ \t]+\n", "\n")
    text = pc.replace_substring_regex(text, r"\n{3,}", "\n\n")
    return pc.utf8_trim_whitespace(text)


def _fold_width(text: pa.Array, punctuation: bool) -> pa.Array:
    """Full-width to half-width, touching in Python only the documents that contain such characters."""
    pattern, table = (_FULLWIDTH_ANY, _ANY_TABLE) if punctuation else (_FULLWIDTH_ALNUM, _ALNUM_TABLE)
    mask = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    hits = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    if hits.size == 0:
        return text
    folded = pa.array([text[int(i)].as_py().translate(table) for i in hits], pa.large_string())
    return pc.replace_with_mask(text, mask, folded)
