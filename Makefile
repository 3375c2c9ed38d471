# Fresh-machine entry points (see README): `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BB = $(VENV)/bin/brainbench

.PHONY: install setup demo test unit

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Builds llama-server from the pinned llama.cpp source and fetches brain-small (cached after the first time).
setup: install
	$(BB) setup --brain brain-small

demo: setup
	$(BB) demo

test: setup
	$(VENV)/bin/python -m pytest -q -rs

unit: install
	$(VENV)/bin/python -m pytest -q -m "not integration"
