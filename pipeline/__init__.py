"""winnow's machinery: configs, the stage contract, the Ray runner, phases, shard bookkeeping and run layout.

It imports nothing from `stages/` or `classifiers/`: the application (`winnow/`) hands it the registry of stages.
"""

__version__ = "0.1.0"
