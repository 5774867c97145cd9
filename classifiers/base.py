"""The interface every classifier follows, and the card saved beside its files.

A classifier scores a batch of texts with the probability of its positive label (offensive for
safety, reference-like for quality). It is saved as a directory: `classifier.json` (the card: kind,
task, language, threshold, what it was trained on and how it scored) plus the kind's own files.
Cards carry a format version that is checked on load, so an old directory fails with a clear error
instead of scoring wrongly.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

CARD_FILE = "classifier.json"
CARD_FORMAT = 1
TASKS = ("quality", "safety")


@dataclass
class ModelCard:
    kind: str
    task: str
    lang: str | None  # zh: texts are segmented with jieba; None: any language, no segmentation
    positive: str  # what a score near 1 means, in words
    threshold: float = 0.5  # the decision threshold the member uses unless a config sets one
    settings: dict = field(default_factory=dict)  # the kind's own settings (hyper-parameters, files)
    training: dict = field(default_factory=dict)  # data, sizes, seed
    metrics: dict = field(default_factory=dict)  # held-out precision/recall/F1/AUC at training time
    format: int = CARD_FORMAT

    def save(self, directory: Path) -> None:
        (directory / CARD_FILE).write_text(
            json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> ModelCard:
        path = directory / CARD_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{directory}: not a classifier directory (no {CARD_FILE})")
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != CARD_FORMAT:
            raise ValueError(
                f"{path}: card format {data.get('format')} is not {CARD_FORMAT}; retrain with this version of winnow"
            )
        return cls(**data)


class Classifier(ABC):
    """Scores texts; `predict` returns float32 probabilities of the positive label, one per text."""

    kind: ClassVar[str]

    def __init__(self, card: ModelCard):
        self.card = card

    @abstractmethod
    def predict(self, texts: Sequence[str]) -> np.ndarray: ...

    @abstractmethod
    def save(self, directory: str | Path) -> None:
        """Writes the model files and the card into `directory` (created if missing)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, card: ModelCard, *, device: str = "auto") -> Classifier: ...

    def _start_save(self, directory: str | Path) -> Path:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.card.save(out)
        return out
