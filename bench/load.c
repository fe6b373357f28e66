/*
 * load: throughput and latency of several daemons side by side, under one
 * kind of request from many clients at once.
 *
 * Two client paths:
 *  - libxs (default): each client is a thread with its own libxenstore
 *    handle and one request in flight, as toolstacks use the daemon;
 *  - raw: each client is a thread with one raw socket (bench/rawconn.h)
 *    keeping DEPTH operations in flight, which shows the daemon's own cost
 *    rather than the round trip.  Its latency runs from sending a request
 *    to its reply, so it includes the queueing behind the other requests.
 *
 * Workloads (-w), one "op" each:
 *  read       READ of a random node of the filled store
 *  write      WRITE of a random node of the store, a value of the same length
 *  directory  DIRECTORY of /bench/dir1000, whose 1,000 children "0".."999"
 *             are created here when missing (names this short keep the
 *             listing under the 4,096-byte payload limit)
 *  mkdir-rm   MKDIR of /bench/mk/<client>/<n>, then RM of it (pipelined in
 *             order on the raw path: the op is the pair)
 *  txn5       TRANSACTION_START, 5 WRITEs of random store nodes, commit; a
 *             commit answering EAGAIN is retried within the op and counted
 *  boot       a guest's boot and teardown (libxs only; see op_boot): one
 *             transaction writing 42 nodes, then a frontend/backend state
 *             handshake driven by watches, then a transaction removing it
 *             all.  Each client has its own block of the domids
 *             1..1000 (1000/CLIENTS each) and uses them in turn: upstream
 *             refuses permissions naming a domain that does not exist, and
 *             under ../shared/anchors/xenshim only those below 1024 do.
 *
 * A boot of domain D writes the 42 nodes of boot_nodes below (libxl's
 * usual ones: name, vm, memory, cpu, control, console, and a vif and a vbd
 * on both sides, under /local/domain/D and /local/domain/0/backend) in one
 * transaction, with 3 MKDIRs and 3 SET_PERMS: /local/domain/D owned by D,
 * the backend directories by dom0 and readable by D.
 * Then, on two more handles: the backend watches the vif frontend's state,
 * the frontend the backend's; the frontend writes 3 (Initialised), the
 * backend on seeing it writes 4 (Connected), the frontend on seeing that
 * writes 4, and the backend waits to see it.  Each wait reads the node on
 * every event of its path until the value is the expected one.
 *
 * Before measuring, each daemon's store is filled to NODES nodes of the
 * bench/layout.h layout; /bench/count records how many it holds, so a
 * second run fills only the rest.  A daemon whose filling overruns the
 * budget is left out.  IDLE extra connections and one connection holding
 * WATCHES watches on /bench/w/<i> (read by a thread, so nothing piles up
 * in the daemon) stay open on each daemon for the whole run.
 *
 * Each round measures every daemon in turn for MS milliseconds, the order
 * rotated and reversed from round to round, and with -s SLICE each turn is
 * cut into slices of about SLICE ms that the daemons take in turn (see
 * run_rounds); the table gives medians over
 * rounds of ops/s (all clients' completed ops over the elapsed time), of
 * the round's p50 and p99 latency over every op, and of the daemon's RSS
 * after its turn (with @PID).  The label "noop" names a server answering
 * every packet with a canned reply: it is only checked for the reply's
 * id and type, and the table gives every daemon's ratio to it and to
 * "upstream-c".  Against any other daemon every reply is checked, and a
 * wrong one stops the run (exit 1), as does a reply missing for 10 s.
 *
 * Usage: load [-w WORKLOAD] [-m libxs|raw] [-c CLIENTS] [-d DEPTH]
 *             [-n NODES] [-i IDLE] [-W WATCHES] [-r ROUNDS] [-t MS] [-s SLICE]
 *             [-F FILL_BUDGET_S] [-q] LABEL=SOCKET[@PID][%NODES] ...
 *
 * A daemon given %NODES is filled to that many nodes instead of -n's, and
 * its rows say so: one run can compare one implementation at two store
 * sizes, the two daemons taking turns like any others.  Every results
 * line carries run=<this process's pid>, so a report can tell which
 * figures were measured in the same interleaved rounds.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench/contender.h"
#include "bench/layout.h"
#include "bench/populate.h"
#include "bench/rawconn.h"
#include "bench/results.h"
#include "bench/steady.h"
#include "bench/timing.h"

#define COUNT_NODE "/bench/count"
#define DIR1000 "/bench/dir1000"
#define DIR_CHILDREN 1000
#define FILL_CHUNK 10000ul	/* nodes filled between budget checks */
#define TIMEOUT_MS 10000	/* longest wait for one reply */
#define MAX_DEPTH 1024
#define BATCH 64		/* set-up requests sent before their replies */
#define PKT_ROOM (sizeof(struct xsd_sockmsg) + BENCH_PATH_MAX + BENCH_VALUE_MAX)
/* Domids of boot: 1..BOOT_DOMIDS, shared out between the clients. */
#define BOOT_DOMIDS 1000
#define BOOT_MAX_CLIENTS BOOT_DOMIDS

enum workload { W_READ, W_WRITE, W_DIRECTORY, W_MKDIR_RM, W_TXN5, W_BOOT };
static const char *const workload_names[] = {
	"read", "write", "directory", "mkdir-rm", "txn5", "boot",
};

static struct {
	enum workload w;
	bool raw;
	unsigned long clients, depth, nodes, idle, watches, rounds, ms, budget;
	unsigned long slice_ms;
	double steady;		/* -g: the probe's bound, times the usual */
	bool rest;		/* -R: the memory at rest, after the rounds */
} opt = { W_READ, false, 1, 64, 1000, 0, 0, 5, 300, 60, 0, 0, false };

/* Rounds with a turn measured on an unsteady host, the wait for a
 * steady one having run out (bench/steady.h). */
static unsigned long unsteady_kept;

struct daemon {
	struct contender c;
	pid_t pid;		/* 0: no RSS, no CPU time */
	bool noop;		/* replies checked for id and type only */
	bool skipped;
	unsigned long nodes;	/* its store's size: -n, or its own %NODES */
	unsigned long idle_want, watches_want;	/* -i, -W or its own +idle= +watches= */
	unsigned long filled;	/* nodes held when filling stopped */
	int *idle;		/* idle_opened idle connections */
	unsigned long idle_opened;
	struct raw_conn *wconn;	/* holds the -W watches */
	unsigned long watches_ok;
	char watch_error[32];
	pthread_t drainer;
	int stop[2];		/* closing stop[1] stops the drainer */
	unsigned long events;
	double *rate, *p50, *p99, *rss;	/* per round */
	double *cpu;		/* per round: its CPU microseconds per op */
	double *allin;		/* per round: RSS + its tmpfs files, kB */
	double files_kb;	/* its tmpfs files after the last round */
	double rest_rss_kb, rest_files_kb;	/* at rest (-R); 0: not */
	unsigned long rest_wait_ms;	/* how long it took to come to rest */
	unsigned long retries;
};

struct client {
	struct daemon *d;
	unsigned int k;
	struct xs_handle *h, *be, *fe;	/* be and fe: boot only */
	int be_fd, fe_fd;
	struct raw_conn *rc;
	char *buf;			/* raw: the packets of one send */
	uint64_t *sent_at;		/* raw: per op in flight */
	unsigned long *node_at;		/* raw: read's node, per op */
	uint64_t rng;
	unsigned long seq, ops, retries;
	uint64_t t0, t1;
	double *lat;			/* microseconds per op */
	size_t nlat, cap;
	_Atomic uint64_t busy_since;	/* libxs: 0 between requests */
	atomic_bool done;
	pthread_t th;
};

static pthread_barrier_t start_line;
static const char *volatile setup_label = "";

