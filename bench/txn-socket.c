/*
 * txn-socket: the cost of a transaction seen by a libxenstore client,
 * against the size of the daemon's store.
 *
 * Each daemon instance is named with the store size it should hold
 * (LABEL:N=SOCKET), so one run can hold ours with a thousand nodes beside
 * ours with a million.  All are filled first (bench/populate.c); then
 * each round times, per instance in turn, transactions of
 * xs_transaction_start + xs_read + xs_write + xs_transaction_end on random
 * nodes, and the same read and write without a transaction.  Instances
 * alternate within a round and swap order between rounds, so machine noise
 * is shared; medians are reported.
 *
 * Filling has a time budget per instance: when reaching its size would
 * exceed it, the instance stays at the size it has and says so.
 *
 * Usage: txn-socket [-r ROUNDS] [-t TXNS] [-b BUDGET_S] LABEL:N=SOCKET...
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/contender.h"
#include "bench/layout.h"
#include "bench/populate.h"
#include "bench/results.h"
#include "bench/timing.h"

/* Fill in chunks so the budget is checked while a big fill runs. */
#define CHUNK 50000ul

struct daemon {
	struct contender c;
	unsigned long size;	/* nodes wanted */
	struct xs_handle *h;
	unsigned long filled;	/* nodes written so far */
	double fill_s;		/* seconds spent filling */
	double fill_rate;	/* nodes per second of the last chunk */
	bool full;		/* out of budget: filled stays as it is */
	uint64_t rng;
	unsigned long eagain;	/* should stay 0: nobody else writes */
};

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "txn-socket: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

/*
 * Fill d up to its size unless that would overrun budget seconds.
 * Upstream fills slower as its store grows, so the last chunk's rate
 * predicts the rest, and the budget is a hard stop as well.
 */
static void fill(struct daemon *d, double budget)
{
	while (d->filled < d->size) {
		unsigned long end = d->size - d->filled > CHUNK
					    ? d->filled + CHUNK : d->size;
		uint64_t t0 = bench_now_ns();
		double s;

		if (d->fill_s > budget ||
		    (d->fill_rate > 0 &&
		     d->fill_s + (double)(d->size - d->filled) / d->fill_rate >
			     budget)) {
			d->full = true;
			break;
		}
		if (bench_populate(d->c.path, d->filled, end) < 0)
			die("filling %s failed", d->c.label);
		s = (double)(bench_now_ns() - t0) / 1e9;
		d->fill_s += s;
		d->fill_rate = (double)(end - d->filled) / (s > 0 ? s : 1e-9);
		d->filled = end;
	}
}

static void random_paths(struct daemon *d, char rpath[static BENCH_PATH_MAX],
			 char wpath[static BENCH_PATH_MAX])
{
	bench_node_path(rpath, BENCH_PATH_MAX, bench_rand(&d->rng) % d->filled);
	bench_node_path(wpath, BENCH_PATH_MAX, bench_rand(&d->rng) % d->filled);
}

/* count transactions; returns microseconds per transaction. */
static double txn_round(struct daemon *d, unsigned long count)
{
	char rpath[BENCH_PATH_MAX], wpath[BENCH_PATH_MAX], value[BENCH_VALUE_MAX];
	uint64_t t0 = bench_now_ns();

	for (unsigned long i = 0; i < count; i++) {
		int vlen = snprintf(value, sizeof(value), "%lu", i);
		xs_transaction_t t = xs_transaction_start(d->h);
		unsigned int len;
		void *v;

		if (t == XBT_NULL)
			die("%s: transaction start failed", d->c.label);
		random_paths(d, rpath, wpath);
		v = xs_read(d->h, t, rpath, &len);
		if (!v)
			die("%s: read in a transaction failed", d->c.label);
		free(v);
		if (!xs_write(d->h, t, wpath, value, (unsigned int)vlen))
			die("%s: write in a transaction failed", d->c.label);
		if (!xs_transaction_end(d->h, t, false)) {
			if (errno != EAGAIN)
				die("%s: commit failed", d->c.label);
			d->eagain++;
		}
	}
	return (double)(bench_now_ns() - t0) / 1e3 / (double)count;
}

/* The same read and write outside any transaction. */
static double plain_round(struct daemon *d, unsigned long count)
{
	char rpath[BENCH_PATH_MAX], wpath[BENCH_PATH_MAX], value[BENCH_VALUE_MAX];
	uint64_t t0 = bench_now_ns();

	for (unsigned long i = 0; i < count; i++) {
		int vlen = snprintf(value, sizeof(value), "%lu", i);
		unsigned int len;
		void *v;

		random_paths(d, rpath, wpath);
		v = xs_read(d->h, XBT_NULL, rpath, &len);
		if (!v)
			die("%s: read failed", d->c.label);
		free(v);
		if (!xs_write(d->h, XBT_NULL, wpath, value, (unsigned int)vlen))
			die("%s: write failed", d->c.label);
	}
	return (double)(bench_now_ns() - t0) / 1e3 / (double)count;
}

