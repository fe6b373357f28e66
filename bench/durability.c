/*
 * durability: what persistence (persist/db.c) costs writes, and how long
 * a daemon takes to come back with a big store.
 *
 * Starts its own daemons, from the binary named on the command line, in a
 * directory on tmpfs (/dev/shm, else /run, else $TMPDIR or /tmp; -D picks
 * one), where the database lives in deployment too.  The directory and
 * its files go at exit (-K keeps them, for profiling a restart).
 *
 * A. Writes.  Two daemons run side by side, one with --database and one
 * with --no-database.  Each round writes for MS milliseconds on each in
 * turn (the order swapped between rounds), with 1 WRITE in flight (a
 * client waiting for every reply) and with DEPTH in flight (pipelined on
 * a raw socket, the daemon's own cost), of two kinds: `overwrite` sets
 * one of 1,000 existing nodes (/dur/w/n<i%1000>), `create` adds a new
 * node (/dur/new/d<i/1000>/n<i%1000>).  Every reply must be "OK", in
 * order, else the run fails.  The table gives median writes/s and
 * on/off.
 *
 * B. Restart.  A daemon with a database is filled with NODES nodes
 * (bench/layout.h: /bench/data/d<i/1000>/n<i%1000>), by transactions of
 * PER_TXN pipelined WRITEs: one commit of the database per transaction,
 * since a commit per node would take minutes for a million (-T 0 fills
 * by plain pipelined WRITEs, bench/populate.c).  Then 2 x RESTARTS times,
 * alternately by SIGTERM and by SIGKILL, a last node /bench/marker is
 * written, the daemon stopped, and a new one started on the same file.
 * Ready is the moment a READ of /bench/marker, sent as soon as the socket
 * accepts a connection, comes back with the value written last: the
 * daemon listens before it loads, so the reply waits for the whole load.
 * The time is from just before fork() to that reply.  Then 1,000 random
 * nodes and the last one are read back and checked, and the daemon's
 * memory is read from /proc.  A daemon without a database, started the
 * same way, gives the fixed cost of a start.  Last, part A's writes are
 * timed on the daemon holding the big store (`overwrite` then sets nodes
 * scattered over it), against part A's `off` figures.
 *
 * -P CLIENT_CPU:DAEMON_CPU pins this program and the daemons (bench/run
 * uses 0:1, as the write table of watch-writes).  -g FACTOR: each restart
 * waits until the host probe takes at most FACTOR times its usual time
 * (bench/steady.h).
 *
 * Usage: durability [-q] [-n NODES] [-r ROUNDS] [-m MS] [-d DEPTH]
 *                   [-R RESTARTS] [-T PER_TXN] [-D DIR] [-s a|b|ab] [-K]
 *                   [-P CLIENT_CPU:DAEMON_CPU] [-g FACTOR] DAEMON
 *   defaults: 1,000,000 nodes, 7 rounds of 300 ms, depth 64, 5 restarts
 *   per case, 1,000 nodes per transaction; -s picks the parts.
 *   -q  quick: 10,000 nodes, 3 rounds of 100 ms, 2 restarts per case
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/layout.h"
#include "bench/populate.h"
#include "bench/rawconn.h"
#include "bench/reference.h"
#include "bench/results.h"
#include "bench/scratch.h"
#include "bench/steady.h"
#include "bench/timing.h"

#define TMPFS_MAGIC_ 0x01021994
#define MAX_DEPTH 256
#define PKT_ROOM (sizeof(struct xsd_sockmsg) + 96)
#define OVERWRITE_NODES 1000
#define CHECK_READS 1000
#define READY_TIMEOUT_S 120
#define TARGET_MS 1000.0
#define MARKER "/bench/marker"

static char dir[160];		/* ours, removed at exit */
static const char *daemon_bin;
static pid_t live[4];		/* daemons running, killed at exit */
static bool keep;		/* -K: leave dir behind */
static double steady;		/* -g: the host probe's bound, bench/steady.h */
static int daemon_cpu = -1;	/* -P: where the daemons run */
static const char *placement = "unpinned";
static char where[200];		/* for the titles: directory, fs, placement */
static pid_t main_pid;

/* ---- the daemons ---- */

static void cleanup(void)
{
	if (getpid() != main_pid)
		return;		/* a child that failed to exec */
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (live[i] > 0) {
			kill(live[i], SIGKILL);
			waitpid(live[i], NULL, 0);
			live[i] = 0;
		}
	}
	if (dir[0] && keep)
		fprintf(stderr, "durability: kept %s\n", dir);
	else if (dir[0])
		bench_rmtree(dir);
	dir[0] = '\0';
}

