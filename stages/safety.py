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

A thread or an e-mail is often flagged for a few of its lines (an abusive comment under a news post).
With `remove_lines`, an unsafe document of several lines has each line scored by the same ensemble;
the unsafe lines are cut out (kept in `removed/` with the reason `unsafe-line:<members>`) and the rest
is scored again as a document. It stays, rewritten, when that rest is safe and holds at least
`min_kept_frac` of the characters; otherwise the whole document is unsafe as before.

Columns: `safety_<member>` (float32, null where no model for the language), `safety_<member>_terms`
for lexicon members (the categories that matched), `safety` (float32), `unsafe` (bool) and
`safety_lines_removed` (int32, the lines cut out; 0 without `remove_lines`). For a rewritten document
every score is the rest's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from classifiers.ensemble import decide
from pipeline.config import StrictModel
from pipeline.stage import StageOutput, removed_spans
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
    remove_lines: bool = Field(
        False,
        description="Cut the unsafe lines out of an unsafe document of several lines and keep the rest "
        "when it is safe, instead of judging the whole document.",
    )
    min_kept_frac: float = Field(
        0.5,
        ge=0,
        le=1,
        description="With remove_lines: the share of the document's characters that must remain for it to stay.",
    )


class Safety(ModelStage):
    name = "safety"
    version = "safety_v2"
    rewrites: ClassVar[bool] = True  # remove_lines cuts unsafe lines out
    Config = SafetyConfig
    members_field = "members"

    def ensemble(self, texts: pa.Array, langs: pa.Array) -> tuple[list[np.ndarray], list[np.ndarray], Verdict]:
        """Every member's scores and thresholds, and the combined verdict, for `texts`."""
        columns = [member.score(texts, langs) for member in self.members]
        cuts = [member.thresholds_for(langs) for member in self.members]
        weights = [m.config.weight for m in self.members]
        return columns, cuts, Verdict(*decide(columns, cuts, weights, self.config.combine, self.config.threshold))

    def score(self, table: pa.Table) -> tuple[pa.Table, Verdict, pa.Table | None]:
        """Adds the member and combined columns; returns the table, the verdict and the removed lines."""
        texts, langs = texts_and_langs(table)
        columns, cuts, verdict = self.ensemble(texts, langs)
        removed, lines_removed = None, np.zeros(table.num_rows, np.int32)
        if self.config.remove_lines and verdict.unsafe.any():
            kept = self.safe_rests(self.cut_lines(texts, langs, verdict), langs, columns, verdict)
            if kept:
                rows = np.asarray([c.row for c in kept])
                texts = _replace(texts, rows, [c.rest for c in kept])
                table = set_column(table, "text", texts)
                removed = removed_spans(
                    [c.row for c in kept for _ in c.spans],
                    [span for c in kept for span in c.spans],
                    [reason for c in kept for reason in c.reasons],
                )
                lines_removed[rows] = [len(c.spans) for c in kept]
        for member, scores, cut in zip(self.members, columns, cuts):
            table = set_column(table, f"safety_{member.config.name}", float_column(scores))
            if any(m.kind == "lexicon" for m in member.models.values()):
                hit = ~np.isnan(scores) & (np.nan_to_num(scores, nan=-1.0) >= cut)
                table = set_column(
                    table, f"safety_{member.config.name}_terms", _lexicon_terms(member, texts, langs, hit)
                )
        table = set_column(table, "safety", float_column(verdict.safety))
        table = set_column(table, "unsafe", pa.array(verdict.unsafe, pa.bool_()))
        table = set_column(table, "safety_lines_removed", pa.array(lines_removed, pa.int32()))
        return table, verdict, removed

    def safe_rests(
        self, candidates: list[LineCut], langs: pa.Array, columns: list[np.ndarray], verdict: Verdict
    ) -> list[LineCut]:
        """Scores each candidate's rest as a document; where it is safe, its scores and verdict replace
        the document's (in `columns` and `verdict`) and the candidate is returned. A rest still unsafe
        leaves its document to be judged whole, unchanged."""
        if not candidates:
            return []
        rows = np.asarray([c.row for c in candidates])
        sub_columns, _, sub_verdict = self.ensemble(
            pa.array([c.rest for c in candidates], pa.large_string()), langs.take(rows)
        )
        safe = ~sub_verdict.unsafe
        for column, sub in zip(columns, sub_columns):
            column[rows[safe]] = sub[safe]
        verdict.update(rows[safe], sub_verdict.take(safe))
        return [c for c, ok in zip(candidates, safe) if ok]

    def cut_lines(self, texts: pa.Array, langs: pa.Array, verdict: Verdict) -> list[LineCut]:
        """Scores the lines of each unsafe document of several lines; returns, for each document that
        keeps `min_kept_frac` of its characters without its unsafe lines, the rest and the cut lines."""
        rows, pieces, owner, piece_langs = [], [], [], []
        for i in np.flatnonzero(verdict.unsafe):
            lines = texts[i].as_py().splitlines(keepends=True)
            if sum(1 for line in lines if line.strip()) < 2:
                continue
            rows.append(int(i))
            pieces += lines
            owner += [len(rows) - 1] * len(lines)
            piece_langs += [langs[i].as_py()] * len(lines)
        if not rows:
            return []
        _, _, lines_verdict = self.ensemble(pa.array(pieces, pa.large_string()), pa.array(piece_langs, pa.string()))
        names = [m.config.name for m in self.members]
        by_row: dict[int, list[int]] = {}
        for k, o in enumerate(owner):
            by_row.setdefault(o, []).append(k)
        out = []
        for o, ks in by_row.items():
            cut = {k for k in ks if lines_verdict.unsafe[k] and pieces[k].strip()}
            total = sum(len(pieces[k]) for k in ks)
            rest = "".join(pieces[k] for k in ks if k not in cut)
            if not cut or len(rest) < self.config.min_kept_frac * total or not rest.strip():
                continue
            reasons = ["unsafe-line:" + _fired_by(names, lines_verdict.fired, k) for k in sorted(cut)]
            out.append(LineCut(rows[o], rest, [pieces[k] for k in sorted(cut)], reasons))
        return out

    @classmethod
    def writes(cls, config) -> set[str]:
        members = cls.member_configs(config)
        return (
            {"safety", "unsafe", "safety_lines_removed"}
            | {f"safety_{m.name}" for m in members}
            | {f"safety_{m.name}_terms" for m in members}
        )

    def __call__(self, table: pa.Table) -> StageOutput:
        table, verdict, removed = self.score(table)
        names = [m.config.name for m in self.members]
        reasons = np.full(table.num_rows, None, dtype=object)
        if self.config.mode == "drop":
            for i in np.flatnonzero(verdict.unsafe):
                reasons[i] = "unsafe:" + _fired_by(names, verdict.fired, i)
        drop = verdict.unsafe if self.config.mode == "drop" else np.zeros(table.num_rows, bool)
        signals = {"safety": verdict.safety[~np.isnan(verdict.safety)]}
        return StageOutput(table, ~drop, pa.array(reasons, pa.string()), signals, removed=removed)


