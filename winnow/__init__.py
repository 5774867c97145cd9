"""The winnow application: the command line and the evaluation commands, which wire the stages
(`stages/`) and classifiers (`classifiers/`) into the machinery (`pipeline/`)."""
