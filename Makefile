# Every target creates .venv on first use and reuses it afterwards.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: search test test-fast bench bench-gpu bench-table bench-halving bench-fidelity bench-fidelity-long bench-fidelity-fashion lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

search: $(STAMP)
	$(BIN)/attnas search configs/quickstart.yaml
	$(BIN)/attnas report runs/quickstart

# The whole suite, what CI runs; it ends with the slowest tests, to keep pytest-timeout's
# per-test limits (pyproject.toml, and the marked long tests) honest.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q --durations=40

# The loop while you work: no Ray, no PostgreSQL, nothing trained longer than a step.
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not slow and not trains"

# Benchmarks print tables, write bench/results/*.json, then BENCHMARKS.md is regenerated.
bench: $(STAMP)
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/measurement.py
	$(BIN)/python bench/samplers.py
	$(BIN)/python bench/multifidelity.py
	$(BIN)/python bench/targets.py
	$(BIN)/python bench/live_halving.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/report.py

# On a machine with a GPU: the CUDA path in a few minutes (bench/results/gpu_check.json),
# then whether GPU runtimes reorder placements (targets_cuda.json; an estimated
# 15-20 minutes, mostly compiling 2 x 4 x 2 network pairs).
bench-gpu: $(STAMP)
	$(BIN)/python bench/gpu_check.py
	$(BIN)/python bench/targets.py --device cuda --archs 12 --compile-archs 4
	$(BIN)/python bench/report.py

# Short against long schedule on a sample of the quickstart space, on clutter (digits
# saturates and cannot separate placements); resumable, about 2.5 hours on 2 cores:
# bench/results/fidelity.json, then BENCHMARKS.md is regenerated.
bench-fidelity: $(STAMP)
	$(BIN)/python bench/fidelity.py --set eval.dataset=clutter
	$(BIN)/python bench/report.py

# A 12-epoch short schedule under the same 6x contract: the same long recipe lengthened to
# 72 epochs, nothing else changed. Resumable, about 1.8 hours a seed on 2 cores (30 runs of
# 72 epochs at about 6.5 minutes each, two at a time, and 30 of 12): fidelity_long72.json,
# which holds 4 seeds. LONG_SEEDS=N extends it in place, seed by seed; it never shrinks.
LONG_SEEDS ?= 4
bench-fidelity-long: $(STAMP)
	$(BIN)/python bench/fidelity.py --set eval.dataset=clutter --set eval.train.epochs=12 \
		--long-epochs 72 --seeds $(LONG_SEEDS)
	$(BIN)/python bench/report.py

# The same on real data: Fashion-MNIST as Debian installs it (apt install
# dataset-fashion-mnist), with configs/fashion_mnist.yaml's data settings (2,000 training and
# 2,000 val images at 16 px, so that an epoch takes seconds on a CPU; the quickstart's space,
# so the same sample and the same run fingerprints as the quickstart with those settings set);
# resumable, about 2.5 hours on 2 cores for 30 x 3, stored with 5 seeds:
# bench/results/fidelity_fashion_mnist16.json.
# FASHION_MNIST=DIR reads a copy elsewhere, but the directory is part of each run's
# fingerprint: the stored runs are found at theirs only.
FASHION_MNIST ?= /usr/share/datasets/fashion-mnist
bench-fidelity-fashion: $(STAMP)
	$(BIN)/python bench/fidelity.py --config configs/fashion_mnist.yaml \
		--set eval.data_dir=$(FASHION_MNIST) --seeds 5
	$(BIN)/python bench/report.py

# The tabular benchmark the sampler comparison replays: built once, stored in bench/data/.
bench-table: $(STAMP)
	$(BIN)/python bench/tabular.py

# Successive halving with two rungs (1 and 3 of 9 epochs): the same sub-space for 9 epochs
# (about an hour on 2 cores, resumable), then the replay (multifidelity_e9.json).
bench-halving: $(STAMP)
	$(BIN)/python bench/tabular.py --epochs 9
	$(BIN)/python bench/multifidelity.py --table bench/data/tabular_resnet18_s23_e9.csv \
		--budget 900 --out bench/results/multifidelity_e9.json
	$(BIN)/python bench/report.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) runs