static void on_signal(int sig)
{
	(void)sig;
	exit(130);		/* runs cleanup */
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "durability: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

struct daemon {
	const char *name;	/* subdirectory of dir */
	bool db;		/* --database NAME/x.tdb, else --no-database */
	char sock[256], tdb[256], log[256];
	pid_t pid;
};

static void daemon_init(struct daemon *d, const char *name, bool db)
{
	d->name = name;
	d->db = db;
	d->pid = 0;
	snprintf(d->sock, sizeof(d->sock), "%s/%s/sock", dir, name);
	snprintf(d->tdb, sizeof(d->tdb), "%s/%s/x.tdb", dir, name);
	snprintf(d->log, sizeof(d->log), "%s/%s/log", dir, name);
	if (strlen(d->sock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		die("socket path too long: %s (use -D)", d->sock);
	{
		char sub[256];

		snprintf(sub, sizeof(sub), "%s/%s", dir, name);
		if (mkdir(sub, 0700) && errno != EEXIST)
			die("mkdir %s: %s", sub, strerror(errno));
	}
}

static void track(pid_t pid, bool add)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (add ? live[i] == 0 : live[i] == pid) {
			live[i] = add ? pid : 0;
			return;
		}
	}
	if (add)
		die("too many daemons");
}

static void show_log(const struct daemon *d)
{
	char line[512];
	FILE *f = fopen(d->log, "r");

	if (!f)
		return;
	fprintf(stderr, "--- %s:\n", d->log);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

/* Fork and exec the daemon; its output goes to d->log (appended). */
static void daemon_spawn(struct daemon *d)
{
	char *argv[8];
	int argc = 0;

	argv[argc++] = (char *)daemon_bin;
	argv[argc++] = "-N";
	argv[argc++] = "--socket";
	argv[argc++] = d->sock;
	if (d->db) {
		argv[argc++] = "--database";
		argv[argc++] = d->tdb;
	} else {
		argv[argc++] = "--no-database";
	}
	argv[argc] = NULL;
	fflush(NULL);
	d->pid = fork();
	if (d->pid < 0)
		die("fork: %s", strerror(errno));
	if (d->pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		if (daemon_cpu >= 0 && bench_pin_cpu(daemon_cpu) != 0)
			_exit(127);
		execv(daemon_bin, argv);
		_exit(127);
	}
	track(d->pid, true);
}

/* The daemon died early: say how, show its log, fail. */
static void check_alive(struct daemon *d)
{
	int status;

	if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
		track(d->pid, false);
		d->pid = 0;
		show_log(d);
		die("daemon %s exited before it was ready (status %#x)",
		    d->name, status);
	}
}

/* Signal the daemon and wait for it; returns the seconds that took. */
static double daemon_stop(struct daemon *d, int sig)
{
	uint64_t t0 = bench_now_ns();
	int status;

	if (kill(d->pid, sig) != 0)
		die("kill %s: %s", d->name, strerror(errno));
	if (waitpid(d->pid, &status, 0) != d->pid)
		die("waitpid %s: %s", d->name, strerror(errno));
	track(d->pid, false);
	d->pid = 0;
	if (sig == SIGTERM && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		show_log(d);
		die("daemon %s did not exit cleanly on SIGTERM (status %#x)",
		    d->name, status);
	}
	return (double)(bench_now_ns() - t0) / 1e9;
}

/* One field of /proc/PID/status, in kB; -1 when absent. */
static long proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, flen) && line[flen] == ':')
			kb = strtol(line + flen + 1, NULL, 10);
	fclose(f);
	return kb;
}

/* ---- requests ---- */

static void expect_ok(const struct xsd_sockmsg *hdr, const char *body,
		      uint32_t req, const char *who)
{
	if (hdr->type != XS_WRITE || hdr->req_id != req || hdr->len != 3 ||
	    memcmp(body, "OK", 3) != 0)
		die("%s: WRITE %u answered type %u req %u \"%.*s\"", who, req,
		    hdr->type, hdr->req_id, (int)(hdr->len < 64 ? hdr->len : 64),
		    body);
}

/* One WRITE, waiting for its "OK". */
static void write_one(struct raw_conn *rc, const char *path,
		      const char *value, const char *who)
{
	char buf[PKT_ROOM + 64], body[160];
	int blen = snprintf(body, sizeof(body), "%s%c%s", path, '\0', value);
	struct xsd_sockmsg hdr;
	const char *rbody;

	if (raw_send(rc, buf, raw_pack(buf, XS_WRITE, 1, body, (size_t)blen)) <
		    0 ||
	    raw_recv(rc, &hdr, &rbody) < 0)
		die("%s: WRITE %s failed", who, path);
	expect_ok(&hdr, rbody, 1, who);
}

/*
 * READs of paths[0..n), depth at most 64 in flight; each answer must be
 * values[i].  0, or -1 when the connection fails (errors in the answers
 * are fatal).
 */
