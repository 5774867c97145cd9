"""winnow's machinery: configs, the stage contract, the Ray runner, shard bookkeeping and the CLI."""

__version__ = "0.1.0"
