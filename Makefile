# Two entry points: `make demo` (main job end to end, embedded store) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
WORK ?= work
STAMP := $(VENV)/.installed

.PHONY: venv demo test lightfm results clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned, so that nothing pulls the CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py --data $(DATA) --work $(WORK)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# optional: the LightFM baseline (its PyPI source needs a one-line patch to build; see the script)
lightfm: $(STAMP)
	PY=$(BIN)/python bash scripts/install_lightfm.sh

# regenerate the README results tables (all baselines + fusion on both datasets)
results: $(STAMP)
	PY=$(BIN)/python bash scripts/eval_results.sh

clean:
	rm -rf $(WORK)