static int read_check(struct raw_conn *rc, char (*paths)[BENCH_PATH_MAX],
		      char (*values)[BENCH_VALUE_MAX], unsigned long n,
		      const char *who)
{
	static char buf[64 * PKT_ROOM];
	unsigned long sent = 0, done = 0;

	while (done < n) {
		size_t len = 0;
		struct xsd_sockmsg hdr;
		const char *body;

		for (; sent < n && sent - done < 64; sent++)
			len += raw_pack(buf + len, XS_READ, (uint32_t)sent,
					paths[sent], strlen(paths[sent]) + 1);
		if (len && raw_send(rc, buf, len) < 0)
			return -1;
		if (raw_recv(rc, &hdr, &body) < 0)
			return -1;
		if (hdr.type != XS_READ || hdr.req_id != done ||
		    hdr.len != strlen(values[done]) ||
		    memcmp(body, values[done], hdr.len) != 0)
			die("%s: READ %s answered type %u \"%.*s\", expected "
			    "\"%s\"", who, paths[done], hdr.type,
			    (int)(hdr.len < 64 ? hdr.len : 64), body,
			    values[done]);
		done++;
	}
	return 0;
}

/*
 * Connect as soon as the socket accepts, then READ path until it answers
 * value; returns seconds since t0.  The daemon listens before loading its
 * database, so the answer comes once the load is over.
 */
static double wait_ready(struct daemon *d, uint64_t t0, const char *path,
			 const char *value, struct raw_conn *rc)
{
	char p[1][BENCH_PATH_MAX], v[1][BENCH_VALUE_MAX];
	double s;

	snprintf(p[0], sizeof(p[0]), "%s", path);
	snprintf(v[0], sizeof(v[0]), "%s", value);
	for (;;) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			die("socket: %s", strerror(errno));
		strcpy(sa.sun_path, d->sock);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			rc->fd = fd;
			rc->start = rc->end = 0;
			break;
		}
		close(fd);
		if (errno != ENOENT && errno != ECONNREFUSED)
			die("connect %s: %s", d->sock, strerror(errno));
		check_alive(d);
		if (bench_now_ns() - t0 > READY_TIMEOUT_S * 1000000000ull)
			die("daemon %s: no socket after %d s", d->name,
			    READY_TIMEOUT_S);
		nanosleep(&(struct timespec){ .tv_nsec = 200000 }, NULL);
	}
	if (read_check(rc, p, v, 1, d->name) < 0) {
		check_alive(d);
		die("daemon %s closed the connection before it was ready",
		    d->name);
	}
	s = (double)(bench_now_ns() - t0) / 1e9;
	return s;
}

/* The CPU time d's process has used so far, in ms: from a fresh start to
 * ready, the start's own cost, which a hypervisor giving the CPU to
 * another guest does not inflate (bench/timing.h). */
static double daemon_cpu_ms(const struct daemon *d)
{
	int64_t ns = bench_cpu_ns(d->pid);

	if (ns < 0)
		die("%s: cannot read the daemon's CPU clock: %s", d->name,
		    strerror(errno));
	return (double)ns / 1e6;
}

/* The reference workload's CPU time, ms (bench/reference.h), on the
 * daemon's CPU just before each restart. */
static double reference_ms(unsigned long nodes)
{
	double ms = bench_reference_ms(nodes, daemon_cpu);

	if (ms < 0)
		die("the reference workload failed");
	return ms;
}

static void start_ready(struct daemon *d, const char *path,
			const char *value, struct raw_conn *rc, double *secs)
{
	uint64_t t0 = bench_now_ns();
	double s;

	daemon_spawn(d);
	s = wait_ready(d, t0, path, value, rc);
	if (secs)
		*secs = s;
}

/* ---- A. writes ---- */

enum kind { OVERWRITE, CREATE, KINDS };
static const char *const kind_name[KINDS] = { "overwrite", "create" };

struct writer {
	struct daemon d;
	struct raw_conn rc;
	uint32_t req;
	unsigned long seq[KINDS];	/* next node / value */
	unsigned long big;		/* overwrite nodes of bench/layout.h
					 * below this, rather than /dur/w */
	unsigned long writes;
	double *rate;			/* [kind][depth index][round] */
};

/* Medians of part A, for the rows of part B. */
static double off_median[KINDS][2];

static int write_path(char *buf, size_t size, const struct writer *w,
		      enum kind k, unsigned long i)
{
	if (k == OVERWRITE && w->big)
		/* Scattered over the whole store. */
		return bench_node_path(buf, size,
				       (i * 2654435761ul) % w->big);
	if (k == OVERWRITE)
		return snprintf(buf, size, "/dur/w/n%lu", i % OVERWRITE_NODES);
	return snprintf(buf, size, "/dur/new/d%lu/n%lu", i / 1000, i % 1000);
}

/*
 * WRITEs of kind k, depth in flight, for ms milliseconds (or count
 * writes when ms is 0); returns writes per second.
 */