static void die(const struct daemon *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
static void die(const struct daemon *d, const char *fmt, ...)
{
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	va_list ap;

	/* Two clients failing together: the second waits for exit(). */
	pthread_mutex_lock(&once);
	fflush(stdout);
	fprintf(stderr, "load: %s: ", d ? d->c.label : "error");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Set-up steps are guarded by alarm(): a silent daemon ends the run. */
static void on_alarm(int sig)
{
	const char *l = setup_label, *m = ": no reply in time during set-up\n";
	ssize_t r;

	(void)sig;
	r = write(2, "load: ", 6);
	r = write(2, l, strlen(l));
	r = write(2, m, strlen(m));
	(void)r;
	_exit(1);
}

static bool digits_only(const char *v, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return len > 0;
}

/* What node i may hold: populate's value or one of node_value's, digits
 * of the length bench/layout.h gives node i. */
static bool node_value_ok(unsigned long i, const char *v, size_t len)
{
	return digits_only(v, len) && len == (size_t)bench_value_len(i);
}

/* A new value for store node i, of the length its first one had. */
static int node_value(char out[static BENCH_VALUE_MAX], unsigned long i,
		      unsigned long seq)
{
	return bench_value(out, BENCH_VALUE_MAX, i, seq);
}

static unsigned long random_node(struct client *cl,
				 char path[static BENCH_PATH_MAX])
{
	unsigned long i = bench_rand(&cl->rng) % cl->d->nodes;

	bench_node_path(path, BENCH_PATH_MAX, i);
	return i;
}

static void add_latency(struct client *cl, uint64_t ns)
{
	if (cl->nlat == cl->cap) {
		cl->cap = cl->cap ? 2 * cl->cap : 4096;
		cl->lat = realloc(cl->lat, cl->cap * sizeof(*cl->lat));
		if (!cl->lat)
			die(cl->d, "out of memory");
	}
	cl->lat[cl->nlat++] = (double)ns / 1e3;
}

/* A reply of this long wait still counts as progress for the watchdog. */
static void touch(struct client *cl)
{
	atomic_store(&cl->busy_since, bench_now_ns());
}

static struct xs_handle *open_handle(const struct daemon *d)
{
	struct xs_handle *h = contender_open(&d->c);

	if (!h)
		die(d, "cannot connect to %s: %s", d->c.path, strerror(errno));
	return h;
}

/* ---- the libxs workloads: one op each, dying on a wrong reply ---- */

static void op_read(struct client *cl)
{
	char path[BENCH_PATH_MAX];
	unsigned int len;
	char *v;
	unsigned long i = random_node(cl, path);

	v = xs_read(cl->h, XBT_NULL, path, &len);
	if (!v)
		die(cl->d, "READ %s: %s", path, strerror(errno));
	if (!cl->d->noop && !node_value_ok(i, v, len))
		die(cl->d, "READ %s returned \"%.*s\", a value neither "
		    "populate nor load writes there", path, (int)len, v);
	free(v);
}

static void op_write(struct client *cl)
{
	char path[BENCH_PATH_MAX], value[BENCH_VALUE_MAX];
	unsigned long i = random_node(cl, path);
	int len = node_value(value, i, cl->seq++);

	if (!xs_write(cl->h, XBT_NULL, path, value, (unsigned int)len))
		die(cl->d, "WRITE %s: %s", path, strerror(errno));
}

static void op_directory(struct client *cl)
{
	unsigned int num;
	char **list = xs_directory(cl->h, XBT_NULL, DIR1000, &num);

	if (!list)
		die(cl->d, "DIRECTORY " DIR1000 ": %s", strerror(errno));
	free(list);
	if (!cl->d->noop && num != DIR_CHILDREN)
		die(cl->d, "DIRECTORY " DIR1000 " listed %u children, not %d",
		    num, DIR_CHILDREN);
}

static void op_mkdir_rm(struct client *cl)
{
	char path[64];

	snprintf(path, sizeof(path), "/bench/mk/%u/%lu", cl->k, cl->seq++);
	if (!xs_mkdir(cl->h, XBT_NULL, path))
		die(cl->d, "MKDIR %s: %s", path, strerror(errno));
	if (!xs_rm(cl->h, XBT_NULL, path))
		die(cl->d, "RM %s: %s", path, strerror(errno));
}

/*
 * ok is the result of a step of transaction t: true goes on; a step
 * failing with EAGAIN ends t and counts a retry (false); else the run ends.
 */
static bool txn_step(struct client *cl, xs_transaction_t t, bool ok,
		     const char *what)
{
	if (ok)
		return true;
	if (errno != EAGAIN)
		die(cl->d, "%s in a transaction: %s", what, strerror(errno));
	xs_transaction_end(cl->h, t, true);
	cl->retries++;
	return false;
}

/* Commit t: true when done, false after an EAGAIN (counted). */
static bool txn_commit(struct client *cl, xs_transaction_t t)
{
	if (xs_transaction_end(cl->h, t, false))
		return true;
	if (errno != EAGAIN)
		die(cl->d, "TRANSACTION_END: %s", strerror(errno));
	cl->retries++;
	return false;
}

static xs_transaction_t txn_start(struct client *cl)
{
	xs_transaction_t t = xs_transaction_start(cl->h);

	if (t == XBT_NULL)
		die(cl->d, "TRANSACTION_START: %s", strerror(errno));
	return t;
}

static bool txn5_try(struct client *cl)
{
	xs_transaction_t t = txn_start(cl);

	for (int j = 0; j < 5; j++) {
		char path[BENCH_PATH_MAX], value[BENCH_VALUE_MAX];
		unsigned long i = random_node(cl, path);
		int len = node_value(value, i, cl->seq++);

		if (!txn_step(cl, t, xs_write(cl->h, t, path, value,
					      (unsigned int)len), "WRITE"))
			return false;
	}
	return txn_commit(cl, t);
}

static void op_txn5(struct client *cl)
{
	while (!txn5_try(cl))
		touch(cl);
}

/* ---- boot ---- */

enum { FE_DIR, VIF_DIR, VBD_DIR };
static const char *const boot_dirs[] = {
	"/local/domain/%u",
	"/local/domain/0/backend/vif/%u/0",
	"/local/domain/0/backend/vbd/%u/51712",
};
/* What the teardown removes (the backend directories one level up). */
static const char *const boot_roots[] = {
	"/local/domain/%u",
	"/local/domain/0/backend/vif/%u",
	"/local/domain/0/backend/vbd/%u",
};

/* "name=value" under each of boot_dirs; a value's %u is the domid. */
static const char *const boot_nodes[][26] = {
	[FE_DIR] = {
		"name=bench-guest-%u", "vm=/vm/00000000-0000-0000-0000-%012u",
		"domid=%u", "memory/target=262144",
		"memory/static-max=262144", "cpu/0/availability=online",
		"cpu/1/availability=online", "control/shutdown=",
		"control/platform-feature-multiprocessor-suspend=1", "data=",
		"device/vif/0/backend=/local/domain/0/backend/vif/%u/0",
		"device/vif/0/backend-id=0", "device/vif/0/state=1",
		"device/vif/0/handle=0", "device/vif/0/mac=00:16:3e:00:00:01",
		"device/vbd/51712/backend=/local/domain/0/backend/vbd/%u/51712",
		"device/vbd/51712/backend-id=0", "device/vbd/51712/state=1",
		"device/vbd/51712/virtual-device=51712",
		"device/vbd/51712/device-type=disk", "console/port=2",
		"console/ring-ref=1044476", "console/type=xenconsoled",
		"console/output=pty", "console/tty=", "console/limit=1048576",
	},
	[VIF_DIR] = {
		"frontend=/local/domain/%u/device/vif/0", "frontend-id=%u",
		"online=1", "state=1", "script=/etc/xen/scripts/vif-bridge",
		"mac=00:16:3e:00:00:01", "handle=0", "type=vif",
	},
	[VBD_DIR] = {
		"frontend=/local/domain/%u/device/vbd/51712", "frontend-id=%u",
		"online=1", "state=1", "params=/dev/vg/guest-%u", "type=phy",
		"mode=w", "dev=xvda",
	},
};

/* The toolstack's transaction creating domain dom; false on EAGAIN. */
static bool boot_create_try(struct client *cl, unsigned int dom)
{
	/* As libxl: the guest owns its home, dom0 its backends. */
	struct xs_permissions own[] = { { dom, XS_PERM_NONE } };
	struct xs_permissions backend[] = { { 0, XS_PERM_NONE },
					    { dom, XS_PERM_READ } };
	xs_transaction_t t = txn_start(cl);
	char path[128], value[64];

	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), boot_dirs[i], dom);
		if (!txn_step(cl, t, xs_mkdir(cl->h, t, path), "MKDIR") ||
		    !txn_step(cl, t, xs_set_permissions(cl->h, t, path,
				i == FE_DIR ? own : backend,
				i == FE_DIR ? 1 : 2), "SET_PERMS"))
			return false;
	}
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < 26 && boot_nodes[i][j]; j++) {
			const char *node = boot_nodes[i][j];
			const char *eq = strchr(node, '=');
			int len = snprintf(path, sizeof(path), boot_dirs[i], dom);
			int vlen = snprintf(value, sizeof(value), eq + 1, dom);

			snprintf(path + len, sizeof(path) - (size_t)len,
				 "/%.*s", (int)(eq - node), node);
			if (!txn_step(cl, t, xs_write(cl->h, t, path, value,
						      (unsigned int)vlen),
				      "WRITE"))
				return false;
		}
	}
	return txn_commit(cl, t);
}