/* The interleaved rounds, then the table. */
static void measure(struct daemon *ds, int nd, unsigned long rounds,
		    unsigned long count)
{
	double txn[nd][rounds], plain[nd][rounds];

	for (int i = 0; i < nd; i++) {
		/* Untimed warm-up: connection, allocator, caches. */
		txn_round(&ds[i], count / 10 + 1);
		plain_round(&ds[i], count / 10 + 1);
	}
	for (unsigned long r = 0; r < rounds; r++) {
		for (int k = 0; k < nd; k++) {
			int i = r % 2 ? nd - 1 - k : k;

			txn[i][r] = txn_round(&ds[i], count);
			plain[i][r] = plain_round(&ds[i], count);
		}
	}

	printf("Socket transaction (libxenstore: start, read 1, write 1, "
	       "commit): us each, median of %lu rounds x %lu\n", rounds,
	       count);
	printf("  %-10s %11s  %8s  %8s  %9s  %13s\n", "daemon", "store nodes",
	       "txn", "no txn", "txn-no txn", "txn min..max");
	for (int i = 0; i < nd; i++) {
		struct daemon *d = &ds[i];
		double tm = bench_median(txn[i], rounds);
		double pm = bench_median(plain[i], rounds);
		char note[96] = "";

		bench_sort(txn[i], rounds);		/* for min..max */

		if (d->filled < d->size)
			snprintf(note, sizeof(note),
				 "  (not %lu: filling budget)", d->size);
		printf("  %-10s %11lu  %8.1f  %8.1f  %9.1f  %6.1f..%-6.1f%s\n",
		       d->c.label, d->filled, tm, pm, tm - pm, txn[i][0],
		       txn[i][rounds - 1], note);
		bench_result("txn_socket daemon=%s nodes=%lu us_per_txn=%.1f "
			     "us_no_txn=%.1f min=%.1f max=%.1f rounds=%lu "
			     "txns_per_round=%lu fill_s=%.1f eagain=%lu",
			     d->c.label, d->filled, tm, pm, txn[i][0],
			     txn[i][rounds - 1], rounds, count, d->fill_s,
			     d->eagain);
	}
}

/* "LABEL:N=SOCKET" */
static bool parse_daemon(struct daemon *d, char *arg)
{
	char *colon, *end;

	if (!contender_parse(&d->c, arg))
		return false;
	colon = strchr(d->c.label, ':');
	if (!colon)
		return false;
	*colon = '\0';
	d->size = strtoul(colon + 1, &end, 10);
	return d->size > 0 && !*end;
}

int main(int argc, char **argv)
{
	unsigned long rounds = 7, count = 2000;
	double budget = 120;
	struct daemon *ds;
	int opt, nd;

	while ((opt = getopt(argc, argv, "r:t:b:")) != -1) {
		switch (opt) {
		case 'r':
			rounds = strtoul(optarg, NULL, 10);
			break;
		case 't':
			count = strtoul(optarg, NULL, 10);
			break;
		case 'b':
			budget = strtod(optarg, NULL);
			break;
		default:
			goto usage;
		}
	}
	nd = argc - optind;
	if (nd < 1 || rounds < 1 || count < 1)
		goto usage;
	ds = calloc((size_t)nd, sizeof(*ds));
	if (!ds)
		die("%s", "out of memory");
	for (int i = 0; i < nd; i++) {
		if (!parse_daemon(&ds[i], argv[optind + i]))
			goto usage;
		ds[i].h = contender_open(&ds[i].c);
		if (!ds[i].h)
			die("cannot connect to %s", ds[i].c.path);
		ds[i].rng = 0x9e3779b97f4a7c15ull;
		fill(&ds[i], budget);
	}

	measure(ds, nd, rounds, count);
	for (int i = 0; i < nd; i++) {
		struct daemon *d = &ds[i];

		printf("  %s: filled %lu nodes in %.1f s%s, EAGAIN %lu\n",
		       d->c.label, d->filled, d->fill_s,
		       d->full ? " (stopped: filling more would exceed the "
				 "budget)" : "", d->eagain);
		xs_close(d->h);
	}
	free(ds);
	return 0;
usage:
	fprintf(stderr, "usage: txn-socket [-r ROUNDS] [-t TXNS] [-b SECONDS] "
			"LABEL:N=SOCKET...\n");
	return 2;
}
