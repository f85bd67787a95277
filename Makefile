# The two commands: `make run` (dashboard on the shipped demo data) and `make test`.
# Both create .venv and install requirements.txt on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: run test lint docs chromium prometheus bench demo-data clean extras live-demo

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# The dashboard on the shipped demo data and model: http://localhost:8501, on this machine only
# (ADDRESS=0.0.0.0 serves every interface: configure sign-in first, see the README's Access section)
PORT ?= 8501
ADDRESS ?= 127.0.0.1
run: $(STAMP)
	$(PY) -m ui.launch --server.port $(PORT) --server.address $(ADDRESS)

# The live service on a simulated fleet fed in accelerated time, with the dashboard in live mode:
# API at http://localhost:8000/docs, dashboard at http://localhost:8501. Options, e.g.
# make live-demo DEMO_ARGS="--servers 90 --incident disk_filling --seed 3 --speed 240"
# With a local Prometheus and Alertmanager (Debian's packages; node_exporter scrapes this machine
# too), the fleet in real time: make live-demo DEMO_ARGS=--prometheus
DEMO_ARGS ?=
live-demo: $(STAMP)
	$(PY) -m argus_core live-demo $(DEMO_ARGS)

# The optional classical baseline of `backtest` (statsforecast): see requirements-extras.txt
extras: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-extras.txt

lint: $(STAMP)
	$(PY) -m ruff check .

# The reference (docs/, MkDocs Material) built strictly: a broken link or a page left out fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

# The browser test needs Debian's Chromium: installed here when missing and we may (root),
# otherwise that one test is skipped with the reason.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the browser test"; \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } || \
	    echo "could not install chromium: the browser test will be skipped"; \
	  else echo "chromium is missing and cannot be installed here: the browser test will be skipped"; fi; }

# Debian's prometheus and prometheus-alertmanager for tests/test_prometheus.py (skipped, with the
# reason, where they cannot be installed).
prometheus:
	@{ command -v prometheus && command -v promtool && command -v prometheus-alertmanager; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing prometheus and prometheus-alertmanager for the Prometheus tests"; \
	    apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && \
	      apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null 2>&1; } || \
	    echo "could not install prometheus: the Prometheus tests will be skipped"; \
	  else echo "prometheus is missing and cannot be installed here: the Prometheus tests will be skipped"; fi; }

test: lint docs chromium prometheus
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/bench_generate.py
	$(PY) bench/bench_forecast.py

# Regenerates everything under demo_data/ (deterministic: same bytes every time) and the
# champion's backtest and anomaly detector on the demo fleet, which the pages show on a fresh checkout.
demo-data: $(STAMP)
	$(PY) -m argus_core demo-data --output demo_data/incident
	$(PY) -m argus_core generate --servers 90 --hours 72 --seed 7 --output demo_data/fleet
	$(PY) -m argus_core backtest --dataset demo_data/fleet --classical none --origins 1
	$(PY) -m argus_core anomaly fit --dataset demo_data/fleet

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
