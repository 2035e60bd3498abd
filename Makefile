# Week 13, deep generative models. The two commands: `make run` (the course, full profile) and `make test`.
PYTHON ?= python3
TORCH_INDEX ?=  # e.g. PyTorch's CPU wheel index, for a laptop without a GPU (see README)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
export PYTHONUNBUFFERED := 1

NOTEBOOKS := $(sort $(wildcard week13/*.ipynb)) $(sort $(wildcard notebooks/*.ipynb))
SCRIPTS := $(NOTEBOOKS:.ipynb=.py)
BENCHMARKS := $(sort $(wildcard benchmarks/*.py))
EXECUTE := jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
	--ExecutePreprocessor.kernel_name=python3

# Offline rendering: MathJax 2, require.js, jQuery and reveal.js from node_modules/ (package.json), paths relative
# to the HTML in _build/<folder>/; templates/offline.html.j2 drops the template's remaining CDN import.
ASSETS := ../../node_modules
OFFLINE := --template-file templates/offline.html.j2 --log-level WARN \
	--HTMLExporter.mathjax_url='$(ASSETS)/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe' \
	--HTMLExporter.require_js_url=$(ASSETS)/requirejs/require.js \
	--HTMLExporter.jquery_url=$(ASSETS)/jquery/dist/jquery.min.js
SLIDES := --SlidesExporter.reveal_url_prefix=$(ASSETS)/reveal.js --SlidesExporter.reveal_theme=simple \
	--SlidesExporter.reveal_transition=none --SlidesExporter.reveal_scroll=True

.PHONY: venv run lab test baseline bench sync lint clean slides html

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, found " + sys.version' \
		|| { echo "Set PYTHON to a Python 3.11 interpreter: make PYTHON=python3.11 ..."; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(VENV)/bin/python -m pip install --quiet torch==2.13.0 --index-url $(TORCH_INDEX))
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[keras,notebooks,dev]'
	touch $@

## run: execute every notebook in the full profile; executed notebooks and HTML go to _build/run/
run: venv
	@mkdir -p _build/run
	@command -v npm >/dev/null && $(MAKE) --no-print-directory node_modules/.installed \
		|| echo "npm not found (or npm ci failed): the HTML will load MathJax from the internet"
	@for nb in $(NOTEBOOKS); do \
		out=_build/run/$$(basename $$nb); \
		echo "== $$nb (full profile)"; start=$$(date +%s); \
		GENMODELS_PROFILE=full GENMODELS_PROGRESS=plain papermill --cwd $$(dirname $$nb) -k python3 -p profile full --no-progress-bar \
			$$nb $$out || exit 1; \
		if [ -f node_modules/.installed ]; then jupyter nbconvert --to html $(OFFLINE) $$out; \
		else jupyter nbconvert --to html --log-level WARN $$out; fi || exit 1; \
		echo "   done in $$(( $$(date +%s) - start )) s: $$out and $${out%.ipynb}.html"; \
	done

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## slides: the lecture as reveal.js slides in _build/slides/ (works offline; open the .slides.html file)
slides: venv node_modules/.installed
	jupyter nbconvert --to slides week13/week13.ipynb --output-dir _build/slides $(OFFLINE) $(SLIDES)
	@echo "open _build/slides/week13.slides.html (speaker notes: press s)"

## html: every notebook as committed (stored outputs, no execution) to _build/html/, offline
html: venv node_modules/.installed
	jupyter nbconvert --to html $(NOTEBOOKS) --output-dir _build/html $(OFFLINE)

## lab: JupyterLab in the project's environment, on notebook 00 (how a student works). .jupyter/ is added to your
## own Jupyter settings: its jupyter_server_config.py hides each notebook's .py twin from the file browser
lab: venv
	JUPYTER_CONFIG_PATH="$(CURDIR)/.jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		jupyter lab --ServerApp.root_dir="$(CURDIR)" notebooks/00_data_and_setup.ipynb

## test: lint, the package tests and the notebooks' nbval regression tests, in the quick profile
test: venv
	ruff check .
	GENMODELS_PROFILE=quick pytest tests $(NOTEBOOKS) --nbval-lax --nbval-current-env --nbval-cell-timeout=900

## baseline: re-execute the notebooks in place in the quick profile (the outputs nbval compares against)
baseline: venv sync
	@for nb in $(NOTEBOOKS); do echo "== $$nb"; GENMODELS_PROFILE=quick $(EXECUTE) --inplace $$nb || exit 1; done

## bench: every benchmark script; each writes _build/bench/NAME.json
bench: venv
	@mkdir -p _build/bench
	@for script in $(BENCHMARKS); do echo "== $$script"; python $$script || exit 1; done

## sync: bring each .py/.ipynb pair up to date with whichever twin is newer
sync: venv
	jupytext --sync $(SCRIPTS)

lint: venv
	ruff check .

clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
