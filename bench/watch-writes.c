/*
 * watch-writes: do writes slow down when many watches are registered on
 * other paths?
 *
 * Each daemon instance is named with the number of watches it should hold
 * (LABEL:N=SOCKET), so one run can hold ours without watches beside ours
 * with ten thousand.  For N > 0 a child process opens CONNS connections,
 * registers watches on /watched/n0 .. /watched/n<N-1> spread over them,
 * and then keeps reading all of them, so that no output piles up in the
 * daemon; it counts the events it gets after the one each new watch fires
 * (there should be none: nothing under /watched changes).
 *
 * The parent writes /w/target on a raw socket with DEPTH WRITEs in
 * flight: 1 is a client waiting for each reply, more shows the daemon's
 * own work per write without the round trip.  A round writes for MS
 * milliseconds per depth on every instance in turn, swapping the order
 * between rounds: a time rather than a count, because the instances'
 * rates differ a hundredfold.  The table gives median writes/s, and each
 * instance against the instance of the same label without watches.
 *
 * -n names where bench/run pinned the processes, for the title and the
 * results.
 *
 * Usage: watch-writes [-r ROUNDS] [-m MS] [-d DEPTH[,DEPTH...]] [-c CONNS]
 *                     [-n PLACEMENT] LABEL:N=SOCKET...
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/contender.h"
#include "bench/rawconn.h"
#include "bench/results.h"
#include "bench/scratch.h"
#include "bench/timing.h"

#define TARGET "/w/target"
#define MAX_DEPTH 256
#define MAX_DEPTHS 4
#define MAX_CONNS 64
#define REG_BATCH 64		/* WATCHes sent before reading their replies */
#define QUIET_MS 2000		/* no initial event for this long: go on */
#define PKT_ROOM (sizeof(struct xsd_sockmsg) + 64)

/* What a watcher child tells the parent, once ready and once at the end. */
struct watcher_report {
	unsigned long registered;
	unsigned long initial;	/* events received before being ready */
	unsigned long events;	/* events received after */
	char error[32];		/* the daemon's answer to a failed WATCH */
};

struct instance {
	struct contender c;
	unsigned long watches;
	pid_t pid;		/* the watcher child, 0 without watches */
	int ctl;		/* closing it stops the child */
	int rep;		/* the child's reports */
	struct watcher_report ready, final;
	struct raw_conn *w;	/* the writer */
	uint32_t req;
	double *rate;		/* writes/s: [depth index][round] */
	unsigned long writes;	/* timed and warm-up */
};

static void die(const char *label, const char *what)
{
	fprintf(stderr, "watch-writes: %s: %s\n", label, what);
	exit(1);
}

/* Take every packet rc has buffered, counting events: 0 or -1. */
static int take_all(struct raw_conn *rc, unsigned long *events)
{
	struct xsd_sockmsg hdr;
	const char *body;
	int got;

	while ((got = raw_take(rc, &hdr, &body)) == 1)
		*events += hdr.type == XS_WATCH_EVENT;
	return got;
}

/* One read of a readable connection, then take_all. */
static int drain(struct raw_conn *rc, unsigned long *events)
{
	return raw_fill(rc) < 0 ? -1 : take_all(rc, events);
}

/*
 * Register watches i = k, k + conns, ... below n on connection k, a batch
 * at a time.  0, or -1 with rep->error set.
 */
static int register_on(struct raw_conn *rc, int k, int conns,
		       unsigned long n, struct watcher_report *rep)
{
	static char buf[REG_BATCH * PKT_ROOM];
	unsigned long i = (unsigned long)k;

	while (i < n) {
		size_t len = 0;
		unsigned int batch = 0, replies = 0;

		for (; i < n && batch < REG_BATCH; i += (unsigned long)conns) {
			char body[64];
			/* WATCH is "path\0token\0". */
			int blen = snprintf(body, sizeof(body),
					    "/watched/n%lu%ct%lu", i, '\0', i);

			len += raw_pack(buf + len, XS_WATCH, ++batch, body,
					(size_t)blen + 1);
		}
		if (raw_send(rc, buf, len) < 0)
			return -1;
		while (replies < batch) {
			struct xsd_sockmsg hdr;
			const char *body;

			if (raw_recv(rc, &hdr, &body) < 0)
				return -1;
			if (hdr.type == XS_WATCH_EVENT) {
				rep->initial++;
				continue;
			}
			replies++;
			if (hdr.type != XS_WATCH) {
				snprintf(rep->error, sizeof(rep->error),
					 "%.*s", (int)hdr.len, body);
				return -1;
			}
			rep->registered++;
		}
	}
	return 0;
}

