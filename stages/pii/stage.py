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

DEFAULT_PLACEHOLDERS = {"email": "<EMAIL>", "phone": "<PHONE>", "id_number": "<ID_NUMBER>", "bank_card": "<BANK_CARD>",
                        "ip_address": "<IP_ADDRESS>", "qq": "<QQ>", "wechat": "<WECHAT>",
                        "url_credentials": "<URL_CREDENTIALS>"}
# Reserved for documentation and testing (RFC 2606, RFC 6761): addresses there belong to no one.
RESERVED_DOMAINS = ["example.com", "example.org", "example.net", "example", "test", "invalid", "localhost"]


class PiiConfig(StrictModel):
    types: list[Kind] = Field(list(KINDS), description="Which kinds of personal data to find (all by default).")
    placeholders: dict[Kind, str] = Field(DEFAULT_PLACEHOLDERS, description="The text put in place of each kind; kinds left out keep their default.")
    allowed_email_domains: list[str] = Field(RESERVED_DOMAINS, description="E-mail addresses at these domains (or under them) are kept: the documentation domains by default, which name no one.")
    keep_private_ips: bool = Field(True, description="Keep private, loopback, link-local and documentation IP addresses (192.168.1.1 names a router, not a person); false redacts every address.")
    min_chars: int = Field(50, ge=0, description="A document with redactions left with fewer characters than this (placeholders and surrounding whitespace not counted) is dropped as `pii-too-short`; 50 as the length filter.")
    mode: Literal["redact", "drop"] = Field("redact", description="redact: placeholders; drop: reject every document holding personal data, as `pii:<first type found>`, text untouched.")

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
        self.detectors = build_detectors(list(config.types), tuple(config.allowed_email_domains), config.keep_private_ips)

    def __call__(self, table: pa.Table) -> StageOutput:
        n = table.num_rows
        text = table.column("text").combine_chunks() if n else pa.array([], pa.large_string())
        masks = {d.kind: _matches(text, d.prefilter) for d in self.detectors}
        candidate = np.zeros(n, dtype=bool)
        for mask in masks.values():
            candidate |= mask
        rows = np.flatnonzero(candidate)
        counts = {d.kind: np.zeros(n, dtype=np.int64) for d in self.detectors}
        keep = np.ones(n, dtype=bool)
        reasons: list[str | None] = [None] * n
        new_texts: list[str] = []
        removed_rows: list[int] = []
        removed_text: list[str] = []
        removed_reasons: list[str] = []
        removed_with: list[str] = []
        for row, doc in zip(rows.tolist(), text.take(pa.array(rows, pa.int64())).to_pylist()):
            detectors = [d for d in self.detectors if masks[d.kind][row]]
            spans = find_all(doc, detectors) if doc else []
            for _, _, kind in spans:
                counts[kind][row] += 1
            if self.config.mode == "drop":
                if spans:
                    keep[row], reasons[row] = False, f"pii:{spans[0][2]}"
                new_texts.append(doc)
                continue
            redacted, own_chars = self._redact(doc, spans)
            new_texts.append(redacted)
            for start, end, kind in spans:
                removed_rows.append(row)
                removed_text.append(doc[start:end])
                removed_reasons.append(f"pii:{kind}")
                removed_with.append(self.config.placeholders[kind])
            if spans and own_chars < self.config.min_chars:
                keep[row], reasons[row] = False, "pii-too-short"
        if rows.size:
            text = pc.replace_with_mask(text, pa.array(candidate), pa.array(new_texts, text.type))
        total = sum(counts.values(), np.zeros(n, dtype=np.int64))
        table = table.set_column(table.schema.get_field_index("text"), "text", text)
        table = table.append_column("pii_count", pa.array(total.astype(np.int32), pa.int32()))
        removed = (removed_spans(removed_rows, removed_text, removed_reasons, removed_with)
                   if self.config.mode == "redact" else None)
        signals = {f"pii_{kind}": c for kind, c in counts.items()}
        signals["pii_count"] = total
        return StageOutput(table, keep, pa.array(reasons, pa.string()), signals, removed=removed)

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
    return np.asarray(pc.fill_null(pc.match_substring_regex(text, pattern), False).to_numpy(zero_copy_only=False), dtype=bool)
