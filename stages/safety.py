"""Safety: an ensemble of members (lexicon, fastText, BERT-style) per language, combined by a rule.

Each member scores every document whose language it has a model for and fires when its score reaches
its threshold (the member's, else its model card's for the document's language). The combined decision
(`combine`, `classifiers/ensemble.py`, the same function the cross-validated selection uses):
- `any`: one member firing is enough (highest recall);
- `majority`: more than half of the members that scored the document fire;
- `weighted_mean`: the weighted mean of the member scores reaches `threshold`.
`safety` is the weighted mean of member scores in every mode, so the weights stage can use it as a
penalty. Dropped documents carry the reason `unsafe:<members that fired>` (e.g.
`unsafe:fasttext+minilm`); `mode: keep` only annotates (`unsafe` column) and drops nothing.

Columns: `safety_<member>` (float32, null where no model for the language), `safety_<member>_terms`
for lexicon members (the categories that matched), `safety` (float32) and `unsafe` (bool).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from classifiers.ensemble import decide
from pipeline.config import StrictModel
from pipeline.stage import StageOutput
from stages.model_members import LoadedMember, MemberConfig, ModelStage, float_column, set_column, texts_and_langs


class SafetyConfig(StrictModel):
    members: list[MemberConfig] = Field(
        min_length=1,
        description="Ensemble members; at least three (lexicon, fastText, BERT-style) is the usual setup.",
    )
    combine: Literal["any", "majority", "weighted_mean"] = Field(
        "majority", description="How member decisions combine into `unsafe`."
    )
    threshold: float = Field(0.5, ge=0, le=1, description="For weighted_mean: `safety` at or above this is unsafe.")
    mode: Literal["drop", "keep"] = Field(
        "drop", description="drop unsafe documents, or keep them with `unsafe` = true for the weights stage."
    )


class Safety(ModelStage):
    name = "safety"
    version = "safety_v1"
    Config = SafetyConfig
    members_field = "members"

    def score(self, table: pa.Table) -> tuple[pa.Table, np.ndarray, np.ndarray, list[np.ndarray]]:
        """Adds the member and combined columns; returns the table, `unsafe`, `safety` and who fired."""
        cfg = self.config
        texts, langs = texts_and_langs(table)
        columns, cuts = [], []
        for member in self.members:
            scores = member.score(texts, langs)
            cut = member.thresholds_for(langs)
            table = set_column(table, f"safety_{member.config.name}", float_column(scores))
            if any(m.kind == "lexicon" for m in member.models.values()):
                hit = ~np.isnan(scores) & (np.nan_to_num(scores, nan=-1.0) >= cut)
                table = set_column(
                    table, f"safety_{member.config.name}_terms", _lexicon_terms(member, texts, langs, hit)
                )
            columns.append(scores)
            cuts.append(cut)
        weights = [m.config.weight for m in self.members]
        unsafe, safety, fired = decide(columns, cuts, weights, cfg.combine, cfg.threshold)
        table = set_column(table, "safety", float_column(safety))
        table = set_column(table, "unsafe", pa.array(unsafe, pa.bool_()))
        return table, unsafe, safety, fired

    @classmethod
    def writes(cls, config) -> set[str]:
        members = cls.member_configs(config)
        return (
            {"safety", "unsafe"} | {f"safety_{m.name}" for m in members} | {f"safety_{m.name}_terms" for m in members}
        )

    def __call__(self, table: pa.Table) -> StageOutput:
        table, unsafe, safety, fired = self.score(table)
        names = [m.config.name for m in self.members]
        reasons = np.full(table.num_rows, None, dtype=object)
        if self.config.mode == "drop":
            for i in np.flatnonzero(unsafe):
                who = [name for name, hit in zip(names, fired) if hit[i]]
                reasons[i] = "unsafe:" + ("+".join(who) if who else "weighted-mean")
        drop = unsafe if self.config.mode == "drop" else np.zeros(table.num_rows, bool)
        signals = {"safety": safety[~np.isnan(safety)]}
        return StageOutput(table, ~drop, pa.array(reasons, pa.string()), signals)


def _lexicon_terms(member: LoadedMember, text: pa.Array, langs: pa.Array, hit: np.ndarray) -> pa.Array:
    """Matched categories, comma-separated, for the rows where the lexicon fired (null elsewhere)."""
    out = [None] * len(text)
    for i in np.flatnonzero(hit):
        model = member.model_for(langs[i].as_py() or None)
        if model is not None and model.kind == "lexicon":
            out[i] = ",".join(model.score_one(text[i].as_py()[: member.config.max_chars])[1]) or None
    return pa.array(out, pa.string())
