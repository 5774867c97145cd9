"""Word lists by category, matched with an Aho-Corasick automaton and scored by density.

A lexicon is a TSV of `category<TAB>term`. All terms go into one automaton (pyahocorasick), so a text
is scanned once whatever the number of terms. Latin-script terms match whole words only ("ass" does
not fire inside "class"); Chinese terms match anywhere, since Chinese has no spaces.

Score = min(1, matched characters / text characters / saturation): with the default saturation of
0.02, a text of which 2% is lexicon hits scores 1. One slur in a tweet saturates; one in a 5,000
character article scores about 0.05. That density, not a bare count, is what separates an abusive
post from a news report that quotes a word once.

Lexicons can be written by hand, taken from a package (better-profanity's list for English), or mined
from labelled data (`train`): words and character bigrams much more frequent in positive texts,
ranked by smoothed log-odds, kept when they occur at least `min_count` times with a positive share of
at least `min_precision`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from classifiers.base import Classifier, ModelCard
from classifiers.text_prep import _segmenter, as_list

LEXICON_FILE = "lexicon.tsv"
_LATIN = re.compile(r"[a-z0-9]")
_WORD_CHAR = re.compile(r"\w")


def read_tsv(path: str | Path) -> dict[str, str]:
    """term -> category; errors name the file and line."""
    terms: dict[str, str] = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip():
            raise ValueError(f"{path}:{lineno}: expected `category<TAB>term`, got {line[:60]!r}")
        terms.setdefault(parts[1].strip().lower(), parts[0].strip())
    return terms


def better_profanity_terms() -> dict[str, str]:
    """The English profanity list that ships inside the better-profanity package (MIT)."""
    text = resources.files("better_profanity").joinpath("profanity_wordlist.txt").read_text(encoding="utf-8")
    return {w.strip().lower(): "profanity" for w in text.splitlines() if w.strip()}


class LexiconClassifier(Classifier):
    kind = "lexicon"

    def __init__(self, card: ModelCard, terms: dict[str, str]):
        import ahocorasick

        super().__init__(card)
        if not terms:
            raise ValueError("a lexicon needs at least one term")
        self.terms = terms
        self.saturation = float(card.settings.get("saturation", 0.02))
        self.automaton = ahocorasick.Automaton()
        for term, category in terms.items():
            self.automaton.add_word(term, (len(term), category, bool(_LATIN.search(term))))
        self.automaton.make_automaton()

    def matches(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, category) of each hit; overlapping hits are all reported."""
        text = (text or "").lower()
        found = []
        for end, (length, category, whole_word) in self.automaton.iter(text):
            start = end - length + 1
            if whole_word and (
                (start > 0 and _WORD_CHAR.match(text[start - 1]))
                or (end + 1 < len(text) and _WORD_CHAR.match(text[end + 1]))
            ):
                continue
            found.append((start, end + 1, category))
        return found

    def score_one(self, text: str) -> tuple[float, list[str]]:
        hits = self.matches(text)
        if not hits:
            return 0.0, []
        covered = np.zeros(len((text or "").lower()), bool)
        for start, end, _ in hits:
            covered[start:end] = True
        density = covered.sum() / max(1, len(covered))
        return min(1.0, density / self.saturation), sorted({c for _, _, c in hits})

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        texts = as_list(texts)
        return np.fromiter((self.score_one(t)[0] for t in texts), np.float32, len(texts))

    def categories(self, texts: Sequence[str]) -> list[list[str]]:
        return [self.score_one(t)[1] for t in texts]

    @classmethod
    def from_terms(
        cls,
        terms: dict[str, str],
        *,
        task: str,
        lang: str | None,
        positive: str,
        saturation: float = 0.02,
        training: dict | None = None,
    ) -> LexiconClassifier:
        card = ModelCard(
            kind=cls.kind,
            task=task,
            lang=lang,
            positive=positive,
            settings={"saturation": saturation, "file": LEXICON_FILE, "terms": len(terms)},
            training=training or {},
        )
        return cls(card, terms)

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[int],
        *,
        task: str,
        lang: str | None,
        positive: str,
        base: dict[str, str] | None = None,
        min_count: int = 5,
        min_precision: float = 0.8,
        max_terms: int = 2000,
        saturation: float = 0.02,
    ) -> LexiconClassifier:
        """Mines terms from labelled data (see the module docstring), added to `base` terms."""
        mined = mine_terms(texts, labels, lang, min_count=min_count, min_precision=min_precision, max_terms=max_terms)
        terms = dict(base or {})
        for term in mined:
            terms.setdefault(term, "mined")
        return cls.from_terms(
            terms,
            task=task,
            lang=lang,
            positive=positive,
            saturation=saturation,
            training={
                "mined_terms": len(mined),
                "base_terms": len(base or {}),
                "min_count": min_count,
                "min_precision": min_precision,
            },
        )

    def save(self, directory: str | Path) -> None:
        out = self._start_save(directory)
        lines = [f"{cat}\t{term}" for term, cat in sorted(self.terms.items(), key=lambda kv: (kv[1], kv[0]))]
        (out / LEXICON_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, card: ModelCard, *, device: str = "auto") -> LexiconClassifier:
        return cls(card, read_tsv(directory / card.settings.get("file", LEXICON_FILE)))


def _units(text: str, lang: str | None) -> set[str]:
    """Candidate terms of one text: jieba words of 2+ characters for Chinese, words of 3+ letters otherwise."""
    text = (text or "").lower()
    if lang == "zh":
        return {w for w in _segmenter().lcut(text, HMM=False) if len(w) >= 2 and not w.isspace()}
    return set(re.findall(r"[a-z][a-z']{2,}", text))


def mine_terms(
    texts: Sequence[str],
    labels: Sequence[int],
    lang: str | None,
    *,
    min_count: int,
    min_precision: float,
    max_terms: int,
) -> list[str]:
    pos, neg = Counter(), Counter()
    for text, label in zip(texts, labels):
        (pos if int(label) == 1 else neg).update(_units(text, lang))
    n_pos, n_neg = max(1, sum(1 for y in labels if int(y) == 1)), max(1, sum(1 for y in labels if int(y) != 1))
    scored = []
    for term, p in pos.items():
        n = neg.get(term, 0)
        if p + n < min_count:
            continue
        # precision corrected for class balance: the share of the term's rate that comes from positives
        rate_p, rate_n = p / n_pos, n / n_neg
        if rate_p / (rate_p + rate_n) < min_precision:
            continue
        scored.append((math.log((p + 0.5) / n_pos) - math.log((n + 0.5) / n_neg), term))
    scored.sort(reverse=True)
    return [t for _, t in scored[:max_terms]]
