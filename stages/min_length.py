"""Length filter: drops documents too short to teach anything, and giant ones that are almost always
dumps, logs or extraction accidents (and that would stall a worker in every later stage).

Length is counted in Unicode characters of the normalised, trimmed text, so one Chinese character
counts as one. Defaults: 50 characters is roughly one short sentence of English or two of Chinese;
the upper bound of 1,000,000 characters keeps books but not multi-megabyte dumps.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from pipeline.config import StrictModel
from pipeline.stage import MapStage, StageOutput


class MinLengthConfig(StrictModel):
    min_chars: int = Field(
        50, ge=0, description="Documents with fewer characters (after trimming) are dropped as `too-short`."
    )
    max_chars: int = Field(1_000_000, gt=0, description="Documents with more characters are dropped as `too-long`.")

    @model_validator(mode="after")
    def _ordered(self):
        if self.max_chars <= self.min_chars:
            raise ValueError(f"max_chars ({self.max_chars}) must be above min_chars ({self.min_chars})")
        return self


class MinLength(MapStage):
    name = "min_length"
    version = "min_length_v1"
    Config = MinLengthConfig

    def __call__(self, table: pa.Table) -> StageOutput:
        chars = pc.utf8_length(pc.utf8_trim_whitespace(table.column("text"))).to_numpy(zero_copy_only=False)
        short = chars < self.config.min_chars
        long = chars > self.config.max_chars
        reasons = pa.array(np.where(short, "too-short", np.where(long, "too-long", None)), pa.string())
        return StageOutput(table, ~(short | long), reasons, signals={"chars": chars})