static double write_round(struct writer *w, enum kind k, unsigned long depth,
			  unsigned long ms, unsigned long count)
{
	static char buf[MAX_DEPTH * PKT_ROOM];
	unsigned long sent = 0, done = 0;
	uint64_t t0 = bench_now_ns(), end = t0 + ms * 1000000ull;
	uint32_t first = w->req;

	if (ms)
		count = ULONG_MAX;
	while (done < count) {
		struct xsd_sockmsg hdr;
		const char *body;
		size_t len = 0;
		int got;

		for (; sent < count && sent - done < depth; sent++) {
			char pkt[128];
			int plen = write_path(pkt, 96, w, k, w->seq[k]);
			int vlen = snprintf(pkt + plen + 1, 24, "%lu",
					    w->seq[k]++);

			len += raw_pack(buf + len, XS_WRITE, w->req++, pkt,
					(size_t)(plen + 1 + vlen));
		}
		if (len && raw_send(&w->rc, buf, len) < 0)
			die("%s: sending WRITEs failed", w->d.name);
		if (raw_recv(&w->rc, &hdr, &body) < 0)
			die("%s: no reply to WRITE", w->d.name);
		do {
			expect_ok(&hdr, body, first + (uint32_t)done,
				  w->d.name);
			done++;
		} while ((got = raw_take(&w->rc, &hdr, &body)) == 1);
		if (got < 0)
			die("%s: bad packet", w->d.name);
		if (count == ULONG_MAX && bench_now_ns() >= end)
			count = sent;
	}
	w->writes += done;
	return (double)done / ((double)(bench_now_ns() - t0) / 1e9);
}

static void part_a(unsigned long rounds, unsigned long ms,
		   unsigned long depth, const char *fs)
{
	struct writer w[2];
	const unsigned long depths[2] = { 1, depth };
	size_t per = (size_t)KINDS * 2 * rounds;

	memset(w, 0, sizeof(w));
	daemon_init(&w[0].d, "writes-on", true);
	daemon_init(&w[1].d, "writes-off", false);
	for (int i = 0; i < 2; i++) {
		w[i].rate = calloc(per, sizeof(double));
		if (!w[i].rate)
			die("out of memory");
		start_ready(&w[i].d, "/", "", &w[i].rc, NULL);
		w[i].req = 1;
		/* Untimed: creates the nodes `overwrite` sets, warms up. */
		write_round(&w[i], OVERWRITE, depth, 0, OVERWRITE_NODES);
		write_round(&w[i], CREATE, depth, ms / 4 + 1, 0);
	}
	for (unsigned long r = 0; r < rounds; r++)
		for (int k = 0; k < KINDS; k++)
			for (int di = 0; di < 2; di++)
				for (int j = 0; j < 2; j++) {
					/* on first, then off first, ... */
					bool swap = (r + (unsigned long)k +
						     (unsigned long)di) % 2;
					struct writer *x = &w[swap ? 1 - j : j];

					x->rate[((size_t)k * 2 + (size_t)di) *
							rounds + r] =
						write_round(x, (enum kind)k,
							    depths[di], ms, 0);
				}

	printf("A. Writes with persistence on (--database) and off "
	       "(--no-database; %s): writes/s, median of %lu rounds x %lu "
	       "ms\n", where, rounds, ms);
	printf("  %-9s  %9s  %10s  %10s  %7s  %23s\n", "kind", "in flight",
	       "on", "off", "on/off", "on min..max");
	for (int k = 0; k < KINDS; k++) {
		for (int di = 0; di < 2; di++) {
			double *on = w[0].rate + ((size_t)k * 2 + (size_t)di) *
							 rounds;
			double *off = w[1].rate + ((size_t)k * 2 +
						   (size_t)di) * rounds;
			double mon = bench_median(on, rounds);
			double moff = bench_median(off, rounds);

			off_median[k][di] = moff;
			bench_sort(on, rounds);		/* for min..max */
			bench_sort(off, rounds);

			printf("  %-9s  %9lu  %10.0f  %10.0f  %6.2fx  "
			       "%10.0f..%-10.0f\n", kind_name[k], depths[di],
			       mon, moff, mon / moff, on[0], on[rounds - 1]);
			bench_result("durability_writes kind=%s depth=%lu "
				     "on_per_s=%.0f off_per_s=%.0f ratio=%.3f "
				     "on_min=%.0f on_max=%.0f off_min=%.0f "
				     "off_max=%.0f rounds=%lu ms_per_round=%lu "
				     "fs=%s", kind_name[k], depths[di], mon,
				     moff, mon / moff, on[0], on[rounds - 1],
				     off[0], off[rounds - 1], rounds, ms, fs);
		}
	}
	for (int i = 0; i < 2; i++) {
		struct stat sb;

		raw_close(&w[i].rc);
		daemon_stop(&w[i].d, SIGTERM);
		if (w[i].d.db && stat(w[i].d.tdb, &sb) == 0)
			printf("  (the database after %lu writes: %.1f MB)\n",
			       w[i].writes, (double)sb.st_size / 1e6);
		free(w[i].rate);
	}
}

/* ---- B. restart ---- */

/* One request with an empty transaction id, answered as type; returns
 * the body (valid until the next read on rc). */
