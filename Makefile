# xenstored: hand-written Makefile.  `make` configures itself on first use.
#   make            build build/xenstored
#   make run        install missing Debian packages, build, run in the foreground
#   make check      unit + integration tests, then all again under ASan+UBSan
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
	$(LIBEVENT_CFLAGS) $(XEN_CFLAGS) $(SYSTEMD_CFLAGS) $(if $(SAN),$(SAN_FLAGS) -O1)
ALL_LDFLAGS = $(LDFLAGS) $(if $(SAN),$(SAN_FLAGS))

# The daemon's modules; main.c holds main() and is linked only into the binary.
CORE_SRCS := protocol/wire.c store/path.c store/store.c permissions/permissions.c \
	transactions/transaction.c watches/watch.c conn/conn.c ops/ops.c ops/node_ops.c \
	ops/control_ops.c ops/watch_ops.c ops/domain_ops.c domains/ring.c domains/xen.c \
	domains/domain.c daemon/log.c daemon/trace.c daemon/socket.c
CORE_OBJS := $(CORE_SRCS:%.c=$(B)/%.o)
CORE_LIBS = $(LIBEVENT_LIBS) $(XEN_LIBS) $(SYSTEMD_LIBS)

UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/unit/%)
# C clients of the integration tests, linked with libxenstore.
CLIENT_SRCS := $(wildcard tests/integration/*.c)
CLIENT_BINS := $(CLIENT_SRCS:tests/integration/%.c=$(B)/tests/%)

all: $(B)/xenstored

$(B)/%.o: %.c config.mk
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/xenstored: $(B)/daemon/main.o $(CORE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CORE_LIBS)

$(B)/tests/unit/%: tests/unit/%.c $(CORE_OBJS) tests/unit/unit.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(CORE_OBJS) \
		$(CORE_LIBS) $(CHECK_LIBS)

$(B)/tests/%: tests/integration/%.c config.mk
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(XENSTORE_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(XENSTORE_LIBS)

# The Xen test double (tests/fakexen/README.md): never sanitized, since it is
# preloaded into the daemon ahead of the sanitizer runtime.
FAKEXEN := $(B)/tests/fakexen/libfakexen.so
$(FAKEXEN): tests/fakexen/fakexen.c config.mk
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) -fPIC -shared -I. $(XEN_CFLAGS) -o $@ $< -ldl

tests: $(B)/xenstored $(UNIT_BINS) $(CLIENT_BINS) $(FAKEXEN)

# Benchmark (bench/README.md): numbers are reported, never asserted.
BENCH_UTIL_OBJS := $(B)/bench/timing.o $(B)/bench/results.o
BENCH_BINS := $(B)/bench/txn-inproc $(B)/bench/txn-socket $(B)/bench/conflict \
	$(B)/bench/watch-latency $(B)/bench/watch-writes

$(B)/bench/%.o: ALL_CFLAGS += $(XENSTORE_CFLAGS)

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

bench: $(B)/xenstored $(BENCH_BINS)
	bench/run $(abspath $(B))

RUNDIR := $(CURDIR)/run

# Foreground daemon on a socket under the checkout.
run: all
	@mkdir -p $(RUNDIR)
	@echo "xenstored on $(RUNDIR)/socket; in another shell:"
	@echo "  export XENSTORED_PATH=$(RUNDIR)/socket; xenstore-write /x 1; xenstore-ls"
	$(B)/xenstored --no-fork --verbose --socket $(RUNDIR)/socket

# One pass of every test against the binaries in $(B).
test-pass: tests
	XS_BUILD=$(CURDIR)/$(B) CK_TAP_LOG_FILE_NAME=- CK_FORK=yes \
		prove --exec '' $(UNIT_BINS) tests/integration/test-*

check: config.mk
	$(MAKE) test-pass
	$(MAKE) test-pass B=build-san SAN=1

deps:
	@scripts/install-deps

clean:
	rm -rf build build-san run

distclean: clean
	rm -rf config.mk config.h config.h.in config.log config.status configure \
		autom4te.cache

.PHONY: all tests run test-pass check bench deps clean distclean

-include $(shell find $(B) -name '*.d' 2>/dev/null)
