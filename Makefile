# aqaa: `make demo` runs the main job, `make test` runs the tests. Both install what is missing first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := flite espeak-ng festival festvox-kdlpc16k festvox-us-slt-hts sox libsox-fmt-all ffmpeg libsndfile1 \
	g++ python3-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system venv demo test lint format corpus-small corpus-full clean

setup: system venv

# Debian packages: the synthesisers that make the corpus (flite, espeak-ng) and festival's held-out voices that
# evaluation speaks in, sox, ffmpeg for compressed audio input, and a C++ compiler with Python's headers for the
# LM's compiled decode step.
system:
	@missing=""; for b in flite t2p espeak-ng text2wave sox ffmpeg g++; do command -v $$b >/dev/null || missing=1; done; \
	[ -d /usr/share/festival/voices/english/ked_diphone ] && [ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ] \
	  || missing=1; \
	[ -f "$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] || missing=1; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

# torch first, pinned: the CPU wheel on this machine; an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: setup
	$(BIN)/aqaa demo --out out

# pytest exits 5 when it collects nothing; that is not a failure of the suite (the suite does have tests).
test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

lint: venv
	$(BIN)/ruff check src tests bench

format: venv
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

corpus-small: setup
	$(BIN)/aqaa data build configs/data/small.yaml --out corpora/small

corpus-full: setup
	$(BIN)/aqaa data build configs/data/default.yaml --out corpora/default

clean:
	rm -rf out corpora/demo .pytest_cache .ruff_cache
