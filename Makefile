# elastic-tts developer entry points. `make test` works on a fresh machine: it installs
# the Debian packages the tests start for real, and a local virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# `make demo` needs only the simulator: the core and its extra, not torch or the operator.
DEMO_STAMP := $(VENV)/.installed-simulator-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
APT_PACKAGES := prometheus espeak-ng chromium sox curl
# Binaries that show the Debian packages are in place (one per package).
APT_PROBES   := prometheus espeak-ng chromium sox curl
PYTEST_ARGS ?=

# Go tools built from pinned sources through the Go module proxy, cached per version.
ELASTIC_TTS_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/elastic-tts
HELM_DOCS_VERSION := v1.14.2
HELM_DOCS := $(ELASTIC_TTS_CACHE)/tools/helm-docs-$(HELM_DOCS_VERSION)/helm-docs
export ELASTIC_TTS_CACHE
# The images `make images` builds; the chart's values and the examples name the same ones.
IMAGE_REGISTRY ?= ghcr.io/elastic-tts
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"\(.*\)"/\1/p' charts/elastic-tts/Chart.yaml)
DOCKER ?= docker

.PHONY: help venv system-deps cluster-bin cluster playground tools lint typecheck importlint check test test-all e2e bench demo worker clean

help:
	@echo "make demo      run the main job: elastic-tts simulate on the built-in day"
	@echo "make test      install what is needed, then lint, type-check and run the tests"
	@echo "make test-all  every tier, slow ones included; prints the e2e report"
	@echo "make e2e       the end-to-end loop tier (fast and slow), with its report"
	@echo "make bench     run the benchmarks"
	@echo "make worker    run the TTS worker on http://localhost:8080 (espeak engine)"
	@echo "make cluster   run a local Kubernetes (etcd, apiserver, controllers, scheduler, kwok)"
	@echo "make playground  the operator on a local cluster with a compressed day of traffic"
	@echo "make images    build the operator and worker images (needs a Docker engine)"
	@echo "make chart     package the Helm chart into dist/ (helm package)"
	@echo "make chart-docs regenerate charts/elastic-tts/README.md with helm-docs"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[operator,simulator,worker,dev]'
	touch $@

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[simulator]'
	touch $@

venv: $(STAMP)

# Installs the Debian packages only when one is missing, so repeat runs stay fast.
system-deps:
	@missing=""; for b in $(APT_PROBES); do command -v $$b >/dev/null 2>&1 || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

# The real-cluster tier's upstream binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, helm), built from the pins in tests/cluster/gobuild
# through the Go module proxy into ~/.cache/elastic-tts/cluster/<key>/, reused while the
# pins are unchanged. Needs Go; without it this fails and names the install step.
cluster-bin: venv
	$(BIN)/python -m elastic_tts_dev.binaries build

# A local cluster in the foreground until Ctrl-C; admin kubeconfig in out/cluster/kubeconfig.
cluster: cluster-bin
	$(BIN)/python -m elastic_tts_dev.cluster --kubeconfig out/cluster/kubeconfig

# The operator on a local cluster, the chart installed, full.yaml applied and a compressed
# day of traffic, in the foreground until Ctrl-C; kubeconfig and tools in out/playground.
playground: system-deps venv cluster-bin
	$(BIN)/python -m elastic_tts_dev.playground --out out/playground

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy

importlint: venv
	$(BIN)/lint-imports

check: lint typecheck importlint

$(HELM_DOCS):
	GOBIN=$(dir $@) go install github.com/norwoodj/helm-docs/cmd/helm-docs@$(HELM_DOCS_VERSION)

tools: $(HELM_DOCS)

test: system-deps venv cluster-bin tools check
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

test-all: system-deps venv cluster-bin tools check
	$(BIN)/pytest $(PYTEST_ARGS)

# The whole loop under load and faults (tests/e2e); its fast subset also runs in `make test`.
# Both print the e2e report at the end and write it to out/e2e-report.txt.
e2e: system-deps venv
	$(BIN)/pytest -m e2e $(PYTEST_ARGS)

bench: system-deps venv cluster-bin
	$(BIN)/python bench/bench_decide.py
	$(BIN)/python bench/bench_simulate.py
	$(BIN)/python bench/bench_scenarios.py
	$(BIN)/python bench/bench_trace_read.py
	$(BIN)/python bench/bench_worker.py
	$(BIN)/python bench/bench_worker_clients.py
	$(BIN)/python bench/bench_operator.py

demo: $(DEMO_STAMP)
	$(BIN)/elastic-tts simulate --plot out/simulate.png
	@echo "timeline PNG: $(CURDIR)/out/simulate.png"

# The worker with real Mandarin speech from espeak-ng: web UI at /, API at /tts.
worker: system-deps venv
	$(BIN)/elastic-tts-worker serve --port 8080 --engine espeak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info

# Regenerate what is derived from one source: the CRD and the TTSService reference (from
# the spec model), their copies and renderings, the example defaults (tests check them).
.PHONY: manifests
manifests: venv
	$(BIN)/python -m elastic_tts_dev.generate

# The chart's README, from the `# --` comments in values.yaml and README.md.gotmpl
# (tests/chart checks that it is current).
.PHONY: chart-docs chart images
chart-docs: tools
	$(HELM_DOCS) --chart-search-root charts --sort-values-order file --skip-version-footer

# `helm package`, through Helm's own Go SDK (helm-python-sdk): dist/elastic-tts-<version>.tgz.
# Install from that file: helm install elastic-tts dist/elastic-tts-<version>.tgz
chart: venv
	$(BIN)/python -c "import helm_python; print(helm_python.package('charts/elastic-tts', destination='dist'))"

# The operator image and the worker images: worker-cpu (Sambert on CPU pools), worker-gpu
# (Sambert on NVIDIA GPU pools) and worker-espeak (espeak-ng only, no torch: demos, CI). Load them into a local cluster with `kind load docker-image IMAGE` or
# `k3d image import IMAGE` (docs/deploy.md).
images:
	@command -v $(DOCKER) >/dev/null 2>&1 && $(DOCKER) info >/dev/null 2>&1 || { \
	  echo "make images: no Docker engine answers here ('$(DOCKER) info' failed)." >&2; \
	  echo "Build the images on a machine with Docker (or set DOCKER=podman); see docs/deploy.md." >&2; \
	  exit 1; }
	$(DOCKER) build -f operator/Dockerfile -t $(IMAGE_REGISTRY)/operator:$(IMAGE_TAG) .
	$(DOCKER) build -f worker/Dockerfile.cpu -t $(IMAGE_REGISTRY)/worker-cpu:$(IMAGE_TAG) .
	$(DOCKER) build -f worker/Dockerfile.gpu -t $(IMAGE_REGISTRY)/worker-gpu:$(IMAGE_TAG) .
	$(DOCKER) build -f worker/Dockerfile.espeak -t $(IMAGE_REGISTRY)/worker-espeak:$(IMAGE_TAG) .
