# xenstored: hand-written Makefile.  `make` configures itself on first use.
#   make            build build/xenstored
#   make run        install missing Debian packages, build, run in the foreground
#   make check      unit + integration tests, then all again under ASan+UBSan,
#                   then check-xen
#   make check-xen  real Xen 4.17 in QEMU, this daemon in dom0, real guests
#   make install    install under $(DESTDIR)$(PREFIX) (and units, /etc); make uninstall
#   make bench      the benchmark (bench/README.md), against upstream where installed
#   make clean / make distclean

B ?= build
SAN ?=

.DEFAULT_GOAL := all

ifeq ($(filter clean distclean deps,$(MAKECMDGOALS)),)
include config.mk
endif

config.mk: configure.ac config.mk.in scripts/debian-packages
	@scripts/install-deps
	autoreconf -fi
	./configure

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-missing-field-initializers
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) -I. -include config.h -MMD -MP \
	$(LIBEVENT_CFLAGS) $(XEN_CFLAGS) $(SYSTEMD_CFLAGS) $(TDB_CFLAGS) $(if $(SAN),$(SAN_FLAGS) -O1)
ALL_LDFLAGS = $(LDFLAGS) $(if $(SAN),$(SAN_FLAGS))

# The daemon's modules; main.c (main()) and options.c (the command line)
# are linked only into the binary.
CORE_SRCS := protocol/wire.c record/record.c schema/schema.c log/log.c log/trace.c store/path.c \
	store/store.c permissions/permissions.c conn/conn.c transactions/transaction.c \
	transactions/view.c \
	watches/watch.c quota/quota.c persist/db.c persist/load.c domains/ring.c domains/xen.c \
	domains/domain.c domains/ring_conn.c domains/restore.c server/server.c \
	server/forget.c server/state.c ops/ops.c ops/node_ops.c ops/control_ops.c \
	ops/quota_ops.c ops/watch_ops.c ops/domain_ops.c daemon/socket.c \
	daemon/liveupdate.c
CORE_OBJS := $(CORE_SRCS:%.c=$(B)/%.o)
CORE_LIBS = $(LIBEVENT_LIBS) $(XEN_LIBS) $(SYSTEMD_LIBS) $(TDB_LIBS)

UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/unit/%)
# C clients of the integration tests, linked with libxenstore.
CLIENT_SRCS := $(wildcard tests/integration/*.c)
CLIENT_BINS := $(CLIENT_SRCS:tests/integration/%.c=$(B)/tests/%)

# Installation: the usual variables, each overridable on the command line.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
LIBEXECDIR ?= $(PREFIX)/libexec/xenstored
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= $(SYSTEMD_UNITDIR)
RUNSTATEDIR ?= /run

INIT_FILES := $(B)/init/xenstored.service $(B)/init/xenstored.socket \
	$(B)/init/launch-xenstore $(B)/init/xenstored.default

all: $(B)/xenstored

$(B)/%.o: %.c config.mk
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/xenstored: $(B)/daemon/main.o $(B)/daemon/options.o $(CORE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CORE_LIBS)

# Unit suites link the modules from an archive, so a suite may stand in for
# one of them by defining its functions (test-domain plays the hypervisor:
# domains/xen.c is then never pulled in).
$(B)/tests/unit/core.a: $(CORE_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(B)/tests/unit/%: tests/unit/%.c $(B)/tests/unit/core.a tests/unit/unit.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) $(ALL_LDFLAGS) -o $@ $< \
		$(B)/tests/unit/core.a $(CORE_LIBS) $(CHECK_LIBS)

$(B)/tests/%: tests/integration/%.c config.mk
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(XENSTORE_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(XENSTORE_LIBS)

# The Xen test double (tests/fakexen/README.md): never sanitized, since it is
# preloaded into the daemon ahead of the sanitizer runtime.
FAKEXEN := $(B)/tests/fakexen/libfakexen.so
$(FAKEXEN): tests/fakexen/fakexen.c config.mk
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) -fPIC -shared -I. $(XEN_CFLAGS) -o $@ $< -ldl

tests: $(B)/xenstored $(UNIT_BINS) $(CLIENT_BINS) $(FAKEXEN) $(INIT_FILES)

# Benchmark (bench/README.md): numbers are reported, never asserted.
BENCH_UTIL_OBJS := $(B)/bench/timing.o $(B)/bench/results.o $(B)/bench/scratch.o
BENCH_BINS := $(B)/bench/txn-inproc $(B)/bench/txn-socket $(B)/bench/conflict \
	$(B)/bench/watch-latency $(B)/bench/watch-writes $(B)/bench/durability \
	$(B)/bench/load $(B)/bench/noop-server $(B)/bench/guests

$(B)/bench/%.o: ALL_CFLAGS += $(XENSTORE_CFLAGS)

# tests/integration/test-bench.sh runs a smoke pass of all of them.
tests: $(BENCH_BINS)

$(B)/bench/txn-inproc: $(B)/bench/txn-inproc.o $(BENCH_UTIL_OBJS) $(CORE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CORE_LIBS)

$(B)/bench/txn-socket: $(B)/bench/txn-socket.o $(B)/bench/populate.o $(BENCH_UTIL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(XENSTORE_LIBS)

$(B)/bench/conflict: $(B)/bench/conflict.o $(BENCH_UTIL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(XENSTORE_LIBS)

$(B)/bench/watch-latency: $(B)/bench/watch-latency.o $(B)/bench/rawconn.o $(BENCH_UTIL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^

$(B)/bench/watch-writes: $(B)/bench/watch-writes.o $(B)/bench/rawconn.o $(BENCH_UTIL_OBJS)
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

# Fuzzing (tests/fuzz/README.md): libFuzzer targets built by clang in their
# own directory, the daemon's modules instrumented too (gcc's objects cannot
# be).  `make fuzz` runs each for FUZZ_SECONDS; `make check` for a moment.
FUZZ_B := build-fuzz
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_B)/%)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_CFLAGS = -std=gnu11 $(WARN) -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
	-I. -include config.h -MMD -MP $(LIBEVENT_CFLAGS) $(XEN_CFLAGS) $(SYSTEMD_CFLAGS) $(TDB_CFLAGS)
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 8
FUZZ_FLAGS ?=

$(FUZZ_B)/%.o: %.c config.mk
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -c -o $@ $<

# The targets call store_check() after every input, and its recount of every
# domid would take most of the time with comparisons traced.
$(FUZZ_B)/store/store.o: FUZZ_CFLAGS += -fno-sanitize-coverage=trace-cmp

$(FUZZ_BINS): $(FUZZ_B)/%: $(FUZZ_B)/tests/fuzz/%.o $(CORE_SRCS:%.c=$(FUZZ_B)/%.o)
	$(CLANG) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(CORE_LIBS)

fuzz: $(FUZZ_BINS)
	FUZZ_FLAGS="$(FUZZ_FLAGS)" tests/fuzz/run $(FUZZ_B) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Regressions once each, then a short run of every target: part of check.
fuzz-smoke: $(FUZZ_BINS)
	FUZZ_FLAGS="$(FUZZ_FLAGS)" tests/fuzz/run --smoke $(FUZZ_B) \
		$(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

$(B)/init/%: init/%.in config.mk
	@mkdir -p $(@D)
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' \
		-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@RUNSTATEDIR@|$(RUNSTATEDIR)|g' \
		-e 's|@RUNDIR@|$(RUNSTATEDIR)/xenstored|g' $< > $@
	@if grep -q '@[A-Z]*@' $@; then echo "$@: unreplaced @VARIABLE@" >&2; exit 1; fi
	@if head -c2 $< | grep -q '#!'; then chmod +x $@; fi

# The substituted paths depend on the variables: always regenerate.
.PHONY: init-files
init-files:
	@rm -f $(INIT_FILES)
	@$(MAKE) --no-print-directory $(INIT_FILES)

install: $(B)/xenstored init-files
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/default
	install -m 755 $(B)/xenstored $(DESTDIR)$(SBINDIR)/xenstored
	install -m 755 $(B)/init/launch-xenstore $(DESTDIR)$(LIBEXECDIR)/launch-xenstore
	install -m 644 $(B)/init/xenstored.service $(B)/init/xenstored.socket \
		init/proc-xen.mount $(DESTDIR)$(UNITDIR)/
	install -m 644 man/xenstored.8 $(DESTDIR)$(MANDIR)/man8/xenstored.8
	@# The administrator's settings are never overwritten.
	test -e $(DESTDIR)$(SYSCONFDIR)/default/xenstored || \
		install -m 644 $(B)/init/xenstored.default $(DESTDIR)$(SYSCONFDIR)/default/xenstored

uninstall: init-files
	rm -f $(DESTDIR)$(SBINDIR)/xenstored $(DESTDIR)$(LIBEXECDIR)/launch-xenstore \
		$(DESTDIR)$(UNITDIR)/xenstored.service $(DESTDIR)$(UNITDIR)/xenstored.socket \
		$(DESTDIR)$(UNITDIR)/proc-xen.mount \
		$(DESTDIR)$(MANDIR)/man8/xenstored.8
	-rmdir $(DESTDIR)$(LIBEXECDIR) 2>/dev/null
	@# Settings are removed only if unchanged.
	if cmp -s $(B)/init/xenstored.default $(DESTDIR)$(SYSCONFDIR)/default/xenstored; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/default/xenstored; fi

# Real Xen (docs/real-xen.md): Debian's Xen 4.17 booted in QEMU, this daemon
# installed in dom0 as a host would have it, real Linux guests.
# XENSTORED=upstream runs the same scenarios with Debian's C xenstored.
XENSTORED ?= ours
XEN_OUT = $(B)/xen/$(XENSTORED)

check-xen: $(B)/xenstored
	rm -rf $(XEN_OUT)
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(XEN_OUT)/stage >/dev/null
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
run: all
	@mkdir -p $(RUNDIR)
	@echo "xenstored on $(RUNDIR)/socket; in another shell:"
	@echo "  export XENSTORED_PATH=$(RUNDIR)/socket; xenstore-write /x 1; xenstore-ls"
	$(B)/xenstored --no-fork --verbose --socket $(RUNDIR)/socket

# One pass of every test against the binaries in $(B).  Under ASan, freed
# memory waits in a small quarantine only, so the tests' RSS bounds see what
# the daemon keeps, not tdb's freed per-commit buffers.
test-pass: tests
	$(if $(SAN),ASAN_OPTIONS=quarantine_size_mb=16) \
	XS_BUILD=$(CURDIR)/$(B) XS_MAKEFLAGS="B=$(B) SAN=$(SAN)" \
		CK_TAP_LOG_FILE_NAME=- CK_FORK=yes \
		prove --failures --exec '' $(UNIT_BINS) tests/integration/test-*

check: config.mk
	scripts/include-graph
	$(MAKE) test-pass
	$(MAKE) test-pass B=build-san SAN=1
	$(MAKE) fuzz-smoke
	$(MAKE) check-xen

deps:
	@scripts/install-deps

clean:
	rm -rf build build-san build-fuzz run

distclean: clean
	rm -rf config.mk config.h config.h.in config.log config.status configure \
		autom4te.cache

.PHONY: all tests run test-pass check check-xen bench deps clean distclean install \
	uninstall fuzz fuzz-smoke deb

-include $(shell find $(B) $(FUZZ_B) -name '*.d' 2>/dev/null)
