"""Typed pipeline configuration, loaded from YAML and checked before any work starts.

Every model rejects unknown keys, so a typo such as `min_char:` fails loudly instead of silently
falling back to a default. Errors name the file, the line and the dotted key path. The stages a
config may name come from the registry the caller hands in (the CLI passes `stages.registry`), so
this module knows no stage; it checks each stage's settings with the stage's own `Config`, and the
columns each stage reads against those written before it.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from pipeline.yaml_lines import ConfigError, LineIndex, dotted, validate

INGEST = "ingest"


class StrictModel(BaseModel):
    """Base for every config block: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RayConfig(StrictModel):
    address: str | None = Field(
        None, description="Ray cluster address; empty means RAY_ADDRESS if set, else a local Ray started in-process."
    )
    num_cpus: int | None = Field(None, gt=0, description="CPUs for the embedded local Ray (default: all cores).")
    workers: int | None = Field(
        None, gt=0, description="Most shards processed at once per stage (default: as many as Ray schedules)."
    )


class PipelineConfig(StrictModel):
    # `input` and `ingest` are the ingest stage's settings: checked by its own Config, then kept here typed
    input: list[Any] = Field(min_length=1, description="Raw inputs to ingest (each checked by the ingest stage).")
    output: str = Field(description="Output folder; each stage writes NN_name/ inside it.")
    ingest: Any = Field(default_factory=dict, description="Settings of the ingest stage (stage 0).")
    ray: RayConfig = Field(default_factory=RayConfig)
    batch_rows: int = Field(2048, gt=0, description="Rows per Arrow batch inside a shard (bounds worker memory).")
    keep_intermediate: bool = Field(
        True,
        description="Keep every stage's kept rows. false: a stage's part-*.parquet files are deleted once the "
        "stage that reads them has committed (rejects, removed spans, sidecars and the final output stay); "
        "a later change to a stage then needs a fresh run from the raw inputs.",
    )
    stages: list[dict[str, Any]] = Field(
        default_factory=list, description="Stages in order, each `name:` plus its settings."
    )


def config_hash(payload: Any) -> str:
    """A short, stable digest of a JSON-able value (sorted keys), used to detect config changes."""
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class StageSpec:
    """One configured stage: its position (for the NN_ folder prefix), class and validated settings."""

    def __init__(self, index: int, name: str, stage_cls: type, config: StrictModel):
        self.index = index
        self.name = name
        self.stage_cls = stage_cls
        self.config = config

    @property
    def folder(self) -> str:
        return f"{self.index:02d}_{self.name}"

    @property
    def version(self) -> str:
        return self.stage_cls.version

    @functools.cached_property
    def config_hash(self) -> str:
        """Computed once per spec: for model stages it reads and hashes the model files."""
        return config_hash(self.stage_cls.hash_payload(self.config))


class ResolvedConfig:
    """The validated pipeline: the ingest stage (stage 0) and the configured stages, ready to run."""

    def __init__(self, path: str, pipeline: PipelineConfig, ingest: StageSpec, stages: list[StageSpec]):
        self.path = path
        self.pipeline = pipeline
        self.ingest = ingest
        self.stages = stages

    @property
    def all_stages(self) -> list[StageSpec]:
        return [self.ingest, *self.stages]

    def find_stage(self, name: str) -> StageSpec:
        """Looks a stage up by name (`normalize`) or folder (`01_normalize`); `ingest` is stage 0."""
        matches = [s for s in self.all_stages if name in (s.name, s.folder)]
        if not matches:
            known = ", ".join(s.folder for s in self.stages)
            raise ConfigError(f"{self.path}: no stage '{name}' in this config (stages: ingest, {known})")
        if len(matches) > 1:
            folders = ", ".join(s.folder for s in matches)
            raise ConfigError(
                f"{self.path}: stage '{name}' appears {len(matches)} times; name it by folder ({folders})"
            )
        return matches[0]

    def upstream(self, spec: StageSpec) -> StageSpec | None:
        before = [s for s in self.all_stages if s.index < spec.index]
        return before[-1] if before else None

    def to_json(self) -> dict:
        return {
            "config_file": self.path,
            "pipeline": self.pipeline.model_dump(mode="json", exclude={"stages"}),
            "stages": [
                {"name": s.name, "folder": s.folder, "version": s.version, **s.config.model_dump(mode="json")}
                for s in self.stages
            ],
        }


