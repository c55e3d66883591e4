# Two commands set everything up on a fresh Debian 12 machine:
#   make run    installs what is missing, builds, and runs the window
#   make test   installs what is missing, builds, and runs every test (plain and ASan+UBSan)
#   make fuzz   builds the libFuzzer targets with clang and fuzzes each for FUZZ_TIME seconds
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

DEB_PACKAGES := g++ cmake ninja-build pkg-config googletest libgtest-dev libgmock-dev \
	nlohmann-json3-dev libseccomp-dev qt6-base-dev qt6-charts-dev libgl-dev xvfb xauth \
	socat clang-format-14 clang-16 libclang-rt-16-dev telnet strace

# One pinned formatter, Debian 12's own: another clang-format version formats some constructs
# differently, and the check below must mean the same on every machine.
CLANG_FORMAT := clang-format-14
FORMAT_FILES = $(shell git ls-files '*.cc' '*.h')

# Options a sanitized run needs: crashes must reach the broker as real signals (the drills test
# exactly that), so ASan may not turn SIGSEGV into an exit code.
ASAN_ENV := ASAN_OPTIONS=handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0:detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The window tests run on Qt's offscreen platform (ctest sets it per test too), so no display is
# needed for `make test`.
UI_TEST_ENV := QT_QPA_PLATFORM=offscreen

# `make run`: the window on four pages. sbx's --renderers N means what it means for sbx-broker
# (N renderers on --page), so the other three pages come from the window's --spawn URL.
RUN_ARGS ?= --renderers 1 --page sbx://plasma --spawn sbx://clock \
	--spawn sbx://text/Hello%20from%20sbx --spawn about:blank

.PHONY: deps configure build run test test-plain test-asan test-fuzz fuzz fuzz-build format \
	format-check bench screenshot clean

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSBX_SANITIZE=ON $(CMAKE_FLAGS)

configure: deps $(BUILD)/build.ninja

build: configure
	ninja -C $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/bin/sbx $(RUN_ARGS)

test: format-check test-plain test-asan test-fuzz

# `make format` rewrites every tracked source in place; `make test` only checks.
format: deps
	$(CLANG_FORMAT) --style=file -i $(FORMAT_FILES)

format-check: deps
	@$(CLANG_FORMAT) --style=file --dry-run --Werror $(FORMAT_FILES) || \
	  { echo 'Some sources differ from .clang-format: run make format'; exit 1; }

test-plain: build
	$(UI_TEST_ENV) ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD) -j $(JOBS)
	$(ASAN_ENV) $(UI_TEST_ENV) ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

# The fuzzers: clang 16 with libFuzzer, in their own build folder so the g++ builds never see the
# clang-only flags (the top-level CMakeLists.txt says why the fuzz build needs them). The g++
# builds replay every corpus in test-plain and test-asan.
$(FUZZ_BUILD)/build.ninja:
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSBX_FUZZ=ON \
	  -DCMAKE_CXX_COMPILER=clang++-16 $(CMAKE_FLAGS)

fuzz-build: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) -j $(JOBS) sbx_fuzzers

# A few seconds of each fuzzer (SBX_FUZZ_BRIEF_SECONDS, 10 by default), bounded, from the seeds.
test-fuzz: fuzz-build
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure -j $(JOBS) -L fuzz

# `make fuzz FUZZ_TIME=600`, or `make fuzz FUZZ_TARGETS=fuzz_decoder FUZZ_RUNS=10000000`. Each
# fuzzer grows its own corpus in $(FUZZ_BUILD)/corpus (kept between runs, seeded from
# tests/fuzz/corpus) and stops at the first failure, saving the input as
# $(FUZZ_BUILD)/crash/TARGET-crash-*: replay it with $(BUILD)/bin/TARGET_replay FILE, then make it
# a unit test.
FUZZ_TIME ?= 60
FUZZ_RUNS ?=
FUZZ_TARGETS ?= fuzz_decoder fuzz_heartbeat fuzz_frame_header fuzz_control_line fuzz_command_line
FUZZ_LIMIT = $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_TIME))

fuzz: fuzz-build
	@mkdir -p $(FUZZ_BUILD)/crash
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	  echo "fuzzing $$t ($(FUZZ_LIMIT)), log in $(FUZZ_BUILD)/$$t.log"; \
	  $(FUZZ_BUILD)/bin/$$t $(FUZZ_LIMIT) -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/crash/$$t- $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t \
	    > $(FUZZ_BUILD)/$$t.log 2>&1; rc=$$?; \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_BUILD)/$$t.log); \
	  rate=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $(FUZZ_BUILD)/$$t.log); \
	  if [ $$rc -ne 0 ]; then \
	    tail -n 40 $(FUZZ_BUILD)/$$t.log; echo "$$t: FAILED (exit $$rc)"; exit 1; \
	  fi; \
	  echo "$$t: $$runs executions, $$rate execs/s, clean"; \
	done

bench: build
	$(BUILD)/bin/sbx-bench

# docs/screenshot.png for the README: the window under Xvfb with 4 renderers, one killed and one
# stopped through sbx-ctl (ui/screenshot.sh).
screenshot: build
	ui/screenshot.sh $(BUILD) docs/screenshot.png

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
