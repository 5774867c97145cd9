"""Bag-of-tokens overlap between an extracted text and its truth: precision, recall and F1.

Tokens are defined in `stages.ingest.web.tokens` (words for Latin script, one token per Han
character, case-folded, punctuation excluded), shared with the extractor.

Overlap is the multiset intersection: a token found three times in the extraction and twice in the
truth matches twice. Order is ignored, so a boilerplate line inside the main text costs precision,
and a paragraph left out costs recall, wherever they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from stages.ingest.web.tokens import tokens


@dataclass(frozen=True)
class Overlap:
    """Token counts of one comparison (or of many, pooled): what matched, what was extracted, the truth."""

    matched: int
    extracted: int
    truth: int

    def __add__(self, other: Overlap) -> Overlap:
        return Overlap(self.matched + other.matched, self.extracted + other.extracted, self.truth + other.truth)

    @property
    def precision(self) -> float:
        """Share of extracted tokens found in the truth; 1.0 when nothing was extracted and nothing is true."""
        return self.matched / self.extracted if self.extracted else float(self.truth == 0)

    @property
    def recall(self) -> float:
        """Share of truth tokens found in the extraction; 1.0 when the truth has no tokens."""
        return self.matched / self.truth if self.truth else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def overlap(extracted: str, truth: str) -> Overlap:
    """Token overlap of one extracted text with its truth."""
    ext, tru = tokens(extracted), tokens(truth)
    return Overlap(sum((ext & tru).values()), sum(ext.values()), sum(tru.values()))
