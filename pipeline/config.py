"""Typed pipeline configuration, loaded from YAML and checked before any work starts.

Every model rejects unknown keys, so a typo such as `min_char:` fails loudly instead of silently
falling back to a default. Errors name the file, the line and the dotted key path.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class StrictModel(BaseModel):
    """Base for every config block: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(ValueError):
    """A configuration problem, already phrased for the user (file, line, key, fix)."""


class InputSpec(StrictModel):
    path: str = Field(description="A file, a folder (searched recursively) or a glob of JSONL (.jsonl, .jsonl.gz, .jsonl.zst) or Parquet files.")
    source: str = Field(description="Corpus name written to the `source` column; used for mixing and per-source loss.")
    format: Literal["auto", "jsonl", "parquet", "warc", "wet"] = Field("auto", description="File format; `auto` goes by the file extension (.warc[.gz] and .wet[.gz] are web archives).")
    text_field: str = Field("text", description="Field or column holding the document text.")
    url_field: str | None = Field("url", description="Field holding the URL, if any.")
    id_field: str | None = Field("id", description="Field holding an existing document id; kept as it is when present.")
    lang_field: str | None = Field(None, description="Field holding a language code, if the input has one.")
    lang: str | None = Field(None, description="Language code for every document of this input (when known in advance).")


class IngestConfig(StrictModel):
    rows_per_shard: int = Field(5000, gt=0, description="Documents per output shard; a shard is the unit of work, resume and stats.")


class RayConfig(StrictModel):
    address: str | None = Field(None, description="Ray cluster address; empty means RAY_ADDRESS if set, else a local Ray started in-process.")
    num_cpus: int | None = Field(None, gt=0, description="CPUs for the embedded local Ray (default: all cores).")
    workers: int | None = Field(None, gt=0, description="Most shards processed at once per stage (default: as many as Ray schedules).")


class PipelineConfig(StrictModel):
    input: list[InputSpec] = Field(min_length=1, description="Raw inputs to ingest.")
    output: str = Field(description="Output folder; each stage writes NN_name/ inside it.")
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    batch_rows: int = Field(2048, gt=0, description="Rows per Arrow batch inside a shard (bounds worker memory).")
    stages: list[dict[str, Any]] = Field(default_factory=list, description="Stages in order, each `name:` plus its settings.")


def config_hash(payload: Any) -> str:
    """A short, stable digest of a JSON-able value (sorted keys), used to detect config changes."""
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class _LineIndex:
    """Maps a key path such as ("stages", 1, "min_chars") to its line in the YAML source."""

    def __init__(self, text: str):
        try:
            self.root = yaml.compose(text)
        except yaml.YAMLError:
            self.root = None

    def line_of(self, loc: tuple[Any, ...]) -> int | None:
        node, line = self.root, None
        for part in loc:
            if node is None:
                break
            line = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                match = [(k, v) for k, v in node.value if k.value == part]
                if not match:
                    return line
                key, node = match[0]
                line = key.start_mark.line + 1
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line


def format_validation_error(err: ValidationError, model: type[BaseModel], where: str, index: _LineIndex, prefix: tuple = ()) -> str:
    """Turns pydantic's errors into one line each: `file:line: key.path: what is wrong (hint)`."""
    lines = []
    for item in err.errors():
        loc = prefix + tuple(item["loc"])
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
        line = index.line_of(loc)
        place = f"{where}:{line}" if line else where
        if item["type"] == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'"
            parent = _model_at(model, tuple(item["loc"])[:-1])
            close = difflib.get_close_matches(str(loc[-1]), list(parent.model_fields) if parent else [], n=1)
            if close:
                message += f" (did you mean '{close[0]}'?)"
        elif item["type"] == "missing":
            message = "required key is missing"
        else:
            message = f"{item['msg']} (got {item.get('input')!r})"
        lines.append(f"{place}: {dotted}: {message}")
    return "\n".join(lines)


