"""Cutting a document into the units that line dedup counts: lines, Chinese sentences, or paragraphs.

A unit keeps its separator (the line break, or the blank lines after a paragraph), so the units of a
text joined back are the text, byte for byte; removing a unit removes its separator with it. A
unit's key is xxh3-64 of its normal form (case folded, whitespace runs as one space, trimmed): the
same boilerplate line with other spacing or case is the same line.
"""

from __future__ import annotations

import re

import xxhash

_LINES = re.compile(r"[^\n]*\n|[^\n]+")
# Chinese has no line per sentence: a sentence ends at 。！？ (and their run, closing quotes included)
_ZH_SENTENCES = re.compile(r"[^。！？\n]*(?:[。！？]+[”’」』）)]*\n?|\n|$)")
_PARAGRAPHS = re.compile(r".+?(?:\n[ \t]*\n\s*|\Z)", re.S)
_SPACE = re.compile(r"\s+")


def split_units(text: str, unit: str, zh: bool) -> list[str]:
    """The units of a text, separators kept: `"".join(split_units(t, ...)) == t`."""
    if unit == "paragraph":
        return _PARAGRAPHS.findall(text)
    lines = _LINES.findall(text)
    if not zh:
        return lines
    return [s for line in lines for s in _ZH_SENTENCES.findall(line) if s]


def normal_form(unit: str) -> str:
    return _SPACE.sub(" ", unit.strip().casefold())


def unit_keys(units: list[str], min_chars: int) -> list[int | None]:
    """Each unit's 64-bit key, or None for units too short to count (never removed)."""
    keys: list[int | None] = []
    for u in units:
        norm = normal_form(u)
        keys.append(
            xxhash.xxh3_64_intdigest(norm.encode("utf-8", "surrogatepass")) if len(norm) >= min_chars else None
        )
    return keys


def is_chinese(lang: str | None, text: str) -> bool:
    """Chinese units by the document's language, or by Han characters when it has none."""
    if lang:
        return lang.startswith("zh")
    sample = text[:2000]
    han = sum(1 for c in sample if "\u4e00" <= c <= "\u9fff")
    return han >= 0.3 * max(1, len(sample.strip()))
