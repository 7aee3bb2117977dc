# The two commands a fresh machine needs: `make run` and `make test`.
# Both build .venv from requirements.txt when it is missing or older than the file.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test venv clean

venv: $(STAMP)

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

# migrate, then every Procfile process (WORKER_PROCESSES workers), restarted when one exits;
# an embedded Redis when REDIS_URL is unset (banatie/runner.py, docs/running.md).
run: $(STAMP)
	@mkdir -p var
	exec $(PY) -m banatie.runner --serve

# pytest against SQLite + the embedded Redis, or DATABASE_URL / REDIS_URL when set.
test: $(STAMP)
	@mkdir -p var
	exec $(PY) -m banatie.runner --no-dotenv -- $(PY) -m pytest $(PYTEST_ARGS)

# Any Django command with the settings, .env and var/secret_key of `make run`:
#   make manage ARGS="createsuperuser"    make manage ARGS="create_master_key"
.PHONY: manage
manage: $(STAMP)
	@mkdir -p var
	exec $(PY) -m banatie.runner -- $(PY) manage.py $(ARGS)

clean:
	rm -rf $(VENV) var

# Benchmarks (bench/README.md): a private stack, the Gemini emulator and a bounded load
# generator on 127.0.0.1; prints the figures and the targets of issue 13 and writes
# bench/results/latest.json (< 12 min).
.PHONY: bench
bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

# Several hosts on one machine (tests/test_multihost.py, issue 19, docs/deployment.md): a data
# host with private PostgreSQL and Redis, two web and two worker hosts in network namespaces,
# hosts killed under load. Needs root and iproute2 (skips with the reason otherwise); < 7 min.
.PHONY: test-multihost bench-multihost
test-multihost: $(STAMP)
	@mkdir -p var
	exec $(PY) -m banatie.runner --no-dotenv -- $(PY) -m pytest tests/test_multihost.py -m multihost -rs $(PYTEST_ARGS)

# The same scenarios; their [multihost] figures also go to bench/results/multihost.txt.
bench-multihost: $(STAMP)
	@mkdir -p var bench/results
	@rm -f bench/results/multihost.txt
	MULTIHOST_FIGURES=bench/results/multihost.txt \
	  $(PY) -m banatie.runner --no-dotenv -- $(PY) -m pytest tests/test_multihost.py -m multihost -rs $(PYTEST_ARGS)

# GET /api/usage over the figures of 1,000,000 jobs (bench/usage.py; a scratch SQLite
# database unless DATABASE_URL names an empty one).
.PHONY: bench-usage
bench-usage: $(STAMP)
	$(PY) -m bench.usage
