"""Loading a pipeline config with every stage of this distribution (stages/registry.py)."""

from __future__ import annotations

import os

from pipeline.config import ResolvedConfig
from pipeline.config import load_config as load_with
from stages.registry import STAGES


def load_config(
    path: str | os.PathLike, *, input_override: str | None = None, output_override: str | None = None
) -> ResolvedConfig:
    return load_with(path, STAGES, input_override=input_override, output_override=output_override)
