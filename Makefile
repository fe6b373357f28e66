# xenstored: hand-written Makefile.  `make` configures itself on first use
# (autoreconf, ./configure with defaults) unless ./configure was run.
#   make            build build/xenstored
#   make run        install missing Debian packages, build, run in the foreground
#   make check      install missing Debian packages, unit + integration tests
#                   with -Werror, all again under ASan+UBSan, fuzz-smoke, check-xen
#   make test-pass  one pass of the unit and integration tests
#   make check-xen  real Xen 4.17 in QEMU, this daemon in dom0, real guests
#   make install    install into $(DESTDIR), where configure said; make uninstall
#   make fuzz       each libFuzzer target for FUZZ_SECONDS
#   make bench      the benchmark (bench/README.md), against upstream where installed
#   make clean / make distclean
# Only `make run` and `make check` install Debian packages; the other goals
# say which package they lack (configure looked for them) and stop.

B ?= build
SAN ?=

.DEFAULT_GOAL := all

ifeq ($(filter clean distclean deps,$(MAKECMDGOALS)),)
include config.mk
endif

# The README's two commands may install the Debian packages they need; a
# plain `make` and ./configure never do.
DEPS_GROUPS := $(if $(filter run,$(MAKECMDGOALS)),build run) \
	$(if $(filter check,$(MAKECMDGOALS)),check)
# install_deps GROUPS: install what is missing and configure again to see it.
install_deps = scripts/install-deps --missing $(1) >/dev/null || \
	{ scripts/install-deps $(1) && ./config.status --recheck && ./config.status; }

# On a fresh machine the README's two commands install autoconf themselves.
configure: configure.ac
	$(if $(strip $(DEPS_GROUPS)),@command -v autoreconf >/dev/null || \
		scripts/install-deps $(DEPS_GROUPS))
	@command -v autoreconf >/dev/null || { echo "autoreconf not found: install the" \
		"Debian packages autoconf automake pkg-config (or run ./configure" \
		"from a release tarball)" >&2; exit 1; }
	autoreconf -fi
	@touch $@

# Configure again with the options it was first given (config.status keeps them).
config.mk: configure config.mk.in
	$(if $(strip $(DEPS_GROUPS)),@scripts/install-deps $(DEPS_GROUPS))
	if [ -x config.status ]; then ./config.status --recheck && ./config.status; \
	else ./configure; fi
	@touch $@

# Goals that need what configure found missing stop before building anything,
# naming the Debian packages (configure looked for them).  `make check`
# installs them first; its sub-makes then read the new config.mk.
need = $(if $(strip $(2)),$(error make $(1) needs the Debian packages $(strip $(2)): \
	apt-get install -y --no-install-recommends $(strip $(2)); then \
	./config.status --recheck && ./config.status))
ifneq ($(filter tests test-pass,$(MAKECMDGOALS)),)
$(call need,$(filter tests test-pass,$(MAKECMDGOALS)),$(MISSING_TEST))
endif
ifneq ($(filter fuzz fuzz-smoke,$(MAKECMDGOALS)),)
$(call need,$(filter fuzz fuzz-smoke,$(MAKECMDGOALS)),$(MISSING_FUZZ))
endif
ifneq ($(filter bench,$(MAKECMDGOALS)),)
$(call need,bench,$(MISSING_BENCH))
endif

