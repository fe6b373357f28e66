/*
 * conflict: do transactions on disjoint subtrees fail each other?
 *
 * N client processes, each with its own libxenstore connection, start
 * together and each commit a fixed number of transactions that touch only
 * its own subtree: read and increment KEYS counters under /bench/c<i>.
 * /bench starts empty, so the first transaction of every client also
 * creates its subtree beside the others'.  A commit answering EAGAIN is
 * retried and counted; our daemon should count none.  At the end every
 * client checks that each counter equals the number of transactions (no
 * lost update).  EAGAINs before a client's first commit are also counted
 * apart: those come from creating the subtrees side by side, the later
 * ones from updating them.
 *
 * Daemons alternate within a round and swap order between rounds; the
 * EAGAIN counts are summed over rounds, the throughput is their median.
 *
 * Usage: conflict [-r ROUNDS] [-t TXNS] [-c N[,N...]] LABEL=SOCKET...
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/contender.h"
#include "bench/results.h"
#include "bench/scratch.h"
#include "bench/timing.h"

#define KEYS 3
#define MAX_CLIENTS 64
#define MAX_COUNTS 8
#define MAX_RETRIES 1000	/* per transaction, then the client gives up */

/* What one client reports to the parent through its pipe. */
struct client_result {
	int client;
	unsigned long eagain;
	unsigned long eagain_first;	/* of which before the first commit */
	unsigned long lost;	/* counters that do not match at the end */
	int failed;		/* an unexpected error: errno, or -1 */
	uint64_t ns;		/* from the start signal to the last commit */
};

struct trial {
	unsigned long eagain[MAX_CLIENTS];	/* summed over rounds */
	unsigned long eagain_first;		/* all clients, all rounds */
	unsigned long lost;
	int failed;
	double *txn_per_s;			/* one per round, owned */
};

static void key_path(char *buf, size_t size, int client, int key)
{
	snprintf(buf, size, "/bench/c%d/k%d", client, key);
}

/* Abandon t after a failed request; returns that request's error. */
static int give_up(struct xs_handle *h, xs_transaction_t t)
{
	int err = errno ? errno : -1;

	xs_transaction_end(h, t, true);
	return err;
}

/*
 * One transaction: increment every counter of the client.  0 committed,
 * EAGAIN to retry, another errno to give up.
 */
static int one_txn(struct xs_handle *h, int client)
{
	xs_transaction_t t = xs_transaction_start(h);
	char path[64], value[24];

	if (t == XBT_NULL)
		return errno ? errno : -1;
	for (int k = 0; k < KEYS; k++) {
		unsigned long n = 0;
		unsigned int len;
		char *v;
		int vlen;

		key_path(path, sizeof(path), client, k);
		v = xs_read(h, t, path, &len);
		if (!v && errno != ENOENT)
			return give_up(h, t);
		if (v)
			n = strtoul(v, NULL, 10);
		free(v);
		vlen = snprintf(value, sizeof(value), "%lu", n + 1);
		if (!xs_write(h, t, path, value, (unsigned int)vlen))
			return give_up(h, t);
	}
	if (xs_transaction_end(h, t, false))
		return 0;
	return errno ? errno : -1;
}

/* Every counter should equal the number of committed transactions. */
static unsigned long count_lost(struct xs_handle *h, int client,
				unsigned long txns)
{
	unsigned long lost = 0;
	char path[64];

	for (int k = 0; k < KEYS; k++) {
		unsigned int len;
		char *v;

		key_path(path, sizeof(path), client, k);
		v = xs_read(h, XBT_NULL, path, &len);
		if (!v || strtoul(v, NULL, 10) != txns)
			lost++;
		free(v);
	}
	return lost;
}

