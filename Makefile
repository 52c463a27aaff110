# dtsim — the two commands of the README:
#   make run    install missing Debian packages, build (Release), run the quickstart study
#               (examples/quickstart-study.json: 4 algorithms, table + plots + timelines in results/quickstart-study/)
#   make test   same set-up, build, run the whole ctest suite
BUILD    ?= build
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
# Unity builds (CMake batches of source files): about half the compile time of a clean build, which
# is most of `make test` on 2 cores (DEVELOPERS.md, "CI"); UNITY=OFF for file-by-file builds.
UNITY ?= ON

.PHONY: all deps configure build run test bench clean test-sanitize fuzz

all: build

deps:
	@bash tools/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_UNITY_BUILD=$(UNITY) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@$(BUILD)/dtsim sweep examples/quickstart-study.json --plot --jobs $(JOBS)
	@echo "results: results/quickstart-study/ (plots/accuracy_vs_time.png, plots/timeline.png, runs/algorithm-<name>/trace.json)"

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	@bash bench/run.sh

clean:
	@rm -rf $(BUILD)

# ---- hardening (docs/robustness.md) ----
# make test-sanitize   ASan + UBSan Debug build in build-sanitize/, then the ctest suite under it
#                      (SANITIZE_TESTS=REGEX runs a subset; ASAN_OPTIONS/UBSAN_OPTIONS explained in the doc),
#                      less the process-orchestration cases in SANITIZE_EXCLUDE (SANITIZE_EXCLUDE= runs them too)
# make fuzz FUZZ_SECONDS=N   libFuzzer targets (clang-14), each run N seconds on a copy of its seed corpus
SAN_BUILD      ?= build-sanitize
SANITIZE_TESTS ?=
# mpirun, sbatch, the PyTorch harness, cmake --install and matplotlib drive these; the dtsim code they
# run is under the sanitizers in the other cases (docs/robustness.md, "Sanitizers")
SANITIZE_EXCLUDE ?= ^(sweep over MPI|sweep --slurm|reality: |install: |plot: |shipped studies: )
SAN_ENV = ASAN_OPTIONS=detect_stack_use_after_return=0:detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1 \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
          LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0
test-sanitize: deps
	@cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DDTSIM_SANITIZE=ON -DDTSIM_CUDA=OFF -DCMAKE_UNITY_BUILD=$(UNITY) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(SAN_BUILD) -j $(JOBS) --target dtsim test_engine test_sim test_cli dtsim_param_list
	@cd $(SAN_BUILD) && $(SAN_ENV) ctest --output-on-failure -j $(JOBS) --timeout 900 $(if $(SANITIZE_TESTS),-R '$(SANITIZE_TESTS)') $(if $(SANITIZE_EXCLUDE),-E '$(SANITIZE_EXCLUDE)')

FUZZ_SECONDS ?= 60
fuzz:
	@bash fuzz/run.sh $(FUZZ_SECONDS)