static bool boot_destroy_try(struct client *cl, unsigned int dom)
{
	xs_transaction_t t = txn_start(cl);
	char path[128];

	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), boot_roots[i], dom);
		if (!txn_step(cl, t, xs_rm(cl->h, t, path), "RM"))
			return false;
	}
	return txn_commit(cl, t);
}

/*
 * Wait on handle h (watch pipe fd) until an event for path finds it
 * holding want.  Events of other paths are stale ones of earlier
 * domains; those of path whose value is not want yet are skipped too.
 */
static void wait_state(struct client *cl, struct xs_handle *h, int fd,
		       const char *path, const char *want, const char *who)
{
	uint64_t deadline = bench_now_ns() + TIMEOUT_MS * 1000000ull;
	char last[32] = "no event";

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = bench_now_ns();
		unsigned int num, len;
		char **vec, *v;
		bool mine;

		if (now >= deadline)
			die(cl->d, "%s waited 10 s for %s to be %s (%s)", who,
			    path, want, last);
		if (poll(&pfd, 1, (int)((deadline - now) / 1000000 + 1)) <= 0)
			continue;
		vec = xs_read_watch(h, &num);
		if (!vec)
			die(cl->d, "reading a watch event: %s",
			    strerror(errno));
		mine = !strcmp(vec[XS_WATCH_PATH], path);
		free(vec);
		if (!mine)
			continue;
		touch(cl);
		v = xs_read(h, XBT_NULL, path, &len);
		if (!v)
			die(cl->d, "READ %s: %s", path, strerror(errno));
		snprintf(last, sizeof(last), "last seen \"%.*s\"", (int)len, v);
		mine = len == strlen(want) && !memcmp(v, want, len);
		free(v);
		if (mine)
			return;
	}
}

static void write_state(struct client *cl, struct xs_handle *h,
			const char *path, const char *value)
{
	touch(cl);
	if (!xs_write(h, XBT_NULL, path, value, (unsigned int)strlen(value)))
		die(cl->d, "WRITE %s: %s", path, strerror(errno));
}

static void watch(struct client *cl, struct xs_handle *h, const char *path,
		  bool on)
{
	touch(cl);
	if (!(on ? xs_watch(h, path, "load") : xs_unwatch(h, path, "load")))
		die(cl->d, "%s %s: %s", on ? "WATCH" : "UNWATCH", path,
		    strerror(errno));
}

static void op_boot(struct client *cl)
{
	/* Client k's own block of domids, all below 1024 (see the top). */
	unsigned int span = BOOT_DOMIDS / (unsigned int)opt.clients;
	unsigned int dom = span * cl->k + 1 + (unsigned int)(cl->seq++ % span);
	char fe_state[64], be_state[64];

	snprintf(fe_state, sizeof(fe_state),
		 "/local/domain/%u/device/vif/0/state", dom);
	snprintf(be_state, sizeof(be_state),
		 "/local/domain/0/backend/vif/%u/0/state", dom);
	while (!boot_create_try(cl, dom))
		touch(cl);
	watch(cl, cl->be, fe_state, true);
	watch(cl, cl->fe, be_state, true);
	write_state(cl, cl->fe, fe_state, "3");
	wait_state(cl, cl->be, cl->be_fd, fe_state, "3", "the backend");
	write_state(cl, cl->be, be_state, "4");
	wait_state(cl, cl->fe, cl->fe_fd, be_state, "4", "the frontend");
	write_state(cl, cl->fe, fe_state, "4");
	wait_state(cl, cl->be, cl->be_fd, fe_state, "4", "the backend");
	watch(cl, cl->be, fe_state, false);
	watch(cl, cl->fe, be_state, false);
	touch(cl);
	while (!boot_destroy_try(cl, dom))
		touch(cl);
}

static void (*const libxs_ops[])(struct client *) = {
	op_read, op_write, op_directory, op_mkdir_rm, op_txn5, op_boot,
};

static void *libxs_client(void *arg)
{
	struct client *cl = arg;
	void (*op)(struct client *) = libxs_ops[opt.w];
	uint64_t end, s, e;

	pthread_barrier_wait(&start_line);
	cl->t0 = e = bench_now_ns();
	end = cl->t0 + opt.ms * 1000000ull;
	do {
		s = e;
		atomic_store(&cl->busy_since, s);
		op(cl);
		e = bench_now_ns();
		add_latency(cl, e - s);
		cl->ops++;
	} while (e < end);
	cl->t1 = e;
	atomic_store(&cl->busy_since, 0);
	atomic_store(&cl->done, true);
	return NULL;
}

/* ---- the raw path ---- */

