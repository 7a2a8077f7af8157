# The two commands a newcomer needs: `make demo` (the main job) and `make test` (everything).
# Both work on a fresh machine with only Python 3.10+ and make: they build .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed-stamp
PYTEST_FLAGS ?=

.PHONY: install browser lint typecheck test test-unit test-integration test-e2e demo emulator bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --python $(PY) -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium (Debian's package) for the emulator console test.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the console page test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(VENV)/bin/ruff check airflow_provider_fnf dags_examples tests bench

typecheck: install
	$(VENV)/bin/mypy

test-unit: install
	$(PY) -m pytest tests/unit $(PYTEST_FLAGS)

test-integration: install browser
	$(PY) -m pytest tests/integration $(PYTEST_FLAGS)

test-e2e: install
	$(PY) -m pytest tests/e2e $(PYTEST_FLAGS)

# Lint, types, then every test (unit, integration against the emulator, end to end on a real Airflow).
# pytest exits non-zero when it collects no test, so an empty run never passes.
test: install browser lint typecheck
	$(PY) -m pytest tests $(PYTEST_FLAGS)

demo: install
	$(PY) -m dags_examples.local_stack.demo $(DEMO_ARGS)

emulator: install
	$(PY) -m airflow_provider_fnf.emulator $(EMULATOR_ARGS)

bench: install
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache *.egg-info