static const char *request(struct raw_conn *rc, uint32_t type, uint32_t tx,
			   const char *body, size_t len, const char *who)
{
	char buf[PKT_ROOM];
	struct xsd_sockmsg hdr = { .type = type, .tx_id = tx,
				   .len = (uint32_t)len };
	const char *reply;

	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), body, len);
	if (raw_send(rc, buf, sizeof(hdr) + len) < 0 ||
	    raw_recv(rc, &hdr, &reply) < 0)
		die("%s: request %u failed", who, type);
	if (hdr.type != type)
		die("%s: request %u answered %u \"%.*s\"", who, type, hdr.type,
		    (int)(hdr.len < 64 ? hdr.len : 64), reply);
	return reply;
}

/*
 * Nodes [from, to) of bench/layout.h, batch to a transaction: one
 * database commit per batch rather than per node, which makes a million
 * nodes a matter of seconds rather than minutes.  Within a transaction
 * the WRITEs are pipelined, 64 in flight.
 */
static void fill_txn(struct raw_conn *rc, unsigned long from,
		     unsigned long to, unsigned long batch, const char *who)
{
	static char buf[64 * PKT_ROOM];

	while (from < to) {
		unsigned long end = to - from > batch ? from + batch : to;
		unsigned long sent = from, done = from;
		uint32_t tx = (uint32_t)strtoul(
			request(rc, XS_TRANSACTION_START, 0, "", 1, who), NULL,
			10);
		const char *r;

		if (!tx)
			die("%s: TRANSACTION_START gave no id", who);
		while (done < end) {
			struct xsd_sockmsg hdr;
			const char *body;
			size_t len = 0;
			int got;

			for (; sent < end && sent - done < 64; sent++) {
				char pkt[BENCH_PATH_MAX + BENCH_VALUE_MAX];
				int plen = bench_node_path(pkt, BENCH_PATH_MAX,
							   sent);
				int vlen = bench_node_value(pkt + plen + 1,
							    BENCH_VALUE_MAX, sent);
				struct xsd_sockmsg h = {
					.type = XS_WRITE, .req_id = (uint32_t)sent,
					.tx_id = tx,
					.len = (uint32_t)(plen + 1 + vlen) };

				memcpy(buf + len, &h, sizeof(h));
				memcpy(buf + len + sizeof(h), pkt, h.len);
				len += sizeof(h) + h.len;
			}
			if (len && raw_send(rc, buf, len) < 0)
				die("%s: sending WRITEs failed", who);
			if (raw_recv(rc, &hdr, &body) < 0)
				die("%s: no reply to WRITE", who);
			do {
				expect_ok(&hdr, body, (uint32_t)done, who);
				done++;
			} while ((got = raw_take(rc, &hdr, &body)) == 1);
			if (got < 0)
				die("%s: bad packet", who);
		}
		r = request(rc, XS_TRANSACTION_END, tx, "T", 2, who);
		if (strcmp(r, "OK") != 0)
			die("%s: TRANSACTION_END answered %s", who, r);
		from = end;
	}
}

/* Read CHECK_READS random nodes of [0, nodes) back. */
static void check_nodes(struct raw_conn *rc, unsigned long nodes,
			uint64_t *rng, const char *who)
{
	static char paths[CHECK_READS][BENCH_PATH_MAX];
	static char values[CHECK_READS][BENCH_VALUE_MAX];

	for (int i = 0; i < CHECK_READS; i++) {
		unsigned long n = bench_rand(rng) % nodes;

		bench_node_path(paths[i], sizeof(paths[i]), n);
		bench_node_value(values[i], sizeof(values[i]), n);
	}
	if (read_check(rc, paths, values, CHECK_READS, who) < 0)
		die("%s: reading nodes back failed", who);
}

struct mem {
	long rss, hwm, anon, file, shmem;
};

static void read_mem(pid_t pid, struct mem *m)
{
	m->rss = proc_kb(pid, "VmRSS");
	m->hwm = proc_kb(pid, "VmHWM");
	m->anon = proc_kb(pid, "RssAnon");
	m->file = proc_kb(pid, "RssFile");
	m->shmem = proc_kb(pid, "RssShmem");
}

static void restart_row(const char *label, const char *key, double *ms,
			double *cpu_ms, const double *ref_ms, unsigned long n,
			unsigned long nodes, long size, const struct mem *m,
			const char *fs, double waited_s)
{
	double med = bench_median(ms, n), cpu = bench_median(cpu_ms, n);
	double per_ref[n], cpr;
	char ref[64] = "", col[16] = "";

	/* Each restart's CPU over its own reference's, the median. */
	if (ref_ms) {
		for (unsigned long i = 0; i < n; i++)
			per_ref[i] = cpu_ms[i] / ref_ms[i];
		cpr = bench_median(per_ref, n);
		snprintf(ref, sizeof(ref), " ref_ms=%.1f cpu_per_ref=%.3f",
			 bench_median(ref_ms, n), cpr);
		snprintf(col, sizeof(col), "%.3f", cpr);
	}
	bench_sort(ms, n);			/* for min..max */
	printf("  %-26s %8.0f  %8.0f..%-8.0f %8.0f %9s %s\n", label, med,
	       ms[0], ms[n - 1], cpu, col,
	       !nodes ? "" : med < TARGET_MS ? "under 1 s" : "OVER 1 s");
	bench_result("durability_restart case=%s nodes=%lu ready_ms=%.1f "
		     "cpu_ms=%.1f min_ms=%.1f max_ms=%.1f runs=%lu "
		     "file_bytes=%ld "
		     "rss_kb=%ld hwm_kb=%ld anon_kb=%ld file_kb=%ld "
		     "shmem_kb=%ld target_ms=%.0f met=%s fs=%s waited_s=%.1f%s",
		     key, nodes, med, cpu, ms[0], ms[n - 1], n, size, m->rss,
		     m->hwm,
		     m->anon, m->file, m->shmem, TARGET_MS,
		     med < TARGET_MS ? "yes" : "no", fs, waited_s, ref);
}

