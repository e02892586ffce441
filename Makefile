# Two commands for users: `make serve` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO ?= data/demo/world.zarr
HOST ?= 127.0.0.1
PORT ?= 5006
# Keep cartopy's data (coastlines) inside the project: nothing is downloaded at run time.
export CARTOPY_DATA_DIR ?= $(CURDIR)/data/cartopy

.PHONY: serve test install demo lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Always asked: a no-op (< 1 s) when the store is complete and built by this generator
# version, a rebuild when the generator changed (make's file date cannot tell).
demo: | $(VENV)/.installed
	$(VENV)/bin/gapfill demo-data --out $(DEMO)

# PYTHONMALLOC=malloc: the memory of closed sessions goes back to the system (app/memory.py)
serve: install demo
	PYTHONMALLOC=malloc $(VENV)/bin/panel serve app --address $(HOST) --port $(PORT) --allow-websocket-origin $(HOST):$(PORT) --num-threads 2

test: install demo
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) data/demo .pytest_cache
