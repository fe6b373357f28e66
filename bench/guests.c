/*
 * guests: one guest's requests over its ring with ever more idle guests
 * beside it, and a socket client's: neither should slow down.
 *
 * How.  The daemon runs under the Xen test double (its contract is
 * tests/fakexen/README.md): LD_PRELOAD=libfakexen.so, FAKEXEN_DIR=<a
 * directory of ours, on /dev/shm>, where we play the hypervisor and the
 * guests as tests/integration/fakexen.py does.  A guest is a page file
 * gfn-<domid>-<gfn> mapped shared by both sides (granted: hard link
 * grant-<domid>-1), a datagram socket guest-<domid> receiving the daemon's
 * signals, and its byte in `domains` (1: running); dom0 introduces it
 * with INTRODUCE "<domid>\0<gfn>\0<port>\0" (fakexen.py's numbering).  The
 * guest keeps to docs/misc/xenstore-ring.txt: requests at offset 0, replies
 * at 1024, free-running indices, a barrier between the bytes and the index
 * publishing them, a signal {domid, port} to <dir>/evtchn after every move
 * of an index.
 *
 * What.  For each N of DOMAINS_LIST the guests up to domid N are added
 * (never removed) and introduced, INTRODUCEs pipelined 256 at a time;
 * introduce/s runs from the first sent to the last answered (the daemon's
 * cost, not our making of files).  Every new ring must show the daemon's
 * features, and the newest guest makes a request.  Then ROUNDS rounds of
 * MS ms per path, taking turns, one request in flight: `ring`, domain 1
 * writes a request, signals, waits for the daemon's signal, reads the
 * reply; `socket`, a dom0 client on the Unix socket.  read: READ a node
 * written before (domain 1's "bench", dom0's /bench/guests), value checked;
 * write: WRITE a new value, "OK" expected.  The daemon looks at a ring only
 * when its channel fires, so no figure should move with N.  Reported:
 * medians over rounds of ops/s and of each round's p50 and p99, the
 * daemon's VmRSS and apart its RssShmem (ring pages and `domains`: tmpfs
 * files here, guest memory under Xen).  A wrong reply, no signal within
 * 5 s, or a dead daemon: exit 1.
 *
 * Usage: guests [-n DOMAINS_LIST] [-r ROUNDS] [-t MS] [-w read|write] [-q]
 *               [-P CLIENT_CPU:DAEMON_CPU] DAEMON
 *   defaults -n 10,100,1000,10000 -r 5 -t 300 -w read; -q: 3 rounds of
 *   150 ms; -P pins us and the daemon.  libfakexen.so: $FAKEXEN_LIB, else
 *   <DAEMON's directory>/tests/fakexen/libfakexen.so (make's place).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xen/io/xs_wire.h>

#include "bench/results.h"
#include "bench/scratch.h"
#include "bench/timing.h"

#define NR_DOMIDS 65536		/* bytes of `domains` */
#define DOMID_LIMIT 0x7FF0	/* DOMID_FIRST_RESERVED */
#define PAGE 4096
#define HDR sizeof(struct xsd_sockmsg)
#define PKT_MAX (HDR + XENSTORE_PAYLOAD_MAX)
#define RING XENSTORE_RING_SIZE
#define ACTIVE 1		/* the busy guest's domid */
#define TIMEOUT_NS 5000000000ull
#define SLICE_MS 100		/* a wait looks at the daemon this often */
#define INTRO_BATCH 256
#define WARMUP 200
#define MAX_ROUNDS 64
#define GUEST_NODE "bench"	/* relative: /local/domain/1/bench */
#define GUEST_VALUE "value-of-domain-1"
#define DOM0_NODE "/bench/guests"
#define DOM0_VALUE "value-of-dom0"

struct guest {
	unsigned int domid, port;
	unsigned long gfn;
	struct xenstore_domain_interface *intf;	/* the shared page */
	int sock;				/* guest-<domid> */
};

