# The two commands of the README:
#   make run    install into .venv, then show, draw and train: models/resnet9.net on a GPU, a
#               CPU-sized airbench94 without one
#               (make run DATASET=path/to/image-folder RUN_FLAGS='--epochs 2')
#   make test   install into .venv (with the test extras), lint (ruff), check the types (mypy),
#               then run the tests
VENV ?= .venv
PYTHON ?= python3
# torch is installed first and pinned: a bare `torch` requirement can pull a multi-GB build.
TORCH ?= torch==2.14.1 torchvision==0.29.1

DATASET ?= cifar10
RUN_FLAGS ?=

BIN := $(VENV)/bin

.PHONY: install run run-full test bench

$(BIN)/netdsl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/netdsl

# With a GPU: Page's ResNet-9 and the seed's recipe (24 epochs, seconds each). Without one: the
# airbench94 net at width 16 with its own recipe, 9.9 epochs in about 3 minutes on 2 cores
# (docs/speed.md); `make run-full` is the GPU job anywhere.
run: install
	@if $(BIN)/python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
	    $(MAKE) --no-print-directory run-full; \
	else \
	    echo "no GPU: training the CPU-sized airbench94 (width 16, 9.9 epochs, minutes on 2 cores)."; \
	    echo "The full job, ResNet-9 with the seed's recipe (hours on a CPU): make run-full"; \
	    $(BIN)/netdsl show models/airbench94.net --set width=16 && \
	    $(BIN)/netdsl draw models/airbench94.net --set width=16 -o airbench94.svg && \
	    $(BIN)/netdsl run models/airbench94.net --set width=16 --recipe airbench94 \
	        --dataset $(DATASET) --json airbench94.json $(RUN_FLAGS); \
	fi

run-full: install
	$(BIN)/netdsl show models/resnet9.net
	$(BIN)/netdsl draw models/resnet9.net -o resnet9.svg
	$(BIN)/netdsl run models/resnet9.net --dataset $(DATASET) --json resnet9.json $(RUN_FLAGS)

# mypy through .ci/typecheck.py: it checks each module under the name it installs as.
test: install
	$(BIN)/ruff check netdsl runtime
	$(BIN)/python .ci/typecheck.py
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m pytest tests/benchmarks --benchmark-enable
