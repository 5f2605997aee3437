# Thin wrapper for the README's two commands. Everything real is in CMake.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: deps build run test asan clean

deps:
	.ci/install-deps

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	ninja -C $(BUILD)

run: build
	$(BUILD)/kiln -target=all

# Every test: unit tests and the peer tests against the release build, then
# the unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer.
test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	cmake -S . -B $(BUILD)-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKILN_SANITIZE=ON
	ninja -C $(BUILD)-asan
	ctest --test-dir $(BUILD)-asan --output-on-failure -j $(JOBS) -L unit

clean:
	rm -rf $(BUILD) $(BUILD)-asan
