"""What the quality and safety stages share: a configured model per language, scored over a batch.

A member names one model per language (`models: {zh: safety-zh, en: safety-en}`; the key `"*"`
serves every other language). Rows whose language has no model get a null score and take no part in
that member's vote or mean. Models load once per worker (the stages run in a Ray actor pool).
"""

from __future__ import annotations

import hashlib
import re
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from classifiers.base import ModelCard
from classifiers.registry import load_classifier, resolve_model
from pipeline.config import StrictModel
from pipeline.stage import MapStage

ANY_LANG = "*"
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=[.])\s+|\n+")


class MemberConfig(StrictModel):
    name: str = Field(description="Short name; the score column is `<stage>_<name>` (e.g. safety_fasttext).")
    models: dict[str, str] = Field(
        description="Language code -> model directory or shipped name (`quality-zh`); `*` for any other language."
    )
    threshold: float | None = Field(
        None, ge=0, le=1, description="Score at or above which the member fires; null: the model card's threshold."
    )
    weight: float = Field(1.0, gt=0, description="Weight in a weighted mean of members.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="BERT-style models: auto uses a GPU when Ray gives the worker one."
    )
    max_chars: int = Field(20_000, gt=0, description="Characters from the start of each document the model reads.")

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", v):
            raise ValueError(f"member name {v!r} must be lower-case letters, digits and _ (it becomes a column name)")
        return v

    @field_validator("models")
    @classmethod
    def _non_empty(cls, v: dict) -> dict:
        if not v:
            raise ValueError("a member needs at least one model")
        return v


def model_fingerprint(members: list[MemberConfig]) -> str:
    """A digest of the model files the members use, so replacing a model redoes the stage's shards."""
    digest = hashlib.sha256()
    for member in members:
        for lang, ref in sorted(member.models.items()):
            directory = resolve_model(ref)
            for path in sorted(p for p in directory.iterdir() if p.is_file()):
                digest.update(f"{member.name}/{lang}/{path.name}:".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def uses_bert(members: list[MemberConfig]) -> bool:
    return any(
        m.device != "cpu" and ModelCard.load(resolve_model(ref)).kind == "bert"
        for m in members
        for ref in m.models.values()
    )


def weighted_mean(scores: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Per row, the weighted mean of the members that scored it (NaN = no model); NaN where none did."""
    from classifiers.ensemble import weighted_mean as mean

    return mean(scores, weights)


def member_threshold(config: MemberConfig, lang: str | None = None) -> float:
    """The member's own threshold, else the card's of its model for `lang` (its first model when `lang` has
    none), read without loading the model: thresholds chosen by cross-validation differ per language."""
    if config.threshold is not None:
        return config.threshold
    ref = config.models.get(lang) or config.models.get(ANY_LANG) or next(iter(config.models.values()))
    return ModelCard.load(resolve_model(ref)).threshold


class ModelStage(MapStage):
    """Base of the model stages: members load once per actor; the config hash covers the model files;
    a GPU is asked for only when a member is BERT-style."""

    stateful = True
    members_field: ClassVar[str]  # the config field listing the members

    @classmethod
    def member_configs(cls, config) -> list[MemberConfig]:
        return getattr(config, cls.members_field)

    @classmethod
    def fingerprint(cls, config) -> str:
        return model_fingerprint(cls.member_configs(config))

    @classmethod
    def hash_payload(cls, config) -> dict:
        # the model files' digest too, so a replaced model redoes the shards
        return {**super().hash_payload(config), "models": cls.fingerprint(config)}

    @classmethod
    def wants_gpu(cls, config) -> bool:
        return uses_bert(cls.member_configs(config))

    def __init__(self, config):
        super().__init__(config)
        self.members = [LoadedMember(m) for m in self.member_configs(config)]


class LoadedMember:
    """A member with its models loaded: scores a batch, per language."""

    def __init__(self, config: MemberConfig):
        self.config = config
        self.models = {lang: load_classifier(ref, device=config.device) for lang, ref in config.models.items()}
        self.threshold = member_threshold(config)
        self.lang_thresholds = {
            lang: config.threshold if config.threshold is not None else model.card.threshold
            for lang, model in self.models.items()
        }

    def thresholds_for(self, langs: pa.Array) -> np.ndarray:
        """Each row's threshold: the member's, else the card's of the model for the row's language."""
        out = np.full(len(langs), self.threshold, float)
        for lang, rows in self.groups(langs).items():
            key = lang if lang in self.models else ANY_LANG
            out[rows] = self.lang_thresholds[key]
        return out

    def model_for(self, lang: str | None):
        return self.models.get(lang) if lang in self.models else self.models.get(ANY_LANG)

    def groups(self, langs: pa.Array) -> dict[str | None, np.ndarray]:
        """Row numbers per language that has a model (`langs`: Arrow strings, "" for no language)."""
        out: dict = {}
        for lang in pc.unique(langs).to_pylist():
            key = lang or None
            if self.model_for(key) is not None:
                out[key] = np.flatnonzero(pc.equal(langs, lang).to_numpy(zero_copy_only=False))
        return out

    def score(self, text: pa.Array, langs: pa.Array) -> np.ndarray:
        """float64 scores, NaN where the row's language has no model."""
        scores = np.full(len(text), np.nan)
        for lang, rows in self.groups(langs).items():
            part = text if len(rows) == len(text) else text.take(pa.array(rows))
            scores[rows] = self.model_for(lang).predict(pc.utf8_slice_codeunits(part, 0, self.config.max_chars))
        return scores

    def score_sentences(self, text: pa.Array, langs: pa.Array, min_chars: int) -> np.ndarray:
        """Each sentence scored, the document's score the length-weighted mean of its sentences."""
        texts = text.to_pylist()
        scores = np.full(len(texts), np.nan)
        for lang, rows in self.groups(langs).items():
            pieces, owner, lengths = [], [], []
            for i in rows:
                sentences = [
                    s.strip()
                    for s in _SENTENCE_END.split(texts[i][: self.config.max_chars])
                    if s and len(s.strip()) >= min_chars
                ]
                if not sentences:
                    sentences = [texts[i][: self.config.max_chars]]
                pieces += sentences
                owner += [i] * len(sentences)
                lengths += [len(s) for s in sentences]
            predicted = self.model_for(lang).predict(pieces)
            owner, lengths = np.asarray(owner), np.asarray(lengths, float)
            total = np.bincount(owner, weights=lengths * predicted, minlength=len(texts))
            weight = np.bincount(owner, weights=lengths, minlength=len(texts))
            scores[rows] = total[rows] / np.maximum(weight[rows], 1e-9)
        return scores


def texts_and_langs(table: pa.Table) -> tuple[pa.Array, pa.Array]:
    """The text and each row's language, as Arrow strings ("" where null)."""
    text = pc.fill_null(table.column("text"), "").combine_chunks()
    langs = pc.fill_null(table.column("lang").cast(pa.string()), "").combine_chunks()
    return text, langs


def set_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.schema.get_field_index(name), name, values)
    return table.append_column(name, values)


def float_column(values: np.ndarray) -> pa.Array:
    """float32 with nulls where NaN (no model for the row's language)."""
    return pa.array(values.astype(np.float32), pa.float32(), mask=np.isnan(values))