/*
 * Part A's writes on the daemon holding the big store (persistence on):
 * does a database of that size make commits dearer?  `overwrite` sets
 * nodes scattered over the whole store.
 */
static void big_writes(struct daemon *d, struct raw_conn *rc,
		       unsigned long nodes, unsigned long rounds,
		       unsigned long ms, unsigned long depth, const char *fs)
{
	const unsigned long depths[2] = { 1, depth };
	struct writer w = { .req = 1000000, .big = nodes };

	w.d = *d;
	w.rc = *rc;
	w.rate = calloc((size_t)KINDS * 2 * rounds, sizeof(double));
	if (!w.rate)
		die("out of memory");
	write_round(&w, CREATE, depth, ms / 4 + 1, 0);
	for (unsigned long r = 0; r < rounds; r++)
		for (int k = 0; k < KINDS; k++)
			for (int di = 0; di < 2; di++)
				w.rate[((size_t)k * 2 + (size_t)di) * rounds +
				       r] = write_round(&w, (enum kind)k,
							depths[di], ms, 0);
	printf("  writes on this store (persistence on), median of %lu "
	       "rounds x %lu ms:\n", rounds, ms);
	printf("  %-9s  %9s  %10s  %17s  %23s\n", "kind", "in flight",
	       "writes/s", "vs off (part A)", "min..max");
	for (int k = 0; k < KINDS; k++) {
		for (int di = 0; di < 2; di++) {
			double *v = w.rate + ((size_t)k * 2 + (size_t)di) *
						     rounds;
			double med = bench_median(v, rounds);
			double off = off_median[k][di];
			char ratio[16] = "-";

			bench_sort(v, rounds);		/* for min..max */

			if (off > 0)
				snprintf(ratio, sizeof(ratio), "%.3fx",
					 med / off);
			printf("  %-9s  %9lu  %10.0f  %17s  %10.0f..%-10.0f\n",
			       kind_name[k], depths[di], med, ratio, v[0],
			       v[rounds - 1]);
			bench_result("durability_big_writes nodes=%lu kind=%s "
				     "depth=%lu on_per_s=%.0f vs_off=%.3f "
				     "min=%.0f max=%.0f rounds=%lu "
				     "ms_per_round=%lu fs=%s", nodes,
				     kind_name[k], depths[di], med,
				     off > 0 ? med / off : 0.0, v[0],
				     v[rounds - 1], rounds, ms, fs);
		}
	}
	*rc = w.rc;
	free(w.rate);
}

