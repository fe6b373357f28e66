/* Unix socket listener and the transport of socket clients. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "log/log.h"
#include "daemon/socket.h"

struct listener {
	struct server *srv;
	struct evconnlistener *evl;
	struct event *pause_ev;		/* accepting again after a pause */
	bool paused_told;		/* the pause was logged */
	char *path;
};

/* How long accepting pauses when the daemon is out of descriptors. */
static const struct timeval accept_pause = { 0, 100000 };

/*
 * A socket client's transport: its fd, a persistent read event, a write
 * event armed only while the kernel refuses output it may send, and the
 * two byte queues.  Leaner than a bufferevent, which costs an FIONREAD
 * ioctl per read and two epoll_ctl calls per reply (arming and disarming
 * its write event): here a request and its reply are one read and one
 * write, the write when the turn's commit released the reply.
 */
struct sock {
	evutil_socket_t fd;
	struct server *srv;
	struct conn *c;
	struct event *rd;		/* EV_READ | EV_PERSIST */
	struct event *wr;		/* EV_WRITE | EV_PERSIST, while blocked */
	struct evbuffer *in, *out;
	struct evbuffer_cb_entry *in_cb;	/* sock_in_changed on in */
	bool reading;			/* the connection wants input */
	bool in_full;			/* paused: SOCK_IN_MAX bytes unhandled */
	bool blocked;			/* wr is armed */
};

/* Unhandled input held per client: a few packets' worth. */
#define SOCK_IN_MAX (16 * XENSTORE_PAYLOAD_MAX)
#define SOCK_READ_CHUNK 16384

static struct sock *conn_sock(const struct conn *c)
{
	return c->tp_data;
}

static void sock_update_rd(struct sock *s)
{
	bool on = s->reading && !s->in_full;

	if (on == (event_pending(s->rd, EV_READ, NULL) != 0))
		return;
	if (on)
		event_add(s->rd, NULL);
	else
		event_del(s->rd);
	/* Unread, its requests are not waiting to be handled. */
	server_waiting_set(s->srv, s->fd, s->c, on);
}

/* Write what was released; arm wr while the kernel refuses some of it
 * (what is still held waits for the release, which kicks). */
static void sock_write(struct sock *s)
{
	struct conn *c = s->c;
	size_t ready = conn_out_ready(c);

	if (ready) {
		int n = evbuffer_write_atmost(s->out, s->fd, (ev_ssize_t)ready);

		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			conn_close(c, strerror(errno));
			return;
		}
		ready = conn_out_ready(c);
	}
	if (ready && !s->blocked) {
		s->blocked = true;
		event_add(s->wr, NULL);
	} else if (!ready && s->blocked) {
		s->blocked = false;
		event_del(s->wr);
	}
	conn_output_drained(c);
}

static void sock_write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sock_write(arg);
}

static void sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sock *s = arg;
	struct conn *c = s->c;
	struct evbuffer_iovec v;
	ssize_t n;

	(void)what;
	if (evbuffer_reserve_space(s->in, SOCK_READ_CHUNK, &v, 1) < 1) {
		conn_close(c, "out of memory for its requests");
		return;
	}
	n = read(fd, v.iov_base, v.iov_len < SOCK_READ_CHUNK
				 ? v.iov_len : SOCK_READ_CHUNK);
	if (n <= 0) {
		if (n == 0)
			conn_close(c, "closed by the client");
		else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			 errno != EINTR)
			conn_close(c, strerror(errno));
		return;
	}
	v.iov_len = (size_t)n;
	evbuffer_commit_space(s->in, &v, 1);
	/* Its replies wait for the commit that makes them true
	 * (server/turn.c). */
	conn_handle_input(c);
}

/* Input was taken: read again once it is below SOCK_IN_MAX. */
static void sock_in_changed(struct evbuffer *buf,
			    const struct evbuffer_cb_info *info, void *arg)
{
	struct sock *s = arg;
	bool full = evbuffer_get_length(buf) >= SOCK_IN_MAX;

	(void)info;
	if (full != s->in_full) {
		s->in_full = full;
		sock_update_rd(s);
	}
}

static void sock_read_now(struct conn *c)
{
	struct sock *s = conn_sock(c);

	sock_read_cb(s->fd, EV_READ, s);
}

static void sock_kick(struct conn *c)
{
	struct sock *s = conn_sock(c);

	if (!s->blocked)
		sock_write(s);
	/* Bytes appended without conn_send (a live update's, which the
	 * program before had committed) wait for the next release too. */
	if (!c->closing && conn_out_ready(c) < evbuffer_get_length(c->out))
		conn_hold(c);
}

static void sock_set_reading(struct conn *c, bool on)
{
	struct sock *s = conn_sock(c);

	s->reading = on;
	sock_update_rd(s);
}

static void sock_release(struct sock *s)
{
	if (s->rd)
		event_free(s->rd);
	if (s->wr)
		event_free(s->wr);
	if (s->in_cb)
		evbuffer_remove_cb_entry(s->in, s->in_cb);
	if (s->in)
		evbuffer_free(s->in);
	if (s->out)
		evbuffer_free(s->out);
	if (s->fd >= 0) {
		server_waiting_set(s->srv, s->fd, NULL, false);
		close(s->fd);
	}
	free(s);
}

static void sock_close(struct conn *c)
{
	/* Frees the fd and both queues; nothing touches them once closing. */
	sock_release(conn_sock(c));
	c->tp_data = NULL;
	c->in = c->out = NULL;
}

static void sock_free(struct conn *c)
{
	(void)c;	/* sock_close released everything */
}

