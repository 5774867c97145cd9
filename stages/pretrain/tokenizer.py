"""A byte-level BPE trained on the clean shards with Hugging Face `tokenizers`.

Choices that matter for pretraining: digits are split one by one (numbers tokenise consistently,
which helps arithmetic); the raw text is not normalised (the model sees what the shards hold); the
byte-level alphabet covers all 256 bytes, so any text encodes without an unknown token (byte
fallback); whitespace runs stay tokens of their own, which keeps code indentation cheap.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

EOS = "<|endoftext|>"


def new_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\p{N}"), behavior="isolated"),  # one digit per pre-token
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def train_tokenizer(texts: Iterable[str], vocab_size: int, path: str | None = None) -> Tokenizer:
    """Trains on `texts` (a sample of the shards); saves `tokenizer.json` to `path` when given."""
    tok = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    if path is not None:
        tok.save(path)
    return tok


def load_tokenizer(path: str) -> Tokenizer:
    return Tokenizer.from_file(path)


def eos_id(tok: Tokenizer) -> int:
    return tok.token_to_id(EOS)
