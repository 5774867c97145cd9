"""The pii stage: typed placeholders for personal data (detectors in `detectors.py`, the stage in `stage.py`)."""

from stages.pii.stage import Pii, PiiConfig

__all__ = ["Pii", "PiiConfig"]
