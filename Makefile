# herd: `make run` and `make test` work on a fresh Debian 12 machine (README.md).
SHELL := /bin/bash
BUILD ?= build
BUILD_ASAN ?= build-asan
JOBS ?= $(shell nproc)
MODEL ?= models/default
PROMPT ?= Once upon a time
DEB_PACKAGES := build-essential cmake ninja-build pkg-config libgtest-dev libbenchmark-dev \
  nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev libpcre2-dev libcpp-httplib-dev \
  libstb-dev nodejs python3-jinja2 python3-pil python3-numpy python3-torch clang libclang-rt-dev \
  libopenmpi-dev openmpi-bin procps

.PHONY: all deps apt-deps npm-deps build build-asan run test test-asan bench clean format llama-cpp

all: build

deps: apt-deps npm-deps

# Installs only the Debian packages that are missing (apt-get update first, as root or sudo).
apt-deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# Independent references for tests (pinned in tools/*/package-lock.json).
npm-deps:
	tools/install-references.sh

build: apt-deps
	@[ -f $(BUILD)/build.ninja ] || cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

build-asan: apt-deps
	@[ -f $(BUILD_ASAN)/build.ninja ] || cmake -S . -B $(BUILD_ASAN) -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
	  -DHERD_SANITIZE=ON -DHERD_BENCH=OFF
	cmake --build $(BUILD_ASAN) -j $(JOBS)

# models/default is the trained model committed in the repository (tools/train/); any other
# MODEL directory without a config.json gets a random-weight synth model. No training here.
run: build
	@[ -f $(MODEL)/config.json ] || $(BUILD)/herd synth --preset tiny -o $(MODEL)
	$(BUILD)/herd run -m $(MODEL) -p "$(PROMPT)" -n 48 --seed 1

# Every test in the release build, then the unit / loader / error tests again under ASan+UBSan
# (the sanitizer build is -O1 -g1 without benchmarks, to keep CI on 2 cores well under 30 min).
# llama.cpp first (bench/build_llama_cpp.sh, once): the ggml conformance tests link its libraries.
test: deps llama-cpp build build-asan
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -L unit

# The whole suite under ASan+UBSan (run before resolving any issue).
test-asan: deps build-asan
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

llama-cpp: npm-deps
	bench/build_llama_cpp.sh >/dev/null

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