/* Wait up to 10 s for rc to be readable, then read once. */
static void fill_timed(struct raw_conn *rc, const struct daemon *d)
{
	struct pollfd pfd = { .fd = rc->fd, .events = POLLIN };
	int n;

	while ((n = poll(&pfd, 1, TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	if (n == 0)
		die(d, "no reply within 10 s");
	if (n < 0 || raw_fill(rc) < 0)
		die(d, "the connection failed (did the daemon die?)");
}

static void recv_timed(struct raw_conn *rc, const struct daemon *d,
		       struct xsd_sockmsg *hdr, const char **body)
{
	int got;

	while ((got = raw_take(rc, hdr, body)) == 0)
		fill_timed(rc, d);
	if (got < 0)
		die(d, "malformed packet");
}

/* Append op number op's packets to out; returns their bytes. */
static size_t pack_op(struct client *cl, char *out, unsigned long op)
{
	char body[BENCH_PATH_MAX + BENCH_VALUE_MAX];
	uint32_t id = (uint32_t)op;
	size_t n;
	int len;

	switch (opt.w) {
	case W_READ:
		cl->node_at[op % opt.depth] = random_node(cl, body);
		return raw_pack(out, XS_READ, id, body, strlen(body) + 1);
	case W_WRITE: {
		/* WRITE is "path\0value", the value without a NUL. */
		unsigned long i = random_node(cl, body);

		len = (int)strlen(body) + 1;
		len += node_value(body + len, i, op);
		return raw_pack(out, XS_WRITE, id, body, (size_t)len);
	}
	case W_DIRECTORY:
		return raw_pack(out, XS_DIRECTORY, id, DIR1000,
				sizeof(DIR1000));
	default:
		/* mkdir-rm: requests 2op (MKDIR) and 2op+1 (RM). */
		len = snprintf(body, sizeof(body), "/bench/mk/%u/%lu", cl->k,
			       op) + 1;
		n = raw_pack(out, XS_MKDIR, 2 * id, body, (size_t)len);
		return n + raw_pack(out + n, XS_RM, 2 * id + 1, body,
				    (size_t)len);
	}
}

static const char *const type_names[] = {
	[XS_DIRECTORY] = "DIRECTORY", [XS_READ] = "READ", [XS_WRITE] = "WRITE",
	[XS_MKDIR] = "MKDIR", [XS_RM] = "RM",
};

/* Check the reply to request id of op; true when it completes op. */
static bool check_reply(struct client *cl, const struct xsd_sockmsg *hdr,
			const char *body, uint32_t id, unsigned long op)
{
	static const uint32_t types[] = { XS_READ, XS_WRITE, XS_DIRECTORY };
	bool pair = opt.w == W_MKDIR_RM;
	uint32_t want = pair ? (id & 1 ? XS_RM : XS_MKDIR) : types[opt.w];
	unsigned int entries = 0;

	if (hdr->req_id != id)
		die(cl->d, "reply for request %u where %u was due",
		    hdr->req_id, id);
	if (hdr->type == XS_ERROR)
		die(cl->d, "%s failed: %.*s", type_names[want], (int)hdr->len,
		    body);
	if (hdr->type != want)
		die(cl->d, "reply of type %u to a %s", hdr->type,
		    type_names[want]);
	if (cl->d->noop)
		return !pair || (id & 1);
	switch (want) {
	case XS_READ:
		if (!node_value_ok(cl->node_at[op % opt.depth], body,
				   hdr->len))
			die(cl->d, "READ of node %lu returned \"%.*s\", a "
			    "value neither populate nor load writes there",
			    cl->node_at[op % opt.depth], (int)hdr->len, body);
		break;
	case XS_DIRECTORY:
		for (uint32_t i = 0; i < hdr->len; i++)
			entries += body[i] == '\0';
		if (entries != DIR_CHILDREN || body[hdr->len - 1] != '\0')
			die(cl->d, "DIRECTORY " DIR1000 " listed %u children, "
			    "not %d", entries, DIR_CHILDREN);
		break;
	default:
		if (hdr->len != 3 || memcmp(body, "OK", 3))
			die(cl->d, "%s answered \"%.*s\", not OK",
			    type_names[want], (int)hdr->len, body);
	}
	return !pair || (id & 1);
}

static void *raw_client(void *arg)
{
	struct client *cl = arg;
	unsigned long depth = opt.depth, sent = 0, done = 0, count = ULONG_MAX;
	uint32_t next = 0;	/* the request whose reply is due */
	uint64_t end, now;

	pthread_barrier_wait(&start_line);
	cl->t0 = bench_now_ns();
	end = cl->t0 + opt.ms * 1000000ull;
	while (done < count) {
		struct xsd_sockmsg hdr;
		const char *body;
		unsigned long first = sent;
		size_t len = 0;
		int got;

		/* Top the window up in one write(2). */
		for (; sent < count && sent - done < depth; sent++)
			len += pack_op(cl, cl->buf + len, sent);
		if (len) {
			now = bench_now_ns();
			for (unsigned long s = first; s < sent; s++)
				cl->sent_at[s % depth] = now;
			if (raw_send(cl->rc, cl->buf, len) < 0)
				die(cl->d, "sending failed (did the daemon "
				    "die?)");
		}
		fill_timed(cl->rc, cl->d);
		now = bench_now_ns();
		/* Replies come in order: the oldest op completes first. */
		while ((got = raw_take(cl->rc, &hdr, &body)) == 1) {
			if (check_reply(cl, &hdr, body, next++, done)) {
				add_latency(cl, now - cl->sent_at[done % depth]);
				done++;
			}
		}
		if (got < 0)
			die(cl->d, "malformed packet");
		/* Time is up: send no more, collect what is in flight. */
		if (count == ULONG_MAX && now >= end)
			count = sent;
	}
	cl->t1 = bench_now_ns();
	cl->ops = done;
	atomic_store(&cl->done, true);
	return NULL;
}

/* ---- one measurement ---- */

struct measurement {
	double rate, p50, p99;
	double cpu_us;		/* the daemon's CPU time per op, or -1 */
	unsigned long retries;
};

/*
 * What a daemon did over one round's slices (see run_rounds): summed, and
 * turned into the round's figures at its end.
 */
struct tally {
	unsigned long ops, retries;
	uint64_t ns;		/* the clients' time over the slices */
	uint64_t cpu_ns;	/* the daemon's CPU time over them */
	double *lat;		/* every op's latency, microseconds */
	size_t nlat, cap;
};

/* The CPU time the daemon has used, its exited threads included (the
 * database's compaction threads live a fraction of a round). */
static uint64_t daemon_cpu_ns(const struct daemon *d)
{
	int64_t ns = bench_cpu_ns(d->pid);

	if (ns < 0)
		die(d, "cannot read the CPU clock of process %d: %s (did the "
		    "daemon die?)", (int)d->pid, strerror(errno));
	return (uint64_t)ns;
}

static void open_client(struct client *cl, struct daemon *d, unsigned int k)
{
	cl->d = d;
	cl->k = k;
	cl->rng = 0x9e3779b97f4a7c15ull * (k + 1);
	if (opt.raw) {
		cl->rc = malloc(sizeof(*cl->rc));
		cl->buf = malloc(opt.depth * 2 * PKT_ROOM);
		cl->sent_at = calloc(opt.depth, sizeof(*cl->sent_at));
		cl->node_at = calloc(opt.depth, sizeof(*cl->node_at));
		if (!cl->rc || !cl->buf || !cl->sent_at || !cl->node_at)
			die(d, "out of memory");
		if (raw_connect(cl->rc, d->c.path) < 0)
			die(d, "cannot connect");
		return;
	}
	cl->h = open_handle(d);
	if (opt.w == W_BOOT) {
		cl->be = open_handle(d);
		cl->fe = open_handle(d);
		cl->be_fd = xs_fileno(cl->be);
		cl->fe_fd = xs_fileno(cl->fe);
		if (cl->be_fd < 0 || cl->fe_fd < 0)
			die(d, "xs_fileno: %s", strerror(errno));
	}
}

static void close_client(struct client *cl)
{
	if (cl->rc)
		raw_close(cl->rc);
	free(cl->rc);
	free(cl->buf);
	free(cl->sent_at);
	free(cl->node_at);
	free(cl->lat);
	if (cl->h)
		xs_close(cl->h);
	if (cl->be)
		xs_close(cl->be);
	if (cl->fe)
		xs_close(cl->fe);
}

/* Add a turn of d of MS milliseconds (all its clients at once) to t. */
static void measure(struct daemon *d, unsigned long ms, struct tally *t)
{
	unsigned long n = opt.clients, saved_ms = opt.ms;
	struct client *cls = calloc(n, sizeof(*cls));
	uint64_t t0 = UINT64_MAX, t1 = 0, cpu0 = 0;
	bool running = true;

	if (!cls)
		die(d, "out of memory");
	opt.ms = ms;
	for (unsigned long k = 0; k < n; k++)
		open_client(&cls[k], d, (unsigned int)k);
	/* From the connections open to the last reply: the turn's work. */
	if (d->pid)
		cpu0 = daemon_cpu_ns(d);
	pthread_barrier_init(&start_line, NULL, (unsigned int)n);
	for (unsigned long k = 0; k < n; k++)
		if (pthread_create(&cls[k].th, NULL,
				   opt.raw ? raw_client : libxs_client, &cls[k]))
			die(d, "cannot start a client thread");
	/* libxenstore calls wait for ever: watch over them here. */
	while (running) {
		uint64_t now;

		usleep(ms < 100 ? 5000 : 20000);
		now = bench_now_ns();
		running = false;
		for (unsigned long k = 0; k < n; k++) {
			uint64_t b = atomic_load(&cls[k].busy_since);

			if (atomic_load(&cls[k].done))
				continue;
			running = true;
			if (b && now > b + TIMEOUT_MS * 1000000ull)
				die(d, "no reply within 10 s");
		}
	}
	for (unsigned long k = 0; k < n; k++) {
		pthread_join(cls[k].th, NULL);
		t->ops += cls[k].ops;
		t->retries += cls[k].retries;
		t0 = cls[k].t0 < t0 ? cls[k].t0 : t0;
		t1 = cls[k].t1 > t1 ? cls[k].t1 : t1;
	}
	pthread_barrier_destroy(&start_line);
	if (d->pid)
		t->cpu_ns += daemon_cpu_ns(d) - cpu0;
	t->ns += t1 - t0;
	for (unsigned long k = 0; k < n; k++) {
		if (t->nlat + cls[k].nlat > t->cap) {
			t->cap = 2 * (t->nlat + cls[k].nlat);
			t->lat = realloc(t->lat, t->cap * sizeof(*t->lat));
			if (!t->lat)
				die(d, "out of memory");
		}
		if (cls[k].nlat)
			memcpy(t->lat + t->nlat, cls[k].lat,
			       cls[k].nlat * sizeof(*t->lat));
		t->nlat += cls[k].nlat;
		close_client(&cls[k]);
	}
	free(cls);
	opt.ms = saved_ms;
}

/* The round's figures of d from t, which starts afresh. */
static struct measurement summed(const struct daemon *d, struct tally *t)
{
	struct measurement m = { .cpu_us = -1, .retries = t->retries };

	if (!t->ops || !t->nlat || !t->ns)
		die(d, "no operation completed");
	if (d->pid)
		m.cpu_us = (double)t->cpu_ns / 1e3 / (double)t->ops;
	m.rate = (double)t->ops / ((double)t->ns / 1e9);
	m.p50 = bench_percentile(t->lat, t->nlat, 0.5);
	m.p99 = bench_percentile(t->lat, t->nlat, 0.99);
	t->ops = t->retries = 0;
	t->ns = t->cpu_ns = 0;
	t->nlat = 0;
	return m;
}

/* ---- set-up ---- */

/*
 * The file an fd of /proc/PID/fd (at fdpath) opens, split: its directory
 * into target (PATH_MAX bytes), and the stem its siblings share (its name
 * up to its first '.') returned, pointing into target; NULL when it is
 * not a file in a directory below the root.
 */
static const char *held_dir_stem(const char *fdpath, char *target)
{
	ssize_t len = readlink(fdpath, target, PATH_MAX - 1);
	char *slash, *dot;

	if (len <= 0)
		return NULL;
	target[len] = '\0';
	slash = strrchr(target, '/');
	if (!slash || slash == target)
		return NULL;
	*slash = '\0';
	if ((dot = strchr(slash + 1, '.')))
		*dot = '\0';
	return slash + 1;
}

/*
 * Whether a daemon's database has a journal being folded in: a file named
 * like one it holds open, ending ".old" (our daemon's compaction, which
 * removes it when done).  Memory measured meanwhile counts the fold's
 * table and a third file, gone a few seconds later.
 */
static bool compaction_pending(const struct daemon *d)
{
	char dir[64], path[320], target[PATH_MAX];
	bool pending = false;
	struct dirent *e, *f;
	const char *stem;
	DIR *fds;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)d->pid);
	fds = opendir(dir);
	while (fds && !pending && (e = readdir(fds))) {
		DIR *ents;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!(stem = held_dir_stem(path, target)))
			continue;
		ents = opendir(target);
		while (ents && !pending && (f = readdir(ents))) {
			size_t n = strlen(f->d_name);

			pending = !strncmp(f->d_name, stem, strlen(stem)) &&
				  n > 4 && !strcmp(f->d_name + n - 4, ".old");
		}
		if (ents)
			closedir(ents);
	}
	if (fds)
		closedir(fds);
	return pending;
}

