# The two commands: `make run` (dashboard on the shipped demo data) and `make test`.
# Both create .venv and install requirements.txt on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: run test lint bench demo-data clean

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# Until the dashboard lands, `make run` shows what the shipped data holds.
run: $(STAMP)
	$(PY) -m argus_core status --root demo_data

lint: $(STAMP)
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/bench_generate.py
	$(PY) bench/bench_forecast.py

# Regenerates everything under demo_data/ (deterministic: same bytes every time).
demo-data: $(STAMP)
	$(PY) -m argus_core demo-data --output demo_data/incident
	$(PY) -m argus_core generate --servers 90 --hours 72 --seed 7 --output demo_data/fleet

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
