"""Loading any classifier from a directory or by the name of a shipped default model.

Shipped models live in `classifiers/models/<name>/` and are addressable by name wherever a model path
is accepted (`quality-zh`, `quality-en`, `safety-zh`, `safety-en`, and the ensemble's other members
`safety-{zh,en}-lexicon`, `safety-{zh,en}-minilm`, `safety-zh-e5`). A path always wins over a name.
"""

from __future__ import annotations

from pathlib import Path

from classifiers.base import Classifier, ModelCard
from classifiers.bert_model import BertClassifier
from classifiers.e5_model import E5Classifier
from classifiers.fasttext_model import FastTextClassifier
from classifiers.lexicon import LexiconClassifier

KINDS: dict[str, type[Classifier]] = {
    cls.kind: cls for cls in (FastTextClassifier, BertClassifier, LexiconClassifier, E5Classifier)
}
MODELS_DIR = Path(__file__).resolve().parent / "models"


def shipped_models() -> list[str]:
    return (
        sorted(p.name for p in MODELS_DIR.iterdir() if (p / "classifier.json").is_file())
        if MODELS_DIR.is_dir()
        else []
    )


def resolve_model(ref: str | Path) -> Path:
    """The directory of a model given by path or shipped name; errors list the shipped names."""
    path = Path(ref)
    if path.is_dir():
        return path
    named = MODELS_DIR / str(ref)
    if "/" not in str(ref) and named.is_dir():
        return named
    raise FileNotFoundError(
        f"model {ref!r}: no such directory and no shipped model of that name "
        f"(shipped: {', '.join(shipped_models()) or 'none; run `make models`'})"
    )


def load_classifier(ref: str | Path, *, device: str = "auto") -> Classifier:
    directory = resolve_model(ref)
    card = ModelCard.load(directory)
    if card.kind not in KINDS:
        raise ValueError(f"{directory}: unknown classifier kind {card.kind!r} (known: {', '.join(KINDS)})")
    return KINDS[card.kind].load(directory, card, device=device)
