/*
 * Who else has a request waiting.  A second epoll set holds the descriptors
 * that bring requests: every socket client's while it is read, and the
 * event channel's, which any guest's notification makes readable.  The
 * loop's own set holds them too, but libevent does not expose it.
 *
 * A connection in the middle of a pipelined batch asks this set once per
 * slice of its time (conn.h, CONN_SLICE_NS).  A socket client found ready
 * is served there and then (its transport's read_now), inside the busy
 * client's turn, whose batch then goes on: the neighbour waits behind a
 * slice, and the busy client pays one epoll_wait a slice (a system call
 * that finds its answer ready: conn.h), not a turn's end; none when the
 * set holds no descriptor but its own.  Ending the busy client's turn
 * instead (a reply flush, a timer, an epoll_wait for each slice) cost its
 * registration of 100,000 watches 45% more CPU for the same wait.  A
 * guest cannot be served from here (only the loop's event channel
 * callback knows which rings moved), so for a guest the busy client
 * yields the rest of its turn.
 *
 * The set is level-triggered and never drained, so nothing the loop sees
 * changes.  If it cannot be made, or a descriptor not added, nobody is
 * seen waiting and batches run whole: the cost is fairness, never a
 * request.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log/log.h"
#include "server/server.h"

/* Ready descriptors looked at an ask: more wait for the next slice. */
#define WAITING_MAX 8

void server_waiting_init(struct server *srv)
{
	srv->waiting_fd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->waiting_fd < 0)
		log_warn("cannot make the set of waiting clients (%s): a "
			 "pipelining client's batches run whole",
			 strerror(errno));
}

void server_waiting_destroy(struct server *srv)
{
	if (srv->waiting_fd >= 0)
		close(srv->waiting_fd);
	srv->waiting_fd = -1;
}

void server_waiting_set(struct server *srv, int fd, struct conn *c, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	struct client *cl = c ? c->owner_data : NULL;

	if (srv->waiting_fd < 0 || fd < 0)
		return;
	/* Off is out of the set: even an empty mask reports a hang-up. */
	if (!on) {
		if (epoll_ctl(srv->waiting_fd, EPOLL_CTL_DEL, fd, NULL) == 0)
			srv->waiting_count--;
		if (cl)
			cl->waiting_set = false;
	} else {
		if (epoll_ctl(srv->waiting_fd, EPOLL_CTL_ADD, fd, &ev) == 0) {
			srv->waiting_count++;
		} else if (errno != EEXIST) {	/* EEXIST: counted */
			log_debug("fd %d not in the set of waiting clients: "
				  "%s", fd, strerror(errno));
			return;
		}
		if (cl)
			cl->waiting_set = true;
	}
}

bool server_serve_waiting(struct conn *c)
{
	struct server *srv = c->hooks->owner;
	const struct client *cl = c->owner_data;
	struct epoll_event ev[WAITING_MAX];
	bool guest = false;
	int n;

	/* One level: a neighbour served here does not serve others.  And
	 * with no descriptor in the set but c's, nobody can be waiting: a
	 * lone pipelining client does not pay a system call a slice. */
	if (srv->waiting_fd < 0 || srv->serving_waiting ||
	    srv->waiting_count <= (cl && cl->waiting_set ? 1u : 0u))
		return false;
	n = epoll_wait(srv->waiting_fd, ev, WAITING_MAX, 0);
	srv->serving_waiting = true;
	for (int i = 0; i < n; i++) {
		struct conn *o = ev[i].data.ptr;

		if (o == c)
			continue;
		if (o && o->tp->read_now && !o->closing)
			o->tp->read_now(o);
		else
			guest = true;
	}
	srv->serving_waiting = false;
	return guest;
}