def load_config(
    path: str | os.PathLike,
    registry: dict[str, type],
    *,
    input_override: str | None = None,
    output_override: str | None = None,
) -> ResolvedConfig:
    """Reads and validates a pipeline config: the ingest stage from `input:`/`ingest:`, then every stage's
    own settings (stages looked up in `registry`, which also holds `ingest`), then the column contracts."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found") from None
    index = LineIndex(text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    if input_override is not None:
        source = Path(input_override.rstrip("/")).name.split(".")[0] or "input"
        data["input"] = [{"path": input_override, "source": source}]
    if output_override is not None:
        data["output"] = output_override

    pipeline = validate(PipelineConfig, data, where, index)
    ingest_cls = registry[INGEST]
    ingest_config = validate(ingest_cls.Config, {"input": pipeline.input, "ingest": pipeline.ingest}, where, index)
    _raise_problems(ingest_cls.check(ingest_config), where, index, ())
    ingest = StageSpec(index=0, name=INGEST, stage_cls=ingest_cls, config=ingest_config)
    pipeline = pipeline.model_copy(update={"input": list(ingest_config.input), "ingest": ingest_config.ingest})

    stages = []
    for i, entry in enumerate(pipeline.stages):
        place = index.place(where, ("stages", i))
        if not isinstance(entry, dict) or "name" not in entry:
            raise ConfigError(f"{place}: stages[{i}]: each stage needs a `name:` key")
        name = entry["name"]
        if name not in registry or name == INGEST:
            known = sorted(n for n in registry if n != INGEST)
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"
            raise ConfigError(f"{place}: stages[{i}].name: unknown stage '{name}'{hint}")
        stage_cls = registry[name]
        settings = {k: v for k, v in entry.items() if k != "name"}
        stage_config = validate(stage_cls.Config, settings, where, index, prefix=("stages", i))
        _raise_problems(stage_cls.check(stage_config), where, index, ("stages", i))
        stages.append(StageSpec(index=i + 1, name=name, stage_cls=stage_cls, config=stage_config))
        if stage_cls.writes_final and i != len(pipeline.stages) - 1:
            raise ConfigError(f"{place}: stages[{i}]: `{name}` writes the final shards, so it must be the last stage")
    check_columns([ingest, *stages], where, index)
    return ResolvedConfig(path=where, pipeline=pipeline, ingest=ingest, stages=stages)


def _raise_problems(problems: list[tuple[tuple, str]], where: str, index: LineIndex, prefix: tuple) -> None:
    """A stage's own checks, each (key path within its settings, message), as config errors."""
    if problems:
        lines = []
        for loc, message in problems:
            full = prefix + tuple(loc)
            lines.append(f"{index.place(where, full)}: {dotted(full)}: {message}")
        raise ConfigError("\n".join(lines))


def check_columns(specs: list[StageSpec], where: str, index: LineIndex) -> None:
    """Every column a stage reads must be written by an earlier stage (ingest writes the input's fields)."""
    available: set[str] = set()  # names, or patterns such as `h_*` for a family of signal columns
    for spec in specs:
        prefix = ("stages", spec.index - 1) if spec.index else ()
        for column, loc in spec.stage_cls.reads(spec.config).items():
            if any(fnmatch.fnmatchcase(column, pattern) for pattern in available):
                continue
            full = prefix + tuple(loc)
            close = difflib.get_close_matches(column, sorted(available), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"{index.place(where, full)}: {dotted(full) or spec.name}: column '{column}' is not written by "
                f"any earlier stage{hint}; columns by then: {', '.join(sorted(available))}"
            )
        available |= spec.stage_cls.writes(spec.config)
