# rendr — newcomer entry points. See README.md.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
BUILD_BOOST ?= build-boost
JOBS       ?= $(shell nproc)
comma      := ,
TSAN_SKIP  := KeepEveryPathUp|BondAddsUp|BondSkips|RaceHides|PrimeDoesNotFlap|PrimeMoves
# Also skipped by test-tsan-api: timing and share assertions that missed under TSan on the loaded
# 2-core machine without any TSan report (they run in `test` and `test-asan`).
TSAN_API_SKIP := $(TSAN_SKIP)|BulkStreamGoesOutInWholeFrames|HealthyDialsSucceed|OpenWithoutProofDeliversNothing|RecordedJoinTheServerNeverSaw|RaceSendsEveryByteOnEveryPath|BondWeightsAreReported|BondSplitsByWeightWhileThePathsHaveRoom

# Configures a build directory once (Ninja when available: decided when the recipe runs, i.e.
# after `deps` may have installed it); later runs reuse the directory's generator.
define configure
	test -f $(1)/CMakeCache.txt || cmake -S . -B $(1) \
		$$(command -v ninja >/dev/null 2>&1 && echo "-G Ninja") $(2)
endef

# Ends a sanitizer job whose ctest status is in $$status: any report file $(1).* (written on any
# try, also when a test failed, so the log shows why) is printed and fails the job with $(2).
define fail_on_reports
if ls $(1).* >/dev/null 2>&1; then cat $(1).*; echo "$(2)"; exit 1; fi; exit $$status
endef

.PHONY: deps build demo test test-boost test-asan test-tsan test-tsan-api docs format clean

deps:
	./scripts/install-deps.sh

build: deps
	$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=Release)
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/rendr demo

# A test that fails on timing alone (a loaded or slow machine) gets one more try; a broken
# feature fails both (ctest prints every failed try).
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600 --repeat until-pass:2

# The Boost.Asio flavour (-DRENDR_ASIO=boost), built alone: the library, its API tests (the
# integration tests that Asio touches, and the Beast HTTP/WebSocket tests) and the package test.
test-boost: deps
	$(call configure,$(BUILD_BOOST),-DCMAKE_BUILD_TYPE=Release -DRENDR_ASIO=boost)
	cmake --build $(BUILD_BOOST) -j $(JOBS) --target integration_test rendr_shared rendr_static
	cd $(BUILD_BOOST) && ctest --output-on-failure -j $(JOBS) --timeout 600 -L "integration|package"

test-asan: deps
	$(call configure,$(BUILD_ASAN),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRENDR_SANITIZE=address$(comma)undefined)
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	# As test-tsan-api: a test that fails only on timing (the sanitizer's slowdown on a loaded
	# 2-core machine) gets one more try, but every report ASan, LeakSanitizer or UBSan writes, on
	# any try, fails the job (fail_on_reports).
	rm -f $(BUILD_ASAN)/sanitizer-report.*
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:log_path=$(abspath $(BUILD_ASAN))/sanitizer-report \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(abspath $(BUILD_ASAN))/sanitizer-report \
		ctest --output-on-failure -j $(JOBS) --timeout 900 --repeat until-pass:2 -LE slow; status=$$?; \
	$(call fail_on_reports,$(abspath $(BUILD_ASAN))/sanitizer-report,A sanitizer reported the errors above)

test-tsan: deps
	$(call configure,$(BUILD_TSAN),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRENDR_SANITIZE=thread)
	cmake --build $(BUILD_TSAN) -j $(JOBS)
	# Tests that assert throughput or liveness timing cannot hold at TSan's 5-15x slowdown.
	cd $(BUILD_TSAN) && TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" \
		ctest --output-on-failure -j $(JOBS) --timeout 900 -LE slow -E "$(TSAN_SKIP)"

# The cheap TSan run CI makes: only the integration tests (the public API over real sockets,
# where the application's and the engine's threads meet) and the examples, built alone.
test-tsan-api: deps
	$(call configure,$(BUILD_TSAN),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRENDR_SANITIZE=thread)
	cmake --build $(BUILD_TSAN) -j $(JOBS) --target integration_test example_coro_echo \
		example_callback_client example_tls_echo example_read_timeout
	# A test that fails only on timing (TSan's slowdown on a shared machine) gets one more try, but
	# every report TSan writes, on any try, fails the job (fail_on_reports).
	rm -f $(BUILD_TSAN)/tsan-report.*
	cd $(BUILD_TSAN) && TSAN_OPTIONS="halt_on_error=1 log_path=$(abspath $(BUILD_TSAN))/tsan-report suppressions=$(CURDIR)/tests/tsan.supp" \
		ctest --output-on-failure -j $(JOBS) --timeout 900 --repeat until-pass:2 \
		-L "integration|example" -LE slow -E "$(TSAN_API_SKIP)"; status=$$?; \
	$(call fail_on_reports,$(abspath $(BUILD_TSAN))/tsan-report,ThreadSanitizer reported the races above)

# The API reference, HTML in $(BUILD)/docs/api/html (fails on any Doxygen warning).
docs: deps
	$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=Release)
	cmake -S . -B $(BUILD) >/dev/null
	cd $(BUILD) && ctest --output-on-failure -R '^docs\.api_reference$$'

format:
	find include src tools tests -name '*.hpp' -o -name '*.cpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_BOOST)
