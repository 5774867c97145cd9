"""Chinese: words from jieba, the share of Chinese characters, and the spam of the Chinese web.

- Words: jieba segments each line of a `zh` document once (with `HMM=False` by default: jieba's
  dictionary-only mode, about 1.7x faster on the reference paragraphs and good enough for counts and
  repetition; the HMM only guesses unknown names). Whitespace tokens are dropped. Documents of other
  languages are never segmented.
- Chinese-character ratio: Han characters per non-space character, columnar (RE2 `\\p{Han}`).
- Gambling / lottery spam: `h_spam_hits` = 2 x hits of `data/lexicons/zh-gambling-brands.txt`
  (casino brands, bonus offers, private lotteries: never in ordinary text) + hits of
  `zh-gambling-terms.txt` (lottery, betting words that news and comments also use).
- Invoice-selling spam (代开发票): `h_invoice_hits` = hits of `data/lexicons/zh-invoice-spam.txt`
  (an offer to issue VAT or ordinary invoices for a fee), the commonest Chinese e-mail spam.
- Contact solicitations: mobile and hotline numbers, QQ numbers, WeChat / "add V" requests.
- Keyword stuffing: the share of a document's words taken by its most frequent content word
  (two characters or more, not a function word): SEO pages repeat the keyword they target.
- Traditional to Simplified (OpenCC `t2s`, optional, off by default) changes only what the rules
  see, never the stored text: the jieba dictionary and the lexicons are Simplified, so Traditional
  text would segment worse and miss spam phrases; but the conversion is lossy (one Traditional form
  per Simplified one is a guess) and would change bytes that dedup, ids and the training data rely on.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stages.rules import Rule

LEXICONS = Path(__file__).resolve().parents[2] / "data" / "lexicons"

# Contact solicitations. Mobile numbers (11 digits starting 13-19), hotline numbers (400/800 and
# area-code numbers), QQ numbers, and WeChat requests ("加微信", "微信号：", "加V", "V信" and the
# homophones used to dodge filters). "微信" alone is a product name and is not a hit.
CONTACT = "|".join(
    [
        r"(?:^|[^0-9])1[3-9][0-9]{9}(?:[^0-9]|$)",
        r"[48]00[- ]?[0-9]{3}[- ]?[0-9]{4}",
        r"(?:^|[^0-9])0[1-9][0-9]{1,2}-[0-9]{7,8}",
        r"(?i:qq)\s*(?:号|群)?\s*[:：]?\s*[1-9][0-9]{4,10}",
        r"加\s*(?:微信|微|[vV]|薇|威|卫)",
        r"(?:微信|薇信|威信|[vV]信|[vV][xX]|[wW][xX])\s*(?:号)?\s*[:：]",
        r"(?:咨询|联系|客服|服务|订购|招商)(?:电话|热线|微信|QQ)",
    ]
)

# A sentence end in Chinese text: a full-width stop, or an ASCII one followed by a space, a Han
# character or the end (scientific Chinese often uses ASCII `,` and `.`: "...作用.结合地质...").
SENTENCE_END = r"[。！？!?]+[”’」』）)]*|\.[\"'”’)]*(\s|$|\p{Han}|[A-Z])"

# Tried right after junk: a spam page is named as spam even when it is also short.
RULES = [
    Rule("zh-char-ratio", "h_zh_char_ratio", "min", "zh_min_char_ratio"),
    Rule("zh-spam-gambling", "h_spam_hits", "max", "zh_max_spam_hits"),
    Rule("zh-spam-invoice", "h_invoice_hits", "max", "zh_max_invoice_hits"),
    Rule("zh-spam-contact", "h_contact_hits", "max", "zh_max_contact_hits"),
]
# Tried last: a word share is noisy on short documents, which the Gopher word count names first.
LATE_RULES = [
    Rule("zh-keyword-stuffing", "h_top_word_share", "max", "zh_max_top_word_share"),
]


SPAM_LEXICONS = ("zh-gambling-brands.txt", "zh-gambling-terms.txt", "zh-invoice-spam.txt")


def spam_patterns() -> tuple[str, str, str]:
    """The gambling brand and term lexicons and the invoice one, each as one RE2 alternation."""
    return tuple("|".join(read_lexicon(name)) for name in SPAM_LEXICONS)


def read_lexicon(name: str) -> list[str]:
    """One entry a line; blank lines and lines starting with # are skipped."""
    lines = (LEXICONS / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


class Segmenter:
    """jieba, loaded once per worker (the dictionary takes about a second to build)."""

    def __init__(self, hmm: bool):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._tokenizer = jieba.Tokenizer()
        self._tokenizer.initialize()
        self.hmm = hmm

    def cut_lines(self, lines: list[str]) -> tuple[list[str], np.ndarray]:
        """Tokens of every line, and how many each line has (whitespace tokens left out)."""
        cut = self._tokenizer.lcut
        tokens: list[str] = []
        counts = np.zeros(len(lines), dtype=np.int64)
        for i, line in enumerate(lines):
            words = [w for w in cut(line, HMM=self.hmm) if not w.isspace()]
            counts[i] = len(words)
            tokens.extend(words)
        return tokens, counts


class TraditionalToSimplified:
    """OpenCC `t2s`, for the rules' view of zh documents only."""

    def __init__(self):
        try:
            import opencc
        except ImportError:
            raise RuntimeError(
                "heuristics: t2s is on but OpenCC is not installed; `pip install opencc==1.4.2` (or set t2s: false)"
            ) from None
        self._converter = opencc.OpenCC("t2s")

    def convert(self, texts: list[str]) -> list[str]:
        return [self._converter.convert(t) for t in texts]


def signals(view) -> dict[str, np.ndarray]:
    han = view.han
    ratio = np.zeros(view.n)
    np.divide(han, view.nonspace, out=ratio, where=view.nonspace > 0)
    brands, terms, invoice = (
        pc.count_substring_regex(view.text, p).to_numpy(zero_copy_only=False) for p in view.spam_patterns
    )
    spam = 2 * brands + terms
    contact = pc.count_substring_regex(view.text, CONTACT).to_numpy(zero_copy_only=False)
    return {
        "h_zh_char_ratio": ratio,
        "h_spam_hits": spam.astype(np.int32),
        "h_invoice_hits": invoice.astype(np.int32),
        "h_contact_hits": contact.astype(np.int32),
        "h_top_word_share": _top_word_share(view),
    }


def _top_word_share(view) -> np.ndarray:
    """Per document: count of its most frequent content word / its word count."""
    share = np.zeros(view.n)
    content = view.is_word & (view.norm_len >= 2) & ~view.is_stop
    if not content.any():
        return share
    doc = view.tok_doc[content].astype(np.uint64)
    keys = (doc << np.uint64(32)) | view.norm_id[content].astype(np.uint64)
    uniq, counts = np.unique(keys, return_counts=True)
    top = np.zeros(view.n, dtype=np.int64)
    np.maximum.at(top, (uniq >> np.uint64(32)).astype(np.int64), counts)
    np.divide(top, view.n_words, out=share, where=view.n_words > 0)
    return share


def han_count(text: pa.Array) -> np.ndarray:
    return pc.count_substring_regex(text, r"\p{Han}").to_numpy(zero_copy_only=False).astype(np.int64)


def kana_count(text: pa.Array) -> np.ndarray:
    return (
        pc.count_substring_regex(text, r"[\p{Hiragana}\p{Katakana}]").to_numpy(zero_copy_only=False).astype(np.int64)
    )
