"""A token estimate without a tokenizer, shared by the weights stage and the run products."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from pipeline.config import StrictModel


class TokenEstimate(StrictModel):
    han_chars_per_token: float = Field(
        1.3, gt=0, description="Chinese characters per token (typical of BPE vocabularies with Chinese merges)."
    )
    bytes_per_token: float = Field(
        4.0, gt=0, description="UTF-8 bytes per token for everything else (English web text: about 4)."
    )


def estimate_tokens(table: pa.Table, cfg: TokenEstimate) -> np.ndarray:
    """Han characters / han_chars_per_token + other UTF-8 bytes / bytes_per_token, at least 1."""
    text = table.column("text")
    nbytes = pc.binary_length(text.cast(pa.large_binary())).to_numpy(zero_copy_only=False).astype(np.float64)
    han = pc.count_substring_regex(text, r"\p{Han}").to_numpy(zero_copy_only=False).astype(np.float64)
    other = np.maximum(nbytes - 3 * han, 0)  # a Han character is 3 bytes in UTF-8
    return np.maximum(1, np.rint(han / cfg.han_chars_per_token + other / cfg.bytes_per_token)).astype(np.int64)


def token_counts(table: pa.Table) -> np.ndarray:
    """The weights stage's `tokens_est` where it ran, else the default estimate from the text."""
    if "tokens_est" in table.column_names:
        return table.column("tokens_est").to_numpy().astype(np.float64)
    return estimate_tokens(table, TokenEstimate()).astype(np.float64)
