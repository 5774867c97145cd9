"""The stages a config may name, handed by the CLI to the config loader. Listed explicitly (no import side
effects) so the set is easy to read; adding a stage is one line here."""

from stages.decontaminate import Decontaminate
from stages.dedup import ExactDedup, MinHashDedup, SimHashDedup
from stages.export import Export
from stages.heuristics import Heuristics
from stages.ingest.stage import Ingest
from stages.langid import LangId
from stages.line_clean import LineClean
from stages.line_dedup import LineDedup
from stages.min_length import MinLength
from stages.normalize import Normalize
from stages.pii import Pii
from stages.quality import Quality
from stages.safety import Safety
from stages.semantic_dedup import SemanticDedup
from stages.url_filter import UrlFilter
from stages.weights import Weights

STAGES = {
    cls.name: cls
    for cls in (
        Ingest,
        UrlFilter,
        Normalize,
        MinLength,
        LangId,
        LineClean,
        LineDedup,
        Heuristics,
        Pii,
        ExactDedup,
        MinHashDedup,
        SimHashDedup,
        SemanticDedup,
        Decontaminate,
        Quality,
        Safety,
        Weights,
        Export,
    )
}
