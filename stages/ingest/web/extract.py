"""HTML to main text: resiliparse with boilerplate removal, guarded against pages that would stall it.

resiliparse (`extract_plain_text(main_content=True)`) was chosen over trafilatura for being 14-18x
faster while keeping 92% of what trafilatura keeps; docs/ingest_web.md has the measurement.
"""

from __future__ import annotations

import re

from resiliparse.extract.html2text import extract_plain_text  # 2 ms to import, so at the top

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


def extract_text(html: str) -> str:
    """Main text of a page: resiliparse with boilerplate removal (navigation, footers, sidebars)."""
    return extract_plain_text(html, main_content=True).strip().lstrip("\ufeff").strip()


def main_text(html: str) -> str:
    """extract_text, after refusing pages nested over MAX_DEPTH; raises ExtractionFailed with the reason."""
    if html.count("<") > MAX_DEPTH:  # only pages with that many tags can be that deep
        depth = nesting_depth(html)
        if depth > MAX_DEPTH:
            raise ExtractionFailed(
                f"elements nested about {depth} deep (over {MAX_DEPTH}); "
                "extraction time grows with the square of depth"
            )
    try:
        return extract_text(html)
    except Exception as err:  # the extractor is C++ and robust; this keeps one odd page from ending the file
        raise ExtractionFailed(f"{type(err).__name__}: {err}") from None
