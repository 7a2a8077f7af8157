# The two commands a newcomer needs: `make demo` (the main job) and `make test` (everything).
# Both work on a fresh machine with only Python 3.10+ and make: they build .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed-stamp
PYTEST_FLAGS ?=

.PHONY: install browser services lint typecheck test test-unit test-integration test-e2e test-distributed test-soak test-failover ci demo emulator bench clean

# The provider and, as its own distribution, the emulator (./fnf-emulator), both editable.
$(STAMP): pyproject.toml fnf-emulator/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --python $(PY) -e './fnf-emulator[tls]' -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium (Debian's package) for the emulator console test.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the console page test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# PostgreSQL and Redis (Debian's packages) for the distributed run and the soak; the stack starts
# private instances of them on free ports, never the system's own.
services:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1 || { \
	  echo "Installing Debian's postgresql and redis-server"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null; }

lint: install
	$(VENV)/bin/ruff check airflow_provider_fnf fnf-emulator dags_examples tools tests bench

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
	$(PY) -m pytest tests/unit tests/integration tests/e2e $(PYTEST_FLAGS)

# The end-to-end tests again, on CeleryExecutor with Redis and PostgreSQL: two Celery workers and
# two triggerers, each a process of its own.
test-distributed: install services
	FNF_E2E_TOPOLOGY=distributed $(PY) -m pytest tests/e2e $(PYTEST_FLAGS)

# 500 executions while the emulators inject faults, restart, and Airflow loses a task and a triggerer.
test-soak: install services
	$(PY) -m pytest tests/soak/test_soak_faults.py $(PYTEST_FLAGS)

# 200 executions on the distributed topology while the scheduler is killed, the metadata database
# restarts and the triggerer holding a watcher is killed (~5 min).
test-failover: install services
	$(PY) -m pytest tests/soak/test_failover.py $(PYTEST_FLAGS)

# What CI runs on a fresh clone: everything above.
ci: test test-soak test-failover test-distributed

demo: install
	$(PY) -m tools.local_stack.demo $(DEMO_ARGS)

emulator: install
	$(PY) -m fnf_emulator $(EMULATOR_ARGS)

bench: install
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache *.egg-info