/* Fill d to d->nodes nodes; false (with a note) when over the budget. */
static bool fill(struct daemon *d)
{
	struct xs_handle *h = open_handle(d);
	unsigned long have = 0, start;
	unsigned int len;
	uint64_t t0 = bench_now_ns();
	double s = 0;
	char *v, buf[24];

	alarm(TIMEOUT_MS / 1000);
	v = xs_read(h, XBT_NULL, COUNT_NODE, &len);
	if (v) {
		have = digits_only(v, len) ? strtoul(v, NULL, 10) : 0;
		free(v);
	} else if (errno != ENOENT) {
		die(d, "READ " COUNT_NODE ": %s", strerror(errno));
	}
	start = have;
	while (have < d->nodes) {
		unsigned long to = d->nodes - have > FILL_CHUNK
					   ? have + FILL_CHUNK : d->nodes;

		if (s > (double)opt.budget) {
			printf("%s: filling stopped at %lu nodes after %.0f s "
			       "(over the budget)\n", d->c.label, have, s);
			bench_result("load_skip daemon=%s reason=fill nodes=%lu",
				     d->c.label, have);
			d->skipped = true;
			d->filled = have;
			break;
		}
		/* A slow big store may take seconds per chunk. */
		alarm(3 * TIMEOUT_MS / 1000);
		if (bench_populate(d->c.path, have, to) < 0)
			die(d, "filling the store failed");
		have = to;
		len = (unsigned int)snprintf(buf, sizeof(buf), "%lu", have);
		if (!xs_write(h, XBT_NULL, COUNT_NODE, buf, len))
			die(d, "WRITE " COUNT_NODE ": %s", strerror(errno));
		s = (double)(bench_now_ns() - t0) / 1e9;
	}
	alarm(0);
	if (have > start && !d->skipped)
		printf("%s: store filled from %lu to %lu nodes in %.1f s\n",
		       d->c.label, start, have, s);
	/* The rounds measure the store at rest: the compactions the fill
	 * set off done first (one after another, until the live journal is
	 * under its limit; at most three minutes: at a million nodes each
	 * takes tens of seconds, bench/analysis.md). */
	for (int i = 0, quiet = 0; have > start && d->pid && i < 1800 &&
			quiet < 2; i++) {
		/* Twice in a row: one compaction's end and the next's start
		 * are a moment apart. */
		quiet = compaction_pending(d) ? 0 : quiet + 1;
		usleep(100 * 1000);
	}
	xs_close(h);
	return !d->skipped;
}

/* Give /bench/dir1000 its children unless it has them (once: no hurry). */
static void make_dir1000(struct daemon *d)
{
	struct xs_handle *h = open_handle(d);
	unsigned int num = 0;
	char **list, path[64];

	alarm(TIMEOUT_MS / 1000);
	list = xs_directory(h, XBT_NULL, DIR1000, &num);
	for (int i = 0; (!list || num != DIR_CHILDREN) && i < DIR_CHILDREN;
	     i++) {
		snprintf(path, sizeof(path), DIR1000 "/%d", i);
		if (!xs_write(h, XBT_NULL, path, "", 0))
			die(d, "WRITE %s: %s", path, strerror(errno));
	}
	free(list);
	list = xs_directory(h, XBT_NULL, DIR1000, &num);
	free(list);
	if (!list || num != DIR_CHILDREN)
		die(d, DIR1000 " has %u children, not %d", num, DIR_CHILDREN);
	alarm(0);
	xs_close(h);
}

/*
 * An idle connection, known to be accepted once a READ is answered; -1 if
 * refused, unanswered for 10 s, or out of descriptors here (errno EMFILE).
 */
static int idle_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pfd = { .events = POLLIN };
	uint64_t give_up = bench_now_ns() + 2000000000ull;
	char pkt[PKT_ROOM];
	size_t len = raw_pack(pkt, XS_READ, 1, "/", 2);

	pfd.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (pfd.fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* A full backlog answers EAGAIN rather than blocking: retry a while. */
	while (connect(pfd.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EAGAIN || bench_now_ns() > give_up)
			goto fail;
		usleep(1000);
	}
	if (write(pfd.fd, pkt, len) == (ssize_t)len &&
	    poll(&pfd, 1, TIMEOUT_MS) == 1 && read(pfd.fd, pkt, len) > 0)
		return pfd.fd;
fail:
	close(pfd.fd);
	return -1;
}

/*
 * d->idle_want idle connections to d, as many as it accepts.  When it refuses
 * some, enough are closed again for the clients (3 handles each for boot)
 * and the watch connection to get in: the daemon is still measured.
 */
static void open_idle(struct daemon *d)
{
	/* The clients, /proc's files, and the host probe's two pipes. */
	unsigned long room = opt.clients * (opt.w == W_BOOT ? 3 : 1) + 4 + 4;
	unsigned long accepted;
	int fd = 0;

	d->idle = calloc(d->idle_want, sizeof(int));
	if (!d->idle)
		die(d, "out of memory");
	while (d->idle_opened < d->idle_want &&
	       (fd = idle_connect(d->c.path)) >= 0)
		d->idle[d->idle_opened++] = fd;
	if (fd >= 0)
		return;
	printf("%s: %lu of %lu idle connections accepted (%s)", d->c.label,
	       d->idle_opened, d->idle_want,
	       errno == EMFILE ? "out of descriptors here"
			       : "then refused or unanswered");
	accepted = d->idle_opened;
	while (d->idle_opened && accepted - d->idle_opened < room)
		close(d->idle[--d->idle_opened]);
	printf("; %lu kept, to leave room for the clients\n", d->idle_opened);
	/* The daemon sees those closes in its own time. */
	usleep(100000);
}

