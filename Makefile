# make run   - install what is missing and start a whole venue on this machine
# make test  - install what is missing and run every test (C++ via ctest, Python via pytest)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD := engine/build
STUBS := gateway/venue/enginepb/engine_pb2.py
# The engine's builds (release, sanitized, fuzzers) compile through ccache when it is
# there (its cache in ~/.cache/ccache, outside the repo), with paths taken relative to
# the checkout: a fresh clone of the same sources builds from the cache (about 50 s of
# compiling became 6 s for the release build, 2026-12-05).
CMAKE_LAUNCHER = $(if $(shell command -v ccache),-DCMAKE_C_COMPILER_LAUNCHER=ccache \
	-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
APT_PACKAGES := build-essential cmake ninja-build pkg-config libgrpc++-dev libprotobuf-dev \
	protobuf-compiler protobuf-compiler-grpc libgtest-dev redis-server postgresql \
	postgresql-client openssl python3-dev ccache
IMAGE_PACKAGES := podman buildah mmdebstrap runc
# A real Kubernetes node for tests/k8s/test_node.py (venue.local.node).
NODE_PACKAGES := containerd runc containernetworking-plugins iptables ipset conntrack iproute2 \
	util-linux
# The browser of tests/page (selenium drives it through chromedriver).
BROWSER_PACKAGES := chromium chromium-driver
# The coverage-guided fuzzers: clang and its libFuzzer and sanitizer runtimes.
FUZZ_PACKAGES := clang-14 libclang-rt-14-dev
# The venue page: built into $(PAGE)/dist, which the gateway serves at /.
PAGE := gateway/venue/page
PAGE_SOURCES := $(PAGE)/index.html $(PAGE)/vite.config.ts $(PAGE)/tsconfig.json \
	$(shell find $(PAGE)/src -type f 2>/dev/null)

.PHONY: run test test-engine test-python fuzz fuzz-build fuzz-smoke fuzz-seeds races deps system \
	system-images system-node system-browser system-fuzz jaeger images images-push engine proto \
	page sanitize clean

run: deps page
	$(VENV)/bin/venue up

# The images first: their tests (tests/images, tests/k8s/test_node.py) then find them built.
test: deps images system-node system-browser jaeger page
	$(MAKE) test-engine
	$(MAKE) sanitize
	$(MAKE) fuzz-smoke
	$(MAKE) test-python

test-engine: engine
	ctest --test-dir $(BUILD) --output-on-failure

# The engine's tests and the C extensions' tests (the parsers of untrusted bytes), built
# with ASan and UBSan; any report fails. Bounded as `make test-engine` is (the property
# test's long run is `make fuzz`); the benchmarks are left out. Part of `make test`.
SANITIZE_BUILD := engine/build-sanitize
SANITIZE_PY := build/sanitize-py
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SANITIZE_ENV := ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# $(call sanitized_package,DIR,COMPILER,FLAGS): a copy of the package in DIR whose C
# extensions are built with FLAGS (by COMPILER, e.g. CC=clang-14 LDSHARED=..., when given).
sanitized_package = rm -rf $(1) && $(PY) -c "import shutil; shutil.copytree('gateway/venue', \
	  '$(1)/venue', ignore=shutil.ignore_patterns('node_modules', 'dist', '*.so', '__pycache__'))" \
	  && $(2) CFLAGS="$(3) -g" LDFLAGS="-fsanitize=address,undefined" $(PY) setup.py -q \
	  build_ext --build-lib $(1) --build-temp $(1)/tmp
sanitize: $(VENV)/.installed $(STUBS)
	@[ -f $(SANITIZE_BUILD)/build.ninja ] || cmake -S engine -B $(SANITIZE_BUILD) -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVENUE_SANITIZE=ON $(CMAKE_LAUNCHER)
	cmake --build $(SANITIZE_BUILD) --target venue-engine engine_core_tests engine_journal_tests \
	  engine_server_tests engine_process_test engine_property_tests
	$(SANITIZE_ENV) ctest --test-dir $(SANITIZE_BUILD) --output-on-failure
	@# A copy of the package whose extensions are the sanitized ones, first on the path
	@# (Python itself is not instrumented: ASan is preloaded, leaks not checked).
	$(call sanitized_package,$(SANITIZE_PY),,$(SANITIZE_FLAGS))
	$(SANITIZE_ENV) LD_PRELOAD=$$(gcc -print-file-name=libasan.so) PYTHONPATH=$(SANITIZE_PY) \
	  $(PY) -m pytest -q -p no:cacheprovider tests/unit/test_orderwire.py \
	  tests/unit/test_reportwire.py tests/unit/test_enginewire.py tests/unit/test_wire_contract.py \
	  tests/unit/test_sanitized.py

test-python: $(VENV)/.installed $(STUBS)
	$(PY) -m pytest

# Coverage-guided fuzzers over everything that parses untrusted bytes (tests/fuzz/run.py):
# libFuzzer targets of the engine (engine/fuzz: a gRPC CommandBatch, a journal segment, a
# snapshot), built by clang with ASan and UBSan in $(FUZZ_BUILD); atheris over the C
# extensions (tests/fuzz/*_fuzz.py), built by clang with libFuzzer's coverage, ASan and
# UBSan in $(FUZZ_PY). atheris is built from source, for its ASan runtime with libFuzzer.
FUZZ_BUILD := engine/build-fuzz
FUZZ_PY := build/fuzz-py
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 5
fuzz-build: system-fuzz $(VENV)/.atheris $(STUBS)
	@[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang-14 CXX=clang++-14 cmake -S engine \
	  -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVENUE_FUZZ=ON $(CMAKE_LAUNCHER)
	cmake --build $(FUZZ_BUILD) --target fuzz_command_batch fuzz_journal fuzz_snapshot fuzz_seeds
	$(call sanitized_package,$(FUZZ_PY),CC=clang-14 LDSHARED="clang-14 -shared",\
	  $(SANITIZE_FLAGS) -fsanitize=fuzzer-no-link)

$(VENV)/.atheris: $(VENV)/.installed
	CLANG_BIN=$$(command -v clang-14) $(VENV)/bin/pip install -q --no-binary atheris atheris==3.0.0
	touch $@

# In `make test`: every target over its corpus and on for a few seconds; skipped without
# clang (not root).
fuzz-smoke:
	@if command -v clang-14 >/dev/null || [ "$$(id -u)" = 0 ]; then \
	  $(MAKE) fuzz-build && $(PY) tests/fuzz/run.py --seconds $(FUZZ_SMOKE_SECONDS) >/dev/null; \
	else echo "not root and no clang-14: the fuzzers are skipped"; fi

# The seed corpora (engine/fuzz/corpus, tests/fuzz/corpus), written again.
fuzz-seeds: fuzz-build
	$(FUZZ_BUILD)/fuzz_seeds engine/fuzz/corpus
	$(PY) tests/fuzz/make_seeds.py

# Long runs: each fuzzer for FUZZ_SECONDS; the engine's property test against its
# reference model, 20M commands a case; schemathesis over every route of the gateway,
# 2,000 examples a route and mode.
fuzz: engine fuzz-build
	$(PY) tests/fuzz/run.py --seconds $(FUZZ_SECONDS)
	VENUE_FUZZ_COMMANDS=$${VENUE_FUZZ_COMMANDS:-20000000} ctest --test-dir $(BUILD) -L fuzz \
	  --output-on-failure
	VENUE_FUZZ_EXAMPLES=$${VENUE_FUZZ_EXAMPLES:-2000} $(PY) -m pytest -p no:cacheprovider \
	  -o timeout=0 tests/integration/test_api_fuzz.py

# The whole-path random race test, long: 50,000 requests.
races: engine $(VENV)/.installed $(STUBS)
	VENUE_RACE_REQUESTS=$${VENUE_RACE_REQUESTS:-50000} $(PY) -m pytest -p no:cacheprovider -s \
	  -o timeout=0 tests/integration/test_races.py -k random

deps: system $(VENV)/.installed $(STUBS) engine

# System packages, installed only when missing (and only when we are root).
# $(call apt_missing,PACKAGES) prints those not installed; $(call apt_install,...) installs.
apt_missing = for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done
apt_install = if [ "$$(id -u)" != 0 ]; then \
	    echo "missing system packages:" $(1) "- run as root or: sudo apt-get install" $(1); exit 1; fi; \
	  echo "installing:" $(1); \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $(1) >/dev/null

# Debian's postgresql would create and start a cluster of its own: we run ours.
system:
	@missing=$$($(call apt_missing,$(APT_PACKAGES))); \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$(echo $$missing)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then mkdir -p /etc/postgresql-common; \
	    [ -f /etc/postgresql-common/createcluster.conf ] || \
	      echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf; fi; \
	  $(call apt_install,$$missing); \
	fi

# Image builders without a daemon, unless a Docker daemon answers.
system-images:
	@docker info >/dev/null 2>&1 || { missing=$$($(call apt_missing,$(IMAGE_PACKAGES))); \
	  if [ -n "$$(echo $$missing)" ]; then $(call apt_install,$$missing); fi; }

# The tracing backend of the trace tests and `venue up --tracing`: Jaeger built from Go
# modules (gateway/venue/local/jaeger/go.mod), cached by version in ~/.cache/tradingvenue.
jaeger:
	@bash gateway/venue/local/jaeger/build.sh >/dev/null

# containerd, CNI plugins, iptables and conntrack for the test node, when root.
system-node:
	@missing=$$($(call apt_missing,$(NODE_PACKAGES))); \
	if [ -n "$$(echo $$missing)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then $(call apt_install,$$missing); \
	  else echo "not root: tests/k8s/test_node.py will skip (missing: $$missing)"; fi; fi

# clang, libFuzzer and the sanitizers' runtimes for the fuzzers, when root.
system-fuzz:
	@missing=$$($(call apt_missing,$(FUZZ_PACKAGES))); \
	if [ -n "$$(echo $$missing)" ]; then $(call apt_install,$$missing); fi

# Headless Chromium and its driver for tests/page, when root.
system-browser:
	@missing=$$($(call apt_missing,$(BROWSER_PACKAGES))); \
	if [ -n "$$(echo $$missing)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then $(call apt_install,$$missing); \
	  else echo "not root: tests/page will skip (missing: $$missing)"; fi; fi

# The venue page (gateway/venue/page, Vite + TypeScript): npm ci when its lock changes,
# vite build when its sources do. Node.js and npm come with the machine, else Debian's.
page: $(PAGE)/dist/index.html

$(PAGE)/node_modules/.installed: $(PAGE)/package.json $(PAGE)/package-lock.json
	@command -v npm >/dev/null || { $(call apt_install,nodejs npm); }
	cd $(PAGE) && npm ci --no-audit --no-fund
	touch $@

$(PAGE)/dist/index.html: $(PAGE)/node_modules/.installed $(PAGE_SOURCES)
	cd $(PAGE) && npm run build
	touch $@

# The venue and engine images: ghcr.io/tradingvenue/{venue,engine}:<appVersion> and :dev,
# OCI archives in build/images/ (venue.local.images).
images: system-images $(VENV)/.installed page  # the venue image serves the built page
	$(PY) -m venue.local.images build

images-push: images
	@[ -n "$(REGISTRY)" ] || { echo "usage: make images-push REGISTRY=ghcr.io/you"; exit 1; }
	$(PY) -m venue.local.images push --registry $(REGISTRY)

# The install also compiles venue._orderwire and _reportwire (setup.py): a changed C
# source reinstalls.
$(VENV)/.installed: pyproject.toml setup.py gateway/venue/_orderwire.c gateway/venue/_reportwire.c \
	  gateway/venue/engine_wire.h
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

# The engine's Python stubs are generated, never committed.
proto: $(STUBS)
$(STUBS): engine/proto/engine.proto $(VENV)/.installed
	$(PY) -m grpc_tools.protoc -Ivenue/enginepb=engine/proto --python_out=gateway \
	  --grpc_python_out=gateway engine/proto/engine.proto

engine:
	@[ -f $(BUILD)/build.ninja ] || cmake -S engine -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  $(CMAKE_LAUNCHER)
	cmake --build $(BUILD)

clean:
	rm -rf $(BUILD) $(SANITIZE_BUILD) $(FUZZ_BUILD) gateway/venue/enginepb $(VENV) gateway/venue/_*wire.*.so $(PAGE)/dist \
	  $(PAGE)/node_modules
