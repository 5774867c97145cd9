"""FineWeb's own quality rules (Penedo et al. 2024, "The FineWeb Datasets", section 3.5; thresholds as
released in DataTrove's `FineWebQualityFilter`), over non-empty lines:
- `fineweb-line-punct`: share of lines ending in terminal punctuation below 0.12;
- `fineweb-short-lines`: share of lines of at most 30 characters above 0.67;
- `fineweb-dup-line-chars`: characters in repeated lines over all characters but newlines, above 0.01;
- `fineweb-list-lines`: newlines per token above 0.3 (a list or a table, not prose).
For Chinese a line's terminal punctuation includes `。！？…」』”` and a "short" line is counted in
Chinese characters with the zh profile's length (a Chinese character carries about as much as a
short English word, so 30 Chinese characters is not a short line).
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from stages.rules import Rule
from stages.rules import ratio as _div

# DataTrove's TERMINAL_PUNCTUATION for the scripts winnow sees (Latin, CJK, full-width, half-width
# ideographic stop), plus, for Chinese, the ellipsis and closing quotes that end Chinese sentences.
_END_EN = r"[.?!。？！．｡﹒﹖﹗‼⁇⁈⁉‽]$"
_END_ZH = r"[.?!。？！．｡﹒﹖﹗‼⁇⁈⁉‽…」』”’]$"

RULES = [
    Rule("fineweb-line-punct", "h_line_punct_frac", "min", "fineweb_min_line_punct_frac"),
    Rule("fineweb-short-lines", "h_short_line_frac", "max", "fineweb_max_short_line_frac"),
    Rule("fineweb-dup-line-chars", "h_fw_dup_line_char_frac", "max", "fineweb_max_dup_line_char_frac"),
    Rule("fineweb-list-lines", "h_newline_ratio", "max", "fineweb_max_newline_ratio"),
]


def signals(view) -> dict[str, np.ndarray]:
    n = view.n
    line_zh = view.is_zh[view.line_doc]
    end_en = pc.match_substring_regex(view.lines, _END_EN).to_numpy(zero_copy_only=False)
    end_zh = pc.match_substring_regex(view.lines, _END_ZH).to_numpy(zero_copy_only=False)
    punct = np.where(line_zh, end_zh, end_en) | view.stops_terminate
    short = view.line_len <= view.param("fineweb_short_line_chars")[view.line_doc]
    newlines = pc.count_substring(view.text, "\n").to_numpy(zero_copy_only=False)
    tokens = np.bincount(view.tok_doc, minlength=n)
    return {
        "h_line_punct_frac": _div(np.bincount(view.line_doc[punct], minlength=n), view.n_lines, 0.0),
        "h_short_line_frac": _div(np.bincount(view.line_doc[short], minlength=n), view.n_lines, 0.0),
        "h_fw_dup_line_char_frac": _div(view.dup_line_chars, view.chars - newlines, 0.0),
        "h_newline_ratio": _div(newlines, tokens, 0.0),
    }
