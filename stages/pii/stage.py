"""PII redaction: e-mail addresses, phone numbers, resident IDs, bank cards, IP addresses, QQ and WeChat
IDs and credentials in URLs become typed placeholders (`<EMAIL>`, `<PHONE>`, ...).

Placeholders rather than deletion: the sentence around them stays grammatical and a model learns that
"联系电话：<PHONE>" is where a number goes without learning anyone's number. Every replaced span goes to
`pii/removed/` with reason `pii:<type>` and its placeholder, so characters conserve.

Cost: one Arrow (RE2) pass per type over the whole column finds the documents that could hold a
candidate; only those are read into Python, and only the detectors whose prefilter matched run on
each. Documents left with fewer than `min_chars` characters of their own once the placeholders are
taken out (a contact card, a signature) are dropped as `pii-too-short`; untouched documents are never
dropped here, whatever their length (that is the length filter's job).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from pipeline.config import StrictModel
from pipeline.stage import MapStage, StageOutput, removed_spans
from stages.pii.detectors import KINDS, build_detectors, find_all

Kind = Literal[KINDS]  # type: ignore[valid-type]

DEFAULT_PLACEHOLDERS = {
    "email": "<EMAIL>",
    "phone": "<PHONE>",
    "id_number": "<ID_NUMBER>",
    "bank_card": "<BANK_CARD>",
    "ip_address": "<IP_ADDRESS>",
    "qq": "<QQ>",
    "wechat": "<WECHAT>",
    "url_credentials": "<URL_CREDENTIALS>",
}
# Reserved for documentation and testing (RFC 2606, RFC 6761): addresses there belong to no one.
RESERVED_DOMAINS = ["example.com", "example.org", "example.net", "example", "test", "invalid", "localhost"]


class PiiConfig(StrictModel):
    types: list[Kind] = Field(list(KINDS), description="Which kinds of personal data to find (all by default).")
    placeholders: dict[Kind, str] = Field(
        DEFAULT_PLACEHOLDERS, description="The text put in place of each kind; kinds left out keep their default."
    )
    allowed_email_domains: list[str] = Field(
        RESERVED_DOMAINS,
        description="E-mail addresses at these domains (or under them) are kept: the documentation "
        "domains by default, which name no one.",
    )
    keep_private_ips: bool = Field(
        True,
        description="Keep private, loopback, link-local and documentation IP addresses (192.168.1.1 names a "
        "router, not a person); false redacts every address.",
    )
    min_chars: int = Field(
        50,
        ge=0,
        description="A document with redactions left with fewer characters than this (placeholders and "
        "surrounding whitespace not counted) is dropped as `pii-too-short`; 50 as the length "
        "filter.",
    )
    mode: Literal["redact", "drop"] = Field(
        "redact",
        description="redact: placeholders; drop: reject every document holding personal data, as "
        "`pii:<first type found>`, text untouched.",
    )

    @field_validator("placeholders")
    @classmethod
    def _fill_placeholders(cls, value: dict) -> dict:
        return {**DEFAULT_PLACEHOLDERS, **value}


class Pii(MapStage):
    name = "pii"
    version = "pii_v1"
    Config = PiiConfig
    rewrites = True

    @classmethod
    def writes(cls, config: PiiConfig) -> set[str]:
        return {"pii_count"}

    def __init__(self, config: PiiConfig):
        super().__init__(config)
        self.detectors = build_detectors(
            list(config.types), tuple(config.allowed_email_domains), config.keep_private_ips
        )

    def __call__(self, table: pa.Table) -> StageOutput:
        n = table.num_rows
        text = table.column("text").combine_chunks() if n else pa.array([], pa.large_string())
        spans_by_row = self._find(text)
        counts = {d.kind: np.zeros(n, dtype=np.int64) for d in self.detectors}
        keep = np.ones(n, dtype=bool)
        reasons: list[str | None] = [None] * n
        rows = sorted(spans_by_row)
        new_texts: list[str] = []
        removed: dict[str, list] = {"rows": [], "spans": [], "reasons": [], "replacements": []}
        docs = text.take(pa.array(rows, pa.int64())).to_pylist() if rows else []
        for row, doc in zip(rows, docs, strict=True):
            spans = spans_by_row[row]
            for _, _, kind in spans:
                counts[kind][row] += 1
            if self.config.mode == "drop":
                keep[row], reasons[row] = False, f"pii:{spans[0][2]}"
                new_texts.append(doc)
                continue
            redacted, own_chars = self._redact(doc, spans)
            new_texts.append(redacted)
            for start, end, kind in spans:
                removed["rows"].append(row)
                removed["spans"].append(doc[start:end])
                removed["reasons"].append(f"pii:{kind}")
                removed["replacements"].append(self.config.placeholders[kind])
            if own_chars < self.config.min_chars:
                keep[row], reasons[row] = False, "pii-too-short"
        if rows:
            changed = np.zeros(n, dtype=bool)
            changed[rows] = True
            text = pc.replace_with_mask(text, pa.array(changed), pa.array(new_texts, text.type))
        total = sum(counts.values(), np.zeros(n, dtype=np.int64))
        table = table.set_column(table.schema.get_field_index("text"), "text", text)
        table = table.append_column("pii_count", pa.array(total.astype(np.int32), pa.int32()))
        spans_out = (
            removed_spans(removed["rows"], removed["spans"], removed["reasons"], removed["replacements"])
            if self.config.mode == "redact"
            else None
        )
        signals = {f"pii_{kind}": c for kind, c in counts.items()}
        signals["pii_count"] = total
        return StageOutput(table, keep, pa.array(reasons, pa.string()), signals, removed=spans_out)

    def _find(self, text: pa.Array) -> dict[int, list[tuple[int, int, str]]]:
        """Spans per row (rows with none left out), line by line: each detector's RE2 prefilter runs over
        every line of the batch at once, and Python reads only the lines it matched, with only the
        detectors that matched them. A 50 MB document costs its few candidate lines, not 50 MB of
        Python regex per detector. (A name and its number split over two lines are not joined.)"""
        if len(text) == 0:
            return {}
        lines = pc.split_pattern(pc.fill_null(text, ""), "\n")
        flat = pc.list_flatten(lines)
        masks = {d.kind: _matches(flat, d.prefilter) for d in self.detectors}
        hit = np.zeros(len(flat), dtype=bool)
        for mask in masks.values():
            hit |= mask
        picked = np.flatnonzero(hit)
        if picked.size == 0:
            return {}
        parents = pc.list_parent_indices(lines).to_numpy()
        width = pc.utf8_length(flat).to_numpy(zero_copy_only=False).astype(np.int64) + 1  # the line and its "\n"
        before = np.cumsum(width) - width
        first = lines.offsets.to_numpy()[:-1]
        line_start = before - before[first[parents]]
        found: dict[int, list[tuple[int, int, str]]] = {}
        for i, line in zip(picked.tolist(), flat.take(pa.array(picked)).to_pylist(), strict=True):
            detectors = [d for d in self.detectors if masks[d.kind][i]]
            spans = find_all(line, detectors)
            if spans:
                at = int(line_start[i])
                found.setdefault(int(parents[i]), []).extend((s + at, e + at, k) for s, e, k in spans)
        return found

    def find_spans(self, texts: list[str]) -> dict[int, list[tuple[int, int, str]]]:
        """The spans the stage would replace in each text (for evaluation)."""
        return self._find(pa.array(texts, pa.large_string()))

    def _redact(self, doc: str, spans: list[tuple[int, int, str]]) -> tuple[str, int]:
        """The text with placeholders, and how many characters of its own it keeps (trimmed)."""
        if not spans:
            return doc, len(doc.strip())
        pieces, own, at = [], [], 0
        for start, end, kind in spans:
            pieces += [doc[at:start], self.config.placeholders[kind]]
            own.append(doc[at:start])
            at = end
        pieces.append(doc[at:])
        own.append(doc[at:])
        return "".join(pieces), len("".join(own).strip())


def _matches(text: pa.Array, pattern: str) -> np.ndarray:
    if len(text) == 0:
        return np.zeros(0, dtype=bool)
    matched = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    return np.asarray(matched.to_numpy(zero_copy_only=False), dtype=bool)