@dataclass
class Verdict:
    """The ensemble's decision per row: `unsafe`, the combined score `safety`, and who fired."""

    unsafe: np.ndarray
    safety: np.ndarray
    fired: list[np.ndarray]

    def update(self, rows: np.ndarray, other: Verdict) -> None:
        """Takes `other`'s decision (computed for `rows`, in order) for those rows."""
        self.unsafe[rows] = other.unsafe
        self.safety[rows] = other.safety
        for mine, theirs in zip(self.fired, other.fired):
            mine[rows] = theirs

    def take(self, mask: np.ndarray) -> Verdict:
        return Verdict(self.unsafe[mask], self.safety[mask], [f[mask] for f in self.fired])


@dataclass
class LineCut:
    """One document's candidate rewrite: its row, the text left, the lines cut and why."""

    row: int
    rest: str
    spans: list[str]
    reasons: list[str]


def _fired_by(names: list[str], fired: list[np.ndarray], i: int) -> str:
    """The members that fired on row `i`, joined by `+` (`weighted-mean` when none did alone)."""
    who = [name for name, hit in zip(names, fired) if hit[i]]
    return "+".join(who) if who else "weighted-mean"


def _replace(texts: pa.Array, rows: np.ndarray, new: list[str]) -> pa.Array:
    values = texts.to_pylist()
    for i, text in zip(rows, new):
        values[i] = text
    return pa.array(values, texts.type)


def _lexicon_terms(member: LoadedMember, text: pa.Array, langs: pa.Array, hit: np.ndarray) -> pa.Array:
    """Matched categories, comma-separated, for the rows where the lexicon fired (null elsewhere)."""
    out = [None] * len(text)
    for i in np.flatnonzero(hit):
        model = member.model_for(langs[i].as_py() or None)
        if model is not None and model.kind == "lexicon":
            out[i] = ",".join(model.score_one(text[i].as_py()[: member.config.max_chars])[1]) or None
    return pa.array(out, pa.string())