static void *drain_watches(void *arg)
{
	struct daemon *d = arg;
	struct pollfd pfd[2] = { { .fd = d->wconn->fd, .events = POLLIN },
				 { .fd = d->stop[0], .events = POLLIN } };

	for (;;) {
		struct xsd_sockmsg hdr;
		const char *body;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents || raw_fill(d->wconn) < 0)
			break;
		while (raw_take(d->wconn, &hdr, &body) == 1)
			d->events += hdr.type == XS_WATCH_EVENT;
	}
	return NULL;
}

/* d->watches_want watches on /bench/w/<i> over one connection, kept. */
static void start_watches(struct daemon *d)
{
	char *buf = malloc(BATCH * PKT_ROOM);

	d->wconn = malloc(sizeof(*d->wconn));
	if (!buf || !d->wconn)
		die(d, "out of memory");
	if (raw_connect(d->wconn, d->c.path) < 0)
		die(d, "cannot connect");
	for (unsigned long i = 0; i < d->watches_want && !d->watch_error[0];) {
		unsigned long batch = 0, replies = 0;
		size_t len = 0;

		for (; i < d->watches_want && batch < BATCH; i++, batch++) {
			char body[64];
			/* WATCH is "path\0token\0". */
			int blen = snprintf(body, sizeof(body),
					    "/bench/w/%lu%cw%lu", i, '\0', i);

			len += raw_pack(buf + len, XS_WATCH, (uint32_t)i, body,
					(size_t)blen + 1);
		}
		if (raw_send(d->wconn, buf, len) < 0)
			die(d, "sending failed");
		while (replies < batch) {
			struct xsd_sockmsg hdr;
			const char *body;

			recv_timed(d->wconn, d, &hdr, &body);
			if (hdr.type == XS_WATCH_EVENT) {
				d->events++;
				continue;
			}
			replies++;
			if (hdr.type == XS_WATCH)
				d->watches_ok++;
			else if (!d->watch_error[0])
				snprintf(d->watch_error,
					 sizeof(d->watch_error), "%.*s",
					 (int)hdr.len, body);
		}
	}
	free(buf);
	if (d->watch_error[0])
		printf("%s: WATCH refused after %lu watches: %s\n", d->c.label,
		       d->watches_ok, d->watch_error);
	if (pipe(d->stop) < 0 ||
	    pthread_create(&d->drainer, NULL, drain_watches, d))
		die(d, "cannot start the watch reader");
}

/* Closing the connection drops its watches in the daemon. */
static void stop_watches(struct daemon *d)
{
	close(d->stop[1]);
	pthread_join(d->drainer, NULL);
	close(d->stop[0]);
	raw_close(d->wconn);
	free(d->wconn);
}

static double read_rss_kb(const struct daemon *d)
{
	char path[64], line[256];
	double kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	f = fopen(path, "r");
	if (!f)
		die(d, "cannot read %s: %s (did the daemon die?)", path,
		    strerror(errno));
	while (kb < 0 && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtod(line + 6, NULL);
	fclose(f);
	if (kb < 0)
		die(d, "no VmRSS in %s", path);
	return kb;
}

/* The resident kB of d's mappings of inode ino (/proc/PID/smaps). */
static double mapped_kb(const struct daemon *d, ino_t ino)
{
	char path[64], line[512];
	bool mine = false;
	double kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)d->pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long inode;
		double v;

		/* "start-end perms offset dev inode [path]" opens a mapping. */
		if (sscanf(line, "%*x-%*x %*s %*x %*s %llu", &inode) == 1)
			mine = inode == (unsigned long long)ino;
		else if (mine && sscanf(line, "Rss: %lf", &v) == 1)
			kb += v;
	}
	fclose(f);
	return kb;
}

/* Add the tmpfs file at path, once per inode, to *kb. */
static void count_file(const struct daemon *d, const char *path,
		       ino_t *seen, unsigned int *nseen, double *kb)
{
	struct stat st;
	struct statfs sf;

	if (stat(path, &st) || !S_ISREG(st.st_mode) || statfs(path, &sf) ||
	    sf.f_type != TMPFS_MAGIC || *nseen == 64)
		return;
	for (unsigned int k = 0; k < *nseen; k++)
		if (seen[k] == st.st_ino)
			return;
	seen[(*nseen)++] = st.st_ino;
	*kb += (double)st.st_blocks * 512 / 1024 - mapped_kb(d, st.st_ino);
}

/* Count every file of dir whose name starts with stem. */
static void count_siblings(const struct daemon *d, const char *dir,
			   const char *stem, ino_t *seen, unsigned int *nseen,
			   double *kb)
{
	char path[PATH_MAX + 272];
	size_t n = strlen(stem);
	struct dirent *e;
	DIR *ents = opendir(dir);

	while (ents && (e = readdir(ents))) {
		if (strncmp(e->d_name, stem, n))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		count_file(d, path, seen, nseen, kb);
	}
	if (ents)
		closedir(ents);
}

/*
 * The tmpfs files the daemon holds open (a database and its journal, which
 * a host keeps on the tmpfs /run), and their siblings named alike (the
 * same name up to its first '.': a checkpoint or a journal it has closed
 * for now), in kB, less the part of them it maps, which its RSS counts
 * already: a tmpfs file is RAM as much as the heap is.
 */
static double daemon_files_kb(const struct daemon *d)
{
	char dir[64], path[320], target[PATH_MAX];
	ino_t seen[64];
	unsigned int nseen = 0, held;
	double kb = 0;
	struct dirent *e;
	DIR *fds;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)d->pid);
	fds = opendir(dir);
	if (!fds)
		die(d, "cannot read %s (did the daemon die?)", dir);
	while ((e = readdir(fds))) {
		const char *stem;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		held = nseen;
		count_file(d, path, seen, &nseen, &kb);
		if (nseen == held)
			continue;	/* not a tmpfs file, or counted */
		if ((stem = held_dir_stem(path, target)))
			count_siblings(d, target, stem, seen, &nseen, &kb);
	}
	closedir(fds);
	return kb;
}

/* "+idle=N" or "+watches=N" at the end of arg: taken off, into d. */
static bool parse_extra(struct daemon *d, char *arg)
{
	char *plus, *end;
	unsigned long v;

	while ((plus = strrchr(arg, '+'))) {
		if (!strncmp(plus, "+idle=", 6))
			v = strtoul(plus + 6, &end, 10), d->idle_want = v;
		else if (!strncmp(plus, "+watches=", 9))
			v = strtoul(plus + 9, &end, 10), d->watches_want = v;
		else
			return true;	/* part of the path */
		if (*end)
			return false;
		*plus = '\0';
	}
	return true;
}

/*
 * "LABEL=SOCKET[@PID][%NODES][+idle=N][+watches=N]": NODES, this daemon's
 * own store size, lets one run compare one daemon at two sizes,
 * interleaved (two daemons, the same label); idle and watches, its own
 * idle connections and watches instead of -i's and -W's, compare one
 * implementation with and without them in the same rounds.
 */
static bool parse_daemon(struct daemon *d, char *arg)
{
	char *at, *end;

	d->idle_want = opt.idle;
	d->watches_want = opt.watches;
	if (!parse_extra(d, arg) || !contender_parse(&d->c, arg))
		return false;
	d->nodes = opt.nodes;
	at = strrchr(d->c.path, '%');
	if (at && at[1]) {
		unsigned long n = strtoul(at + 1, &end, 10);

		if (*end || n < 1)
			return false;
		*at = '\0';
		d->nodes = n;
	}
	d->pid = contender_take_pid(&d->c);
	d->noop = !strcmp(d->c.label, "noop");
	return d->c.path[0] != '\0';
}

static bool parse_num(const char *s, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	*out = strtoul(s, &end, 10);
	return !*end;
}

static const struct daemon *find_label(const struct daemon *ds, int n,
				       const char *label)
{
	for (int i = 0; i < n; i++)
		if (!ds[i].skipped && !strcmp(ds[i].c.label, label))
			return &ds[i];
	return NULL;
}

/*
 * " round_ops=a,b,... round_cpu=x,y,...": each round's figures, in the
 * rounds' order, so that a report can take the median of per-round ratios
 * of two daemons measured in the same round (turns a moment apart), which
 * drifts of the machine between rounds do not move.
 */
