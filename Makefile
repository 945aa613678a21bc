# The two commands of the README:
#   make run    install into .venv, then show and draw models/resnet9.net
#   make test   install into .venv (with the test extras), then run the tests
VENV ?= .venv
PYTHON ?= python3
# torch is installed first and pinned: a bare `torch` requirement can pull a multi-GB build.
TORCH ?= torch==2.14.1 torchvision==0.29.1

BIN := $(VENV)/bin

.PHONY: install run test bench

$(BIN)/netdsl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/netdsl

run: install
	$(BIN)/netdsl show models/resnet9.net
	$(BIN)/netdsl draw models/resnet9.net -o resnet9.svg

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m pytest tests/benchmarks --benchmark-enable
