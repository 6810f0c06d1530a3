# Two commands for a fresh machine (Python 3.10+ and make; only the package registries needed):
#   make demo   – create .venv, install, run the batch job on the synthetic demo → outputs/demo/
#   make test   – create .venv, install with test extras (and Chromium for the map tests), run the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test install install-test browser notebook clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

browser:
	bash scripts/ensure_browser.sh

demo: $(VENV)/.installed
	$(PY) -m coverage run studies/demo.yaml

test: $(VENV)/.installed-test browser
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) outputs/demo outputs/test_*