struct stats {
	double ops, p50, p99;	/* ops/s; latencies in us */
};

static char dir[80];		/* ours, removed at exit */
static char log_path[96];
static pid_t daemon_pid, main_pid;
static int daemon_cpu = -1;
static bool write_wl;		/* -w write */
static struct guest *guests;	/* by domid; [0] unused */
static unsigned int nguests;
static int domains_fd = -1;
static struct sockaddr_un evtchn_sa;
static int dom0_fd = -1;	/* the socket client */
/* Bytes received and not yet taken as packets: dom0's socket, a ring's. */
struct inbuf {
	char buf[1 << 14];
	size_t len;
};
static struct inbuf dom0_in, ring_in;
static uint32_t next_req = 1;
static double *lat;		/* a round's latencies, us */
static size_t lat_cap;

/* ---- housekeeping ---- */

static void show_log(void)
{
	char buf[4096];
	int fd = log_path[0] ? open(log_path, O_RDONLY) : -1;
	off_t size = fd < 0 ? 0 : lseek(fd, 0, SEEK_END);
	ssize_t n = size > 0 ? pread(fd, buf, sizeof(buf),
				     size > 4096 ? size - 4096 : 0) : 0;

	if (n > 0) {
		fprintf(stderr, "--- the daemon's log (%s), end:\n", log_path);
		fwrite(buf, 1, (size_t)n, stderr);
	}
	if (fd >= 0)
		close(fd);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "guests: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	show_log();
	exit(1);
}

static void cleanup(void)
{
	if (getpid() != main_pid)
		return;		/* a child that failed to exec */
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGKILL);
		waitpid(daemon_pid, NULL, 0);
		daemon_pid = 0;
	}
	if (dir[0])
		bench_rmtree(dir);
	dir[0] = '\0';
}

static void on_signal(int sig)
{
	(void)sig;
	exit(130);		/* runs cleanup */
}

/* Each guest holds a socket here: open files up to the hard limit. */
static void raise_fd_limit(unsigned int domains)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit: %s", strerror(errno));
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("setrlimit: %s", strerror(errno));
	if (rl.rlim_cur < (rlim_t)domains + 64)
		die("%u guests need %u open files (a socket each); the hard "
		    "limit is %lu", domains, domains + 64,
		    (unsigned long)rl.rlim_cur);
}

/* ---- the daemon ---- */

static void daemon_check(void)
{
	int st;

	if (daemon_pid > 0 && waitpid(daemon_pid, &st, WNOHANG) == daemon_pid) {
		daemon_pid = 0;
		die("the daemon exited (%s %d)",
		    WIFSIGNALED(st) ? "signal" : "status",
		    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
}

/* A wait that found nothing yet: fail if the daemon died or 5 s passed. */
static void still_waiting(uint64_t t0, const char *what)
{
	daemon_check();
	if (bench_now_ns() - t0 > TIMEOUT_NS)
		die("%s within 5 s", what);
}

/* name=value, before what name held (sep between). */
static void prepend_env(const char *name, const char *value, char sep)
{
	const char *old = getenv(name);
	char buf[PATH_MAX * 2];

	snprintf(buf, sizeof(buf), "%s%c%s", value, old && *old ? sep : '\0',
		 old && *old ? old : "");
	setenv(name, buf, 1);
}

/* Fork and exec the daemon under the test double; output to log_path. */
static void daemon_start(const char *bin, const char *lib, const char *sock)
{
	/* The defaults: the database beside the socket, on /dev/shm. */
	char *argv[] = { (char *)bin, "-N", "--socket", (char *)sock, NULL };
	int fd;

	fflush(NULL);
	daemon_pid = fork();
	if (daemon_pid < 0)
		die("fork: %s", strerror(errno));
	if (daemon_pid > 0)
		return;
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(127);
	prepend_env("LD_PRELOAD", lib, ' ');
	setenv("FAKEXEN_DIR", dir, 1);
	/* ASan refuses a library preloaded before its runtime. */
	prepend_env("ASAN_OPTIONS", "verify_asan_link_order=0", ':');
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (daemon_cpu >= 0 && bench_pin_cpu(daemon_cpu) != 0)
		_exit(127);
	execv(bin, argv);
	_exit(127);
}

static void daemon_stop(void)
{
	int st;

	if (kill(daemon_pid, SIGTERM) != 0 ||
	    waitpid(daemon_pid, &st, 0) != daemon_pid)
		die("stopping the daemon: %s", strerror(errno));
	daemon_pid = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("the daemon did not exit cleanly on SIGTERM (status %#x)",
		    st);
}

/* What follows key in the daemon's /proc/PID/file ("?" if absent). */
static void proc_line(const char *file, const char *key, char *out,
		      size_t size)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	FILE *f;

	snprintf(out, size, "?");
	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)daemon_pid, file);
	if (!(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen))
			sscanf(line + klen, " %31s", out);
	fclose(f);
}