def _validate(model: type[StrictModel], data: Any, where: str, index: _LineIndex, prefix: tuple = ()) -> StrictModel:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, model, where, index, prefix)) from None


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """Follows a location path through nested models, to list the keys valid at that point."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return None
    return current


def load_config(path: str | os.PathLike, *, input_override: str | None = None, output_override: str | None = None) -> "ResolvedConfig":
    """Reads and validates a pipeline config, including every stage's own settings."""
    from stages import registry  # local import: stages depend on pipeline, not the reverse

    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found") from None
    index = _LineIndex(text)
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

    pipeline = _validate(PipelineConfig, data, where, index)
    for i, spec in enumerate(pipeline.input):
        if not expand_input(spec.path):
            line = index.line_of(("input", i, "path"))
            raise ConfigError(f"{where}:{line or '?'}: input[{i}].path: no such file, folder or glob match: {spec.path}")

    stages = []
    for i, entry in enumerate(pipeline.stages):
        line = index.line_of(("stages", i))
        if not isinstance(entry, dict) or "name" not in entry:
            raise ConfigError(f"{where}:{line or '?'}: stages[{i}]: each stage needs a `name:` key")
        name = entry["name"]
        if name not in registry.STAGES:
            close = difflib.get_close_matches(str(name), list(registry.STAGES), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(sorted(registry.STAGES))})"
            raise ConfigError(f"{where}:{line or '?'}: stages[{i}].name: unknown stage '{name}'{hint}")
        stage_cls = registry.STAGES[name]
        settings = {k: v for k, v in entry.items() if k != "name"}
        stage_config = _validate(stage_cls.Config, settings, where, index, prefix=("stages", i))
        stages.append(StageSpec(index=i + 1, name=name, stage_cls=stage_cls, config=stage_config))
        if getattr(stage_cls, "kind", "map") == "export" and i != len(pipeline.stages) - 1:
            raise ConfigError(f"{where}:{line or '?'}: stages[{i}]: `{name}` writes the final shards, so it must be the last stage")
    return ResolvedConfig(path=where, pipeline=pipeline, stages=stages)


def expand_input(path: str) -> list[str]:
    """Input files for a path: the file itself, every JSONL/Parquet file under a folder, or glob matches."""
    p = Path(path)
    if p.is_file():
        return [str(p)]
    if p.is_dir():
        candidates = sorted(str(f) for f in p.rglob("*") if f.is_file())
    else:
        import glob

        candidates = sorted(glob.glob(path, recursive=True))
    return [c for c in candidates if detect_format(c) is not None]


def detect_format(path: str) -> str | None:
    """`jsonl`, `parquet`, `warc` or `wet` by extension, None for files that are not inputs (READMEs, licences)."""
    name = path.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".ndjson")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".wet", ".wet.gz")):  # Common Crawl names them *.warc.wet.gz
        return "wet"
    if name.endswith((".warc", ".warc.gz")):
        return "warc"
    return None


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
        payload = {"version": self.version, "config": self.config.model_dump(mode="json")}
        fingerprint = getattr(self.stage_cls, "fingerprint", None)
        if fingerprint is not None:  # model stages: the model files' digest, so a replaced model redoes shards
            payload["models"] = fingerprint(self.config)
        return config_hash(payload)


class ResolvedConfig:
    """The validated pipeline plus its stage list, ready to run."""

    def __init__(self, path: str, pipeline: PipelineConfig, stages: list[StageSpec]):
        self.path = path
        self.pipeline = pipeline
        self.stages = stages

    def find_stage(self, name: str) -> StageSpec:
        """Looks a stage up by name (`normalize`) or folder (`01_normalize`)."""
        matches = [s for s in self.stages if name in (s.name, s.folder)]
        if not matches:
            known = ", ".join(s.folder for s in self.stages)
            raise ConfigError(f"{self.path}: no stage '{name}' in this config (stages: ingest, {known})")
        if len(matches) > 1:
            raise ConfigError(f"{self.path}: stage '{name}' appears {len(matches)} times; name it by folder ({', '.join(s.folder for s in matches)})")
        return matches[0]

    def to_json(self) -> dict:
        return {
            "config_file": self.path,
            "pipeline": self.pipeline.model_dump(mode="json", exclude={"stages"}),
            "stages": [{"name": s.name, "folder": s.folder, "version": s.version, **s.config.model_dump(mode="json")} for s in self.stages],
        }
