/*
 * db-cost: what the database costs a WRITE inside the daemon, without
 * sockets, clients or wake-ups.
 *
 * Links the daemon's store and persist modules.  Two stores of the same
 * NODES nodes (bench/layout.h); one is followed by a database in a
 * scratch directory (on /dev/shm when there is one, as the defaults' file
 * is on a tmpfs), which is committed every BATCH writes, as the server
 * commits once a loop turn.  Both stores get the same random WRITEs, in
 * alternating rounds, so that the machine's noise hits them alike, and
 * the loop's event base is run once a batch on both sides (the
 * database's timers and wake-ups are in it, as in the daemon).
 *
 * Reported per WRITE: the loop thread's CPU time with and without the
 * database, medians of the rounds; the median of the rounds' differences
 * (what recording, sealing and appending cost the loop), with their
 * range; and the CPU time of the database's compaction thread (merging
 * the journals the writes filled) over the whole run, whichever side's
 * round it fell in.
 * bench/load measures the same end to end, where a client's wake-ups and
 * the host's speed move the ratio by more than this whole difference;
 * this is the figure a change to persist/ should move.
 *
 * Not pinned: the compaction thread takes the other CPU, as the daemon's
 * does; the daemon's waits for requests would give it room on the
 * loop's CPU too, but this loop never waits, and the thread, at the
 * lowest priority, would starve there.
 *
 * Usage: db-cost [-r ROUNDS] [-t WRITES_PER_ROUND] [-b BATCH] [-n NODES]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench/layout.h"
#include "bench/results.h"
#include "bench/scratch.h"
#include "bench/timing.h"
#include "persist/db.h"
#include "store/store.h"

/* Past the first two journals' lives at 300,000 WRITEs a round. */
#define WARM_ROUNDS 3

struct side {
	struct store store;
	struct db *db;		/* NULL: no database */
	uint64_t rng;
	double *loop_ns;	/* per WRITE, one per round */
};

static void die(const char *what)
{
	fprintf(stderr, "db-cost: %s\n", what);
	exit(1);
}

static void fill(struct side *s, struct perms *perms, unsigned long nodes)
{
	char path[BENCH_PATH_MAX], value[BENCH_VALUE_MAX];

	for (unsigned long i = 0; i < nodes; i++) {
		int len = bench_node_value(value, sizeof(value), i);

		bench_node_path(path, sizeof(path), i);
		if (!store_write(&s->store, path, perms, value, (size_t)len))
			die("out of memory filling the store");
	}
	if (s->db && db_commit(s->db) != 0)
		die("the database's first commit failed");
}

/* count WRITEs to random nodes, a commit and a pass of the loop every
 * batch; the loop thread's and the whole process's CPU time over them
 * in *loop and *all. */
static void writes(struct side *s, struct perms *perms,
		   struct event_base *base, unsigned long nodes,
		   unsigned long count, unsigned long batch, uint64_t *loop,
		   uint64_t *all)
{
	char path[BENCH_PATH_MAX], value[BENCH_VALUE_MAX];
	uint64_t t0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	uint64_t p0 = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);

	for (unsigned long k = 0; k < count; k++) {
		unsigned long i = bench_rand(&s->rng) % nodes;
		int len = bench_value(value, sizeof(value), i, k);

		bench_node_path(path, sizeof(path), i);
		if (!store_write(&s->store, path, perms, value, (size_t)len))
			die("store_write failed");
		if (k % batch == batch - 1 || k == count - 1) {
			if (s->db && db_commit(s->db) != 0)
				die("a commit failed (see above)");
			event_base_loop(base, EVLOOP_NONBLOCK);
		}
	}
	*loop = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
	*all = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID) - p0;
}

