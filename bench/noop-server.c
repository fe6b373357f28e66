/*
 * noop-server: the no-op server of make bench: the fastest any daemon could
 * answer over this transport.
 *
 * It listens on a Unix stream socket and answers every xenstore request
 * packet at once, doing no work: the reply has the request's type, req_id
 * and tx_id and a fixed payload ("noop" for READ, "1" for
 * TRANSACTION_START, nothing for DIRECTORY, "n0" for GET_PERMS, "OK" for
 * the rest).  Set beside a real daemon, its rates are the ceiling the
 * kernel, the socket and the client impose, so what remains is the
 * daemon's own cost.
 *
 * Like a real xenstored it is one thread with an epoll loop over
 * non-blocking sockets.  Each readable connection gets one read of what is
 * available; every complete packet in it is answered in one write, and a
 * partial packet waits for the next read.  Output the socket would not
 * take is kept per connection, and that connection is not read again
 * until it has gone (so a client that never reads cannot grow us).  A
 * payload over 4096 bytes closes the connection, as a daemon would.
 * Idle connections cost a small struct each; the open files limit is
 * raised to the hard limit for the benchmarks' 10,000 idle clients.
 *
 * Usage: noop-server SOCKET    (SIGTERM or SIGINT: remove SOCKET, exit 0)
 * Prints nothing but errors.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <xen/io/xs_wire.h>

#define HDR sizeof(struct xsd_sockmsg)
#define PAYLOAD_MAX 4096
#define READ_CHUNK 65536
#define REPLY_MAX (HDR + 8)	/* the longest fixed reply */

struct conn {
	int fd;
	char *pend;		/* a partial packet, HDR + PAYLOAD_MAX bytes */
	size_t npend;
	char *out;		/* replies the socket has not taken yet */
	size_t nout;
};

static volatile sig_atomic_t stopping;
static int ep;
/* The partial packet, then the bytes just read; the replies to them all. */
static char rbuf[HDR + PAYLOAD_MAX + READ_CHUNK];
static char wbuf[(sizeof(rbuf) / HDR + 1) * REPLY_MAX];

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static void conn_close(struct conn *c)
{
	close(c->fd);		/* also leaves the epoll set */
	free(c->pend);
	free(c->out);
	free(c);
}

/* Append the reply to the packet h to out; returns its length. */
static size_t reply(char *out, const struct xsd_sockmsg *h)
{
	struct xsd_sockmsg r = *h;
	const char *body = "OK";
	size_t len = 3;		/* strings are sent with their NUL ... */

	switch (h->type) {
	case XS_READ:
		body = "noop", len = 4;	/* ... except a READ's value */
		break;
	case XS_TRANSACTION_START:
		body = "1", len = 2;
		break;
	case XS_DIRECTORY:
		body = "", len = 0;
		break;
	case XS_GET_PERMS:
		body = "n0", len = 3;
		break;
	}
	r.len = (uint32_t)len;
	memcpy(out, &r, HDR);
	memcpy(out + HDR, body, len);
	return HDR + len;
}

/* Send out[0..n), keeping what the socket refuses; false: drop c. */
static bool send_out(struct conn *c, const char *out, size_t n)
{
	ssize_t w = send(c->fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (w < 0 && errno != EAGAIN && errno != EINTR)
		return false;
	if (w < 0)
		w = 0;
	if ((size_t)w == n)
		return true;
	/* Stop reading c until the rest has gone. */
	c->out = malloc(n - (size_t)w);
	if (!c->out)
		return false;
	memcpy(c->out, out + w, n - (size_t)w);
	c->nout = n - (size_t)w;
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0;
}

/* The socket has room again: finish the kept replies, then read again. */
static bool on_writable(struct conn *c)
{
	ssize_t w = send(c->fd, c->out, c->nout, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (w < 0)
		return errno == EAGAIN || errno == EINTR;
	memmove(c->out, c->out + w, c->nout - (size_t)w);
	c->nout -= (size_t)w;
	if (c->nout)
		return true;
	free(c->out);
	c->out = NULL;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0;
}

/* One read, every complete packet answered; false: drop c. */
static bool on_readable(struct conn *c)
{
	size_t have = c->npend, pos = 0, nout = 0;
	ssize_t n;

	if (c->npend)
		memcpy(rbuf, c->pend, c->npend);
	n = read(c->fd, rbuf + have, READ_CHUNK);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;	/* the client is gone */
	have += (size_t)n;
	while (have - pos >= HDR) {
		struct xsd_sockmsg h;

		memcpy(&h, rbuf + pos, HDR);
		if (h.len > PAYLOAD_MAX)
			return false;
		if (have - pos < HDR + h.len)
			break;
		nout += reply(wbuf + nout, &h);
		pos += HDR + h.len;
	}
	c->npend = have - pos;
	if (c->npend) {
		if (!c->pend && !(c->pend = malloc(HDR + PAYLOAD_MAX)))
			return false;
		memcpy(c->pend, rbuf + pos, c->npend);
	}
	return nout == 0 || send_out(c, wbuf, nout);
}

static void accept_all(int lfd)
{
	static bool said;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED && !said) {
				said = true;	/* once: EMFILE would repeat */
				perror("noop-server: accept");
			}
			return;
		}
		c = calloc(1, sizeof(*c));
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			perror("noop-server: new connection");
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
	}
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "noop-server: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("noop-server: socket");
		return -1;
	}
	unlink(path);		/* a stale socket from an earlier run */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, SOMAXCONN) != 0) {
		fprintf(stderr, "noop-server: %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_stop };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct epoll_event evs[256];
	struct rlimit rl;
	sigset_t block, none;
	int lfd;

	if (argc != 2) {
		fprintf(stderr, "usage: noop-server SOCKET\n");
		return 2;
	}
	/* Every client is an fd: allow as many as the hard limit lets us. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			perror("noop-server: raising the open files limit");
	}
	/* The stop signals are only taken inside epoll_pwait, so none is
	 * missed between the flag's check and the wait. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &none);
	sigdelset(&none, SIGTERM);
	sigdelset(&none, SIGINT);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lfd = listen_on(argv[1]);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
		if (lfd >= 0)
			unlink(argv[1]);
		if (ep < 0)
			perror("noop-server: epoll");
		return 1;
	}
	while (!stopping) {
		int n = epoll_pwait(ep, evs, 256, -1, &none);

		if (n < 0 && errno != EINTR) {
			perror("noop-server: epoll_wait");
			unlink(argv[1]);
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			bool ok;

			if (!c) {
				accept_all(lfd);
				continue;
			}
			ok = c->out ? on_writable(c) : on_readable(c);
			if (!ok || (evs[i].events & (EPOLLERR | EPOLLHUP) &&
				    !(evs[i].events & EPOLLIN)))
				conn_close(c);
		}
	}
	unlink(argv[1]);
	return 0;
}
