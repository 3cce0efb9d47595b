# The two commands of the README: `make run` (demo on the embedded SQLite database) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test test-sqlite test-pg bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --no-cache-dir -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Install, migrate the SQLite file under instance/, load the demo, serve on http://127.0.0.1:5000
run: install
	$(BIN)/jointcall db upgrade
	$(BIN)/jointcall demo
	$(BIN)/jointcall run --host 127.0.0.1 --port 5000

# Install, start what the tests need (system packages, PostgreSQL) where it can, run everything
# on SQLite and again on PostgreSQL.
test: install
	bash scripts/test-services.sh
	bash scripts/run-tests.sh

bench: install
	$(BIN)/python -m benchmarks

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) instance .pytest_cache
