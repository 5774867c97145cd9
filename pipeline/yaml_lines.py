"""Config errors that name the YAML file, the line and the key path, with a suggestion for typos."""

from __future__ import annotations

import difflib
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """A configuration problem, already phrased for the user (file, line, key, fix)."""


class LineIndex:
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

    def place(self, where: str, loc: tuple[Any, ...]) -> str:
        """`file:line` for a key path (the file alone when the line is unknown)."""
        line = self.line_of(loc)
        return f"{where}:{line}" if line else f"{where}:?"


def dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")


def format_validation_error(
    err: ValidationError, model: type[BaseModel], where: str, index: LineIndex, prefix: tuple = ()
) -> str:
    """Turns pydantic's errors into one line each: `file:line: key.path: what is wrong (hint)`."""
    lines = []
    for item in err.errors():
        loc = prefix + tuple(item["loc"])
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
        lines.append(f"{place}: {dotted(loc)}: {message}")
    return "\n".join(lines)


def validate(model: type[BaseModel], data: Any, where: str, index: LineIndex, prefix: tuple = ()) -> BaseModel:
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
