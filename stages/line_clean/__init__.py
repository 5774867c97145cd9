"""Line-level cleaning: boilerplate lines out, article text kept (rules in `rules`, the stage in `stage`)."""

from stages.line_clean.stage import LineClean, LineCleanConfig

__all__ = ["LineClean", "LineCleanConfig"]
