/*
 * txn-inproc: the cost of one transaction inside the daemon, against the
 * size of the store.
 *
 * Links the daemon's own store and transaction modules.  For each size N
 * it fills a store with N nodes, then times transactions that read one
 * node, write one node and commit; the claim under test is that
 * start and commit cost what the transaction touched, so ns per
 * transaction should not grow with N.  The stores are built first and
 * their rounds interleaved, so machine noise hits every size alike.
 *
 * Two access patterns.  "hot": the nodes come from a fixed set of HOT
 * nodes, so they stay in the CPU caches and only the algorithm shows: a
 * start that copied the store or a commit that scanned it would be
 * milliseconds at a million nodes.  "random": any node of the store; in a
 * big store that is a cache miss per lookup whatever the transaction does,
 * so each round also times the same read and write on the live store
 * without a transaction ("no txn"), and the difference is what the
 * transaction itself adds.
 *
 * Usage: txn-inproc [-r ROUNDS] [-t TXNS_PER_ROUND] N...
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench/layout.h"
#include "bench/results.h"
#include "bench/timing.h"
#include "transactions/transaction.h"

#define HOT 64

struct subject {
	unsigned long nodes;
	struct store store;
	struct txn_set txns;
	uint64_t rng;
	double *ns_hot;		/* one per round, owned */
	double *ns_random;	/* likewise, any node of the store */
	double *ns_plain;	/* likewise, random without transactions */
};

static void die(const char *what)
{
	fprintf(stderr, "txn-inproc: %s\n", what);
	exit(1);
}

static void fill(struct subject *s, struct perms *perms)
{
	char path[BENCH_PATH_MAX];

	store_init(&s->store, perms);
	txn_set_init(&s->txns);
	for (unsigned long i = 0; i < s->nodes; i++) {
		bench_node_path(path, sizeof(path), i);
		if (!store_write(&s->store, path, perms, "v", 1))
			die("out of memory filling the store");
	}
}

/*
 * Time one round of count transactions on nodes [0, span); returns ns per
 * transaction.
 */
static double round_of(struct subject *s, struct perms *perms,
		       unsigned long count, unsigned long span)
{
	char rpath[BENCH_PATH_MAX], wpath[BENCH_PATH_MAX], value[BENCH_VALUE_MAX];
	struct view_node vn;
	uint64_t t0 = bench_now_ns();

	for (unsigned long i = 0; i < count; i++) {
		struct txn *t = txn_start(&s->txns);
		int vlen = snprintf(value, sizeof(value), "%lu", i);

		if (!t)
			die("txn_start failed");
		bench_node_path(rpath, sizeof(rpath),
				bench_rand(&s->rng) % span);
		bench_node_path(wpath, sizeof(wpath),
				bench_rand(&s->rng) % span);
		if (!view_get(&s->store, t, rpath, &vn))
			die("a populated node is missing");
		if (view_write(&s->store, t, wpath, perms, value,
			       (size_t)vlen))
			die("view_write failed");
		/* Nothing else writes: any error here is a bug. */
		if (txn_commit(&s->txns, t, &s->store, NULL, NULL, NULL))
			die("txn_commit failed");
	}
	return (double)(bench_now_ns() - t0) / (double)count;
}

/* The same accesses straight on the live store. */
static double plain_round(struct subject *s, struct perms *perms,
			  unsigned long count)
{
	char rpath[BENCH_PATH_MAX], wpath[BENCH_PATH_MAX], value[BENCH_VALUE_MAX];
	uint64_t t0 = bench_now_ns();

	for (unsigned long i = 0; i < count; i++) {
		int vlen = snprintf(value, sizeof(value), "%lu", i);

		bench_node_path(rpath, sizeof(rpath),
				bench_rand(&s->rng) % s->nodes);
		bench_node_path(wpath, sizeof(wpath),
				bench_rand(&s->rng) % s->nodes);
		if (!store_lookup(&s->store, rpath))
			die("a populated node is missing");
		if (!store_write(&s->store, wpath, perms, value, (size_t)vlen))
			die("store_write failed");
	}
	return (double)(bench_now_ns() - t0) / (double)count;
}

