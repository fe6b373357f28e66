/* Unix socket listener and the bufferevent transport of socket clients. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "daemon/log.h"
#include "daemon/socket.h"

struct listener {
	struct server *srv;
	struct evconnlistener *evl;
	char *path;
};

static struct bufferevent *conn_bev(struct conn *c)
{
	return c->tp_data;
}

static void sock_kick(struct conn *c)
{
	(void)c;	/* the bufferevent writes whenever its output has data */
}

static void sock_set_reading(struct conn *c, bool on)
{
	if (on)
		bufferevent_enable(conn_bev(c), EV_READ);
	else
		bufferevent_disable(conn_bev(c), EV_READ);
}

static void sock_close(struct conn *c)
{
	/* Frees the fd and both queues; nothing touches them once closing. */
	bufferevent_free(conn_bev(c));
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
};

static void sock_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_handle_input(arg);
}

static void sock_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_output_drained(arg);
}

static void sock_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & BEV_EVENT_EOF)
		conn_close(arg, "closed by the client");
	else if (what & BEV_EVENT_ERROR)
		conn_close(arg, strerror(EVUTIL_SOCKET_ERROR()));
}

/* Serve a connected socket as a client of srv (dom0, privileged). */
static struct conn *socket_conn_new(struct server *srv, int fd)
{
	struct bufferevent *bev;
	struct conn *c;

	bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		close(fd);
		return NULL;
	}
	c = server_new_conn(srv, &socket_transport, bev,
			    bufferevent_get_input(bev),
			    bufferevent_get_output(bev), srv->master_domid,
			    true);
	if (!c) {
		bufferevent_free(bev);
		return NULL;
	}
	bufferevent_setcb(bev, sock_read_cb, sock_write_cb, sock_event_cb, c);
	/* Bounded input: stop reading past a few packets' worth. */
	bufferevent_setwatermark(bev, EV_READ, 0, 16 * XENSTORE_PAYLOAD_MAX);
	bufferevent_setwatermark(bev, EV_WRITE, CONN_OUT_LOW, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
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
	c = socket_conn_new(l->srv, fd);
	if (!c) {
		log_error("cannot accept a client: out of memory");
		return;
	}
	log_debug("connection %lu: new socket client", c->id);
}

int socket_conn_fd(const struct conn *c)
{
	if (c->tp != &socket_transport || !c->tp_data)
		return -1;
	return bufferevent_getfd(conn_bev((struct conn *)c));
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
	l->evl = evconnlistener_new(srv->base, accept_cb, l,
				    LEV_OPT_CLOSE_ON_FREE, 128, fd);
	if (!l->evl)
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
	l->evl = evconnlistener_new(srv->base, accept_cb, l,
				    LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (!l->evl) {
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
	if (l->path)
		unlink(l->path);
	free(l->path);
	free(l);
}