static void per_round(const struct daemon *d, char *out, size_t size)
{
	size_t l = (size_t)snprintf(out, size, " round_ops=");

	for (unsigned long r = 0; r < opt.rounds && l < size; r++)
		l += (size_t)snprintf(out + l, size - l, "%s%.0f", r ? "," : "",
				      d->rate[r]);
	if (!d->pid || l >= size)
		return;
	l += (size_t)snprintf(out + l, size - l, " round_cpu=");
	for (unsigned long r = 0; r < opt.rounds && l < size; r++)
		l += (size_t)snprintf(out + l, size - l, "%s%.3f", r ? "," : "",
				      d->cpu[r]);
}

static void report(struct daemon *ds, int n)
{
	const struct daemon *noop = find_label(ds, n, "noop");
	const struct daemon *up = find_label(ds, n, "upstream-c");
	bool retries = opt.w == W_TXN5 || opt.w == W_BOOT;
	double rate[n];

	printf("load: %s via %s, %lu client%s (%lu in flight each), %lu "
	       "nodes, %lu idle connections, %lu watches: median of %lu "
	       "rounds x %lu ms\n", workload_names[opt.w],
	       opt.raw ? "raw sockets" : "libxenstore", opt.clients,
	       opt.clients == 1 ? "" : "s", opt.raw ? opt.depth : 1,
	       opt.nodes, opt.idle, opt.watches, opt.rounds, opt.ms);
	if (steady_waits())
		printf("  (the host was unsteady before %lu turns: waited %.1f "
		       "s; %lu rounds measured in part on an unsteady host, "
		       "the wait having run out; usual probe %.0f us)\n",
		       steady_waits(), steady_waited_s(), unsteady_kept,
		       steady_usual_us());
	printf("  %-12s %10s %10s %10s %9s %8s %8s", "daemon", "ops/s",
	       "p50 us", "p99 us", "CPU us/op", "RSS MB", "all-in");
	if (noop)
		printf(" %8s", "vs noop");
	if (up)
		printf(" %13s", "vs upstream-c");
	if (retries)
		printf(" %8s", "retries");
	printf("\n");
	for (int i = 0; i < n; i++)
		if (!ds[i].skipped)
			rate[i] = bench_median(ds[i].rate, opt.rounds);
	for (int i = 0; i < n; i++) {
		struct daemon *d = &ds[i];
		double p50, p99, rss, cpu, allin;
		char extra[320] = "", per[1024];
		size_t l;

		if (d->skipped) {
			if (d->noop && opt.w == W_BOOT)
				printf("  %-12s skipped: a no-op server sends "
				       "no watch events\n", d->c.label);
			else
				printf("  %-12s skipped: filling stopped at "
				       "%lu of %lu nodes (over the budget)\n",
				       d->c.label, d->filled, d->nodes);
			continue;
		}
		p50 = bench_median(d->p50, opt.rounds);
		p99 = bench_median(d->p99, opt.rounds);
		rss = d->pid ? bench_median(d->rss, opt.rounds) : 0;
		cpu = d->pid ? bench_median(d->cpu, opt.rounds) : -1;
		allin = d->pid ? bench_median(d->allin, opt.rounds) : 0;
		if (d->nodes != opt.nodes)
			printf("  %-5s %6lu %10.0f %10.1f %10.1f ", d->c.label,
			       d->nodes, rate[i], p50, p99);
		else
			printf("  %-12s %10.0f %10.1f %10.1f ", d->c.label,
			       rate[i], p50, p99);
		if (d->pid)
			printf("%9.2f %8.1f %8.1f", cpu, rss / 1024,
			       allin / 1024);
		else
			printf("%9s %8s %8s", "-", "-", "-");
		if (noop)
			printf(" %7.2fx", rate[i] / rate[noop - ds]);
		if (up)
			printf(" %12.2fx", rate[i] / rate[up - ds]);
		if (retries)
			printf(" %8lu", d->retries);
		if (d->pid)
			snprintf(extra, sizeof(extra), " cpu_us=%.3f "
				 "files_kb=%.0f allin_kb=%.0f", cpu,
				 d->files_kb, allin);
		if (d->pid && opt.rest) {
			l = strlen(extra);
			printf("  at rest %.1f MB (%.1f of files; after %lu ms)",
			       (d->rest_rss_kb + d->rest_files_kb) / 1024,
			       d->rest_files_kb / 1024, d->rest_wait_ms);
			snprintf(extra + l, sizeof(extra) - l,
				 " rest_rss_kb=%.0f rest_files_kb=%.0f "
				 "rest_kb=%.0f rest_wait_ms=%lu",
				 d->rest_rss_kb, d->rest_files_kb,
				 d->rest_rss_kb + d->rest_files_kb,
				 d->rest_wait_ms);
		}
		if (d->idle_opened < d->idle_want) {
			l = strlen(extra);
			printf("  idle_opened=%lu", d->idle_opened);
			snprintf(extra + l, sizeof(extra) - l,
				 " idle_opened=%lu", d->idle_opened);
		}
		if (d->watch_error[0]) {
			l = strlen(extra);
			printf("  watches_registered=%lu", d->watches_ok);
			snprintf(extra + l, sizeof(extra) - l,
				 " watches_registered=%lu", d->watches_ok);
		}
		printf("\n");
		per_round(d, per, sizeof(per));
		bench_result("load daemon=%s workload=%s mode=%s clients=%lu "
			     "depth=%lu nodes=%lu idle=%lu watches=%lu "
			     "ops_per_s=%.0f p50_us=%.1f p99_us=%.1f "
			     "rss_kb=%.0f rounds=%lu retries=%lu run=%ld "
			     "unsteady=%lu unsteady_kept=%lu waited_s=%.1f%s%s",
			     d->c.label, workload_names[opt.w],
			     opt.raw ? "raw" : "libxs", opt.clients,
			     opt.raw ? opt.depth : 1, d->nodes, d->idle_want,
			     d->watches_want, rate[i], p50, p99, rss, opt.rounds,
			     d->retries, (long)getpid(), steady_waits(),
			     unsteady_kept, steady_waited_s(), extra, per);
	}
}

static int usage(void)
{
	fprintf(stderr,
		"usage: load [-w WORKLOAD] [-m libxs|raw] [-c CLIENTS] "
		"[-d DEPTH] [-n NODES] [-i IDLE]\n"
		"            [-W WATCHES] [-r ROUNDS] [-t MS] [-s SLICE_MS] "
		"[-F FILL_BUDGET_S] [-q] [-R]\n"
		"            LABEL=SOCKET[@PID][%%NODES][+idle=N][+watches=N] ...\n"
		"  WORKLOAD: read (default), write, directory, mkdir-rm, "
		"txn5, boot\n"
		"  -R: each daemon's memory at rest after the rounds\n"
		"  -m raw: read, write, directory and mkdir-rm only; DEPTH "
		"ops in flight (1..%d, default 64)\n"
		"  boot: at most %d clients\n",
		MAX_DEPTH, BOOT_MAX_CLIENTS);
	return 2;
}

/* Options into opt; the number of daemons, or -1 for a usage error. */
static int parse_args(int argc, char **argv)
{
	bool quick = false, set_r = false, set_t = false, ok = true;
	char *end;
	int c;

	while ((c = getopt(argc, argv, "w:m:c:d:n:i:W:r:t:s:F:g:qR")) != -1) {
		switch (c) {
		case 'w':
			ok = false;
			for (int w = 0; w <= W_BOOT; w++)
				if (!strcmp(optarg, workload_names[w])) {
					opt.w = (enum workload)w;
					ok = true;
				}
			break;
		case 'm':
			ok = !strcmp(optarg, "libxs") || !strcmp(optarg, "raw");
			opt.raw = !strcmp(optarg, "raw");
			break;
		case 'c': ok = parse_num(optarg, &opt.clients); break;
		case 'd': ok = parse_num(optarg, &opt.depth); break;
		case 'n': ok = parse_num(optarg, &opt.nodes); break;
		case 'i': ok = parse_num(optarg, &opt.idle); break;
		case 'W': ok = parse_num(optarg, &opt.watches); break;
		case 'r': ok = set_r = parse_num(optarg, &opt.rounds); break;
		case 't': ok = set_t = parse_num(optarg, &opt.ms); break;
		case 's': ok = parse_num(optarg, &opt.slice_ms); break;
		case 'F': ok = parse_num(optarg, &opt.budget); break;
		case 'g':
			opt.steady = strtod(optarg, &end);
			ok = *optarg && !*end && opt.steady >= 0;
			break;
		case 'q': quick = true; break;
		case 'R': opt.rest = true; break;
		default: ok = false;
		}
		if (!ok)
			return -1;
	}
	if (quick && !set_r)
		opt.rounds = 3;
	if (quick && !set_t)
		opt.ms = 150;
	if (opt.raw && (opt.w == W_TXN5 || opt.w == W_BOOT)) {
		fprintf(stderr, "load: -m raw does not run %s: its requests "
			"wait on each other (use -m libxs)\n",
			workload_names[opt.w]);
		return -1;
	}
	if (opt.clients < 1 || opt.depth < 1 || opt.depth > MAX_DEPTH ||
	    opt.nodes < 1 || opt.rounds < 1 || opt.ms < 1 ||
	    (opt.w == W_BOOT && opt.clients > BOOT_MAX_CLIENTS))
		return -1;
	return argc - optind >= 1 ? argc - optind : -1;
}

