/*
 * watch-latency: how long a change takes to reach a watcher.
 *
 * Per daemon, connection A watches /lat/node and connection B writes it,
 * one write at a time.  A sample is the time from B sending the WRITE to
 * A holding the WATCH_EVENT; the time to B's own reply is kept beside it
 * (write RTT), the round trip the event latency should be compared with.
 * Both are raw sockets in one process waiting in one poll(2), so no
 * library thread sits between the daemon and the clock.
 *
 * Each round takes EVENTS samples of every daemon in turn, swapping the
 * order between rounds; the table gives the median over rounds of each
 * round's median and 99th percentile.
 *
 * Where the processes run matters more than the daemon here: a wake-up on
 * another CPU can cost more than the daemon's work.  bench/run pins them
 * and names the placement with -n, which goes into the title and results.
 *
 * Usage: watch-latency [-r ROUNDS] [-t EVENTS] [-n PLACEMENT] LABEL=SOCKET...
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/contender.h"
#include "bench/rawconn.h"
#include "bench/results.h"
#include "bench/timing.h"

#define NODE "/lat/node"
#define TOKEN "lat"
#define WATCH_REQ 1		/* req_id of the WATCH; writes count from 2 */
#define INITIAL_EVENT_MS 1000	/* wait for the event a new watch fires */

struct daemon {
	struct contender c;
	struct raw_conn *a, *b;	/* watcher, writer */
	char error[32];		/* why WATCH failed; "" when it worked */
	uint32_t req;
	unsigned long stray;	/* packets on A that were not our event */
	double *med, *p99, *rtt;	/* one per round, microseconds */
	double *ev, *rt;	/* the current round's samples */
};

static void die(const struct daemon *d, const char *what)
{
	fprintf(stderr, "watch-latency: %s: %s\n", d->c.label, what);
	exit(1);
}

/* Is this packet on A the event of our watch? */
static bool is_our_event(const struct xsd_sockmsg *hdr, const char *body)
{
	size_t plen = strnlen(body, hdr->len);

	return hdr->type == XS_WATCH_EVENT && plen == strlen(NODE) &&
	       !memcmp(body, NODE, plen);
}

/*
 * Register the watch and swallow the event it fires at once.  false, with
 * d->error set, when the daemon refuses WATCH.
 */
static bool setup(struct daemon *d)
{
	static const char body[] = NODE "\0" TOKEN;	/* both NULs sent */
	char pkt[sizeof(struct xsd_sockmsg) + sizeof(body)];
	struct pollfd pfd;
	struct xsd_sockmsg hdr;
	const char *rbody;
	int got;

	d->a = malloc(sizeof(*d->a));
	d->b = malloc(sizeof(*d->b));
	if (!d->a || !d->b || raw_connect(d->a, d->c.path) < 0 ||
	    raw_connect(d->b, d->c.path) < 0)
		die(d, "cannot connect");
	if (raw_send(d->a, pkt, raw_pack(pkt, XS_WATCH, WATCH_REQ, body,
					 sizeof(body))) < 0)
		die(d, "sending WATCH failed");
	do {
		if (raw_recv(d->a, &hdr, &rbody) < 0)
			die(d, "no reply to WATCH");
	} while (hdr.req_id != WATCH_REQ || hdr.type == XS_WATCH_EVENT);
	if (hdr.type == XS_ERROR) {
		snprintf(d->error, sizeof(d->error), "%.*s", (int)hdr.len,
			 rbody);
		return false;
	}
	/* The protocol fires a new watch once; that event is no sample. */
	pfd = (struct pollfd){ .fd = d->a->fd, .events = POLLIN };
	while ((got = raw_take(d->a, &hdr, &rbody)) == 0 &&
	       poll(&pfd, 1, INITIAL_EVENT_MS) > 0)
		if (raw_fill(d->a) < 0)
			die(d, "watcher connection lost");
	if (got < 0)
		die(d, "bad packet on the watcher connection");
	d->req = WATCH_REQ + 1;
	return true;
}

/*
 * One write by B: microseconds until A has the event (*ev) and until B
 * has its reply (*rt).
 */
static void sample(struct daemon *d, double *ev, double *rt)
{
	char body[sizeof(NODE) + 16];
	char pkt[sizeof(struct xsd_sockmsg) + sizeof(body)];
	/* WRITE is "path\0value", the value without a NUL. */
	int blen = snprintf(body, sizeof(body), NODE "%c%u", '\0', d->req);
	uint32_t req = d->req++;
	uint64_t t0, ta = 0, tb = 0, t_ev = 0, t_rt = 0;
	size_t plen = raw_pack(pkt, XS_WRITE, req, body, (size_t)blen);

	t0 = bench_now_ns();
	if (raw_send(d->b, pkt, plen) < 0)
		die(d, "sending WRITE failed");
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = d->a->fd, .events = POLLIN },
			{ .fd = d->b->fd, .events = POLLIN },
		};
		struct xsd_sockmsg hdr;
		const char *rbody;
		int got;

		/* Packets buffered before any read of this write (ta == 0)
		 * are leftovers, not this write's event. */
		while ((got = raw_take(d->a, &hdr, &rbody)) == 1) {
			if (ta && !t_ev && is_our_event(&hdr, rbody))
				t_ev = ta;
			else
				d->stray++;
		}
		if (got < 0)
			die(d, "bad packet on the watcher connection");
		while ((got = raw_take(d->b, &hdr, &rbody)) == 1) {
			if (hdr.type == XS_ERROR)
				die(d, "WRITE failed");
			if (hdr.type == XS_WRITE && hdr.req_id == req)
				t_rt = tb;
		}
		if (got < 0)
			die(d, "bad packet on the writer connection");
		if (t_ev && t_rt)
			break;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die(d, "poll failed");
		}
		/* Each connection's clock is read right after its data. */
		if (pfd[0].revents) {
			if (raw_fill(d->a) < 0)
				die(d, "watcher connection lost");
			ta = bench_now_ns();
		}
		if (pfd[1].revents) {
			if (raw_fill(d->b) < 0)
				die(d, "writer connection lost");
			tb = bench_now_ns();
		}
	}
	*ev = (double)(t_ev - t0) / 1e3;
	*rt = (double)(t_rt - t0) / 1e3;
}

