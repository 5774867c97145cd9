"""The export stage: final shuffled shards and the dataset card beside them."""

from stages.export.shuffle import DEFAULT_COLUMNS
from stages.export.stage import REQUIRED_COLUMNS, Export, ExportConfig

__all__ = ["DEFAULT_COLUMNS", "REQUIRED_COLUMNS", "Export", "ExportConfig"]