/*
 * Fill every daemon and give it what the workload reads, then the idle
 * connections and the watches; returns how many are measured.
 */
static int set_up(struct daemon *ds, int n)
{
	int active = 0;

	for (int i = 0; i < n; i++) {
		struct daemon *d = &ds[i];

		setup_label = d->c.label;
		if (d->noop && opt.w == W_BOOT) {
			printf("%s: skipped for boot: a no-op server sends no "
			       "watch events\n", d->c.label);
			bench_result("load_skip daemon=%s reason=boot",
				     d->c.label);
			d->skipped = true;
			continue;
		}
		if (!d->noop && !fill(d))
			continue;
		if (!d->noop && opt.w == W_DIRECTORY)
			make_dir1000(d);
		d->rate = calloc(opt.rounds, sizeof(double));
		d->p50 = calloc(opt.rounds, sizeof(double));
		d->p99 = calloc(opt.rounds, sizeof(double));
		d->rss = calloc(opt.rounds, sizeof(double));
		d->cpu = calloc(opt.rounds, sizeof(double));
		d->allin = calloc(opt.rounds, sizeof(double));
		if (!d->rate || !d->p50 || !d->p99 || !d->rss || !d->cpu ||
		    !d->allin)
			die(d, "out of memory");
		active++;
	}
	for (int i = 0; i < n; i++) {
		struct daemon *d = &ds[i];

		setup_label = d->c.label;
		if (!d->skipped && d->idle_want)
			open_idle(d);
		if (!d->skipped && d->watches_want)
			start_watches(d);
	}
	fflush(stdout);
	return active;
}

/*
 * The rounds over the active daemons act[0..n).  A round gives each daemon
 * MS milliseconds, cut into slices of about SLICE ms (-s; one slice when
 * 0, and for boot, whose ops run longer than a slice): every daemon has
 * its slice in turn, then the next slice, the order rotated and reversed
 * from slice to slice and round to round.  A drift of the machine slower
 * than a round of slices then weighs on every daemon alike.
 */
static void run_rounds(struct daemon **act, int n)
{
	unsigned long slices = 1, warm = opt.ms / 5 + 1, turn = 0;
	struct tally *t = calloc((size_t)n, sizeof(*t));

	if (!t)
		die(NULL, "out of memory");
	if (opt.slice_ms && opt.w != W_BOOT && opt.ms >= 2 * opt.slice_ms)
		slices = opt.ms / opt.slice_ms;
	/* The host probe (bench/steady.h) where a wakeup of the daemon
	 * sets the rate: one request in flight from one client.  With more
	 * the daemon seldom sleeps, and the probe's spells (which it sees
	 * between slices, the daemons idle) do not follow the rows' rates. */
	for (int i = 0; i < n && opt.clients == 1 && !opt.raw; i++)
		if (act[i]->pid) {
			cpu_set_t set;

			steady_start(steady_where_pid(act[i]->pid, &set),
				     opt.steady);
			break;
		}
	/* Untimed warm-up, which also checks the replies once. */
	for (int i = 0; i < n; i++) {
		measure(act[i], warm, &t[i]);
		summed(act[i], &t[i]);
	}
	for (unsigned long r = 0; r < opt.rounds; r++) {
		bool steady = true;

		for (unsigned long s = 0; s < slices; s++, turn++) {
			for (int k = 0; k < n; k++) {
				/* Rotate by turn / 2, reverse every other. */
				int pos = (int)((k + turn / 2) % (unsigned int)n);
				int i = turn % 2 ? n - 1 - pos : pos;

				/* Every turn starts on a steady host: a spell
				 * is waited out, not measured, and no round is
				 * thrown away (a daemon still busy after its
				 * turn can delay a probe, and rounds dropped
				 * for that would be chosen by the daemon). */
				if (!steady_wait())
					steady = false;
				measure(act[i], opt.ms / slices, &t[i]);
			}
		}
		if (!steady)
			unsteady_kept++;
		for (int i = 0; i < n; i++) {
			struct daemon *d = act[i];
			struct measurement m = summed(d, &t[i]);

			d->rate[r] = m.rate;
			d->p50[r] = m.p50;
			d->p99[r] = m.p99;
			d->retries += m.retries;
			d->cpu[r] = m.cpu_us;
			if (d->pid) {
				d->rss[r] = read_rss_kb(d);
				d->files_kb = daemon_files_kb(d);
				d->allin[r] = d->rss[r] + d->files_kb;
			}
		}
	}
	for (int i = 0; i < n; i++)
		free(t[i].lat);
	free(t);
}

/*
 * -R: the memory of every daemon at rest, measured once after the rounds.
 * The rounds' figures catch a daemon's files wherever a burst left them
 * (ours: a journal anywhere in its fill, beside a spare), which moved
 * the memory rows by 8% from one run to the next; a host spends most of
 * its life at rest.  At rest: REST_AFTER_MS with no request (more than
 * ours' quiet period, after which it merges its journal), then no CPU
 * time used over REST_IDLE_MS (the merge's thread done), REST_MAX_MS at
 * most.  The same rule for every contender.
 */
#define REST_AFTER_MS 3500
#define REST_IDLE_MS 300
#define REST_MAX_MS 30000

static void measure_at_rest(struct daemon **act, int n)
{
	uint64_t start = bench_now_ns();

	usleep(REST_AFTER_MS * 1000);
	for (int i = 0; i < n; i++) {
		struct daemon *d = act[i];
		uint64_t before, after;

		if (!d->pid)
			continue;
		after = daemon_cpu_ns(d);
		do {
			before = after;
			usleep(REST_IDLE_MS * 1000);
			after = daemon_cpu_ns(d);
			/* A millisecond's slack: a timer's wakeups. */
		} while (after - before > 1000000 &&
			 bench_now_ns() - start < REST_MAX_MS * 1000000ull);
		d->rest_wait_ms = (unsigned long)((bench_now_ns() - start) /
						  1000000);
		d->rest_rss_kb = read_rss_kb(d);
		d->rest_files_kb = daemon_files_kb(d);
	}
}

int main(int argc, char **argv)
{
	int n = parse_args(argc, argv), active;
	struct daemon *ds;
	struct rlimit rl;

	if (n < 0)
		return usage();
	ds = calloc((size_t)n, sizeof(*ds));
	if (!ds)
		return 1;
	for (int i = 0; i < n; i++)
		if (!parse_daemon(&ds[i], argv[optind + i])) {
			free(ds);
			return usage();
		}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	/* Idle connections and many clients need descriptors. */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	active = set_up(ds, n);
	if (active) {
		struct daemon *act[active];

		for (int i = 0, a = 0; i < n; i++)
			if (!ds[i].skipped)
				act[a++] = &ds[i];
		run_rounds(act, active);
		if (opt.rest)
			measure_at_rest(act, active);
	}
	report(ds, n);

	for (int i = 0; i < n; i++) {
		struct daemon *d = &ds[i];

		if (d->wconn)
			stop_watches(d);
		for (unsigned long j = 0; j < d->idle_opened; j++)
			close(d->idle[j]);
		free(d->idle);
		free(d->rate);
		free(d->p50);
		free(d->p99);
		free(d->rss);
		free(d->cpu);
		free(d->allin);
	}
	free(ds);
	return 0;
}
