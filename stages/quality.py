"""Quality scores from one or more models: a column per model and their weighted mean, `quality`.

By default nothing is dropped: scores are kept as columns and the weights stage turns them into
sampling weights (removing only the worst and down-weighting the margin keeps diversity). Set
`threshold` to drop documents whose `quality` is below it, reason `quality-low`.

With `sentences: true` every sentence is scored and a document's score is the length-weighted mean of
its sentences: a page of good prose with a spam footer scores by how much of it is good, where a
document-level model sees one bag of words.

Columns: `quality_<member>` (float32, null where the document's language has no model) and `quality`
(weighted mean of the available members; null when none applies; rows with null are never dropped).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import Field

from pipeline.config import StrictModel
from pipeline.stage import StageOutput
from stages.model_members import MemberConfig, ModelStage, float_column, set_column, texts_and_langs, weighted_mean


class QualityConfig(StrictModel):
    models: list[MemberConfig] = Field(
        min_length=1, description="The scoring models; each adds a `quality_<name>` column."
    )
    sentences: bool = Field(
        False, description="Score each sentence and aggregate to the document (length-weighted mean)."
    )
    min_sentence_chars: int = Field(
        10, ge=1, description="Shorter sentences are not scored on their own (sentence mode)."
    )
    threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Drop documents whose `quality` is below this as `quality-low`; null drops nothing.",
    )


class Quality(ModelStage):
    name = "quality"
    version = "quality_v1"
    Config = QualityConfig
    members_field = "models"

    @classmethod
    def writes(cls, config) -> set[str]:
        return {"quality"} | {f"quality_{m.name}" for m in cls.member_configs(config)}

    def __call__(self, table: pa.Table) -> StageOutput:
        cfg = self.config
        texts, langs = texts_and_langs(table)
        columns = []
        signals = {}
        for member in self.members:
            if cfg.sentences:
                scores = member.score_sentences(texts, langs, cfg.min_sentence_chars)
            else:
                scores = member.score(texts, langs)
            column = f"quality_{member.config.name}"
            table = set_column(table, column, float_column(scores))
            columns.append(scores)
            signals[column] = scores[~np.isnan(scores)]
        quality = weighted_mean(columns, [m.config.weight for m in self.members])
        table = set_column(table, "quality", float_column(quality))
        signals["quality"] = quality[~np.isnan(quality)]
        drop = (
            np.zeros(len(texts), bool) if cfg.threshold is None else (~np.isnan(quality) & (quality < cfg.threshold))
        )
        reasons = pa.array(np.where(drop, "quality-low", None), pa.string())
        return StageOutput(table, ~drop, reasons, signals)
