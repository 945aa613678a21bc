# The two commands of the README:
#   make run    install into .venv, then show, draw and train models/resnet9.net
#               (make run DATASET=path/to/image-folder RUN_FLAGS='--epochs 2 --peak-epoch 1')
#   make test   install into .venv (with the test extras), then run the tests
VENV ?= .venv
PYTHON ?= python3
# torch is installed first and pinned: a bare `torch` requirement can pull a multi-GB build.
TORCH ?= torch==2.14.1 torchvision==0.29.1

DATASET ?= cifar10
RUN_FLAGS ?=

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
	$(BIN)/netdsl run models/resnet9.net --dataset $(DATASET) --json resnet9.json $(RUN_FLAGS)

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m pytest tests/benchmarks --benchmark-enable
