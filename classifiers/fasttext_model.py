"""fastText classifiers: supervised training on labelled texts, optional quantisation, batched scores.

Labels are `__label__1` (positive) and `__label__0`. Prediction asks fastText for the top label only
and converts it to P(positive): with two labels under softmax, P(1) = 1 - P(0), so the top-1 answer
carries the full distribution at half the cost of k=2.

fastText's trainer reads uninitialised memory with fewer than 10 threads and can fail with
"Encountered NaN" on small machines; training therefore always asks for at least 10 threads (it
oversubscribes a small machine harmlessly).

Chinese text is read as jieba words by default (`tokens="words"`); `tokens="chars"` reads it as single Han
characters instead (word n-grams then span characters), which does not depend on jieba's dictionary: slang,
homophones and variant spellings that jieba cuts wrongly still share characters with what was learned.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from classifiers.base import Classifier, ModelCard
from classifiers.text_prep import prepare

_HAN = re.compile(r"([\u3400-\u9fff\uf900-\ufaff])")
TOKENS = ("words", "chars")

MIN_TRAIN_THREADS = 10
POSITIVE = "__label__1"
DEFAULT_PARAMS = dict(epoch=10, lr=0.5, dim=50, wordNgrams=2, minn=0, maxn=0, minCount=2, loss="softmax")


def _quiet_load(path: str):
    import fasttext

    with contextlib.redirect_stderr(io.StringIO()):  # fastText prints a deprecation notice on every load
        return fasttext.load_model(path)


def _lines(texts, lang: str | None, max_chars: int | None, tokens: str, line_end: str = "") -> list[str]:
    """The text as fastText reads it: `prepare`'s words, or for `tokens="chars"` Chinese as single characters."""
    if tokens not in TOKENS:
        raise ValueError(f"unknown fastText tokens {tokens!r} (choose from {', '.join(TOKENS)})")
    if tokens == "words" or lang != "zh":
        return prepare(texts, lang, max_chars, line_end)
    return [" ".join(_HAN.sub(r" \1 ", t).split()) + line_end for t in prepare(texts, None, max_chars)]


class FastTextClassifier(Classifier):
    kind = "fasttext"

    def __init__(self, card: ModelCard, model):
        super().__init__(card)
        self.model = model
        self.max_chars = card.settings.get("max_chars")
        self.tokens = card.settings.get("tokens", "words")

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[int],
        *,
        task: str,
        lang: str | None,
        positive: str,
        quantize: bool = False,
        max_chars: int | None = 20_000,
        seed: int = 0,
        tokens: str = "words",
        **params,
    ) -> FastTextClassifier:
        import fasttext

        settings = {**DEFAULT_PARAMS, **params}
        prepared = _lines(texts, lang, max_chars, tokens)
        with tempfile.TemporaryDirectory(prefix="winnow-ft-") as tmp:
            path = os.path.join(tmp, "train.txt")
            with open(path, "w", encoding="utf-8") as f:
                for text, label in zip(prepared, labels):
                    f.write(f"__label__{int(label)} {text}\n")
            threads = max(MIN_TRAIN_THREADS, os.cpu_count() or 1)
            model = fasttext.train_supervised(input=path, thread=threads, verbose=0, seed=seed, **settings)
            if quantize:
                # retrain=True refits the pruned model; cutoff keeps the 100k most useful n-grams
                model.quantize(input=path, retrain=True, cutoff=100_000, qnorm=True, thread=threads, verbose=0)
        card = ModelCard(
            kind=cls.kind,
            task=task,
            lang=lang,
            positive=positive,
            settings={
                "params": settings,
                "quantized": quantize,
                "max_chars": max_chars,
                "tokens": tokens,
                "file": "model.ftz" if quantize else "model.bin",
            },
        )
        return cls(card, model)

    def predict(self, texts) -> np.ndarray:
        """`texts`: a list of strings or an Arrow string array."""
        if len(texts) == 0:
            return np.empty(0, np.float32)
        # prepare() guarantees one line per text and adds the line end fastText's own predict() would
        # add after checking each text for line breaks; calling the batch predictor directly skips that pass.
        lines = _lines(texts, self.card.lang, self.max_chars, self.tokens, line_end="\n")
        labels, probs = self.model.f.multilinePredict(
            lines, 1, 0.0, "strict"
        )  # threshold 0: always one label per line
        top = np.concatenate(probs).astype(np.float64)
        is_pos = np.array([lab[0] for lab in labels]) == POSITIVE
        return np.clip(np.where(is_pos, top, 1.0 - top), 0.0, 1.0).astype(np.float32)

    def save(self, directory: str | Path) -> None:
        out = self._start_save(directory)
        self.model.save_model(str(out / self.card.settings["file"]))

    @classmethod
    def load(cls, directory: Path, card: ModelCard, *, device: str = "auto") -> FastTextClassifier:
        return cls(card, _quiet_load(str(directory / card.settings["file"])))
