# Two entry points: `make demo` (main job end to end, embedded store) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
WORK ?= work
STAMP := $(VENV)/.installed

.PHONY: venv demo demo-neo4j test test-browser neo4j neo4j-stop lightfm results clean

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

# The whole suite with a live Neo4j server: a throwaway one (fresh home, random password, ports 17687/17474)
# is started around pytest and stopped after it; without Java/Maven the live tests skip with the reason.
test: $(STAMP)
	$(BIN)/python scripts/neo4j_server.py run --bolt-port 17687 --http-port 17474 -- $(BIN)/python -m pytest -q --ignore=tests/browser

# Neo4j Browser in headless Chromium against a live server (screenshots in docs/); CI runs it after `test`.
test-browser: $(STAMP)
	bash scripts/install_browser.sh
	$(BIN)/python scripts/neo4j_server.py run --bolt-port 17687 --http-port 17474 -- $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser

# A Neo4j server for you (Bolt 127.0.0.1:7687, Browser http://127.0.0.1:7474): needs NEO4J_PASSWORD.
NEO4J_SERVER_DIR ?= $(WORK)/neo4j
neo4j: $(STAMP)
	$(BIN)/python scripts/neo4j_server.py start --home $(NEO4J_SERVER_DIR)

neo4j-stop:
	$(BIN)/python scripts/neo4j_server.py stop --home $(NEO4J_SERVER_DIR)

# The main job with Neo4j as the graph store: server, build, train from it, write back, Browser queries.
demo-neo4j: $(STAMP)
	$(BIN)/python scripts/demo_neo4j.py --data $(DATA) --work $(WORK) --server-dir $(NEO4J_SERVER_DIR)

# optional: the LightFM baseline (its PyPI source needs a one-line patch to build; see the script)
lightfm: $(STAMP)
	PY=$(BIN)/python bash scripts/install_lightfm.sh

# regenerate the results tables of docs/results.md (all baselines + fusion on both datasets)
results: $(STAMP)
	PY=$(BIN)/python bash scripts/eval_results.sh

clean:
	rm -rf $(WORK)