/* The body of a watcher child; never returns. */
static void watcher(const struct contender *c, unsigned long n, int conns,
		    int ctl, int rep_fd)
{
	struct raw_conn *rcs = calloc((size_t)conns, sizeof(*rcs));
	struct pollfd pfd[MAX_CONNS + 1];
	struct watcher_report rep = { 0 };
	bool stop = false;

	if (!rcs)
		_exit(1);
	for (int k = 0; k < conns; k++) {
		if (raw_connect(&rcs[k], c->path) < 0)
			_exit(1);
		pfd[k] = (struct pollfd){ .fd = rcs[k].fd, .events = POLLIN };
	}
	for (int k = 0; k < conns && !rep.error[0]; k++)
		if (register_on(&rcs[k], k, conns, n, &rep) < 0 &&
		    !rep.error[0])
			_exit(1);
	/* The last replies may have come with events behind them. */
	for (int k = 0; k < conns; k++)
		if (take_all(&rcs[k], &rep.initial) < 0)
			_exit(1);
	/* Each new watch fires once; wait for those before the parent
	 * measures, unless the daemon goes quiet. */
	while (!rep.error[0] && rep.initial < rep.registered &&
	       poll(pfd, (nfds_t)conns, QUIET_MS) > 0) {
		for (int k = 0; k < conns; k++)
			if (pfd[k].revents &&
			    drain(&rcs[k], &rep.initial) < 0)
				_exit(1);
	}
	if (write(rep_fd, &rep, sizeof(rep)) != sizeof(rep))
		_exit(1);
	/* Keep reading until the parent closes ctl. */
	pfd[conns] = (struct pollfd){ .fd = ctl, .events = POLLIN };
	while (!rep.error[0] && !stop) {
		if (poll(pfd, (nfds_t)conns + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (int k = 0; k < conns; k++)
			if (pfd[k].revents && drain(&rcs[k], &rep.events) < 0)
				_exit(1);
		stop = pfd[conns].revents != 0;
	}
	for (int k = 0; k < conns; k++)
		raw_close(&rcs[k]);
	_exit(write(rep_fd, &rep, sizeof(rep)) == sizeof(rep) ? 0 : 1);
}

/* Fork the watcher of ins[i]; wait_ready waits for its watches. */
static void start_watcher(struct instance *ins, int i, int conns)
{
	struct instance *in = &ins[i];
	int ctl[2], rep[2];

	if (pipe(ctl) || pipe(rep))
		die(in->c.label, "pipe failed");
	fflush(NULL);
	in->pid = fork();
	if (in->pid < 0)
		die(in->c.label, "fork failed");
	if (in->pid == 0) {
		/* An earlier child's ctl held open here would never let
		 * that child see its end. */
		for (int j = 0; j < i; j++) {
			if (ins[j].pid) {
				close(ins[j].ctl);
				close(ins[j].rep);
			}
		}
		close(ctl[1]);
		close(rep[0]);
		watcher(&in->c, in->watches, conns, ctl[0], rep[1]);
	}
	close(ctl[0]);
	close(rep[1]);
	in->ctl = ctl[1];
	in->rep = rep[0];
}

static void wait_ready(struct instance *in)
{
	if (read(in->rep, &in->ready, sizeof(in->ready)) !=
	    sizeof(in->ready))
		die(in->c.label, "the watcher child died while registering");
}

static void stop_watcher(struct instance *in)
{
	close(in->ctl);
	if (!in->ready.error[0] &&
	    read(in->rep, &in->final, sizeof(in->final)) !=
		    sizeof(in->final))
		die(in->c.label, "the watcher child died");
	close(in->rep);
	waitpid(in->pid, NULL, 0);
}

/*
 * WRITEs of TARGET for ms milliseconds, depth in flight; returns writes
 * per second.  in->writes counts them all.
 */
static double write_round(struct instance *in, unsigned long ms,
			  unsigned long depth)
{
	static char buf[MAX_DEPTH * PKT_ROOM];
	unsigned long sent = 0, done = 0, count = ULONG_MAX;
	uint64_t t0 = bench_now_ns(), end = t0 + ms * 1000000u, t;

	while (done < count) {
		struct xsd_sockmsg hdr;
		const char *body;
		size_t len = 0;
		int got;

		/* Top the window up in one write(2). */
		for (; sent < count && sent - done < depth; sent++) {
			char value[sizeof(TARGET) + 24];
			/* WRITE is "path\0value", the value without a NUL. */
			int vlen = snprintf(value, sizeof(value),
					    TARGET "%c%lu", '\0', sent);

			len += raw_pack(buf + len, XS_WRITE, in->req++, value,
					(size_t)vlen);
		}
		if (len && raw_send(in->w, buf, len) < 0)
			die(in->c.label, "sending WRITE failed");
		if (raw_recv(in->w, &hdr, &body) < 0)
			die(in->c.label, "no reply to WRITE");
		do {
			if (hdr.type != XS_WRITE)
				die(in->c.label, "WRITE failed");
			done++;
		} while ((got = raw_take(in->w, &hdr, &body)) == 1);
		if (got < 0)
			die(in->c.label, "bad packet on the writer connection");
		/* Time is up: send no more, collect what is in flight. */
		if (count == ULONG_MAX && bench_now_ns() >= end)
			count = sent;
	}
	t = bench_now_ns();
	in->writes += done;
	return (double)done / ((double)(t - t0) / 1e9);
}

/* "LABEL:N=SOCKET", N >= 0 */
static bool parse_instance(struct instance *in, char *arg)
{
	char *colon, *end;

	if (!contender_parse(&in->c, arg))
		return false;
	colon = strchr(in->c.label, ':');
	if (!colon || !colon[1])
		return false;
	*colon = '\0';
	in->watches = strtoul(colon + 1, &end, 10);
	return !*end;
}

/* The instance of the same label without watches, if any. */
static const struct instance *baseline(const struct instance *ins, int n,
				       const struct instance *in)
{
	for (int i = 0; i < n; i++)
		if (!ins[i].watches && !strcmp(ins[i].c.label, in->c.label))
			return &ins[i];
	return NULL;
}

/* The rows of depth index di. */
static void report(struct instance *ins, int n, int di, unsigned long depth,
		   unsigned long rounds, unsigned long ms, int conns,
		   const char *place)
{
	double med[n];

	for (int i = 0; i < n; i++) {
		struct instance *in = &ins[i];

		if (in->ready.error[0])
			continue;
		/* Sorts: the first and last rate become min and max. */
		med[i] = bench_median(in->rate + di * rounds, rounds);
	}
	for (int i = 0; i < n; i++) {
		struct instance *in = &ins[i];
		const struct instance *base = baseline(ins, n, in);
		const double *rate = in->rate + di * rounds;
		char ratio[16] = "-";

		if (in->ready.error[0]) {
			printf("  %9lu  %-10s %8lu  WATCH failed after %lu: "
			       "%s\n", depth, in->c.label, in->watches,
			       in->ready.registered, in->ready.error);
			bench_result("watch_writes daemon=%s watches=%lu "
				     "depth=%lu placement=%s error=%s "
				     "registered=%lu", in->c.label,
				     in->watches, depth, place,
				     in->ready.error, in->ready.registered);
			continue;
		}
		if (base && !base->ready.error[0])
			snprintf(ratio, sizeof(ratio), "%.2f",
				 med[i] / med[base - ins]);
		printf("  %9lu  %-10s %8lu  %9.0f  %11s%s  %8.0f..%-8.0f\n",
		       depth, in->c.label, in->watches, med[i], ratio,
		       strcmp(ratio, "-") ? "x" : " ", rate[0],
		       rate[rounds - 1]);
		bench_result("watch_writes daemon=%s watches=%lu depth=%lu "
			     "placement=%s writes_per_s=%.0f ratio=%s min=%.0f "
			     "max=%.0f rounds=%lu ms_per_round=%lu conns=%d "
			     "events=%lu", in->c.label, in->watches, depth,
			     place, med[i], ratio, rate[0], rate[rounds - 1],
			     rounds, ms, in->watches ? conns : 0,
			     in->final.events);
	}
}

int main(int argc, char **argv)
{
	unsigned long rounds = 9, ms = 200, depths[MAX_DEPTHS] = { 1, 16 };
	int conns = 4, ndepths = 2, opt, n;
	const char *place = "unpinned";
	struct instance *ins;
	bool failed = false;

	while ((opt = getopt(argc, argv, "r:m:d:c:n:")) != -1) {
		switch (opt) {
		case 'r':
			rounds = strtoul(optarg, NULL, 10);
			break;
		case 'm':
			ms = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			ndepths = bench_parse_list(optarg, depths, MAX_DEPTHS,
						   1, MAX_DEPTH);
			break;
		case 'c':
			conns = atoi(optarg);
			break;
		case 'n':
			place = optarg;
			break;
		default:
			goto usage;
		}
	}
	n = argc - optind;
	if (n < 1 || rounds < 1 || ms < 1 || ndepths < 1 || conns < 1 ||
	    conns > MAX_CONNS)
		goto usage;
	ins = calloc((size_t)n, sizeof(*ins));
	if (!ins)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < n; i++)
		if (!parse_instance(&ins[i], argv[optind + i]))
			goto usage;
	/* All children register at once, then everyone waits for them. */
	for (int i = 0; i < n; i++)
		if (ins[i].watches)
			start_watcher(ins, i, conns);
	for (int i = 0; i < n; i++) {
		struct instance *in = &ins[i];

		if (in->watches)
			wait_ready(in);
		failed |= in->ready.error[0] != '\0';
		in->rate = calloc(rounds * (size_t)ndepths, sizeof(double));
		in->w = malloc(sizeof(*in->w));
		if (!in->rate || !in->w || raw_connect(in->w, in->c.path) < 0)
			die(in->c.label, "cannot connect");
		in->req = 1;
		/* Untimed warm-up; also creates the target. */
		write_round(in, ms / 5 + 1, depths[ndepths - 1]);
	}

	for (unsigned long r = 0; r < rounds; r++) {
		for (int di = 0; di < ndepths; di++) {
			for (int k = 0; k < n; k++) {
				struct instance *in =
					&ins[r % 2 ? n - 1 - k : k];

				if (!in->ready.error[0])
					in->rate[di * rounds + r] = write_round(
						in, ms, depths[di]);
			}
		}
	}
	for (int i = 0; i < n; i++)
		if (ins[i].watches)
			stop_watcher(&ins[i]);

	printf("Writes of %s by one client, with watches registered "
	       "elsewhere (/watched/n<i>, over %d reading connections; %s): "
	       "writes/s, median of %lu rounds x %lu ms\n", TARGET, conns,
	       place, rounds, ms);
	printf("  %9s  %-10s %8s  %9s  %12s  %18s\n", "in flight", "daemon",
	       "watches", "writes/s", "vs 0 watches", "min..max");
	for (int di = 0; di < ndepths; di++)
		report(ins, n, di, depths[di], rounds, ms, conns, place);
	for (int i = 0; i < n; i++) {
		struct instance *in = &ins[i];

		if (in->final.events)
			printf("  %s: %lu unexpected events during the "
			       "writes\n", in->c.label, in->final.events);

		if (in->watches && !in->ready.error[0] &&
		    in->ready.initial < in->ready.registered)
			printf("  %s: only %lu of %lu new watches fired before "
			       "the writes\n", in->c.label, in->ready.initial,
			       in->ready.registered);
		raw_close(in->w);
		free(in->w);
		free(in->rate);
	}
	free(ins);
	/* A daemon refusing WATCH is broken, not slow. */
	return failed ? 1 : 0;
usage:
	fprintf(stderr, "usage: watch-writes [-r ROUNDS] [-m MS] "
			"[-d DEPTH[,DEPTH...]] [-c CONNS] [-n PLACEMENT] "
			"LABEL:N=SOCKET...\n");
	return 2;
}
