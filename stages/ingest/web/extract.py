"""HTML to main text: a named extractor (trafilatura with a resiliparse fallback by default), guarded
against pages that would stall it.

Extractors, chosen by the ingest setting `ingest.extractor` (docs/benchmarks.md, "Extraction", has
each one's precision, recall, F1 and speed on 570 annotated pages):
- `trafilatura+resiliparse` (default): trafilatura 2.3.1 with its defaults; when it keeps less than
  half the tokens resiliparse's main-content pass keeps, resiliparse's text instead. trafilatura is
  the more precise of the two (its link-density and paragraph rules drop menus and teasers that
  resiliparse keeps), but on list-shaped pages (products, listings, docs) it sometimes keeps only a
  heading or nothing; then resiliparse is nearer the main text. The fallback runs resiliparse with
  `comments=False` (measured: +0.011 macro F1 on the Chinese pages, -0.001 on the English ones).
- `resiliparse`: `extract_plain_text(main_content=True)`, the former default: 12x faster, less
  precise.
- `trafilatura`: trafilatura alone, for comparison.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from resiliparse.extract.html2text import extract_plain_text  # 2 ms to import, so at the top

from stages.ingest.web.tokens import token_count

MAX_DEPTH = 3000  # deeper element nesting is refused: extraction time grows with the square of depth

# Elements that are void or close themselves implicitly, so their start tags add no depth.
_FLAT_ELEMENTS = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
    "param",
    "keygen",
    "p",
    "li",
    "td",
    "th",
    "tr",
    "dt",
    "dd",
    "option",
    "optgroup",
    "rb",
    "rt",
    "rp",
    "colgroup",
    "tbody",
    "thead",
    "tfoot",
    "!doctype",
}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)")


class ExtractionFailed(Exception):
    """The page was refused (nested too deep) or the extractor raised; the message says which."""


def nesting_depth(html: str) -> int:
    """An upper estimate of element nesting depth, from start and end tags (linear time).

    resiliparse's parser and main-content pass take time quadratic in depth (8,000 nested `<div>`s:
    1.4 s; 100,000: minutes), so a hostile or broken page could stall a worker. Real pages nest a few
    hundred deep at most (browsers stop nesting at 512)."""
    depth = deepest = 0
    for match in _TAG.finditer(html):
        name = match.group(2).lower()
        if name in _FLAT_ELEMENTS:
            continue
        if match.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def resiliparse_text(html: str) -> str:
    """resiliparse's main content (navigation, footers, sidebars removed): the former default."""
    return extract_plain_text(html, main_content=True)


def trafilatura_text(html: str) -> str:
    """trafilatura with its defaults (tables and comments kept, its own fallbacks on)."""
    import trafilatura  # 1.5 s to import: only where it is used

    return trafilatura.extract(html) or ""


FALLBACK_SHARE = 0.5  # trafilatura keeping less than this share of resiliparse's tokens missed main text


def trafilatura_resiliparse_text(html: str) -> str:
    """trafilatura, unless it keeps under FALLBACK_SHARE of resiliparse's tokens: then resiliparse."""
    precise = trafilatura_text(html)
    wide = extract_plain_text(html, main_content=True, comments=False)
    return precise if token_count(precise) >= FALLBACK_SHARE * token_count(wide) else wide


EXTRACTORS: dict[str, Callable[[str], str]] = {
    "trafilatura+resiliparse": trafilatura_resiliparse_text,
    "resiliparse": resiliparse_text,
    "trafilatura": trafilatura_text,
}
DEFAULT_EXTRACTOR = "trafilatura+resiliparse"


def extract_text(html: str, extractor: str = DEFAULT_EXTRACTOR) -> str:
    """Main text of a page by the named extractor, stripped (a byte-order mark too)."""
    return EXTRACTORS[extractor](html).strip().lstrip("\ufeff").strip()


def main_text(html: str, extractor: str = DEFAULT_EXTRACTOR) -> str:
    """extract_text, after refusing pages nested over MAX_DEPTH; raises ExtractionFailed with the reason."""
    if html.count("<") > MAX_DEPTH:  # only pages with that many tags can be that deep
        depth = nesting_depth(html)
        if depth > MAX_DEPTH:
            raise ExtractionFailed(
                f"elements nested about {depth} deep (over {MAX_DEPTH}); "
                "extraction time grows with the square of depth"
            )
    try:
        return extract_text(html, extractor)
    except Exception as err:  # one odd page must not end the file
        raise ExtractionFailed(f"{type(err).__name__}: {err}") from None
