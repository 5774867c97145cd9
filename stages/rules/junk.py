"""Junk: documents with no letters at all, and mis-decoded text (mojibake).

Both are columnar regex counts over the analysed text (RE2 inside Arrow), no Python per document.

Mojibake is counted as hits of patterns that almost never occur in correctly decoded text:
- U+FFFD, the replacement character a decoder writes for bytes it could not read;
- private-use code points (U+E000..U+F8FF), what GBK/Big5 bytes without a mapping become;
- UTF-8 read as Latin-1/CP1252: `Ã` or `Â` followed by a Latin-1 symbol or a CP1252 0x80-0x9F
  character (`Ã©`, `Ã¨`, `Ã‰`), `â€` (the start of mis-read curly quotes and dashes), `ï¿½`
  (U+FFFD itself mis-read);
- UTF-8 read as GBK: `锟斤拷` (two U+FFFD), `烫烫烫` / `屯屯屯` (uninitialised memory shown as
  GBK), and `銆` `锛` `鈥`, the lead characters that `。、「」` (E3 80 xx), full-width `，：（）！？`
  (EF BC xx) and `“”—…` (E2 80 xx) turn into; none of them is used in modern Chinese (zero hits
  in the 256 Wikipedia paragraphs and 1,784 abstracts of the reference set).
The signal is hits beyond the first per non-space character: one U+FFFD where a text was cut in the
middle of a character (19 of the 32,157 COLD comments end so) is harmless.
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from stages.rules import Rule

_CP1252_HIGH = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
MOJIBAKE = "|".join(
    [
        r"\x{FFFD}",
        r"[\x{E000}-\x{F8FF}]",
        rf"[ÃÂ][\x{{A0}}-\x{{BF}}{_CP1252_HIGH}]",
        "â€",
        "ï¿½",
        "锟斤拷",
        "烫烫烫",
        "屯屯屯",
        "[銆锛鈥]",
    ]
)

RULES = [
    Rule("junk-only-symbols", "h_letters", "min", "junk_min_letters"),
    Rule("junk-mojibake", "h_mojibake_frac", "max", "junk_max_mojibake_frac"),
]


def signals(view) -> dict[str, np.ndarray]:
    # A letter is any Unicode letter (\pL: Latin, Han, kana, ...); digits, punctuation, symbols and
    # whitespace are not. Only whether there is one matters, so cap the count at 1 cheaply.
    has_letter = pc.match_substring_regex(view.text, r"\pL").to_numpy(zero_copy_only=False).astype(np.int32)
    hits = pc.count_substring_regex(view.text, MOJIBAKE).to_numpy(zero_copy_only=False).astype(np.float64)
    return {
        "h_letters": has_letter,
        "h_mojibake_frac": _ratio(np.maximum(hits - 1, 0), view.nonspace),
    }


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(len(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out
