"""C4 rules (Raffel et al. 2020, section 2.2; the reference code is TensorFlow Datasets' `c4_utils`),
as document filters only.

C4 edits pages: it deletes each line that does not end in terminal punctuation (or ends in `...`),
has fewer than 3 words, mentions "javascript", or holds a cookie / privacy / terms-of-use phrase,
then drops the page if fewer than 5 sentences are left, or if a kept line holds "lorem ipsum" or a
curly bracket. winnow never edits text in this stage: every stage after ingest only adds columns and
keeps or drops whole rows (DESIGN.md), so that a document keeps one text (its exact-dedup hash, its
id, its rejects row) and a line deletion cannot silently glue unrelated sentences together. Instead:
- `c4-lorem-ipsum`, `c4-curly-bracket`, `c4-too-few-sentences` are C4's page-level rules,
  evaluated exactly on the lines C4 would have kept (in C4's order: lorem ipsum is checked before
  the javascript line removal, the curly bracket before the policy line removal);
- `c4-removed-lines` drops a page when C4's line removal would delete more than a share of its
  characters; the share C4 would delete is recorded (`h_c4_removed_frac`) so that a later,
  explicit editing stage can act on it. The threshold is winnow's (C4 has none): see docs.
Sentences are counted as runs of sentence-ending punctuation followed by a space or the line end
(Chinese: any `。！？!?`, no space needed), at least one per kept line: a cheap stand-in for NLTK's
punkt that C4 used. For Chinese, words per line are jieba words and the terminal punctuation is
the profile's (`。！？…」』”` and the ASCII set).
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from stages.rules import Rule, chinese

RULES = [
    Rule("c4-lorem-ipsum", "h_c4_lorem_ipsum", "max", "c4_lorem_ipsum"),
    Rule("c4-curly-bracket", "h_c4_curly_bracket", "max", "c4_curly_bracket"),
    Rule("c4-too-few-sentences", "h_c4_sentences", "min", "c4_min_sentences"),
    Rule("c4-removed-lines", "h_c4_removed_frac", "max", "c4_max_removed_frac"),
]

_CITATION = r"\[\d*\]|\[edit\]|\[citation needed\]"
_POLICY = r"(?i)terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies"
_POLICY_ZH = _POLICY + r"|隐私政策|隐私条款|使用条款|服务条款|用户协议|免责声明"
_END_EN = r"[.?!\"']$"
_END_ZH = r"[.?!\"'。！？…」』”’）)]$"
_SENTENCES_EN = r"[.?!]+[\"'”’)]*(\s|$)"


def signals(view) -> dict[str, np.ndarray]:
    n = view.n
    line_zh = view.is_zh[view.line_doc]
    lines = pc.replace_substring_regex(view.lines, _CITATION, "")

    def both(en_value, zh_value):
        return np.where(line_zh, zh_value, en_value)

    def match(pattern: str, target=lines) -> np.ndarray:
        return pc.match_substring_regex(target, pattern).to_numpy(zero_copy_only=False)

    words_per_line = np.bincount(view.tok_line, minlength=len(view.line_doc))
    long_word = np.bincount(view.tok_line[view.raw_len > 1000], minlength=len(view.line_doc)) > 0
    # C4 deletes lines ending in "..." (truncated snippets); the last line of a document that trails off
    # is a cut teaser, not a snippet list, so it keeps its terminal status (same reasoning as Gopher's rule).
    single_line_doc = (view.n_lines == 1)[view.line_doc]
    ellipsis_cut = both(match(r"\.\.\.$"), False) & ~single_line_doc
    terminal = (both(match(_END_EN), match(_END_ZH)) & ~ellipsis_cut) | view.stops_terminate
    min_words = view.param("c4_min_words_per_line")[view.line_doc]
    javascript = pc.match_substring(lines, "javascript", ignore_case=True).to_numpy(zero_copy_only=False)
    policy = both(match(_POLICY), match(_POLICY_ZH))

    # C4's order: long word, terminal punctuation, min words -> lorem ipsum -> javascript -> curly -> policy
    passed = ~long_word & terminal & (words_per_line >= min_words)
    lorem = passed & pc.match_substring(lines, "lorem ipsum", ignore_case=True).to_numpy(zero_copy_only=False)
    passed_js = passed & ~javascript
    curly = passed_js & match(r"(^|[^-])\{")  # MediaWiki's -{zh-hans:...}- language markup is not code
    kept = passed_js & ~policy

    sentences = both(
        pc.count_substring_regex(lines, _SENTENCES_EN).to_numpy(zero_copy_only=False),
        pc.count_substring_regex(lines, chinese.SENTENCE_END).to_numpy(zero_copy_only=False),
    )
    sentences = np.maximum(sentences, 1)
    removed_chars = np.bincount(view.line_doc[~kept], weights=view.line_len[~kept], minlength=n)
    line_chars = np.bincount(view.line_doc, weights=view.line_len, minlength=n)
    removed = np.zeros(n)
    np.divide(removed_chars, line_chars, out=removed, where=line_chars > 0)
    return {
        "h_c4_lorem_ipsum": (np.bincount(view.line_doc[lorem], minlength=n) > 0).astype(np.int32),
        "h_c4_curly_bracket": (np.bincount(view.line_doc[curly], minlength=n) > 0).astype(np.int32),
        "h_c4_sentences": np.bincount(view.line_doc[kept], weights=sentences[kept], minlength=n).astype(np.int64),
        "h_c4_removed_frac": removed,
        "h_c4_javascript_lines": np.bincount(view.line_doc[javascript], minlength=n).astype(np.int32),
        "h_c4_policy_lines": np.bincount(view.line_doc[policy], minlength=n).astype(np.int32),
    }
