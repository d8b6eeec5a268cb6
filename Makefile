# Two commands for a fresh machine: `make demo` and `make test`. `make bench` measures.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.mlward-installed

.PHONY: demo test lint bench clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch is pinned first: the CPU build lies on this machine's disk, and the extra's range
# (torch>=2.2) is then already satisfied, so pip never pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml $(VENV)/bin/activate
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[torch,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/build_demo.py demo
	@echo
	@echo '$$ mlward scan demo/'
	@$(VENV)/bin/mlward scan demo/; code=$$?; echo "(exit code $$code)"; test $$code -eq 1

test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n 2 -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	bash bench/run.sh

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
