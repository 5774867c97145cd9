"""Corpus-wide line, sentence and paragraph dedup: boilerplate shared by many documents removed from each."""

from stages.line_dedup.stage import LineDedup, LineDedupConfig

__all__ = ["LineDedup", "LineDedupConfig"]
