"""Exact, MinHash and SimHash dedup, global across shards: the methods, their phases, their planner."""

from stages.dedup.apply import DedupApply
from stages.dedup.methods import DEDUP_STAGES, ExactDedup, GlobalStage, MinHashDedup, SimHashDedup, jaccard, lcs_ratio

__all__ = [
    "DEDUP_STAGES",
    "DedupApply",
    "ExactDedup",
    "GlobalStage",
    "MinHashDedup",
    "SimHashDedup",
    "jaccard",
    "lcs_ratio",
]
