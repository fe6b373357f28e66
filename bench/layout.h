/*
 * bench/layout: where the benchmarks put the nodes that fill the store, and
 * what those nodes hold.
 *
 * The store looks like a host's: node i is one of the 40 keys libxl and
 * the PV drivers keep under a guest's home, /local/domain/<d>/<key>, with
 * d = 2001 + i / 40 (a million nodes are 25,000 guests; domids 1..1000 are
 * the boot workload's, bench/load.c), and its value is 10
 * to 40 bytes (the digits of i, zero-padded to a length that depends on
 * i), as a host's frontends, backends and ring references are.  No listing
 * or parent grows with the store's size, only the number of homes does.
 */
#ifndef XS_BENCH_LAYOUT_H
#define XS_BENCH_LAYOUT_H

#include <stdio.h>

#define BENCH_KEYS_PER_DOMAIN 40
#define BENCH_FIRST_DOMID 2001
#define BENCH_PATH_MAX 64	/* every node path fits, with its NUL */
#define BENCH_VALUE_MAX 48	/* every value fits, with a NUL */

static const char *const bench_keys[BENCH_KEYS_PER_DOMAIN] = {
	"name", "vm", "domid", "memory/target", "memory/static-max",
	"cpu/0/availability", "cpu/1/availability", "control/shutdown",
	"control/feature-poweroff", "control/feature-suspend",
	"console/port", "console/ring-ref", "console/type", "console/limit",
	"device/vif/0/backend", "device/vif/0/backend-id",
	"device/vif/0/state", "device/vif/0/handle", "device/vif/0/mac",
	"device/vif/0/tx-ring-ref", "device/vif/0/rx-ring-ref",
	"device/vif/0/event-channel", "device/vif/0/request-rx-copy",
	"device/vif/0/feature-rx-notify", "device/vif/1/backend",
	"device/vif/1/state", "device/vif/1/mac", "device/vif/1/tx-ring-ref",
	"device/vif/1/rx-ring-ref", "device/vif/1/event-channel",
	"device/vbd/51712/backend", "device/vbd/51712/backend-id",
	"device/vbd/51712/state", "device/vbd/51712/virtual-device",
	"device/vbd/51712/device-type", "device/vbd/51712/ring-ref",
	"device/vbd/51712/event-channel", "device/vbd/51712/protocol",
	"data/updated", "attr/os/version",
};

static inline int bench_node_path(char *buf, size_t size, unsigned long i)
{
	return snprintf(buf, size, "/local/domain/%lu/%s",
			BENCH_FIRST_DOMID + i / BENCH_KEYS_PER_DOMAIN,
			bench_keys[i % BENCH_KEYS_PER_DOMAIN]);
}

/* The length of node i's values: 10..40, spread evenly. */
static inline int bench_value_len(unsigned long i)
{
	return 10 + (int)((i * 7919ul) % 31);
}

/* A value of node i's length: the last 9 digits of n, zero-padded. */
static inline int bench_value(char *buf, size_t size, unsigned long i,
			      unsigned long n)
{
	return snprintf(buf, size, "%0*lu", bench_value_len(i),
			n % 1000000000ul);
}

/* What node i holds once filled: its own number as its value. */
static inline int bench_node_value(char *buf, size_t size, unsigned long i)
{
	return bench_value(buf, size, i, i);
}

#endif