static void part_b(unsigned long nodes, unsigned long restarts,
		   unsigned long batch, unsigned long rounds, unsigned long ms,
		   unsigned long depth, const char *fs)
{
	struct daemon d, e;
	struct raw_conn rc;
	struct mem built, loaded = { 0 }, m, none = { 0 };
	double *ready_ms[2], *cpu_ms[2], *ref_ms[2], *stop_ms, *empty_ms;
	double *empty_cpu_ms;
	double fill_s, first_stop = 0;
	unsigned long nrun[2] = { 0, 0 }, nstop = 0;
	uint64_t rng = 42, t0;
	char last[BENCH_PATH_MAX], lastv[BENCH_VALUE_MAX], marker[24], how[64];
	struct stat sb;

	ready_ms[0] = calloc(restarts, sizeof(double));
	ready_ms[1] = calloc(restarts, sizeof(double));
	cpu_ms[0] = calloc(restarts, sizeof(double));
	cpu_ms[1] = calloc(restarts, sizeof(double));
	ref_ms[0] = calloc(restarts, sizeof(double));
	ref_ms[1] = calloc(restarts, sizeof(double));
	stop_ms = calloc(restarts, sizeof(double));
	empty_ms = calloc(restarts, sizeof(double));
	empty_cpu_ms = calloc(restarts, sizeof(double));
	if (!ready_ms[0] || !ready_ms[1] || !cpu_ms[0] || !cpu_ms[1] ||
	    !ref_ms[0] || !ref_ms[1] || !stop_ms || !empty_ms ||
	    !empty_cpu_ms)
		die("out of memory");

	daemon_init(&d, "restart", true);
	start_ready(&d, "/", "", &rc, NULL);
	t0 = bench_now_ns();
	if (!batch) {
		if (bench_populate(d.sock, 0, nodes) < 0)
			die("filling the store failed");
	} else {
		fill_txn(&rc, 0, nodes, batch, d.name);
	}
	fill_s = (double)(bench_now_ns() - t0) / 1e9;
	bench_node_path(last, sizeof(last), nodes - 1);
	bench_node_value(lastv, sizeof(lastv), nodes - 1);
	check_nodes(&rc, nodes, &rng, d.name);
	read_mem(d.pid, &built);
	if (batch)
		snprintf(how, sizeof(how), "transactions of %lu pipelined "
			 "WRITEs", batch);
	else
		snprintf(how, sizeof(how), "pipelined WRITEs, one commit "
			 "each");
	printf("B. Restart with %lu nodes (%s): filled by %s in %.1f s "
	       "(%.0f nodes/s, persistence on)\n", nodes, where, how, fill_s,
	       (double)nodes / fill_s);
	bench_result("durability_fill nodes=%lu per_txn=%lu seconds=%.2f "
		     "nodes_per_s=%.0f rss_kb=%ld fs=%s", nodes, batch, fill_s,
		     (double)nodes / fill_s, built.rss, fs);

	/* Stop by SIGTERM and SIGKILL in turn, the last committed change
	 * being the marker each time, each start on a steady host (the host
	 * probe, bench/steady.h, waits a spell out). */
	{
		cpu_set_t set;

		steady_start(steady_where_cpu(daemon_cpu, &set), steady);
	}
	for (unsigned long i = 0; i < 2 * restarts; i++) {
		int c = (int)(i % 2);	/* 0: SIGTERM, 1: SIGKILL */
		double s;

		snprintf(marker, sizeof(marker), "m%lu", i);
		write_one(&rc, MARKER, marker, d.name);
		raw_close(&rc);
		s = daemon_stop(&d, c ? SIGKILL : SIGTERM);
		if (!c)
			stop_ms[nstop++] = s * 1e3;
		if (i == 0) {
			first_stop = s;
			if (stat(d.tdb, &sb) != 0)
				die("stat %s: %s", d.tdb, strerror(errno));
		}
		steady_wait();
		ref_ms[c][nrun[c]] = reference_ms(nodes);
		start_ready(&d, MARKER, marker, &rc, &s);
		cpu_ms[c][nrun[c]] = daemon_cpu_ms(&d);
		read_mem(d.pid, &m);
		if (!c && nrun[0] == 0)
			loaded = m;
		ready_ms[c][nrun[c]++] = s * 1e3;
		check_nodes(&rc, nodes, &rng, d.name);
		{
			char p[1][BENCH_PATH_MAX], v[1][BENCH_VALUE_MAX];

			snprintf(p[0], sizeof(p[0]), "%s", last);
			snprintf(v[0], sizeof(v[0]), "%s", lastv);
			if (read_check(&rc, p, v, 1, d.name) < 0)
				die("%s: reading %s failed", d.name, last);
		}
	}
	if (steady_waits())
		printf("  (the host was unsteady before %lu restarts: waited "
		       "%.1f s)\n", steady_waits(), steady_waited_s());
	/* The fixed cost: a daemon without a database. */
	daemon_init(&e, "empty", false);
	for (unsigned long i = 0; i < restarts; i++) {
		struct raw_conn erc;
		double s;

		start_ready(&e, "/", "", &erc, &s);
		empty_ms[i] = s * 1e3;
		empty_cpu_ms[i] = daemon_cpu_ms(&e);
		if (i == 0)
			read_mem(e.pid, &none);
		raw_close(&erc);
		daemon_stop(&e, SIGTERM);
	}

	printf("  database %.1f MB (%.0f bytes/node); daemon RSS %.0f MB "
	       "after filling, %.0f MB after loading (peak %.0f MB; of which "
	       "file pages %.0f MB)\n", (double)sb.st_size / 1e6,
	       (double)sb.st_size / (double)nodes, (double)built.rss / 1024,
	       (double)loaded.rss / 1024, (double)loaded.hwm / 1024,
	       (double)(loaded.file + loaded.shmem) / 1024);
	printf("  start to ready (READ answered), ms:\n");
	printf("  %-26s %8s  %17s %8s %9s\n", "database left by", "median",
	       "min..max", "its CPU", "CPU/ref");
	restart_row("SIGTERM", "sigterm", ready_ms[0], cpu_ms[0], ref_ms[0],
		    nrun[0], nodes, (long)sb.st_size, &loaded, fs,
		    steady_waited_s());
	restart_row("SIGKILL (kill -9)", "sigkill", ready_ms[1], cpu_ms[1],
		    ref_ms[1], nrun[1], nodes, (long)sb.st_size, &m, fs,
		    steady_waited_s());
	restart_row("(no database: fixed cost)", "no_database", empty_ms,
		    empty_cpu_ms, NULL, restarts, 0, 0, &none, fs, 0.0);
	printf("  shutdown on SIGTERM with %lu nodes: %.0f ms (median of %lu; "
	       "first, after the fill: %.0f ms)\n", nodes,
	       bench_median(stop_ms, nstop), nstop, first_stop * 1e3);
	bench_result("durability_shutdown nodes=%lu ms=%.1f runs=%lu "
		     "first_ms=%.1f", nodes, bench_median(stop_ms, nstop), nstop,
		     first_stop * 1e3);
	big_writes(&d, &rc, nodes, rounds, ms, depth, fs);
	raw_close(&rc);
	daemon_stop(&d, SIGTERM);
	free(ready_ms[0]);
	free(ready_ms[1]);
	free(cpu_ms[0]);
	free(cpu_ms[1]);
	free(ref_ms[0]);
	free(ref_ms[1]);
	free(stop_ms);
	free(empty_ms);
	free(empty_cpu_ms);
}