int main(int argc, char **argv)
{
	unsigned long rounds = 7, count = 200000;
	struct subject *subj;
	struct perms *perms;
	int opt, n;

	while ((opt = getopt(argc, argv, "r:t:")) != -1) {
		switch (opt) {
		case 'r':
			rounds = strtoul(optarg, NULL, 10);
			break;
		case 't':
			count = strtoul(optarg, NULL, 10);
			break;
		default:
			goto usage;
		}
	}
	n = argc - optind;
	if (n < 1 || rounds < 1 || count < 1)
		goto usage;

	perms = perms_alloc(1);	/* owner dom0, no access for others */
	subj = calloc((size_t)n, sizeof(*subj));
	if (!perms || !subj)
		die("out of memory");
	for (int i = 0; i < n; i++) {
		struct subject *u = &subj[i];

		u->nodes = strtoul(argv[optind + i], NULL, 10);
		u->rng = 0x9e3779b97f4a7c15ull;
		u->ns_hot = calloc(rounds, sizeof(double));
		u->ns_random = calloc(rounds, sizeof(double));
		u->ns_plain = calloc(rounds, sizeof(double));
		if (!u->ns_hot || !u->ns_random || !u->ns_plain)
			die("out of memory");
		if (u->nodes < 1)
			goto usage;
		fill(u, perms);
		/* One untimed round warms caches and the allocator. */
		round_of(u, perms, count / 10 + 1, u->nodes);
		plain_round(u, perms, count / 10 + 1);
	}

	for (unsigned long r = 0; r < rounds; r++) {
		for (int i = 0; i < n; i++) {
			struct subject *u = &subj[i];
			unsigned long hot = u->nodes < HOT ? u->nodes : HOT;

			u->ns_hot[r] = round_of(u, perms, count, hot);
			u->ns_random[r] = round_of(u, perms, count, u->nodes);
			u->ns_plain[r] = plain_round(u, perms, count);
		}
	}

	printf("In-process transactions (start, read 1 node, write 1 node, "
	       "commit): ns each, median of %lu rounds x %lu\n", rounds, count);
	printf("  %11s  %8s  %8s  %8s  %9s  %11s\n", "", "hot",
	       "random", "random", "random", "random txn");
	printf("  %11s  %8s  %8s  %8s  %9s  %11s\n", "store nodes", "txn",
	       "txn", "no txn", "txn-no txn", "min..max");
	for (int i = 0; i < n; i++) {
		struct subject *u = &subj[i];
		double hot = bench_median(u->ns_hot, rounds);
		double med = bench_median(u->ns_random, rounds);
		double plain = bench_median(u->ns_plain, rounds);
		double lo, hi;

		bench_sort(u->ns_random, rounds);
		lo = u->ns_random[0];
		hi = u->ns_random[rounds - 1];

		printf("  %11lu  %8.0f  %8.0f  %8.0f  %9.0f  %5.0f..%-5.0f\n",
		       u->nodes, hot, med, plain, med - plain, lo, hi);
		bench_result("txn_inproc nodes=%lu ns_hot=%.0f ns_random=%.0f "
			     "ns_random_no_txn=%.0f ns_random_txn_overhead=%.0f"
			     " rounds=%lu txns_per_round=%lu hot_nodes=%d",
			     u->nodes, hot, med, plain, med - plain, rounds,
			     count, HOT);
	}
	if (n > 1) {
		struct subject *a = &subj[0], *b = &subj[n - 1];
		double ha = bench_median(a->ns_hot, rounds);
		double hb = bench_median(b->ns_hot, rounds);
		double ra = bench_median(a->ns_random, rounds);
		double rb = bench_median(b->ns_random, rounds);
		double pa = bench_median(a->ns_plain, rounds);
		double pb = bench_median(b->ns_plain, rounds);

		printf("  %lu vs %lu nodes: hot txn %.2fx, random txn %.2fx, "
		       "random no txn %.2fx\n", b->nodes, a->nodes, hb / ha,
		       rb / ra, pb / pa);
	}

	for (int i = 0; i < n; i++) {
		txn_set_clear(&subj[i].txns);
		store_destroy(&subj[i].store);
		free(subj[i].ns_hot);
		free(subj[i].ns_random);
		free(subj[i].ns_plain);
	}
	free(subj);
	perms_unref(perms);
	return 0;
usage:
	fprintf(stderr, "usage: txn-inproc [-r ROUNDS] [-t TXNS] N...\n");
	return 2;
}