int main(int argc, char **argv)
{
	unsigned long rounds = 21, count = 300000, batch = 32, nodes = 1000;
	char dir[64], file[96];
	struct side sides[2] = { { .rng = 0x9e3779b97f4a7c15ull },
				 { .rng = 0x9e3779b97f4a7c15ull } };
	struct side *nodb = &sides[0], *db = &sides[1];
	struct event_base *base;
	struct perms *perms;
	bool restorable;
	double loop_db, loop_nodb, thread, median, *added;
	uint64_t others = 0;	/* the process's CPU time past the loop's */
	int opt;

	while ((opt = getopt(argc, argv, "r:t:b:n:")) != -1) {
		unsigned long v = strtoul(optarg, NULL, 10);

		switch (opt) {
		case 'r': rounds = v; break;
		case 't': count = v; break;
		case 'b': batch = v; break;
		case 'n': nodes = v; break;
		default: goto usage;
		}
	}
	if (optind != argc || !rounds || !count || !batch || !nodes)
		goto usage;

	perms = perms_alloc(1);	/* owner dom0, no access for others */
	base = event_base_new();
	for (int i = 0; i < 2; i++) {
		sides[i].loop_ns = calloc(rounds, sizeof(double));
		if (!sides[i].loop_ns)
			die("out of memory");
	}
	added = calloc(rounds, sizeof(double));
	if (!perms || !base || !added)
		die("out of memory");
	snprintf(dir, sizeof(dir), "%s/xs-db-cost-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir))
		die("cannot make a scratch directory");
	snprintf(file, sizeof(file), "%s/xenstored.tdb", dir);

	store_init(&nodb->store, perms);
	store_init(&db->store, perms);
	/* A new file: nothing to load, every node saved as it comes. */
	db->db = db_open(file, &restorable);
	if (!db->db || db_notify(db->db, base) != 0)
		die("cannot open the database");
	db_follow(db->db, &db->store, true);
	db_loaded_done(db->db);
	fill(nodb, perms, nodes);
	fill(db, perms, nodes);

	/* Untimed rounds first: caches, the allocator, and the journal's
	 * first lives, new files written before a spare is kept (as the
	 * daemon's first after 3 s at rest), which cost the loop about 4
	 * times the steady state's a WRITE here. */
	for (int k = 0; k < WARM_ROUNDS; k++)
		for (int i = 0; i < 2; i++) {
			uint64_t a, b;

			writes(&sides[i], perms, base, nodes, count, batch,
			       &a, &b);
		}
	for (unsigned long r = 0; r < rounds; r++) {
		for (int i = 0; i < 2; i++) {
			uint64_t loop, all;

			writes(&sides[i], perms, base, nodes, count, batch,
			       &loop, &all);
			sides[i].loop_ns[r] = (double)loop / (double)count;
			others += all - loop;
		}
	}
	loop_nodb = bench_median(nodb->loop_ns, rounds);
	loop_db = bench_median(db->loop_ns, rounds);
	/* Each round's difference, its two sides a few ms apart: a host
	 * that slows for a while slows both. */
	for (unsigned long r = 0; r < rounds; r++)
		added[r] = db->loop_ns[r] - nodb->loop_ns[r];
	median = bench_median(added, rounds);
	bench_sort(added, rounds);
	thread = (double)others / (double)(rounds * count);

	printf("The database's cost in process: WRITEs to %lu nodes, a commit "
	       "every %lu; CPU ns a WRITE, median of %lu rounds x %lu\n",
	       nodes, batch, rounds, count);
	printf("  %-22s %9.1f\n", "loop, no database", loop_nodb);
	printf("  %-22s %9.1f\n", "loop, database", loop_db);
	printf("  %-22s %9.1f   (rounds %.1f..%.1f)\n", "loop, added", median,
	       added[0], added[rounds - 1]);
	printf("  %-22s %9.1f\n", "compaction thread", thread);
	bench_result("db_cost nodes=%lu batch=%lu rounds=%lu writes=%lu "
		     "loop_ns_nodb=%.1f loop_ns_db=%.1f added_ns=%.1f "
		     "added_min_ns=%.1f added_max_ns=%.1f thread_ns=%.1f",
		     nodes, batch, rounds, count, loop_nodb, loop_db, median,
		     added[0], added[rounds - 1], thread);

	/* As the daemon stops: the store's changes no longer followed. */
	db->store.observer = NULL;
	db_close(db->db);
	event_base_free(base);
	bench_rmtree(dir);
	for (int i = 0; i < 2; i++) {
		store_destroy(&sides[i].store);
		free(sides[i].loop_ns);
	}
	free(added);
	perms_unref(perms);
	return 0;
usage:
	fprintf(stderr, "usage: db-cost [-r ROUNDS] [-t WRITES_PER_ROUND] "
		"[-b BATCH] [-n NODES]\n");
	return 2;
}
