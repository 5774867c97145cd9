"""The stages a config may name. Listed explicitly (no import side effects) so the set is easy to read."""

from stages.dedup import ExactDedup, MinHashDedup, SimHashDedup
from stages.export import Export
from stages.heuristics import Heuristics
from stages.langid import LangId
from stages.min_length import MinLength
from stages.normalize import Normalize
from stages.quality import Quality
from stages.safety import Safety
from stages.url_filter import UrlFilter
from stages.weights import Weights

STAGES = {cls.name: cls for cls in (UrlFilter, Normalize, MinLength, LangId, Heuristics, ExactDedup, MinHashDedup, SimHashDedup, Quality, Safety, Weights, Export)}
