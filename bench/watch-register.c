/*
 * watch-register: how long one connection takes to register many watches,
 * and what a neighbour feels meanwhile.
 *
 * Per daemon, in turn: connection B (the neighbour) READs one node, one
 * request at a time, for a second alone (its latency before); then
 * connection A registers WATCHES watches on distinct paths
 * (/bench-wr/w/<i>, as a toolstack watching every guest's nodes would),
 * DEPTH requests in flight, while B goes on reading (its latency during).
 * A's watches go when it closes.  Registration stops at the budget
 * (-b seconds): a daemon whose WATCH costs grow with the connection's
 * watches (upstream's do) is reported with what it managed.
 *
 * Both connections are raw sockets in one poll(2) loop, so no library
 * thread stands between the daemon and the clock; the loop takes B's
 * reply first and A's packets 32 at a time, so that B's reply never waits
 * behind A's backlog in the client.
 *
 * A contender named LABEL=SOCKET@PID (as bench/run names them) also
 * gets the daemon's CPU time over the registration, which a hypervisor
 * giving the CPU to another guest does not inflate (bench/timing.h), and
 * that over the CPU time of the reference workload (bench/reference.h,
 * as many paths as watches) run on the daemon's CPU (-p) just before,
 * which a host's slower spell slows alike: runs are compared on it.
 *
 * With -R REPEATS the daemons take turns REPEATS times and each line
 * gives the medians, and the median of the per-registration ratios of the
 * neighbour's p99 during and alone; with -g FACTOR each registration
 * waits until the host probe (bench/steady.h, its thread on CPU -p) takes
 * at most FACTOR times its usual time.
 *
 * Usage: watch-register [-w WATCHES] [-d DEPTH] [-b BUDGET_S] [-R REPEATS]
 *                       [-g FACTOR] [-p DAEMON_CPU] LABEL=SOCKET[@PID]...
 */
#include <errno.h>
#include <stddef.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/contender.h"
#include "bench/rawconn.h"
#include "bench/reference.h"
#include "bench/results.h"
#include "bench/steady.h"
#include "bench/timing.h"

#define NODE "/bench-wr/node"
#define ALONE_NS 1000000000ull	/* the neighbour's second alone */
#define PKT_MAX 128

struct neighbour {
	struct raw_conn *rc;
	uint32_t req;
	uint64_t sent;		/* 0: nothing in flight */
	double *lat;		/* microseconds */
	size_t n, cap;
};

static void die(const char *label, const char *what)
{
	fprintf(stderr, "watch-register: %s: %s\n", label, what);
	exit(1);
}

static void nb_send(struct neighbour *nb, const char *label)
{
	char pkt[PKT_MAX];

	if (raw_send(nb->rc, pkt, raw_pack(pkt, XS_READ, ++nb->req, NODE,
					   sizeof(NODE))) < 0)
		die(label, "sending READ failed");
	nb->sent = bench_now_ns();
}

/* Take B's replies; one in flight at a time, the next sent at once. */
static void nb_take(struct neighbour *nb, const char *label)
{
	struct xsd_sockmsg hdr;
	const char *body;
	int got;

	while ((got = raw_take(nb->rc, &hdr, &body)) == 1) {
		if (hdr.type != XS_READ || hdr.req_id != nb->req)
			die(label, "unexpected reply to READ");
		if (nb->n == nb->cap) {
			nb->cap = nb->cap ? 2 * nb->cap : 4096;
			nb->lat = realloc(nb->lat, nb->cap * sizeof(double));
			if (!nb->lat)
				die(label, "out of memory");
		}
		nb->lat[nb->n++] = (double)(bench_now_ns() - nb->sent) / 1e3;
		nb_send(nb, label);
	}
	if (got < 0)
		die(label, "bad packet on the neighbour's connection");
}

static void nb_stats(struct neighbour *nb, double *p50, double *p99)
{
	*p50 = nb->n ? bench_percentile(nb->lat, nb->n, 0.5) : 0;
	*p99 = nb->n ? bench_percentile(nb->lat, nb->n, 0.99) : 0;
	nb->n = 0;
}

/* One registration's figures. */
struct reg {
	unsigned long done;
	double secs, p50_alone, p99_alone, p50_during, p99_during;
	double cpu_s;		/* the daemon's; 0: its pid not given */
	double ref_ms;		/* the reference's just before (with cpu_s) */
	char error[32];
};

/* The daemon's CPU time in seconds (0 without its pid). */
static double cpu_s(const struct contender *c, pid_t pid)
{
	int64_t ns;

	if (!pid)
		return 0;
	ns = bench_cpu_ns(pid);
	if (ns < 0)
		die(c->label, "cannot read the daemon's CPU clock");
	return (double)ns / 1e9;
}

