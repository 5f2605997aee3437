# Thin wrapper for the README's two commands. Everything real is in CMake.
BUILD ?= build
JOBS ?= $(shell nproc)

FUZZ_SECONDS ?= 20
KILN_TESTDATA ?= $(CURDIR)/../shared/testdata
BENCH_ARGS ?=
PUSHLOAD_ARGS ?=
CLUSTER_BENCH_ARGS ?=

.PHONY: deps build run demo test fuzz bench clean

# Everything, test tools and the peer tests' packages included (make test).
deps:
	.ci/install-deps

# What building and running needs, installed once: the stamp is redone
# only when the script changes, so make run neither reinstalls nor needs
# a package registry after the first time.
BUILD_DEPS_STAMP = $(BUILD)/.build-deps.stamp
$(BUILD_DEPS_STAMP): .ci/install-deps
	.ci/install-deps build
	mkdir -p $(BUILD) && touch $@

build: $(BUILD_DEPS_STAMP)
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	ninja -C $(BUILD)

run: build
	$(BUILD)/kiln -target=all

# With make run going in another terminal: pushes a few of the shared test
# profiles stamped with the current time (tools/demo.sh).
demo:
	tools/demo.sh $(KILN_TESTDATA)

# Every test: the static checks (tools/lint.sh: clang-format, cppcheck),
# unit and peer tests against the release build, all of them
# again under AddressSanitizer and UndefinedBehaviorSanitizer, the unit tests
# and the concurrency-heavy peer tests (cluster, durability) under
# ThreadSanitizer (a race report makes the test fail: exit code 66; the
# suppressions cover uninstrumented third-party libraries only), then every
# fuzz target for a bounded time.
TSAN_TESTS ?= ^(unit\..*|integration\.cluster|integration\.durability)$$
test: deps build
	tools/lint.sh
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	cmake -S . -B $(BUILD)-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKILN_SANITIZE=ON
	ninja -C $(BUILD)-asan
	ASAN_OPTIONS=detect_leaks=1 ctest --test-dir $(BUILD)-asan --output-on-failure -j $(JOBS)
	cmake -S . -B $(BUILD)-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_SANITIZE=thread
	ninja -C $(BUILD)-tsan
	KILN_SANITIZER=thread \
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=0 exitcode=66 second_deadlock_stack=1" \
		ctest --test-dir $(BUILD)-tsan --output-on-failure -j $(JOBS) -R '$(TSAN_TESTS)'
	$(MAKE) fuzz

fuzz: deps
	CC=clang cmake -S . -B $(BUILD)-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_FUZZ=ON
	ninja -C $(BUILD)-fuzz
	tests/fuzz/run.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

# Benchmarks print figures and never fail on timing (docs/operations.md):
# the in-process push path on the release build, the query engine, storage
# (bytes on disk, WAL and push with fsync, flush, head memory; options in
# STORAGE_ARGS), RSS under sustained push with a head byte budget
# (BUDGET_ARGS), the flush of a large head at shutdown (FLUSH_ARGS), then
# pushes through the real HTTP and gRPC servers of $(BUILD)/kiln (and durable
# small pushes from 64 clients); the ring's balance and lookup cost, and a cluster (nats-server,
# a distributor, a querier, 1 or 3 ingesters as processes) at RF=1 and RF=3.
# Each bench also appends `SUMMARY name value unit` lines to
# $(BUILD)/bench-summary.txt; tests/bench/summary.sh ends with one table of
# issue 15's figures, their targets and their ratios to Pyroscope's.
bench: export KILN_BENCH_SUMMARY = $(abspath $(BUILD))/bench-summary.txt
bench: deps build
	rm -f $(BUILD)/bench-summary.txt
	KILN_TESTDATA=$(KILN_TESTDATA) $(BUILD)/tests/bench/bench_push $(BENCH_ARGS)
	KILN_TESTDATA=$(KILN_TESTDATA) $(BUILD)/tests/bench/bench_otlp
	KILN_TESTDATA=$(KILN_TESTDATA) $(BUILD)/tests/bench/bench_query
	$(BUILD)/tests/bench/bench_cardinality
	KILN_TESTDATA=$(KILN_TESTDATA) $(BUILD)/tests/bench/bench_storage $(STORAGE_ARGS)
	KILN_TESTDATA=$(KILN_TESTDATA) $(BUILD)/tests/bench/bench_budget $(BUDGET_ARGS)
	KILN_TESTDATA=$(KILN_TESTDATA) $(BUILD)/tests/bench/bench_flush $(FLUSH_ARGS)
	cd tests/bench/pushload && go run . -kiln $(abspath $(BUILD))/kiln \
		-testdata $(KILN_TESTDATA) $(PUSHLOAD_ARGS)
	$(BUILD)/tests/bench/bench_ring
	cd tests/bench/cluster && go run . -kiln $(abspath $(BUILD))/kiln \
		-testdata $(KILN_TESTDATA) $(CLUSTER_BENCH_ARGS)
	tests/bench/summary.sh $(BUILD)/bench-summary.txt

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz
