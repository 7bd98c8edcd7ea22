# The two set-up commands of the README. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= placewright-out

.PHONY: example test lint bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)

# The light install: the classical pipeline and S3 publishing. No torch, no test tools.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Test tools: pytest, ruff, moto's S3 server, prefect-dask, playwright.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# The browser the UI tests drive: Debian's Chromium (playwright's own download cannot reach its host here).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; \
	else echo "the UI tests need Chromium: apt-get install -y chromium (as root)" >&2; exit 1; fi

# The AI backends (the tests build tiny models for each). torch first, pinned to a pair that
# imports together (plain "torch" can pull another multi-GB CUDA build); override TORCH to choose.
# The default pair is a CUDA build: ~5.5 GB in the venv, ~7 GB for the whole extra. Before installing it, one
# line says when the disk cannot hold it (pip would fail minutes later with "No space left on device").
TORCH ?= torch==2.14.1 torchvision==0.29.1
AI_INSTALL_GB ?= 7
$(VENV)/.installed-ai: $(VENV)/.installed-test
	@$(BIN)/python -c 'import importlib.util, shutil, sys; \
	free = shutil.disk_usage("$(VENV)").free / 2**30; \
	short = importlib.util.find_spec("torch") is None and free < $(AI_INSTALL_GB); \
	sys.exit(f"the AI extra (torch, diffusers, transformers) needs about $(AI_INSTALL_GB) GB free where $(VENV) is; " \
	f"{free:.1f} GB is free. Free some space, or set TORCH to a smaller build and AI_INSTALL_GB to its size" if short else 0)'
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[test,ai]"
	touch $@

# Run the pipeline on the bundled example: two scenes (no GPU, no server). The cut-out runs on u2netp
# (4.6 MB) and the label is guarded and checked with PP-OCRv4 (15.6 MB): both Apache-2.0, checksum-verified,
# fetched once into models_dir. Offline, the run goes on without them (GrabCut, no label check).
example: $(VENV)/.installed
	-$(BIN)/placewright models pull u2netp pp-ocrv4
	$(BIN)/placewright run examples/olive-oil-bottle.jpg \
		--prompt "sunlit marble kitchen counter, morning light" \
		--prompt "rustic wooden table, warm evening light" \
		--out $(OUT)

test: $(VENV)/.installed-ai $(CHROMIUM)
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_publish.py
	$(BIN)/python benchmarks/bench_service.py
	$(BIN)/python benchmarks/bench_speed.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
