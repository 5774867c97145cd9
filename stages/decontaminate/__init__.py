"""Benchmark decontamination: an n-gram index of benchmark files, then a map that drops or rewrites the
documents that contain benchmark items."""

from stages.decontaminate.stage import Decontaminate

__all__ = ["Decontaminate"]
