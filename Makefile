# SPDX-License-Identifier: MIT
# vmferry: one non-recursive Makefile.  Objects go to $(B)/ (build/ by
# default, build-asan/ for `make check-asan`).

SHELL	= /bin/bash
B	?= build
CC	?= gcc
PKGS	= fuse3 libcurl openssl lmdb libmicrohttpd jansson libzstd

CSTD	= -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64
WARN	= -Wall -Wextra -Werror -Wshadow -Wvla -Wformat=2 -Wundef \
	  -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition \
	  -Wwrite-strings -Wpointer-arith -Wimplicit-fallthrough -fno-common
HARDEN	= -fstack-protector-strong -D_FORTIFY_SOURCE=2
OPT	?= -O2 -g
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL = $(CSTD) $(WARN) $(OPT) $(HARDEN) -MMD -MP -Ilib $(PKG_CFLAGS) \
	     $(EXTRA_CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lpthread $(EXTRA_LDFLAGS)

LIB_SRCS    = $(wildcard lib/*.c)
SERVER_SRCS = $(wildcard server/*.c)
CORE_SRCS   = $(filter-out fusefs/main.c fusefs/fuse_ops.c,$(wildcard fusefs/*.c))
FUSE_SRCS   = $(filter fusefs/main.c fusefs/fuse_ops.c,$(wildcard fusefs/*.c))
TOOL_SRCS   = $(wildcard tools/*.c)
UNIT_SRCS   = $(wildcard tests/unit/test-*.c)
TAP_SRCS    = tests/tap.c
HELPER_SRCS = $(wildcard tests/helpers/*.c)

obj = $(patsubst %.c,$(B)/%.o,$(1))

LIB_OBJS    = $(call obj,$(LIB_SRCS))
SERVER_OBJS = $(call obj,$(SERVER_SRCS))
CORE_OBJS   = $(call obj,$(CORE_SRCS))
FUSE_OBJS   = $(call obj,$(FUSE_SRCS))
TOOL_OBJS   = $(call obj,$(TOOL_SRCS))
UNIT_BINS   = $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRCS))
HELPER_BINS = $(patsubst tests/helpers/%.c,$(B)/tests/helpers/%,$(HELPER_SRCS))

PROGS = $(B)/vmferry $(B)/vmferry-server

.PHONY: all deps check check-unit check-asan check-tsan check-faults check-valgrind demo bench \
	format format-check lint clean install install-files test-image bench-image
all: $(PROGS) $(UNIT_BINS) $(HELPER_BINS)

# `make V=1` shows the full commands.
Q = $(if $(V),,@)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS_ALL) -c -o $@ $<

# The web page's files, compiled into the server (server/http_ui.c).
UI_FILES = server/ui/index.html server/ui/app.js server/ui/style.css
$(B)/server/ui_assets.h: $(UI_FILES)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  GEN     $@")
	$(Q)(cd server/ui && for f in $(notdir $(UI_FILES)); do xxd -i $$f; done) >$@.tmp
	$(Q)mv $@.tmp $@
$(B)/server/http_ui.o: $(B)/server/ui_assets.h
$(B)/server/http_ui.o: CFLAGS_ALL += -I$(B)/server

$(B)/vmferry: $(TOOL_OBJS) $(FUSE_OBJS) $(CORE_OBJS) $(LIB_OBJS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(B)/vmferry-server: $(SERVER_OBJS) $(LIB_OBJS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# Unit tests: NDEBUG never set; each links lib/ plus the modules listed
# in its UNIT_DEPS_ line (one module and the neighbours it really uses).
UNIT_DEPS_test-manifest =
UNIT_DEPS_test-util	=
UNIT_DEPS_test-ws	=
UNIT_DEPS_test-vnc-ticket = server/vnc_ticket
UNIT_DEPS_test-qemu	=
UNIT_DEPS_test-crypto	= fusefs/crypto
UNIT_DEPS_test-keys	= fusefs/keys fusefs/crypto fusefs/passphrase
UNIT_DEPS_test-cache	= fusefs/cache fusefs/crypto
UNIT_DEPS_test-fetch	= fusefs/fetch fusefs/fetch_xfer fusefs/zpolicy fusefs/bgshare
UNIT_DEPS_test-plain	= fusefs/plain fusefs/remote fusefs/fetch fusefs/fetch_xfer \
			  fusefs/zpolicy fusefs/bgshare
UNIT_DEPS_test-range	= server/range
UNIT_DEPS_test-zrange	= server/zrange
UNIT_DEPS_test-image	= fusefs/image fusefs/image_store fusefs/image_write \
			  fusefs/image_evict fusefs/profile \
			  fusefs/cache fusefs/crypto
UNIT_DEPS_test-auth	= server/auth
UNIT_DEPS_test-ratelimit = server/ratelimit
UNIT_DEPS_test-route	= server/route server/upload_parse
UNIT_DEPS_test-profile	= fusefs/profile
UNIT_DEPS_test-mountwatch = fusefs/mountwatch
UNIT_DEPS_test-zpolicy	= fusefs/zpolicy
UNIT_DEPS_test-profiles	= server/profiles server/versions server/store

.SECONDEXPANSION:
# Keep intermediate objects (tests/tap.o) between runs.
.SECONDARY: $(call obj,$(TAP_SRCS))
$(B)/tests/unit/%: tests/unit/%.c $(call obj,$(TAP_SRCS)) $(LIB_OBJS) \
		$$(call obj,$$(addsuffix .c,$$(UNIT_DEPS_$$*)))
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS_ALL) -Itests -Ifusefs -Iserver -UNDEBUG -o $@ $< \
		$(call obj,$(TAP_SRCS)) \
		$(call obj,$(addsuffix .c,$(UNIT_DEPS_$*))) \
		$(LIB_OBJS) $(LDLIBS_ALL)

$(B)/tests/helpers/%: tests/helpers/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $< $(LIB_OBJS) $(LDLIBS_ALL)

# Fuzz targets (STYLE.md 9): tests/fuzz/fuzz-<name>.c, seeds in
# tests/fuzz/corpus/<name>/.  `all` links each with replay.c into
# replay-<name>, which `tests/run tests/fuzz` runs over the seeds with
# any compiler; `make fuzz` links them with libFuzzer (clang) into
# build-fuzz/ and fuzzes each for FUZZ_SECONDS on a copy of its seeds
# (tests/fuzz/libfuzzer.sh).  `make check` does the same for
# FUZZ_SMOKE_SECONDS each (fuzz-smoke), when clang is installed.
FUZZ_NAMES  = $(patsubst tests/fuzz/fuzz-%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
# Each target links only the modules it fuzzes (as UNIT_DEPS_ above).
FUZZ_DEPS_manifest = lib/manifest
FUZZ_DEPS_range	= server/range
FUZZ_DEPS_router = server/route lib/util lib/hash
FUZZ_DEPS_upload = server/upload_parse lib/manifest lib/util
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_SAN    = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_REPLAYS = $(patsubst %,$(B)/tests/fuzz/replay-%,$(FUZZ_NAMES))
FUZZ_BINS   = $(patsubst %,$(B)/tests/fuzz/fuzz-%,$(FUZZ_NAMES))
FUZZ_PREREQS = $(B)/tests/fuzz/fuzz-%.o \
	       $$(call obj,$$(addsuffix .c,$$(FUZZ_DEPS_$$*)))
all: $(FUZZ_REPLAYS)
$(B)/tests/fuzz/%.o: CFLAGS_ALL += -Iserver -UNDEBUG
$(FUZZ_REPLAYS): $(B)/tests/fuzz/replay-%: $(B)/tests/fuzz/replay.o $(FUZZ_PREREQS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)
$(FUZZ_BINS): $(B)/tests/fuzz/fuzz-%: $(FUZZ_PREREQS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

.PHONY: fuzz fuzz-bins fuzz-smoke
fuzz-bins: $(FUZZ_BINS)
fuzz:
	@command -v clang >/dev/null || { echo "make fuzz: needs clang" \
		"with libFuzzer (Debian: apt-get install clang libclang-rt-dev)"; \
		exit 1; }
	$(MAKE) B=build-fuzz CC=clang OPT="-O1 -g" HARDEN= \
		EXTRA_CFLAGS="$(subst fuzzer,fuzzer-no-link,$(FUZZ_SAN))" \
		EXTRA_LDFLAGS="$(FUZZ_SAN)" fuzz-bins
	tests/fuzz/libfuzzer.sh $(FUZZ_SECONDS) $(FUZZ_NAMES)
fuzz-smoke:
	@if command -v clang >/dev/null; then \
		$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS); \
	else \
		echo "fuzz-smoke: skipped (no clang; make deps installs it)"; \
	fi

deps:
	@./scripts/deps.sh

# The bootable test image, cached in build/ (git ignores it).
test-image: build/test-image/test.img
build/test-image/test.img: tests/qemu/mkimage.sh tests/qemu/image-lib.sh
	tests/qemu/mkimage.sh $@ 1024

# The bench's large Debian image (bench/mkimage-debian.sh: 4 GiB virtual,
# a few minutes to build); make bench builds it when BENCH_IMAGES has
# large.  Never part of make check.
bench-image: build/bench-image/debian.img
build/bench-image/debian.img: bench/mkimage-debian.sh tests/qemu/image-lib.sh
	bench/mkimage-debian.sh $@

check: deps
	$(MAKE) all
	$(MAKE) test-image
	MALLOC_PERTURB_=$$(( $$RANDOM % 255 + 1 )) VMFERRY_BUILD=$(B) tests/run
	$(MAKE) fuzz-smoke

check-unit: all
	VMFERRY_BUILD=$(B) tests/run tests/unit

check-asan: deps
	$(MAKE) B=build-asan OPT="-O1 -g" HARDEN= \
		EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" \
		EXTRA_LDFLAGS="-fsanitize=address,undefined" all
	$(MAKE) test-image
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		VMFERRY_BUILD=build-asan tests/run

# ThreadSanitizer: for any change to threading (STYLE.md 10).
check-tsan: deps
	$(MAKE) B=build-tsan OPT="-O1 -g" HARDEN= \
		EXTRA_CFLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
		EXTRA_LDFLAGS="-fsanitize=thread" all
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		VMFERRY_BUILD=build-tsan tests/run tests/unit tests/integration \
		tests/faults

# The fault suite with the full counts of issue 5 (tests/faults/, long);
# make check runs the same tests with short counts.
check-faults: deps
	$(MAKE) all
	VMFERRY_FAULTS_FULL=1 VMFERRY_TEST_TIMEOUT=7200 VMFERRY_BUILD=$(B) \
		tests/run tests/faults; st=$$?; \
		tests/faults/summary.sh | tee $(B)/test-logs/faults-summary.md; \
		exit $$st

# Time to a booted VM against the peers (bench/bench.sh): writes
# bench/results/RESULTS.md, raw.csv and boot-IMAGE.png, for the small test
# image and the large Debian one (BENCH_IMAGES).
bench: deps
	$(MAKE) all
	$(MAKE) test-image
	VMFERRY_BUILD=$(B) bench/bench.sh $(BENCH_RUNS)

check-valgrind: all
	VMFERRY_VALGRIND=1 VMFERRY_BUILD=$(B) tests/run

demo: deps
	$(MAKE) all
	$(MAKE) test-image
	VMFERRY_BUILD=$(B) ./scripts/demo.sh

FORMAT_SRCS = $(wildcard lib/*.[ch] fusefs/*.[ch] server/*.[ch] tools/*.[ch] \
		tests/*.[ch] tests/unit/*.c tests/helpers/*.c tests/fuzz/*.c)
format:
	clang-format -i $(FORMAT_SRCS)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRCS)

lint:
	@! grep -nE '\b(gets|sprintf|strcpy|strcat|strtok|atoi|atol|rand)\s*\(' \
		$(FORMAT_SRCS) | grep -v 'snprintf\|vsnprintf' || \
		{ echo "lint: banned function (STYLE.md 8)"; exit 1; }
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
		--inline-suppr -Ilib $(LIB_SRCS) $(SERVER_SRCS) $(CORE_SRCS) \
		$(FUSE_SRCS) $(TOOL_SRCS)

PREFIX ?= /usr/local
# systemd user units: `vmferry purge` hourly (contrib/systemd/).
USERUNITDIR ?= $(PREFIX)/lib/systemd/user
install: all
	$(MAKE) --no-print-directory install-files
# What install copies, without building (the tests install the binaries
# they were given, e.g. the sanitizer build's).
install-files:
	install -D -m 0755 $(B)/vmferry $(DESTDIR)$(PREFIX)/bin/vmferry
	install -D -m 0755 $(B)/vmferry-server $(DESTDIR)$(PREFIX)/bin/vmferry-server
	install -d $(DESTDIR)$(USERUNITDIR)
	sed 's|@BINDIR@|$(PREFIX)/bin|g' contrib/systemd/vmferry-purge.service \
		>$(DESTDIR)$(USERUNITDIR)/vmferry-purge.service
	install -m 0644 contrib/systemd/vmferry-purge.timer $(DESTDIR)$(USERUNITDIR)/
	@echo "installed; enable hourly purging per user with:" \
		"systemctl --user enable --now vmferry-purge.timer"

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(B) -path '$(B)/test-image' -prune -o -path '$(B)/bench-image' -prune -o -type f -name '*.d' -print 2>/dev/null)
