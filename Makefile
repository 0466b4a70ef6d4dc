# Quick start: `make run` (the playground) and `make test` (the test suite).
# Both create .venv when it is missing. torch is pinned and installed first so that the
# CPU wheel is used and pip never resolves an unpinned torch (several GB of CUDA packages).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: run test bench setup clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sgdtui $(ARGS)

# Tests run on every core (pytest-xdist): most of the suite's time is Textual pilots waiting for
# the app to go idle between key presses, which overlaps well; work stealing evens out the long tests.
test: $(STAMP)
	$(PY) -m pytest -q -n auto --dist worksteal $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/engine.py
	$(PY) benchmarks/frame.py
	$(PY) benchmarks/mlp.py

clean:
	rm -rf $(VENV) build *.egg-info