static void one(const struct contender *c, pid_t pid, int cpu,
		unsigned long watches, unsigned long depth, double budget_s,
		struct reg *out)
{
	struct raw_conn *a = malloc(sizeof(*a));
	struct neighbour nb = { .rc = malloc(sizeof(*nb.rc)) };
	unsigned long sent = 0, done = 0, events = 0;
	double p50_alone, p99_alone, p50_during, p99_during, secs, cpu0;
	double ref_ms = 0;
	uint64_t t0, deadline;
	char pkt[PKT_MAX], body[64], error[32] = "";
	char *obuf = malloc(depth * PKT_MAX);
	size_t olen;
	bool need_more = false;	/* A's buffer ends in part of a packet */

	if (!a || !nb.rc || !obuf || raw_connect(a, c->path) < 0 ||
	    raw_connect(nb.rc, c->path) < 0)
		die(c->label, "cannot connect");
	/* The node B reads, written through A. */
	if (raw_send(a, pkt, raw_pack(pkt, XS_WRITE, 1, NODE "\0x",
				      sizeof(NODE) + 1)) < 0)
		die(c->label, "sending WRITE failed");
	{
		struct xsd_sockmsg hdr;
		const char *rb;

		if (raw_recv(a, &hdr, &rb) < 0 || hdr.type != XS_WRITE)
			die(c->label, "WRITE failed");
	}

	/* The reference workload, as many paths as watches, on the
	 * daemon's CPU: runs are compared on the CPU time over it. */
	if (pid && (ref_ms = bench_reference_ms(watches, cpu)) <= 0)
		die(c->label, "the reference workload failed");

	/* B alone. */
	nb_send(&nb, c->label);
	for (t0 = bench_now_ns(); bench_now_ns() - t0 < ALONE_NS;) {
		if (raw_fill(nb.rc) < 0)
			die(c->label, "neighbour connection lost");
		nb_take(&nb, c->label);
	}
	nb_stats(&nb, &p50_alone, &p99_alone);

	/* A registers, B reads. */
	cpu0 = cpu_s(c, pid);
	t0 = bench_now_ns();
	deadline = t0 + (uint64_t)(budget_s * 1e9);
	while (done < watches && !error[0] && bench_now_ns() < deadline) {
		struct pollfd pfd[2] = {
			{ .fd = a->fd, .events = POLLIN },
			{ .fd = nb.rc->fd, .events = POLLIN },
		};
		struct xsd_sockmsg hdr;
		const char *rb;
		int got = 0;

		/* What the window lets go, in one write: a pipelining
		 * client's buffered requests. */
		for (olen = 0; sent < watches && sent - done < depth; sent++) {
			int blen = snprintf(body, sizeof(body),
					    "/bench-wr/w/%lu%ct", sent, '\0');

			olen += raw_pack(obuf + olen, XS_WATCH,
					 (uint32_t)(sent + 2), body,
					 (size_t)blen + 1);
		}
		if (olen && raw_send(a, obuf, olen) < 0)
			die(c->label, "sending WATCH failed");
		/* Packets of A already read: look, do not wait. */
		if (poll(pfd, 2, a->start < a->end && !need_more ? 0 : 100) < 0) {
			if (errno == EINTR)
				continue;
			die(c->label, "poll failed");
		}
		/* The neighbour first, and A's packets a few at a time, so
		 * that B's reply is not left waiting behind A's backlog in
		 * this loop: B's latency is the daemon's. */
		if (pfd[1].revents) {
			if (raw_fill(nb.rc) < 0)
				die(c->label, "neighbour connection lost");
			nb_take(&nb, c->label);
		}
		if (pfd[0].revents && (a->start == a->end || need_more) &&
		    raw_fill(a) < 0)
			die(c->label, "registering connection lost");
		need_more = false;
		for (int k = 0; k < 32; k++) {
			if ((got = raw_take(a, &hdr, &rb)) != 1) {
				need_more = got == 0;
				break;
			}
			if (hdr.type == XS_WATCH_EVENT)
				events++;
			else if (hdr.type == XS_WATCH)
				done++;
			else
				snprintf(error, sizeof(error), "%.*s",
					 (int)hdr.len, rb);
		}
		if (got < 0)
			die(c->label, "bad packet on the registering connection");
	}
	secs = (double)(bench_now_ns() - t0) / 1e9;
	nb_stats(&nb, &p50_during, &p99_during);
	*out = (struct reg){ done, secs, p50_alone, p99_alone, p50_during,
			     p99_during, pid ? cpu_s(c, pid) - cpu0 : 0, ref_ms,
			     "" };
	memcpy(out->error, error, sizeof(out->error));
	(void)events;
	raw_close(a);
	raw_close(nb.rc);
	free(obuf);
	free(a);
	free(nb.rc);
	free(nb.lat);
}

/* The median of field f over the n registrations of r. */
static double med(const struct reg *r, unsigned long n, size_t f)
{
	double v[n];

	for (unsigned long i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&r[i] + f);
	return bench_median(v, n);
}