/* The body of client process i; never returns. */
static void client(const struct contender *c, int i, unsigned long txns,
		   int ready_fd, int go_fd, int result_fd)
{
	struct client_result res = { .client = i };
	struct xs_handle *h = contender_open(c);
	char byte = 0;
	uint64_t t0;

	if (!h)
		res.failed = errno ? errno : -1;
	/* Connected (or failed): tell the parent, wait for everyone. */
	if (write(ready_fd, &byte, 1) != 1 || read(go_fd, &byte, 1) < 0)
		_exit(1);
	t0 = bench_now_ns();
	for (unsigned long n = 0; h && !res.failed && n < txns; n++) {
		int retries = 0, err;

		while ((err = one_txn(h, i)) == EAGAIN &&
		       ++retries < MAX_RETRIES) {
			res.eagain++;
			res.eagain_first += n == 0;
		}
		if (err)
			res.failed = err;
	}
	res.ns = bench_now_ns() - t0;
	if (h && !res.failed)
		res.lost = count_lost(h, i, txns);
	if (h)
		xs_close(h);
	_exit(write(result_fd, &res, sizeof(res)) == sizeof(res) ? 0 : 1);
}

static void sys_die(const char *what)
{
	perror(what);
	exit(1);
}

/* An empty /bench, so every client creates its subtree in the race. */
static void reset_tree(const struct contender *c)
{
	struct xs_handle *h = contender_open(c);

	if (!h)
		sys_die(c->path);
	if (!xs_rm(h, XBT_NULL, "/bench") && errno != ENOENT)
		sys_die("xs_rm /bench");
	if (!xs_mkdir(h, XBT_NULL, "/bench"))
		sys_die("xs_mkdir /bench");
	xs_close(h);
}

/*
 * One run of n clients on c: adds their counts to tr and returns the
 * transactions per second of the run (all commits over the slowest client).
 */
static double run_trial(const struct contender *c, int n, unsigned long txns,
			struct trial *tr)
{
	int ready[2], go[2], result[2];
	pid_t pids[MAX_CLIENTS];
	uint64_t slowest = 1;
	char byte;

	reset_tree(c);
	if (pipe(ready) || pipe(go) || pipe(result))
		sys_die("pipe");
	fflush(NULL);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			sys_die("fork");
		if (pids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			close(result[0]);
			client(c, i, txns, ready[1], go[0], result[1]);
		}
	}
	close(ready[1]);
	close(go[0]);
	close(result[1]);
	for (int i = 0; i < n; i++)
		if (read(ready[0], &byte, 1) != 1)
			sys_die("a client died before starting");
	close(go[1]);	/* every client's read returns 0: go */
	for (int i = 0; i < n; i++) {
		struct client_result res;

		/* A write of a small struct to a pipe is atomic. */
		if (read(result[0], &res, sizeof(res)) != sizeof(res))
			sys_die("a client died before reporting");
		tr->eagain[res.client] += res.eagain;
		tr->eagain_first += res.eagain_first;
		tr->lost += res.lost;
		if (res.failed && !tr->failed)
			tr->failed = res.failed;
		if (res.ns > slowest)
			slowest = res.ns;
	}
	close(ready[0]);
	close(result[0]);
	for (int i = 0; i < n; i++)
		waitpid(pids[i], NULL, 0);
	return (double)n * (double)txns / ((double)slowest / 1e9);
}

