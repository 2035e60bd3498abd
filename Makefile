# Week 13, deep generative models. The two commands: `make run` (the course, full profile) and `make test`.
PYTHON ?= python3
TORCH_INDEX ?=  # e.g. PyTorch's CPU wheel index, for a laptop without a GPU (see README)
# make test-latest sets VENV=.venv-latest for the make calls of its tests
VENV ?= .venv
LATEST_VENV := .venv-latest
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
export PYTHONUNBUFFERED := 1

NOTEBOOKS := $(sort $(wildcard week13/*.ipynb)) $(sort $(wildcard notebooks/*.ipynb))
EXERCISES := $(sort $(wildcard exercises/solutions/*.ipynb))  # solution notebooks: tested by make test, not run by make run
SCRIPTS := $(NOTEBOOKS:.ipynb=.py) $(EXERCISES:.ipynb=.py)
BENCHMARKS := $(filter-out benchmarks/harness.py,$(sort $(wildcard benchmarks/*.py)))  # harness.py: what they share
EXECUTE := jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
	--ExecutePreprocessor.kernel_name=python3

# Offline rendering: MathJax 2, require.js, jQuery and reveal.js from node_modules/ (package.json), paths relative
# to the HTML in _build/<folder>/; templates/offline.html.j2 drops the template's remaining CDN import.
ASSETS := ../../node_modules
OFFLINE_ASSETS := --log-level WARN \
	--HTMLExporter.mathjax_url='$(ASSETS)/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe' \
	--HTMLExporter.require_js_url=$(ASSETS)/requirejs/require.js \
	--HTMLExporter.jquery_url=$(ASSETS)/jquery/dist/jquery.min.js
OFFLINE := --template-file templates/offline.html.j2 $(OFFLINE_ASSETS)
# The deck: templates/slides.html.j2 (16:9, 1280 x 720, offline theme and fonts, no prompts, slide numbers, linear
# navigation). It renders _build/run/week13.ipynb (`make run`, full profile) when that is newer than the committed
# week13/week13.ipynb (quick profile), else the committed one; papermill's injected-parameters cell is left out.
LECTURE := week13/week13.ipynb
LECTURE_RUN := _build/run/week13.ipynb
SLIDES := --SlidesExporter.reveal_url_prefix=$(ASSETS)/reveal.js --SlidesExporter.reveal_theme=white \
	--template-file templates/slides.html.j2 \
	--no-prompt --TagRemovePreprocessor.enabled=True \
	--TagRemovePreprocessor.remove_cell_tags='["injected-parameters"]' \
	--TagRemovePreprocessor.remove_all_outputs_tags='["remove-output"]' \
	--TagRemovePreprocessor.remove_input_tags='["remove-input"]'
CHROMIUM ?= $(firstword $(shell command -v chromium chromium-browser google-chrome 2>/dev/null))
# headless, offline: only loopback resolves, no background traffic
CHROMIUM_FLAGS := --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
	--disable-component-update --disable-sync --allow-file-access-from-files \
	--host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"

.PHONY: help venv run lab test test-latest baseline bench sync lint clean slides html handout exercises

## help: this list, each target with what it does (read from the Makefile's ## comments)
help:
	@awk '/^## [a-z-]+: / { sub(/^## /, ""); i = index($$0, ": "); \
		printf "make %-12s %s\n", substr($$0, 1, i - 1), substr($$0, i + 2); block = 1; next } \
		/^## / { if (block) { sub(/^## /, ""); printf "%18s%s\n", "", $$0 } next } { block = 0 }' $(firstword $(MAKEFILE_LIST))

ifeq ($(VENV),$(LATEST_VENV))
venv:  # built by make test-latest, newest releases: never install the pins into it
	@test -x $(VENV)/bin/python || { echo "$(VENV) is made by make test-latest"; exit 1; }
else
## venv: the environment in .venv, from pyproject.toml's pins (every other target makes it first)
venv: $(STAMP)
endif

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

## slides: the lecture as reveal.js slides in _build/slides/ (works offline; open the .slides.html file); the results
## of `make run` when they are newer than the committed notebook
slides: venv node_modules/.installed
	@if [ $(LECTURE_RUN) -nt $(LECTURE) ]; then src=$(LECTURE_RUN); what="the results of make run (full profile)"; \
		else src=$(LECTURE); what="the committed outputs (quick profile)"; fi; \
	echo "slides from $$src: $$what"; \
	jupyter nbconvert --to slides $$src --output-dir _build/slides $(OFFLINE_ASSETS) $(SLIDES)
	@echo "open _build/slides/week13.slides.html (speaker notes: press s; PDF handout: make handout)"

## handout: the deck as a PDF, one page per slide (fragments shown, no notes), printed offline by headless Chromium
## from reveal's print view
handout: slides
	@test -n "$(CHROMIUM)" || { echo "make handout needs Chromium (Debian: apt-get install chromium)"; exit 1; }
	@profile=$$(mktemp -d); \
	"$(CHROMIUM)" $(CHROMIUM_FLAGS) --user-data-dir=$$profile --virtual-time-budget=60000 --no-pdf-header-footer \
		--print-to-pdf=_build/slides/week13.pdf "file://$(CURDIR)/_build/slides/week13.slides.html?print-pdf" \
		2>/dev/null; status=$$?; rm -rf $$profile; exit $$status
	@echo "handout: _build/slides/week13.pdf"

## html: every notebook as committed (stored outputs, no execution) to _build/html/, offline
html: venv node_modules/.installed
	jupyter nbconvert --to html $(NOTEBOOKS) --output-dir _build/html $(OFFLINE)

## lab: JupyterLab in the project's environment, on notebook 00 (how a student works). .jupyter/ is added to your
## own Jupyter settings: its jupyter_server_config.py hides each notebook's .py twin from the file browser
## As root (a container, a cloud VM), where Jupyter refuses to start without it, it adds --allow-root and says so.
## LAB_ARGS: more options for jupyter lab, e.g. make lab LAB_ARGS="--no-browser --port 8890"
LAB_ARGS ?=
AS_ROOT := $(filter 0,$(shell id -u))
lab: venv
	@$(if $(AS_ROOT),echo "make lab: running as root: JupyterLab starts with --allow-root (as Jupyter asks)")
	JUPYTER_CONFIG_PATH="$(CURDIR)/.jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		jupyter lab $(if $(AS_ROOT),--allow-root) --ServerApp.root_dir="$(CURDIR)" $(LAB_ARGS) notebooks/00_data_and_setup.ipynb

## test: lint, the package tests and the notebooks' nbval regression tests, in the quick profile, on TEST_WORKERS
## pytest-xdist workers (a test file or notebook stays on one worker, its cells in order; TEST_WORKERS=0: one process).
## Three on the course's 2-core machine: while one waits on a browser, a kernel or a subprocess, two compute
## (measured there at 91b51ae: 354 s by pytest with three, 374 s with two; 549 s with three at 577c810)
TEST_WORKERS ?= 3
test: venv
	ruff check .
	GENMODELS_PROFILE=quick GENMODELS_RBM_KERNELS=fast pytest -n $(TEST_WORKERS) --dist loadscope tests $(NOTEBOOKS) $(EXERCISES) \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=900

## test-latest: the same tests against the newest release of every dependency (pins dropped), in .venv-latest;
## report in _build/latest/report.md. Not part of .ci/run: its results change with the day
test-latest:
	$(PYTHON) tools/latest.py --venv $(LATEST_VENV) $(NOTEBOOKS) $(EXERCISES)

## baseline: re-execute the notebooks in place in the quick profile (the outputs nbval compares against); test and
## baseline pin the RBM's kernels (GENMODELS_RBM_KERNELS=fast), so that the outputs never depend on a measurement
baseline: venv sync
	@for nb in $(NOTEBOOKS) $(EXERCISES); do echo "== $$nb"; GENMODELS_PROFILE=quick GENMODELS_RBM_KERNELS=fast $(EXECUTE) --inplace $$nb || exit 1; done

## bench: every benchmark script; each writes _build/bench/NAME.json
bench: venv
	@mkdir -p _build/bench
	@for script in $(BENCHMARKS); do echo "== $$script"; python $$script || exit 1; done

## exercises: the student versions of the exercise notebooks, exercises/NN_name.py and .ipynb, generated from the
## solutions in exercises/solutions/ (stubs for the solution code, no worked answers, no outputs); make test fails
## when a committed student version is out of date
exercises: venv
	python tools/generate_exercises.py

## sync: bring each .py/.ipynb pair up to date with whichever twin is newer
sync: venv
	jupytext --sync $(SCRIPTS)

## lint: ruff over the repository (make test runs it first)
lint: venv
	ruff check .

## clean: remove what the tools built (_build/, caches); keeps .venv, node_modules and data/
clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