# -Werror only where the project judges its own code (make check, CI): a
# packager's newer compiler must not fail the build over a new warning.
WERROR ?=
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-missing-field-initializers $(if $(WERROR),-Werror)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# CPPFLAGS, CFLAGS and LDFLAGS are configure's (config.mk) or the command line's.
# -pthread: compaction runs on a thread of its own (persist/compact.c).
# HASH_NONFATAL_OOM: uthash leaves an item out when it cannot allocate a
# table, where it would exit; every HASH_ADD checks (docs/security.md).
ALL_CFLAGS = -std=gnu11 $(WARN) -pthread -I. -include config.h -MMD -MP \
	-DHASH_NONFATAL_OOM=1 \
	$(LIBEVENT_CFLAGS) $(XEN_CFLAGS) $(SYSTEMD_CFLAGS) $(TDB_CFLAGS) $(XXHASH_CFLAGS) \
	$(ZSTD_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(if $(SAN),$(SAN_FLAGS) -O1)
ALL_LDFLAGS = -pthread $(CFLAGS) $(LDFLAGS) $(if $(SAN),$(SAN_FLAGS))

# The daemon's modules; main.c (main()) and options.c (the command line)
# are linked only into the binary.
CORE_SRCS := protocol/wire.c record/record.c schema/schema.c log/log.c log/trace.c store/path.c \
	store/index.c store/keyed_hash.c store/names.c store/slots.c store/stamps.c store/pool.c store/slab.c store/store.c permissions/permissions.c conn/conn.c transactions/transaction.c \
	transactions/view.c \
	watches/watch.c quota/quota.c persist/db.c persist/load.c persist/journal.c \
	persist/compact.c persist/jindex.c persist/checkpoint.c persist/tdb_space.c persist/crash.c domains/ring.c domains/xen.c \
	domains/domain.c domains/ring_conn.c domains/restore.c server/server.c \
	server/forget.c server/state.c server/turn.c server/waiting.c ops/ops.c ops/node_ops.c \
	ops/control_ops.c ops/quota_ops.c ops/watch_ops.c ops/domain_ops.c daemon/socket.c \
	daemon/liveupdate.c
CORE_OBJS := $(CORE_SRCS:%.c=$(B)/%.o)
CORE_LIBS = $(LIBEVENT_LIBS) $(XEN_LIBS) $(SYSTEMD_LIBS) $(TDB_LIBS) $(XXHASH_LIBS) \
	$(ZSTD_LIBS)

UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/unit/%)
# C clients of the integration tests, linked with libxenstore.
CLIENT_SRCS := $(wildcard tests/integration/*.c)
CLIENT_BINS := $(CLIENT_SRCS:tests/integration/%.c=$(B)/tests/%)

# Installation: configure's directories (config.mk), each overridable on the
# command line; PREFIX=DIR moves every one configure derived from the prefix.
ifneq ($(filter command environment,$(origin PREFIX)),)
prefix = $(PREFIX)
endif
SBINDIR ?= $(sbindir)
LIBEXECDIR ?= $(libexecdir)/xenstored
MANDIR ?= $(mandir)
SYSCONFDIR ?= $(sysconfdir)
UNITDIR ?= $(SYSTEMD_UNITDIR)
RUNSTATEDIR ?= $(runstatedir)

INIT_FILES := $(B)/init/xenstored.service $(B)/init/xenstored.socket \
	$(B)/init/launch-xenstore $(B)/init/xenstored.default

all: $(B)/xenstored

# What each build directory was compiled with: rewritten only when that
# changes, so a new CPPFLAGS, or -Werror from make check, rebuilds what a
# plain `make` built.  FLAGS is expanded once (:=), so no target's own
# additions to the flags leak into it.
define save_flags
	@mkdir -p $(@D)
	@echo '$(subst ','\'',$(FLAGS))' >$@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi
endef
$(B)/flags: FLAGS := $(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)
$(B)/flags: FORCE
	$(save_flags)
FORCE:

$(B)/%.o: %.c config.mk $(B)/flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/xenstored: $(B)/daemon/main.o $(B)/daemon/options.o $(CORE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CORE_LIBS)

# The daemon with crash points (persist/crash.h), for the crash tests only:
# persist/ compiled again with XS_CRASH_POINTS, in objects of its own, so
# the installed daemon has not even the code that reads the variable.
CRASH_OBJS := $(patsubst %.c,$(B)/crash/%.o,$(filter persist/%.c,$(CORE_SRCS)))
$(B)/crash/%.o: %.c config.mk $(B)/flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DXS_CRASH_POINTS -c -o $@ $<

$(B)/tests/xenstored-crash: $(B)/daemon/main.o $(B)/daemon/options.o \
		$(filter-out $(B)/persist/%,$(CORE_OBJS)) $(CRASH_OBJS)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CORE_LIBS)

# The daemon whose allocations can be made to fail, for the failure-
# injection tests only (tests/failalloc/failalloc.c): the crash build's
# objects, so that a test can kill it inside the rewrite a failure sets
# off, with the allocator and the request dispatcher wrapped at link time.
FAILALLOC_WRAPS := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc \
	-Wl,--wrap=strdup,--wrap=strndup,--wrap=ops_dispatch,--wrap=mprotect
$(B)/tests/xenstored-failalloc: $(B)/daemon/main.o $(B)/daemon/options.o \
		$(filter-out $(B)/persist/%,$(CORE_OBJS)) $(CRASH_OBJS) \
		$(B)/tests/failalloc/failalloc.o
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $(FAILALLOC_WRAPS) -o $@ $^ $(CORE_LIBS)

# Unit suites link the modules from an archive, so a suite may stand in for
# one of them by defining its functions (test-domain plays the hypervisor:
# domains/xen.c is then never pulled in).
$(B)/tests/unit/core.a: $(CORE_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(B)/tests/unit/%: tests/unit/%.c $(B)/tests/unit/core.a tests/unit/unit.h $(B)/flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) $(ALL_LDFLAGS) -o $@ $< \
		$(UNIT_OBJS) $(B)/tests/unit/core.a $(CORE_LIBS) $(CHECK_LIBS)

# test-bench-timing checks the benchmark's clocks.
$(B)/tests/unit/test-bench-timing: $(B)/bench/timing.o $(B)/bench/scratch.o
$(B)/tests/unit/test-bench-timing: UNIT_OBJS = $(B)/bench/timing.o $(B)/bench/scratch.o

# These make allocations fail (tests/unit/fail_alloc.h, and test-index's
# own): the allocator is wrapped, and mprotect, which makes the node
# pool's and the value blocks' reservations usable.
$(B)/tests/unit/test-index $(B)/tests/unit/test-watch \
$(B)/tests/unit/test-quota $(B)/tests/unit/test-transaction \
$(B)/tests/unit/test-persist: ALL_LDFLAGS += \
	-Wl,--wrap=calloc -Wl,--wrap=malloc -Wl,--wrap=realloc \
	-Wl,--wrap=mprotect

# test-turn records every commit: the database's calls are wrapped.
$(B)/tests/unit/test-turn: ALL_LDFLAGS += \
	-Wl,--wrap=db_commit,--wrap=db_put_encoded,--wrap=db_delete

$(B)/tests/%: tests/integration/%.c config.mk $(B)/flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(XENSTORE_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(XENSTORE_LIBS)

# The Xen test double (tests/fakexen/README.md): never sanitized, since it is
# preloaded into the daemon ahead of the sanitizer runtime.
FAKEXEN := $(B)/tests/fakexen/libfakexen.so
$(FAKEXEN): tests/fakexen/fakexen.c config.mk $(B)/flags
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) $(CPPFLAGS) $(CFLAGS) -fPIC -shared -I. $(XEN_CFLAGS) \
		$(LDFLAGS) -o $@ $< -ldl

tests: $(B)/xenstored $(UNIT_BINS) $(CLIENT_BINS) $(FAKEXEN) $(INIT_FILES) \
	$(B)/tests/xenstored-crash $(B)/tests/xenstored-failalloc

# Benchmark (bench/README.md): numbers are reported, never asserted.
BENCH_UTIL_OBJS := $(B)/bench/timing.o $(B)/bench/steady.o $(B)/bench/results.o $(B)/bench/scratch.o \
	$(B)/bench/reference.o
BENCH_BINS := $(B)/bench/txn-inproc $(B)/bench/txn-socket $(B)/bench/conflict \
	$(B)/bench/watch-latency $(B)/bench/watch-writes $(B)/bench/watch-register \
	$(B)/bench/durability $(B)/bench/db-cost $(B)/bench/wake-cost \
	$(B)/bench/load $(B)/bench/noop-server $(B)/bench/guests \
	$(B)/bench/xenstored-probes

$(B)/bench/%.o: ALL_CFLAGS += $(XENSTORE_CFLAGS)

# tests/integration/test-bench.sh runs a smoke pass of all of them.
tests: $(BENCH_BINS)

$(B)/bench/txn-inproc: $(B)/bench/txn-inproc.o $(BENCH_UTIL_OBJS) $(CORE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CORE_LIBS)

$(B)/bench/db-cost: $(B)/bench/db-cost.o $(BENCH_UTIL_OBJS) $(CORE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CORE_LIBS)

$(B)/bench/wake-cost: $(B)/bench/wake-cost.o $(BENCH_UTIL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^

$(B)/bench/txn-socket: $(B)/bench/txn-socket.o $(B)/bench/populate.o $(BENCH_UTIL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(XENSTORE_LIBS)

$(B)/bench/conflict: $(B)/bench/conflict.o $(BENCH_UTIL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(XENSTORE_LIBS)

$(B)/bench/watch-latency: $(B)/bench/watch-latency.o $(B)/bench/rawconn.o $(BENCH_UTIL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^

$(B)/bench/watch-writes: $(B)/bench/watch-writes.o $(B)/bench/rawconn.o $(BENCH_UTIL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^
$(B)/bench/watch-register: $(B)/bench/watch-register.o $(B)/bench/rawconn.o $(BENCH_UTIL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^

$(B)/bench/durability: $(B)/bench/durability.o $(B)/bench/rawconn.o $(B)/bench/populate.o \
		$(BENCH_UTIL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^

$(B)/bench/load: $(B)/bench/load.o $(B)/bench/rawconn.o $(B)/bench/populate.o \
		$(BENCH_UTIL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(XENSTORE_LIBS) -lpthread

$(B)/bench/noop-server: $(B)/bench/noop-server.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^

$(B)/bench/guests: $(B)/bench/guests.o $(BENCH_UTIL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^

# The daemon with probes (log/probes.h), for bench/probes: the files that
# have probes compiled again with XS_PROBES, in objects of their own (the
# macros change no layout), so the installed daemon has none.
PROBED_SRCS := conn/conn.c server/turn.c persist/db.c persist/journal.c
PROBED_OBJS := $(PROBED_SRCS:%.c=$(B)/probes/%.o) $(B)/probes/log/probes.o
$(B)/probes/%.o: %.c config.mk $(B)/flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DXS_PROBES -c -o $@ $<

$(B)/bench/xenstored-probes: $(B)/daemon/main.o $(B)/daemon/options.o \
		$(filter-out $(PROBED_SRCS:%.c=$(B)/%.o),$(CORE_OBJS)) $(PROBED_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CORE_LIBS)

# Fuzzing (tests/fuzz/README.md): libFuzzer targets built by clang in their
# own directory, the daemon's modules instrumented too (gcc's objects cannot
# be).  `make fuzz` runs each for FUZZ_SECONDS; `make check` for a moment.
FUZZ_B := build-fuzz
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_B)/%)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_CFLAGS = -std=gnu11 $(WARN) -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer-no-link -pthread \
	-I. -include config.h -MMD -MP $(LIBEVENT_CFLAGS) $(XEN_CFLAGS) $(SYSTEMD_CFLAGS) \
	$(TDB_CFLAGS) $(XXHASH_CFLAGS) $(ZSTD_CFLAGS)
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 8
FUZZ_FLAGS ?=

$(FUZZ_B)/flags: FLAGS := $(CLANG) $(FUZZ_CFLAGS)
$(FUZZ_B)/flags: FORCE
	$(save_flags)

$(FUZZ_B)/%.o: %.c config.mk $(FUZZ_B)/flags
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -c -o $@ $<

# The targets call store_check() after every input, and its recount of every
# domid would take most of the time with comparisons traced.
$(FUZZ_B)/store/store.o: FUZZ_CFLAGS += -fno-sanitize-coverage=trace-cmp

$(FUZZ_BINS): $(FUZZ_B)/%: $(FUZZ_B)/tests/fuzz/%.o $(CORE_SRCS:%.c=$(FUZZ_B)/%.o)
	$(CLANG) $(FUZZ_SAN) -fsanitize=fuzzer -pthread -o $@ $^ $(CORE_LIBS)

fuzz-bins: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	FUZZ_FLAGS="$(FUZZ_FLAGS)" tests/fuzz/run $(FUZZ_B) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Regressions once each, then a short run of every target: part of check.
fuzz-smoke: $(FUZZ_BINS)
	FUZZ_FLAGS="$(FUZZ_FLAGS)" tests/fuzz/run --smoke $(FUZZ_B) \
		$(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

# The init files with configure's paths (as this make's variables say).
INIT_SED = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@RUNSTATEDIR@|$(RUNSTATEDIR)|g' \
	-e 's|@RUNDIR@|$(RUNSTATEDIR)/xenstored|g'
# init_file SOURCE TARGET MODE: one shell command; no @VARIABLE@ may be left.
init_file = $(INIT_SED) $(1) >$(2) && chmod $(3) $(2) && \
	if grep -q '@[A-Z]*@' $(2); then echo "$(2): unreplaced @VARIABLE@" >&2; exit 1; fi

# The build's own copies, with configure's paths: what the tests run.
$(B)/init/%: init/%.in config.mk
	@mkdir -p $(@D)
	$(call init_file,$<,$@,$(if $(filter launch-xenstore,$*),755,644))

# install and uninstall substitute the paths of their own command line
# (PREFIX=..., UNITDIR=...) straight into the destination: they never
# rewrite the build's copies, which a test may be running meanwhile.
install: $(B)/xenstored
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/default
	install -m 755 $(B)/xenstored $(DESTDIR)$(SBINDIR)/xenstored
	$(call init_file,init/launch-xenstore.in,$(DESTDIR)$(LIBEXECDIR)/launch-xenstore,755)
	$(call init_file,init/xenstored.service.in,$(DESTDIR)$(UNITDIR)/xenstored.service,644)
	$(call init_file,init/xenstored.socket.in,$(DESTDIR)$(UNITDIR)/xenstored.socket,644)
	install -m 644 init/proc-xen.mount $(DESTDIR)$(UNITDIR)/
	install -m 644 man/xenstored.8 $(DESTDIR)$(MANDIR)/man8/xenstored.8
	@# The administrator's settings are never overwritten.
	test -e $(DESTDIR)$(SYSCONFDIR)/default/xenstored || { $(call init_file, \
		init/xenstored.default.in,$(DESTDIR)$(SYSCONFDIR)/default/xenstored,644); }

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/xenstored $(DESTDIR)$(LIBEXECDIR)/launch-xenstore \
		$(DESTDIR)$(UNITDIR)/xenstored.service $(DESTDIR)$(UNITDIR)/xenstored.socket \
		$(DESTDIR)$(UNITDIR)/proc-xen.mount \
		$(DESTDIR)$(MANDIR)/man8/xenstored.8
	-rmdir $(DESTDIR)$(LIBEXECDIR) 2>/dev/null
	@# Settings are removed only if unchanged.
	if $(INIT_SED) init/xenstored.default.in | \
		cmp -s - $(DESTDIR)$(SYSCONFDIR)/default/xenstored; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/default/xenstored; fi

# Real Xen (docs/real-xen.md): Debian's Xen 4.17 booted in QEMU, this daemon
# installed in dom0 from its Debian package (tests/xen/stage: make deb, then
# its files), real Linux guests.  XENSTORED=upstream runs the same scenarios
# with Debian's C xenstored.
XENSTORED ?= ours
XEN_OUT = $(B)/xen/$(XENSTORED)

check-xen:
	rm -rf $(XEN_OUT)
	tests/xen/stage $(XEN_OUT)
	tests/xen/run --stage $(XEN_OUT)/stage --out $(XEN_OUT) --daemon $(XENSTORED)

# The Debian package (debian/, debian/README.Debian): built from a copy of
# the sources, so neither this tree nor its parent receives build products;
# the .deb, .buildinfo and .changes land in $(B)/deb, then lintian checks them.
DEB_OUT = $(B)/deb
deb:
	rm -rf $(DEB_OUT)
	mkdir -p $(DEB_OUT)/src
	tar -cf - --exclude=./.git --exclude='./build*' --exclude=./$(B) --exclude=./run \
		--exclude=./autom4te.cache --exclude=./configure --exclude='./config.[hls]*' \
		--exclude=./config.mk \
		--exclude=./aclocal.m4 . | tar -xf - -C $(DEB_OUT)/src
	cd $(DEB_OUT)/src && dpkg-buildpackage -us -uc -b -Jauto
	lintian --fail-on error $(DEB_OUT)/*.changes

bench: $(B)/xenstored $(BENCH_BINS)
	bench/run $(abspath $(B))

RUNDIR := $(CURDIR)/run

# Foreground daemon on a socket under the checkout.
run:
	@$(call install_deps,build run)
	@$(MAKE) --no-print-directory all
	@mkdir -p $(RUNDIR)
	@echo "xenstored on $(RUNDIR)/socket; in another shell:"
	@echo "  export XENSTORED_PATH=$(RUNDIR)/socket; xenstore-write /x 1; xenstore-ls"
	$(B)/xenstored --no-fork --verbose --socket $(RUNDIR)/socket

# One pass of every test against the binaries in $(B), TEST_JOBS at a time
# (each test has its own daemons, sockets and temporary files), the slowest
# first so that the CPUs finish together.  Under ASan, freed memory waits in
# a small quarantine only, so the tests' RSS bounds see what the daemon
# keeps, not tdb's freed per-commit buffers.
TEST_JOBS ?= $(JOBS)
SLOW_TESTS := $(addprefix tests/integration/,test-bench.sh test-deb.sh test-build.sh \
	test-crash-points.py test-soak.sh test-attacks.py) $(B)/tests/unit/test-journal
TESTS := $(SLOW_TESTS) $(filter-out $(SLOW_TESTS),$(wildcard tests/integration/test-*) \
	$(UNIT_BINS))
test-pass: tests
	$(if $(SAN),ASAN_OPTIONS=quarantine_size_mb=16) \
	XS_BUILD=$(CURDIR)/$(B) XS_MAKEFLAGS="B=$(B) SAN=$(SAN) WERROR=$(WERROR)" \
		CK_TAP_LOG_FILE_NAME=- CK_FORK=yes \
		prove -j$(TEST_JOBS) --failures --exec '' $(TESTS)

# The soak (tests/soak/soak.py): SOAK_MINUTES of a host's life at speed,
# every reply checked against a model; its summary in $(B)/soak-summary.md.
SOAK_MINUTES ?= 10
soak: tests
	XS_BUILD=$(CURDIR)/$(B) SOAK_MINUTES=$(SOAK_MINUTES) \
		/usr/bin/python3 tests/soak/soak.py --summary $(B)/soak-summary.md

# The sub-makes read config.mk again, after the packages are installed.
# Each tree compiled on every CPU first (half the time on two), then its
# tests as many at a time (test-pass).
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
check:
	@$(call install_deps,check)
	scripts/include-graph
	$(MAKE) -j$(JOBS) tests WERROR=1
	$(MAKE) test-pass WERROR=1
	$(MAKE) -j$(JOBS) tests B=build-san SAN=1 WERROR=1
	$(MAKE) test-pass B=build-san SAN=1 WERROR=1
	$(MAKE) -j$(JOBS) fuzz-bins WERROR=1
	$(MAKE) fuzz-smoke WERROR=1
	$(MAKE) check-xen

# Everything every goal needs (CI installs the same list).
deps:
	@scripts/install-deps all

clean:
	rm -rf build build-san build-fuzz run

distclean: clean
	rm -rf config.mk config.h config.h.in config.h.in~ config.log config.status \
		configure configure~ aclocal.m4 autom4te.cache

.PHONY: all tests run test-pass check check-xen bench soak deps clean distclean install fuzz-bins \
	uninstall fuzz fuzz-smoke deb FORCE

-include $(shell find $(B) $(FUZZ_B) -name '*.d' 2>/dev/null)