static void report(const struct contender *c, int n, struct trial *tr,
		   unsigned long rounds, unsigned long txns)
{
	unsigned long total = 0;
	char list[MAX_CLIENTS * 8] = "";
	size_t len = 0;
	double rate = bench_median(tr->txn_per_s, rounds);

	for (int i = 0; i < n; i++) {
		total += tr->eagain[i];
		if (len < sizeof(list))
			len += (size_t)snprintf(list + len, sizeof(list) - len,
						"%s%lu", i ? " " : "",
						tr->eagain[i]);
		bench_result("conflict daemon=%s clients=%d client=%d "
			     "eagain=%lu txns=%lu", c->label, n, i,
			     tr->eagain[i], rounds * txns);
	}
	printf("  %7d  %-10s  %7lu  %7lu  %-24s  %8.0f%s%s\n", n, c->label,
	       total, tr->eagain_first, list, rate,
	       tr->lost ? "  LOST UPDATES" : "",
	       tr->failed ? "  CLIENT FAILED" : "");
	if (tr->failed)
		printf("           (first failure: %s)\n",
		       tr->failed > 0 ? strerror(tr->failed) : "unknown");
	bench_result("conflict_total daemon=%s clients=%d eagain=%lu "
		     "eagain_first_txn=%lu lost=%lu failed=%d txn_per_s=%.0f "
		     "rounds=%lu txns_per_client=%lu", c->label, n, total,
		     tr->eagain_first, tr->lost, tr->failed, rate, rounds,
		     txns);
}

int main(int argc, char **argv)
{
	unsigned long rounds = 3, txns = 300;
	unsigned long counts[MAX_COUNTS] = { 2, 4, 8 };
	int ncounts = 3, nd, opt;
	struct contender *cs;
	struct trial *trials;	/* [count][daemon] */
	bool bad = false;

	while ((opt = getopt(argc, argv, "r:t:c:")) != -1) {
		switch (opt) {
		case 'r':
			rounds = strtoul(optarg, NULL, 10);
			break;
		case 't':
			txns = strtoul(optarg, NULL, 10);
			break;
		case 'c':
			ncounts = bench_parse_list(optarg, counts, MAX_COUNTS,
						   1, MAX_CLIENTS);
			break;
		default:
			goto usage;
		}
	}
	nd = argc - optind;
	if (nd < 1 || ncounts < 1 || rounds < 1 || txns < 1)
		goto usage;
	cs = calloc((size_t)nd, sizeof(*cs));
	trials = calloc((size_t)(nd * ncounts), sizeof(*trials));
	if (!cs || !trials)
		sys_die("calloc");
	for (int d = 0; d < nd; d++)
		if (!contender_parse(&cs[d], argv[optind + d]))
			goto usage;
	for (int k = 0; k < nd * ncounts; k++) {
		trials[k].txn_per_s = calloc(rounds, sizeof(double));
		if (!trials[k].txn_per_s)
			sys_die("calloc");
	}
	signal(SIGPIPE, SIG_IGN);

	for (unsigned long r = 0; r < rounds; r++) {
		for (int k = 0; k < ncounts; k++) {
			for (int j = 0; j < nd; j++) {
				int d = r % 2 ? nd - 1 - j : j;
				struct trial *tr = &trials[k * nd + d];

				tr->txn_per_s[r] = run_trial(
					&cs[d], (int)counts[k], txns, tr);
			}
		}
	}

	printf("Conflicts: each client commits %lu transactions on its own "
	       "subtree (%d reads + %d writes each), x %lu rounds\n", txns,
	       KEYS, KEYS, rounds);
	printf("  %7s  %-10s  %7s  %7s  %-24s  %8s\n", "", "", "EAGAIN",
	       "in 1st", "", "");
	printf("  %7s  %-10s  %7s  %7s  %-24s  %8s\n", "clients", "daemon",
	       "total", "txn", "EAGAIN per client", "txn/s");
	for (int k = 0; k < ncounts; k++) {
		for (int d = 0; d < nd; d++) {
			struct trial *tr = &trials[k * nd + d];

			report(&cs[d], (int)counts[k], tr, rounds, txns);
			bad |= tr->lost || tr->failed;
		}
	}
	for (int k = 0; k < nd * ncounts; k++)
		free(trials[k].txn_per_s);
	free(trials);
	free(cs);
	/* EAGAIN counts are numbers to read; broken clients are an error. */
	return bad ? 1 : 0;
usage:
	fprintf(stderr, "usage: conflict [-r ROUNDS] [-t TXNS] [-c N[,N...]] "
			"LABEL=SOCKET...\n");
	return 2;
}
