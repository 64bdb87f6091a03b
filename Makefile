PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS := $(wildcard requirements*.txt)
# touched after a successful install: `make demo` / `make test` reinstall only when a requirements file changed
INSTALLED ?= $(VENV)/.installed

.PHONY: setup test test-fast examples demo phonevec starter-voices eval-starter

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

$(INSTALLED): $(REQUIREMENTS) | $(PY)
	$(PY) -m pip install $(addprefix -r ,$(REQUIREMENTS))
	touch $@

## create .venv and install the pinned requirements (again only when requirements*.txt change)
setup: $(INSTALLED)

## start the web demo on http://127.0.0.1:7860 (options: make demo ARGS="--port 8000 --auth me:secret")
demo: setup
	$(PY) app.py $(ARGS)

## run every test (unit, integration, parity); ../shared must sit beside the repo for the parity tests
test: setup
	$(PY) -m pytest -q

test-fast:
	$(PY) -m pytest -q -x

## regenerate the web demo's example clips in examples/ (needs Debian flite, festival, festvox-kdlpc16k)
examples: $(PY)
	$(PY) examples/make_examples.py

## build the phonevec256 content encoder (TTS corpus, CTC training, probe) into pretrain/ (hours on 2 cores)
phonevec: $(PY)
	scripts/build_phonevec.sh build/phonevec

## build the starter voices (TTS speech + singing corpus, phonevec256, 4-speaker WORLD voice) into voices/starter/ (hours on 2 cores)
starter-voices: $(PY)
	scripts/build_starter_voices.sh build/starter

## score the starter voices with ../shared/eval (needs its venv: SVCEVAL_VENV=...; MODE=quick|all)
eval-starter: $(PY)
	scripts/eval_starter.sh $(or $(MODE),quick)