static long proc_kb(const char *key)
{
	char v[32];

	proc_line("status", key, v, sizeof(v));
	return strtol(v, NULL, 10);
}

/* ---- requests: packets, dom0's socket, checks ---- */

static size_t pack(char *out, uint32_t type, uint32_t req, const void *body,
		   size_t len)
{
	struct xsd_sockmsg h = { .type = type, .req_id = req,
				 .len = (uint32_t)len };

	memcpy(out, &h, HDR);
	memcpy(out + HDR, body, len);
	return HDR + len;
}

/* Blocking calls return every SLICE_MS, to look at the daemon. */
static void set_timeouts(int fd)
{
	struct timeval tv = { 0, SLICE_MS * 1000 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		die("setsockopt: %s", strerror(errno));
}

/* Connect as soon as the daemon listens. */
static void dom0_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t t0 = bench_now_ns();

	memcpy(sa.sun_path, path, strlen(path));	/* fits: dir is short */
	for (;;) {
		dom0_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (dom0_fd < 0)
			die("socket: %s", strerror(errno));
		if (connect(dom0_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (errno != ENOENT && errno != ECONNREFUSED)
			die("connect %s: %s", path, strerror(errno));
		close(dom0_fd);
		still_waiting(t0, "no socket from the daemon");
		nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL);
	}
	set_timeouts(dom0_fd);
}

static void dom0_send(const char *p, size_t len)
{
	uint64_t t0 = bench_now_ns();

	while (len) {
		ssize_t n = send(dom0_fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EINTR)
			die("socket: send: %s", strerror(errno));
		if (n < 0) {
			still_waiting(t0, "socket: the daemon read nothing");
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Take a whole packet out of in, its body into body: false if none yet. */
static bool take(struct inbuf *in, struct xsd_sockmsg *h, char *body,
		 const char *who)
{
	if (in->len < HDR)
		return false;
	memcpy(h, in->buf, HDR);
	if (h->len > XENSTORE_PAYLOAD_MAX)
		die("%s: reply length %u", who, h->len);
	if (in->len < HDR + h->len)
		return false;
	memcpy(body, in->buf + HDR, h->len);
	in->len -= HDR + h->len;
	memmove(in->buf, in->buf + HDR + h->len, in->len);
	return true;
}

/* The next packet from the socket. */
static void dom0_recv(struct xsd_sockmsg *h, char *body)
{
	uint64_t t0 = bench_now_ns();

	while (!take(&dom0_in, h, body, "socket")) {
		ssize_t n = recv(dom0_fd, dom0_in.buf + dom0_in.len,
				 sizeof(dom0_in.buf) - dom0_in.len, 0);

		if (n > 0) {
			dom0_in.len += (size_t)n;
			continue;
		}
		daemon_check();
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			die("socket: the connection failed: %s",
			    n ? strerror(errno) : "closed by the daemon");
		still_waiting(t0, "socket: no reply");
	}
}

/* Fail unless h/body answers request req of type with want[0..wlen). */
static void check_reply(const char *who, uint32_t type, uint32_t req,
			const struct xsd_sockmsg *h, const char *body,
			const char *want, size_t wlen)
{
	int shown = (int)(h->len < 80 ? h->len : 80);

	if (h->req_id != req || h->tx_id != 0)
		die("%s: reply req_id %u tx_id %u to request %u", who,
		    h->req_id, h->tx_id, req);
	if (h->type == XS_ERROR)
		die("%s: request type %u failed: %.*s", who, type, shown, body);
	if (h->type != type || h->len != wlen || memcmp(body, want, wlen))
		die("%s: request type %u answered type %u \"%.*s\", expected "
		    "\"%.*s\"", who, type, h->type, shown, body, (int)wlen, want);
}

/* ---- guests ---- */

static void guest_make(struct guest *g, unsigned int domid)
{
	char page[PATH_MAX], grant[PATH_MAX];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	g->domid = domid;
	g->gfn = 0x10000ul + domid;
	g->port = 10 + domid % 4000;
	snprintf(page, sizeof(page), "%s/gfn-%u-%lu", dir, domid, g->gfn);
	snprintf(grant, sizeof(grant), "%s/grant-%u-1", dir, domid);
	fd = open(page, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, PAGE) != 0)
		die("%s: %s", page, strerror(errno));
	g->intf = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (g->intf == MAP_FAILED)
		die("mmap %s: %s", page, strerror(errno));
	close(fd);
	if (link(page, grant) != 0)
		die("link %s: %s", grant, strerror(errno));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/guest-%u", dir, domid);
	g->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (g->sock < 0 ||
	    bind(g->sock, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("guest socket %s: %s", sa.sun_path, strerror(errno));
	set_timeouts(g->sock);
	if (pwrite(domains_fd, "\1", 1, domid) != 1)	/* running */
		die("domains: %s", strerror(errno));
}

/* Signal the daemon.  Its queue is short (net.unix.max_dgram_qlen): retry
 * while it is full, a dropped signal would be a lost event. */
static void guest_signal(const struct guest *g)
{
	uint32_t msg[2] = { g->domid, g->port };
	uint64_t t0 = bench_now_ns();

	while (sendto(g->sock, msg, sizeof(msg), MSG_DONTWAIT,
		      (struct sockaddr *)&evtchn_sa, sizeof(evtchn_sa)) < 0) {
		if (errno != EAGAIN && errno != EINTR)
			die("dom%u: signal: %s", g->domid, strerror(errno));
		still_waiting(t0, "signal: the daemon's queue did not drain");
		nanosleep(&(struct timespec){ .tv_nsec = 50000 }, NULL);
	}
}

/* Wait for one signal from the daemon (5 s from t0 at most). */
static void guest_wait(const struct guest *g, uint64_t t0)
{
	uint32_t msg[2];

	for (;;) {
		ssize_t n = recv(g->sock, msg, sizeof(msg), 0);

		if (n == sizeof(msg) && msg[0] == g->domid && msg[1] == g->port)
			return;
		if (n >= 0)
			die("dom%u: a signal not ours (%zd bytes: %u, %u)",
			    g->domid, n, msg[0], msg[1]);
		if (errno != EAGAIN && errno != EINTR)
			die("dom%u: recv: %s", g->domid, strerror(errno));
		still_waiting(t0, "ring: no signal (lost?) from the daemon");
	}
}

/* Copy len bytes into the request ring and publish them. */
static void guest_send(const struct guest *g, const char *p, size_t len)
{
	struct xenstore_domain_interface *in = g->intf;

	while (len) {
		uint32_t cons = __atomic_load_n(&in->req_cons, __ATOMIC_ACQUIRE);
		uint32_t prod = __atomic_load_n(&in->req_prod, __ATOMIC_RELAXED);
		uint32_t off = MASK_XENSTORE_IDX(prod);
		size_t n = RING - (prod - cons), first;

		if (prod - cons > RING)
			die("dom%u: request indices %u, %u", g->domid, cons,
			    prod);
		if (n == 0) {
			guest_wait(g, bench_now_ns());	/* for room */
			continue;
		}
		n = n < len ? n : len;
		first = RING - off < n ? RING - off : n;
		memcpy(in->req + off, p, first);
		memcpy(in->req, p + first, n - first);
		/* The bytes are in place before the daemon sees the index. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		__atomic_store_n(&in->req_prod, prod + (uint32_t)n,
				 __ATOMIC_RELAXED);
		guest_signal(g);
		p += n;
		len -= n;
	}
}

/* Move what the response ring holds into ring_in; 0 when it is empty. */
static size_t guest_pull(const struct guest *g)
{
	struct xenstore_domain_interface *in = g->intf;
	uint32_t cons = __atomic_load_n(&in->rsp_cons, __ATOMIC_RELAXED);
	uint32_t prod = __atomic_load_n(&in->rsp_prod, __ATOMIC_ACQUIRE);
	uint32_t off = MASK_XENSTORE_IDX(cons);
	size_t n = prod - cons, first;

	if (n > RING)
		die("dom%u: response indices %u, %u", g->domid, cons, prod);
	n = n < sizeof(ring_in.buf) - ring_in.len ? n
						  : sizeof(ring_in.buf) - ring_in.len;
	if (!n)
		return 0;
	first = RING - off < n ? RING - off : n;
	memcpy(ring_in.buf + ring_in.len, in->rsp + off, first);
	memcpy(ring_in.buf + ring_in.len + first, in->rsp, n - first);
	ring_in.len += n;
	/* Done with the bytes before the daemon may write over them. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&in->rsp_cons, cons + (uint32_t)n, __ATOMIC_RELAXED);
	guest_signal(g);
	return n;
}

/* The next packet from g's response ring. */
static void guest_recv(const struct guest *g, struct xsd_sockmsg *h,
		       char *body)
{
	uint64_t t0 = bench_now_ns();

	while (!take(&ring_in, h, body, "ring")) {
		/* A signal may be left from the last reply: then we look
		 * once more for nothing, and wait again. */
		if (!guest_pull(g))
			guest_wait(g, t0);
	}
}

/*
 * One request, from guest g over its ring, or from dom0 over the socket
 * when g is NULL; the reply must be want[0..wlen).
 */
static void call(const struct guest *g, uint32_t type, const char *body,
		 size_t len, const char *want, size_t wlen)
{
	static char pkt[PKT_MAX], reply[XENSTORE_PAYLOAD_MAX];
	char who[32];
	struct xsd_sockmsg h;
	uint32_t req = next_req++;

	len = pack(pkt, type, req, body, len);
	if (g) {
		guest_send(g, pkt, len);
		guest_recv(g, &h, reply);
		snprintf(who, sizeof(who), "ring of dom%u", g->domid);
	} else {
		dom0_send(pkt, len);
		dom0_recv(&h, reply);
		snprintf(who, sizeof(who), "socket");
	}
	check_reply(who, type, req, &h, reply, want, wlen);
}

#define OK_REPLY "OK", 3	/* with its NUL */

/* ---- setting up ---- */

/* Make the guests up to domid `to` and introduce them: introduce/s. */
static double add_guests(unsigned int to)
{
	static char out[INTRO_BATCH * (HDR + 48)];
	unsigned int from = nguests + 1, d, i;
	uint64_t t0;
	double secs;

	for (d = from; d <= to; d++)
		guest_make(&guests[d], d);
	t0 = bench_now_ns();
	for (d = from; d <= to;) {
		unsigned int first = d;
		size_t len = 0;

		for (; d <= to && d - first < INTRO_BATCH; d++) {
			char body[48];
			int n = snprintf(body, sizeof(body), "%u%c%lu%c%u%c", d,
					 0, guests[d].gfn, 0, guests[d].port, 0);

			len += pack(out + len, XS_INTRODUCE, d, body, (size_t)n);
		}
		dom0_send(out, len);
		for (i = first; i < d; i++) {
			static char body[XENSTORE_PAYLOAD_MAX];
			struct xsd_sockmsg h;

			dom0_recv(&h, body);
			check_reply("INTRODUCE", XS_INTRODUCE, i, &h, body,
				    OK_REPLY);
		}
	}
	secs = (double)(bench_now_ns() - t0) / 1e9;
	/* Connected: the daemon offers its features in every new page. */
	for (d = from; d <= to; d++)
		if (!__atomic_load_n(&guests[d].intf->server_features,
				     __ATOMIC_ACQUIRE))
			die("dom%u: no server features after INTRODUCE", d);
	nguests = to;
	return (double)(to - from + 1) / secs;
}

/* The newest guest is served: a GET_DOMAIN_PATH of its own. */
static void probe_guest(const struct guest *g)
{
	char body[16], path[40];
	int n = snprintf(body, sizeof(body), "%u", g->domid);
	int p = snprintf(path, sizeof(path), "/local/domain/%u", g->domid);
	uint32_t msg[2];

	call(g, XS_GET_DOMAIN_PATH, body, (size_t)n + 1, path, (size_t)p + 1);
	/* A second signal for the same reply would stay queued, charged to
	 * the daemon's sending socket: take it. */
	while (recv(g->sock, msg, sizeof(msg), MSG_DONTWAIT) >= 0)
		;
}

/* Domain 1's home, owned by it as a toolstack makes it, and both nodes. */
static void setup_nodes(void)
{
	static const char home[] = "/local/domain/1";
	static const char perms[] = "/local/domain/1\0n1";
	static const char gw[] = GUEST_NODE "\0" GUEST_VALUE;
	static const char dw[] = DOM0_NODE "\0" DOM0_VALUE;

	call(NULL, XS_MKDIR, home, sizeof(home), OK_REPLY);
	call(NULL, XS_SET_PERMS, perms, sizeof(perms), OK_REPLY);
	call(&guests[ACTIVE], XS_WRITE, gw, sizeof(gw) - 1, OK_REPLY);
	call(NULL, XS_WRITE, dw, sizeof(dw) - 1, OK_REPLY);
}

/* ---- measuring ---- */

/* One request of the workload on a path, checked. */
static void one_op(bool ring, unsigned long seq)
{
	const struct guest *g = ring ? &guests[ACTIVE] : NULL;
	const char *node = ring ? GUEST_NODE : DOM0_NODE;
	const char *value = ring ? GUEST_VALUE : DOM0_VALUE;
	char body[96];
	int n = snprintf(body, sizeof(body), "%s%cv%lu", node, 0, seq);

	if (write_wl)
		call(g, XS_WRITE, body, (size_t)n, OK_REPLY);
	else	/* a READ's value comes without a NUL */
		call(g, XS_READ, body, strlen(node) + 1, value, strlen(value));
}

/* ms milliseconds of requests on one path, one at a time. */
static struct stats run_round(bool ring, unsigned long ms)
{
	static unsigned long seq;
	uint64_t start = bench_now_ns(), t = start;
	uint64_t end = start + (uint64_t)ms * 1000000u;
	struct stats s;
	size_t n = 0;

	while (t < end) {
		uint64_t t0 = t;

		one_op(ring, seq++);
		t = bench_now_ns();
		if (n == lat_cap) {
			lat_cap = lat_cap ? 2 * lat_cap : 65536;
			if (!(lat = realloc(lat, lat_cap * sizeof(*lat))))
				die("out of memory");
		}
		lat[n++] = (double)(t - t0) / 1e3;
	}
	s.ops = (double)n / ((double)(t - start) / 1e9);
	s.p50 = bench_percentile(lat, n, 0.50);
	s.p99 = bench_percentile(lat, n, 0.99);
	return s;
}

/* Rounds of both paths taking turns; the medians into out[ring]. */
static void measure(unsigned long rounds, unsigned long ms, struct stats *out)
{
	double v[2][3][MAX_ROUNDS];

	for (unsigned long w = 0; w < WARMUP; w++) {
		one_op(true, w);
		one_op(false, w);
	}
	for (unsigned long r = 0; r < rounds; r++) {
		for (unsigned long k = 0; k < 2; k++) {
			int ring = (int)((r + k) % 2);
			struct stats s = run_round(ring, ms);

			v[ring][0][r] = s.ops;
			v[ring][1][r] = s.p50;
			v[ring][2][r] = s.p99;
		}
	}
	for (int ring = 0; ring < 2; ring++) {
		out[ring].ops = bench_median(v[ring][0], rounds);
		out[ring].p50 = bench_median(v[ring][1], rounds);
		out[ring].p99 = bench_median(v[ring][2], rounds);
	}
}

/* ---- main ---- */

/* "10,100,..." into sizes[]: their count; 0 unless increasing, in range. */
static size_t parse_list(char *arg, unsigned int *sizes, size_t max)
{
	size_t n = 0;

	for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
		char *end;
		unsigned long v = strtoul(tok, &end, 10);

		if (*end || v < 1 || v >= DOMID_LIMIT || n == max ||
		    (n && v <= sizes[n - 1]))
			return 0;
		sizes[n++] = (unsigned int)v;
	}
	return n;
}

/* `domains`: 65536 bytes, dom0 running.  The daemon maps it at start. */
static void make_domains_file(void)
{
	static const char zeros[NR_DOMIDS];
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/domains", dir);
	domains_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (domains_fd < 0 || write(domains_fd, zeros, NR_DOMIDS) != NR_DOMIDS ||
	    pwrite(domains_fd, "\1", 1, 0) != 1)
		die("%s: %s", path, strerror(errno));
}

/* The library to preload: $FAKEXEN_LIB, or where make puts it. */
static void find_lib(const char *bin, char *out)
{
	const char *env = getenv("FAKEXEN_LIB"), *slash = strrchr(bin, '/');
	char guess[PATH_MAX + 32];

	if (env && *env)
		snprintf(guess, sizeof(guess), "%s", env);
	else
		snprintf(guess, sizeof(guess), "%.*s/tests/fakexen/libfakexen.so",
			 slash ? (int)(slash - bin) : 1, slash ? bin : ".");
	if (!realpath(guess, out))
		die("%s: %s (make build/tests/fakexen/libfakexen.so, or set "
		    "FAKEXEN_LIB)", guess, strerror(errno));
}

int main(int argc, char **argv)
{
	static char list_default[] = "10,100,1000,10000";
	unsigned long rounds = 5, ms = 300;
	unsigned int sizes[64];
	char *list = list_default, lib[PATH_MAX], sock[PATH_MAX], limit[32];
	const char *base, *placement = "unpinned", *bin;
	int opt, client_cpu = -1;
	uint64_t t_run = bench_now_ns();
	size_t nsizes;

	while ((opt = getopt(argc, argv, "n:r:t:w:qP:")) != -1) {
		if (opt == 'n')
			list = optarg;
		else if (opt == 'r')
			rounds = strtoul(optarg, NULL, 10);
		else if (opt == 't')
			ms = strtoul(optarg, NULL, 10);
		else if (opt == 'w' && (!strcmp(optarg, "read") ||
					!strcmp(optarg, "write")))
			write_wl = !strcmp(optarg, "write");
		else if (opt == 'q')
			rounds = 3, ms = 150;
		else if (opt == 'P' && sscanf(optarg, "%d:%d", &client_cpu,
					      &daemon_cpu) == 2 &&
			 client_cpu >= 0 && daemon_cpu >= 0)
			placement = client_cpu == daemon_cpu ? "same-cpu"
							     : "cross-cpu";
		else
			goto usage;
	}
	nsizes = parse_list(list, sizes, sizeof(sizes) / sizeof(sizes[0]));
	if (argc - optind != 1 || !nsizes || rounds < 1 ||
	    rounds > MAX_ROUNDS || ms < 1)
		goto usage;
	bin = argv[optind];
	if (access(bin, X_OK) != 0)
		die("%s: %s", bin, strerror(errno));
	find_lib(bin, lib);
	raise_fd_limit(sizes[nsizes - 1]);
	if (!(guests = calloc(sizes[nsizes - 1] + 1, sizeof(*guests))))
		die("out of memory");

	base = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/xs-guests.XXXXXX", base);
	main_pid = getpid();
	if (!mkdtemp(dir)) {
		dir[0] = '\0';
		die("mkdtemp in %s: %s", base, strerror(errno));
	}
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (client_cpu >= 0 && bench_pin_cpu(client_cpu) != 0)
		die("cannot pin to CPU %d: %s", client_cpu, strerror(errno));
	snprintf(log_path, sizeof(log_path), "%s/log", dir);
	snprintf(sock, sizeof(sock), "%s/socket", dir);
	evtchn_sa.sun_family = AF_UNIX;
	snprintf(evtchn_sa.sun_path, sizeof(evtchn_sa.sun_path), "%s/evtchn",
		 dir);
	make_domains_file();
	daemon_start(bin, lib, sock);
	dom0_connect(sock);
	proc_line("limits", "Max open files", limit, sizeof(limit));

	printf("Guests over the Xen test double: domain 1 busy on its ring, "
	       "a dom0 socket client,\nthe other guests idle; %s, one in "
	       "flight, %lu rounds of %lu ms; %s; files in %s;\nthe daemon's "
	       "open files limit %s.  shm kB: the daemon's RssShmem (ring "
	       "pages, `domains`)\n", write_wl ? "WRITE" : "READ", rounds, ms,
	       placement, base, limit);
	printf("%8s %12s | %10s %7s %7s | %10s %7s %7s | %9s %9s\n", "domains",
	       "introduce/s", "ring op/s", "p50 us", "p99 us", "sock op/s",
	       "p50 us", "p99 us", "RSS kB", "shm kB");
	fflush(stdout);
	for (size_t i = 0; i < nsizes; i++) {
		unsigned int n = sizes[i];
		double intro = add_guests(n);
		struct stats st[2];
		long rss, shm;

		if (i == 0)
			setup_nodes();
		probe_guest(&guests[n]);
		measure(rounds, ms, st);
		rss = proc_kb("VmRSS:");
		shm = proc_kb("RssShmem:");
		if (guests[ACTIVE].intf->error)
			die("dom1: the ring's error indicator is %u",
			    guests[ACTIVE].intf->error);
		printf("%8u %12.0f | %10.0f %7.1f %7.1f | %10.0f %7.1f %7.1f "
		       "| %9ld %9ld\n", n, intro, st[1].ops, st[1].p50,
		       st[1].p99, st[0].ops, st[0].p50, st[0].p99, rss, shm);
		fflush(stdout);
		for (int ring = 1; ring >= 0; ring--)
			bench_result("guests path=%s workload=%s domains=%u "
				     "ops_per_s=%.0f p50_us=%.1f p99_us=%.1f "
				     "rss_kb=%ld introduce_per_s=%.0f rounds=%lu",
				     ring ? "ring" : "socket",
				     write_wl ? "write" : "read", n, st[ring].ops,
				     st[ring].p50, st[ring].p99, rss, intro,
				     rounds);
	}
	close(dom0_fd);
	daemon_stop();
	printf("(%.1f s in all)\n", (double)(bench_now_ns() - t_run) / 1e9);
	return 0;
usage:
	fprintf(stderr, "usage: guests [-n DOMAINS_LIST] [-r ROUNDS] [-t MS] "
			"[-w read|write] [-q] [-P CLIENT_CPU:DAEMON_CPU] "
			"DAEMON\n");
	return 2;
}