/* ---- main ---- */

/* The first of /dev/shm, /run that is tmpfs and writable, else $TMPDIR
 * or /tmp; *fs says what it is. */
static const char *pick_base(const char **fs)
{
	static const char *const cand[] = { "/dev/shm", "/run" };
	const char *t = getenv("TMPDIR");
	struct statfs sf;

	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		if (statfs(cand[i], &sf) == 0 &&
		    (unsigned long)sf.f_type == TMPFS_MAGIC_ &&
		    access(cand[i], W_OK | X_OK) == 0) {
			*fs = "tmpfs";
			return cand[i];
		}
	}
	return t && *t ? t : "/tmp";
}

int main(int argc, char **argv)
{
	unsigned long nodes = 1000000, rounds = 7, ms = 300, depth = 64;
	unsigned long restarts = 5, batch = 1000;
	const char *base = NULL, *fs = "not-tmpfs", *parts = "ab";
	char fsdesc[256];
	struct statfs sf;
	int opt, client_cpu = -1;

	while ((opt = getopt(argc, argv, "qn:r:m:d:R:D:s:T:KP:g:")) != -1) {
		switch (opt) {
		case 'q':
			nodes = 10000;
			rounds = 3;
			ms = 100;
			restarts = 2;
			break;
		case 'n':
			nodes = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			rounds = strtoul(optarg, NULL, 10);
			break;
		case 'm':
			ms = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			depth = strtoul(optarg, NULL, 10);
			break;
		case 'R':
			restarts = strtoul(optarg, NULL, 10);
			break;
		case 'D':
			base = optarg;
			break;
		case 's':
			parts = optarg;
			break;
		case 'T':
			batch = strtoul(optarg, NULL, 10);
			break;
		case 'K':
			keep = true;
			break;
		case 'g':
			steady = strtod(optarg, NULL);
			break;
		case 'P':
			if (sscanf(optarg, "%d:%d", &client_cpu, &daemon_cpu) !=
				    2 ||
			    client_cpu < 0 || daemon_cpu < 0)
				goto usage;
			placement = client_cpu == daemon_cpu ? "same-cpu"
							     : "cross-cpu";
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 1 || nodes < 1 || rounds < 1 || ms < 1 ||
	    depth < 1 || depth > MAX_DEPTH || restarts < 1)
		goto usage;
	daemon_bin = argv[optind];
	if (access(daemon_bin, X_OK) != 0)
		die("%s: %s", daemon_bin, strerror(errno));
	if (!base)
		base = pick_base(&fs);
	else if (statfs(base, &sf) == 0 &&
		 (unsigned long)sf.f_type == TMPFS_MAGIC_)
		fs = "tmpfs";
	if (strlen(base) > 100)
		die("directory name too long for the sockets: %s", base);
	snprintf(dir, sizeof(dir), "%s/xs-durability.XXXXXX", base);
	if (!mkdtemp(dir)) {
		int e = errno;

		dir[0] = '\0';
		die("mkdtemp in %s: %s", base, strerror(e));
	}
	main_pid = getpid();
	atexit(cleanup);
	if (client_cpu >= 0 && bench_pin_cpu(client_cpu) != 0)
		die("cannot pin to CPU %d: %s", client_cpu, strerror(errno));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	snprintf(fsdesc, sizeof(fsdesc), "%s:%s placement=%s", fs, base,
		 placement);
	snprintf(where, sizeof(where), "files in %s, %s; %s", base, fs,
		 placement);

	if (strchr(parts, 'a')) {
		part_a(rounds, ms, depth, fsdesc);
		if (strchr(parts, 'b'))
			printf("\n");
	}
	if (strchr(parts, 'b'))
		part_b(nodes, restarts, batch, rounds, ms, depth, fsdesc);
	return 0;
usage:
	fprintf(stderr, "usage: durability [-q] [-n NODES] [-r ROUNDS] [-m MS] "
			"[-d DEPTH] [-R RESTARTS] [-D DIR] [-s a|b|ab] "
			"[-T PER_TXN] [-K] [-P CLIENT_CPU:DAEMON_CPU] "
			"[-g FACTOR] DAEMON\n");
	return 2;
}