static void round_of(struct daemon *d, unsigned long r, unsigned long count)
{
	for (unsigned long i = 0; i < count; i++)
		sample(d, &d->ev[i], &d->rt[i]);
	d->med[r] = bench_median(d->ev, count);
	d->p99[r] = bench_percentile(d->ev, count, 0.99);
	d->rtt[r] = bench_median(d->rt, count);
}

static void report(struct daemon *d, unsigned long rounds,
		   unsigned long count, const char *place)
{
	double med, p99, rtt, lo, hi;

	if (d->error[0]) {
		printf("  %-10s  WATCH failed: %s\n", d->c.label, d->error);
		bench_result("watch_latency daemon=%s placement=%s error=%s",
			     d->c.label, place, d->error);
		return;
	}
	med = bench_median(d->med, rounds);	/* sorts: min and max next */
	lo = d->med[0];
	hi = d->med[rounds - 1];
	p99 = bench_median(d->p99, rounds);
	rtt = bench_median(d->rtt, rounds);
	printf("  %-10s  %8.1f  %8.1f  %9.1f  %7.1f..%-7.1f%s\n", d->c.label,
	       med, p99, rtt, lo, hi, d->stray ? "  (stray packets)" : "");
	bench_result("watch_latency daemon=%s placement=%s median_us=%.1f "
		     "p99_us=%.1f write_rtt_us=%.1f min=%.1f max=%.1f "
		     "rounds=%lu events_per_round=%lu stray=%lu", d->c.label,
		     place, med, p99, rtt, lo, hi, rounds, count, d->stray);
}

int main(int argc, char **argv)
{
	unsigned long rounds = 11, count = 2000;
	const char *place = "unpinned";
	struct daemon *ds;
	bool failed = false;
	int opt, nd;

	while ((opt = getopt(argc, argv, "r:t:n:")) != -1) {
		switch (opt) {
		case 'r':
			rounds = strtoul(optarg, NULL, 10);
			break;
		case 't':
			count = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			place = optarg;
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
		return 1;
	for (int i = 0; i < nd; i++) {
		struct daemon *d = &ds[i];

		if (!contender_parse(&d->c, argv[optind + i]))
			goto usage;
		d->med = calloc(rounds, sizeof(double));
		d->p99 = calloc(rounds, sizeof(double));
		d->rtt = calloc(rounds, sizeof(double));
		d->ev = calloc(count, sizeof(double));
		d->rt = calloc(count, sizeof(double));
		if (!d->med || !d->p99 || !d->rtt || !d->ev || !d->rt)
			die(d, "out of memory");
		if (!setup(d)) {
			failed = true;
			continue;
		}
		/* Untimed warm-up: connections, allocator, caches. */
		for (unsigned long k = 0; k < count / 10 + 1; k++)
			sample(d, &d->ev[0], &d->rt[0]);
	}

	for (unsigned long r = 0; r < rounds; r++) {
		for (int k = 0; k < nd; k++) {
			struct daemon *d = &ds[r % 2 ? nd - 1 - k : k];

			if (!d->error[0])
				round_of(d, r, count);
		}
	}

	printf("Watch event latency (A watches %s, B writes it; %s): us, "
	       "median over %lu rounds x %lu writes\n", NODE, place, rounds,
	       count);
	printf("  %-10s  %8s  %8s  %9s  %16s\n", "daemon", "event", "p99",
	       "write RTT", "median min..max");
	for (int i = 0; i < nd; i++) {
		report(&ds[i], rounds, count, place);
		if (ds[i].stray)
			printf("  %s: %lu packets on the watcher connection "
			       "were not the expected event\n", ds[i].c.label,
			       ds[i].stray);
	}
	for (int i = 0; i < nd; i++) {
		struct daemon *d = &ds[i];

		raw_close(d->a);
		raw_close(d->b);
		free(d->a);
		free(d->b);
		free(d->med);
		free(d->p99);
		free(d->rtt);
		free(d->ev);
		free(d->rt);
	}
	free(ds);
	/* A daemon refusing WATCH is broken, not slow. */
	return failed ? 1 : 0;
usage:
	fprintf(stderr, "usage: watch-latency [-r ROUNDS] [-t EVENTS] "
			"[-n PLACEMENT] LABEL=SOCKET...\n");
	return 2;
}