/* One line per daemon: medians over its registrations. */
static void report(const struct contender *c, const struct reg *r,
		   unsigned long n, unsigned long watches, unsigned long depth,
		   double budget_s)
{
	double ratio[n], per_ref[n], secs = med(r, n, offsetof(struct reg, secs));
	double cpu = med(r, n, offsetof(struct reg, cpu_s));
	unsigned long done = r[0].done;
	const char *error = "";

	for (unsigned long i = 0; i < n; i++) {
		ratio[i] = r[i].p99_alone > 0 ? r[i].p99_during / r[i].p99_alone
					      : 0;
		per_ref[i] = r[i].ref_ms > 0 ? r[i].cpu_s * 1e3 / r[i].ref_ms
					     : 0;
		if (r[i].done < done)
			done = r[i].done;
		if (r[i].error[0])
			error = r[i].error;
	}
	printf("  %-12s %7lu of %-7lu %8.2f s %8.2f s %9.0f /s   %7.1f %7.1f   "
	       "%7.1f %7.1f  %5.2fx  %6.2fx%s%s\n", c->label, done, watches,
	       secs, cpu,
	       done / secs, med(r, n, offsetof(struct reg, p50_alone)),
	       med(r, n, offsetof(struct reg, p99_alone)),
	       med(r, n, offsetof(struct reg, p50_during)),
	       med(r, n, offsetof(struct reg, p99_during)),
	       bench_median(ratio, n), bench_median(per_ref, n),
	       error[0] ? "  refused: " : "", error);
	bench_result("watch_register daemon=%s watches=%lu registered=%lu "
		     "seconds=%.6f cpu_s=%.6f budget_s=%.0f depth=%lu "
		     "nb_p50_alone_us=%.1f "
		     "nb_p99_alone_us=%.1f nb_p50_during_us=%.1f "
		     "nb_p99_during_us=%.1f nb_p99_ratio=%.3f repeats=%lu "
		     "ref_ms=%.1f cpu_per_ref=%.3f "
		     "waited_s=%.1f%s%s", c->label, watches, done, secs, cpu,
		     budget_s, depth, med(r, n, offsetof(struct reg, p50_alone)),
		     med(r, n, offsetof(struct reg, p99_alone)),
		     med(r, n, offsetof(struct reg, p50_during)),
		     med(r, n, offsetof(struct reg, p99_during)),
		     bench_median(ratio, n), n,
		     med(r, n, offsetof(struct reg, ref_ms)),
		     bench_median(per_ref, n), steady_waited_s(),
		     error[0] ? " error=" : "", error);
}

int main(int argc, char **argv)
{
	unsigned long watches = 100000, depth = 64, repeats = 1;
	double budget = 20, factor = 0;
	int opt, cpu = -1, n;
	struct contender *cs;
	struct reg *regs;
	pid_t *pids;
	cpu_set_t set;

	while ((opt = getopt(argc, argv, "w:d:b:R:g:p:")) != -1) {
		switch (opt) {
		case 'w':
			watches = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			depth = strtoul(optarg, NULL, 10);
			break;
		case 'b':
			budget = strtod(optarg, NULL);
			break;
		case 'R':
			repeats = strtoul(optarg, NULL, 10);
			break;
		case 'g':
			factor = strtod(optarg, NULL);
			break;
		case 'p':
			cpu = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	n = argc - optind;
	if (n < 1 || !watches || !depth || depth > 1024 || budget <= 0 ||
	    !repeats || repeats > 100)
		goto usage;
	cs = calloc((size_t)n, sizeof(*cs));
	regs = calloc((size_t)n * repeats, sizeof(*regs));
	pids = calloc((size_t)n, sizeof(*pids));
	if (!cs || !regs || !pids)
		die("watch-register", "out of memory");
	for (int i = 0; i < n; i++) {
		if (!contender_parse(&cs[i], argv[optind + i]))
			goto usage;
		pids[i] = contender_take_pid(&cs[i]);
	}
	steady_start(steady_where_cpu(cpu, &set), factor);
	printf("Registering %lu watches from one connection (%lu in flight) "
	       "while a neighbour READs; budget %.0f s; medians of %lu\n",
	       watches, depth, budget, repeats);
	printf("  %-12s %-18s %10s %10s %11s   %-15s   %-15s  %s  %s\n",
	       "daemon", "registered", "time", "its CPU", "rate",
	       "nb alone p50/99", "nb during p50/99 (us)", "p99 during/alone",
	       "CPU/reference");
	/* The daemons take turns, the order reversed every repeat, each
	 * registration on a steady host (bench/steady.h). */
	for (unsigned long r = 0; r < repeats; r++)
		for (int k = 0; k < n; k++) {
			int i = r % 2 ? n - 1 - k : k;

			steady_wait();
			one(&cs[i], pids[i], cpu, watches, depth, budget,
			    &regs[(size_t)i * repeats + r]);
		}
	for (int i = 0; i < n; i++)
		report(&cs[i], &regs[(size_t)i * repeats], repeats, watches,
		       depth, budget);
	free(cs);
	free(regs);
	free(pids);
	return 0;
usage:
	fprintf(stderr, "usage: watch-register [-w WATCHES] [-d DEPTH] "
			"[-b BUDGET_S] [-R REPEATS] [-g FACTOR] [-p DAEMON_CPU] "
			"LABEL=SOCKET[@PID]...\n");
	return 2;
}
