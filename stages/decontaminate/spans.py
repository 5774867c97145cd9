"""Cutting benchmark text out of a document: matched n-gram ranges merged into spans, each widened to the
separators that would be left dangling (a line's bullet, the sentence's full stop and the spaces or line
breaks after it), then removed. Every removed character is in a span, so characters conserve."""

from __future__ import annotations

import re

import numpy as np

LINE_LEAD = re.compile(r"[^\w\n]*")  # what stands before the span on its line: nothing but a bullet or a quote?
TRAIL = re.compile(r"(?:[ \t]*[^\w\s(\[{“‘「『（《]+)*\s*")  # closing punctuation (" ." of tokenised text too), spaces


def merge(starts: np.ndarray, ends: np.ndarray, labels: list[str]) -> list[tuple[int, int, str]]:
    """Overlapping or touching ranges as one span, labelled by its first range."""
    order = np.argsort(starts, kind="stable")
    spans: list[list] = []
    for i in order:
        s, e = int(starts[i]), int(ends[i])
        if spans and s <= spans[-1][1] + 1:
            spans[-1][1] = max(spans[-1][1], e)
        else:
            spans.append([s, e, labels[i]])
    return [tuple(s) for s in spans]


def widen(text: str, start: int, end: int) -> tuple[int, int]:
    """The span with the line's leading bullet or quote and the trailing punctuation and spaces."""
    line_start = text.rfind("\n", 0, start) + 1
    if LINE_LEAD.fullmatch(text, line_start, start):
        start = line_start
    end = TRAIL.match(text, end).end()
    return start, end


def cut(text: str, spans: list[tuple[int, int, str]]) -> tuple[str, list[tuple[str, str]]]:
    """(text without the spans, [(removed text, label)]); spans widened, then merged again if they meet."""
    widened: list[list] = []
    for s, e, label in spans:
        s, e = widen(text, s, e)
        if widened and s <= widened[-1][1]:
            widened[-1][1] = max(widened[-1][1], e)
        else:
            widened.append([s, e, label])
    kept, removed, at = [], [], 0
    for s, e, label in widened:
        kept.append(text[at:s])
        removed.append((text[s:e], label))
        at = e
    kept.append(text[at:])
    return "".join(kept), removed
