"""Rule families of the `heuristics` stage, one module each: junk, chinese, gopher, c4, fineweb.

A family module has `signals(view) -> {column: array}` (numbers per document, computed from the
shared `View` that splits each batch into lines and words once) and `RULES`, the checks it owns in
the order they are tried. A rule compares one signal with one threshold of the document's language
profile (`zh` or `en`); a null threshold switches the rule off for that profile. The stage records
every signal as an `h_` column and drops a document for the first rule it fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Rule:
    name: str  # the drop reason, e.g. `gopher-word-count`; also the name used in `disabled:`
    signal: str  # an `h_` column computed by the family's `signals`
    kind: Literal["min", "max"]  # min: drop when signal < threshold; max: drop when signal > threshold
    field: str  # the threshold's field in the language profile (EnThresholds / ZhThresholds)


def ratio(num, den, empty: float) -> np.ndarray:
    """num / den per document, `empty` where den is 0 (no lines, no words)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(len(num), empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out