static const struct conn_transport socket_transport = {
	.kind = "socket",
	.kick = sock_kick,
	.set_reading = sock_set_reading,
	.close = sock_close,
	.free = sock_free,
	.read_now = sock_read_now,
};

/* Serve a connected socket as a client of srv (dom0, privileged). */
static struct conn *socket_conn_new(struct server *srv, int fd)
{
	struct sock *s = calloc(1, sizeof(*s));
	struct conn *c;

	if (!s) {
		close(fd);
		return NULL;
	}
	s->fd = fd;
	s->srv = srv;
	s->in = evbuffer_new();
	s->out = evbuffer_new();
	s->rd = event_new(srv->base, fd, EV_READ | EV_PERSIST, sock_read_cb, s);
	s->wr = event_new(srv->base, fd, EV_WRITE | EV_PERSIST, sock_write_cb,
			  s);
	if (s->in)
		s->in_cb = evbuffer_add_cb(s->in, sock_in_changed, s);
	if (!s->in || !s->out || !s->rd || !s->wr || !s->in_cb) {
		sock_release(s);
		return NULL;
	}
	c = server_new_conn(srv, &socket_transport, s, s->in, s->out,
			    srv->master_domid, true);
	if (!c) {
		sock_release(s);
		return NULL;
	}
	s->c = c;
	s->reading = true;
	sock_update_rd(s);
	return c;
}

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
		      struct sockaddr *addr, int socklen, void *arg)
{
	struct listener *l = arg;
	struct conn *c;

	(void)evl;
	(void)addr;
	(void)socklen;
	l->paused_told = false;
	c = socket_conn_new(l->srv, fd);
	if (!c) {
		log_error("cannot accept a client: out of memory");
		return;
	}
	log_debug("connection %lu: new socket client", c->id);
}

/*
 * accept() failed.  Out of descriptors (or memory) the client stays queued
 * in the kernel and the socket stays readable, so accepting again at once
 * would spin: pause instead, and log once per episode.
 */
static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK ||
	    err == ECONNABORTED)
		return;
	if (!l->paused_told)
		log_warn("cannot accept a client: %s; trying again every "
			 "100 ms", strerror(err));
	l->paused_told = true;
	evconnlistener_disable(evl);
	evtimer_add(l->pause_ev, &accept_pause);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(l->evl);
}

/* Accept clients on fd (listening already, or made to with backlog). */
static bool listener_start(struct listener *l, int fd, int backlog)
{
	l->pause_ev = evtimer_new(l->srv->base, accept_resume_cb, l);
	if (!l->pause_ev)
		return false;
	l->evl = evconnlistener_new(l->srv->base, accept_cb, l,
				    LEV_OPT_CLOSE_ON_FREE, backlog, fd);
	if (!l->evl) {
		event_free(l->pause_ev);
		l->pause_ev = NULL;
		return false;
	}
	evconnlistener_set_error_cb(l->evl, accept_error_cb);
	return true;
}

int socket_conn_fd(const struct conn *c)
{
	if (c->tp != &socket_transport || !c->tp_data)
		return -1;
	return conn_sock(c)->fd;
}

struct conn *socket_conn_resume(struct server *srv, int fd)
{
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	return socket_conn_new(srv, fd);
}

int listener_fd(const struct listener *l)
{
	return evconnlistener_get_fd(l->evl);
}

const char *listener_path(const struct listener *l)
{
	return l->path;
}

/* Is a daemon answering on path? */
static bool socket_in_use(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used;

	if (fd < 0)
		return false;
	used = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return used;
}

struct listener *listener_open(struct server *srv, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct listener *l;
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("socket path too long: %s", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	if (socket_in_use(&sun)) {
		log_error("%s: another daemon is already serving this socket",
			  path);
		return NULL;
	}
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		log_error("%s exists and is not a socket: not replacing it",
			  path);
		return NULL;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		log_error("cannot remove the old socket %s: %s", path,
			  strerror(errno));
		return NULL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		return NULL;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		log_error("cannot bind the socket %s: %s", path,
			  strerror(errno));
		close(fd);
		return NULL;
	}
	/* Socket clients are dom0: only root may connect. */
	if (chmod(path, 0600) != 0) {
		log_error("chmod %s: %s", path, strerror(errno));
		goto fail_unlink;
	}
	l = calloc(1, sizeof(*l));
	if (!l || !(l->path = strdup(path)))
		goto fail_alloc;
	l->srv = srv;
	if (!listener_start(l, fd, 128))
		goto fail_alloc;
	return l;

fail_alloc:
	log_error("cannot listen on %s: out of memory", path);
	if (l)
		free(l->path);
	free(l);
fail_unlink:
	unlink(path);
	close(fd);
	return NULL;
}

struct listener *listener_adopt(struct server *srv, int fd)
{
	return listener_resume(srv, fd, NULL);
}

struct listener *listener_resume(struct server *srv, int fd, const char *path)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (!l || (path && !(l->path = strdup(path)))) {
		log_error("cannot listen: out of memory");
		free(l);
		return NULL;
	}
	l->srv = srv;
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	if (!listener_start(l, fd, -1)) {
		log_error("cannot listen on the inherited socket: out of memory");
		free(l->path);
		free(l);
		return NULL;
	}
	return l;
}

void listener_close(struct listener *l)
{
	if (!l)
		return;
	evconnlistener_free(l->evl);
	event_free(l->pause_ev);
	if (l->path)
		unlink(l->path);
	free(l->path);
	free(l);
}
