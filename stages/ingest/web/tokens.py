"""Tokens of a text as the extraction metric counts them, so Latin-script and Chinese text compare alike.

- the text is NFKC-normalised (full-width letters and digits become ASCII) and case-folded;
- every Han character (CJK unified ideographs, their extensions and compatibility forms, and 〇) is
  one token;
- every other maximal run of letters, digits and combining marks is one token (`isn't` is `isn` and
  `t`; `COVID-19` is `covid` and `19`; kana and Hangul runs are words too);
- punctuation, symbols, underscores and whitespace are not tokens.

Used by the extractor (how much text each candidate kept) and by `winnow eval extraction` (overlap).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

_HAN = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f\U00030000-\U000323af"
_TOKEN = re.compile(rf"[{_HAN}]|(?:(?![{_HAN}])[^\W_])+")


def token_list(text: str) -> list[str]:
    """The tokens of a text in reading order."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def tokens(text: str) -> Counter:
    """The bag of tokens of a text."""
    return Counter(token_list(text))


def token_count(text: str) -> int:
    """How many tokens a text has (no normalisation: a count does not need it)."""
    return sum(1 for _ in _TOKEN.finditer(text))
