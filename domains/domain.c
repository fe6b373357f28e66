/*
 * Domains and their rings.
 *
 * A ring is served by one zero-timeout timer per domain (d->io): the event
 * channel callback only finds the domain by port and arms that timer, so a
 * storm of signals costs one pass per loop turn, and every ready ring gets
 * its turn before any of them gets a second one.  A pass handles a
 * reconnection request, pulls the request bytes the ring holds into the
 * connection, lets it handle up to its batch of requests, pushes queued
 * replies into the free space, and signals the guest once.
 *
 * A guest that breaks the ring protocol (impossible indices, a packet
 * over 4096 bytes) gets the error indicator set and its connection
 * dropped; the domain itself stays known, so @releaseDomain still fires
 * when it dies, and the guest may ask to reconnect.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <uthash.h>

#include "daemon/log.h"
#include "domains/domain.h"
#include "domains/ring.h"
#include "domains/xen.h"
#include "ops/ops.h"

/* Pending event channel ports taken per callback before others run. */
#define EVTCHN_BATCH 256

struct domain {
	struct domains *ds;
	unsigned int domid;
	uint32_t target;		/* SET_TARGET, or DOMID_NONE */
	unsigned int features;		/* offered in the ring page */
	bool introduced;		/* else only known for its features */
	bool shutdown_seen;		/* @releaseDomain fired for the shutdown */
	bool reading;			/* the connection takes requests */
	bool in_io;			/* domain_io is on the stack */
	bool doomed;			/* released from inside its own pass */
	struct xen_ring ring;		/* mapping, owned */
	int port;			/* local event channel port, or 0 */
	struct conn *conn;		/* NULL when not served (error) */
	struct event *io;		/* zero-timeout timer: serve the ring */
	UT_hash_handle hh;		/* ds->by_id */
	UT_hash_handle hh_port;		/* ds->by_port, while port > 0 */
};

struct domains {
	struct server *srv;
	struct xen *xen;		/* NULL: no hypervisor */
	struct event *evtchn_ev;	/* the event channel fd */
	struct event *check_ev;		/* zero-timeout timer: VIRQ_DOM_EXC */
	int virq_port;
	struct domain *by_id;		/* every domain, owned */
	struct domain *by_port;
};

/* Request bytes taken from a ring ahead of handling: one whole packet. */
#define DOMAIN_INPUT_MAX (WIRE_HDR_LEN + XENSTORE_PAYLOAD_MAX)

static const struct timeval zero_tv = { 0, 0 };

static struct xenstore_domain_interface *intf_of(const struct domain *d)
{
	return d->ring.page;
}

static void schedule_io(struct domain *d)
{
	evtimer_add(d->io, &zero_tv);
}

/* ds may be NULL (an in-process server without a domain table). */
static struct domain *find_domain(struct domains *ds, unsigned int domid)
{
	struct domain *d;

	if (!ds)
		return NULL;
	HASH_FIND(hh, ds->by_id, &domid, sizeof(domid), d);
	return d;
}

static void domain_io(evutil_socket_t fd, short what, void *arg);
static void domain_destroy(struct domain *d, bool gone);

static struct domain *domain_alloc(struct domains *ds, unsigned int domid)
{
	struct domain *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->io = evtimer_new(ds->srv->base, domain_io, d);
	if (!d->io) {
		free(d);
		return NULL;
	}
	d->ds = ds;
	d->domid = domid;
	d->target = DOMID_NONE;
	d->features = DOMAIN_FEATURES_ALL;
	HASH_ADD(hh, ds->by_id, domid, sizeof(d->domid), d);
	return d;
}

/* A known domain that exists in Xen (features may be set before INTRODUCE). */
static struct domain *find_or_alloc_existing(struct domains *ds,
					     unsigned int domid)
{
	struct domain *d = find_domain(ds, domid);

	if (d)
		return d;
	if (!ds || !ds->xen || domid >= DOMAIN_ID_LIMIT)
		return NULL;
	switch (xen_domain_state(ds->xen, domid)) {
	case XEN_DOMAIN_RUNNING:
	case XEN_DOMAIN_SHUTDOWN:
		return domain_alloc(ds, domid);
	default:
		return NULL;
	}
}

static void set_port(struct domain *d, int port)
{
	struct domains *ds = d->ds;

	if (d->port > 0) {
		HASH_DELETE(hh_port, ds->by_port, d);
		xen_evtchn_unbind(ds->xen, d->port);
	}
	d->port = port > 0 ? port : 0;
	if (d->port)
		HASH_ADD(hh_port, ds->by_port, port, sizeof(d->port), d);
}

static void signal_guest(struct domain *d)
{
	xen_evtchn_notify(d->ds->xen, d->port);
}

/* Tell the guest why its ring is no longer served, if it reads that. */
static void set_error(struct domain *d, uint32_t error)
{
	if (d->features & DOMAIN_FEATURE_ERROR)
		intf_of(d)->error = error;
	signal_guest(d);
}

/* ---- the ring transport of a domain's connection ---- */

static void ring_kick(struct conn *c)
{
	struct domain *d = c->tp_data;

	if (d && !d->in_io)
		schedule_io(d);
}

static void ring_set_reading(struct conn *c, bool on)
{
	struct domain *d = c->tp_data;

	if (!d)
		return;
	d->reading = on;
	if (on)
		schedule_io(d);
}

/* Detach the connection from its domain; its queues die with it. */
static void ring_close(struct conn *c)
{
	struct domain *d = c->tp_data;

	if (!d)
		return;
	if (c->protocol_error && intf_of(d))
		set_error(d, XENSTORE_ERROR_PROTO);
	if (d->conn == c)
		d->conn = NULL;
	c->tp_data = NULL;
}

static void ring_free(struct conn *c)
{
	(void)c;	/* conn_new made the queues; the domain is detached */
}

static const struct conn_transport ring_transport = {
	.kind = "ring",
	.kick = ring_kick,
	.set_reading = ring_set_reading,
	.close = ring_close,
	.free = ring_free,
};

static bool domain_privileged(const struct domains *ds, unsigned int domid)
{
	return server_domid_privileged(ds->srv, domid);
}

/* A fresh connection for the domain's ring. */
static int domain_connect(struct domain *d)
{
	struct conn *c = server_new_conn(d->ds->srv, &ring_transport, d, NULL,
					 NULL, d->domid,
					 domain_privileged(d->ds, d->domid));

	if (!c)
		return ENOMEM;
	c->who.target = d->target;
	d->conn = c;
	d->reading = true;
	return 0;
}

static void domain_disconnect(struct domain *d, const char *why)
{
	if (d->conn)
		conn_close(d->conn, why);	/* ring_close clears d->conn */
}

/* Stop serving a guest that broke the protocol (xenstore-ring.txt). */
static void domain_fail(struct domain *d, uint32_t error, const char *why)
{
	log_warn("domain %u: %s: ring disabled until it reconnects",
		 d->domid, why);
	domain_disconnect(d, why);
	set_error(d, error);
}

/*
 * Serve a ring from scratch (introduced, or the guest reconnected): advertise our features, empty both
 * queues, clear an error left from before, start the connection, and
 * answer a guest waiting for its reconnection.
 */
static int start_ring(struct domain *d)
{
	struct xenstore_domain_interface *intf = intf_of(d);

	intf->server_features = d->features;
	ring_reset(intf);
	intf->error = XENSTORE_ERROR_NONE;
	if (domain_connect(d) != 0)
		return -1;
	if (intf->connection == XENSTORE_RECONNECT) {
		/* The empty queues are visible before the guest sees 0. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		intf->connection = XENSTORE_CONNECTED;
		signal_guest(d);
	}
	return 0;
}

/* The guest asked for a reconnection: start again from empty. */
static void domain_reconnect(struct domain *d)
{
	domain_disconnect(d, "the guest reconnected");
	if (start_ring(d) != 0)
		log_error("domain %u: cannot reconnect: out of memory",
			  d->domid);
}

/*
 * Push queued output into the ring until one of them is empty or full.
 * false: the guest's indices are impossible.
 */
static bool flush_output(struct domain *d, bool *moved)
{
	struct conn *c;
	size_t len;

	while ((c = d->conn) && (len = evbuffer_get_length(c->out))) {
		size_t chunk = len < XENSTORE_RING_SIZE ? len
							: XENSTORE_RING_SIZE;
		unsigned char *p = evbuffer_pullup(c->out, (ssize_t)chunk);
		ptrdiff_t n;

		if (!p)
			break;	/* ENOMEM: try again on the next pass */
		n = ring_write(intf_of(d), p, chunk);
		if (n < 0)
			return false;
		if (n == 0)
			break;
		evbuffer_drain(c->out, (size_t)n);
		*moved = true;
		/* May resume input, or queue coalesced watch events. */
		conn_output_drained(c);
	}
	return true;
}

static void domain_io(evutil_socket_t fd, short what, void *arg)
{
	struct domain *d = arg;
	struct xenstore_domain_interface *intf = intf_of(d);
	bool moved = false;

	(void)fd;
	(void)what;
	if (!intf)
		return;
	if ((d->features & DOMAIN_FEATURE_RECONNECTION) &&
	    __atomic_load_n(&intf->connection, __ATOMIC_RELAXED) ==
	    XENSTORE_RECONNECT) {
		domain_reconnect(d);
		return;
	}
	if (!d->conn)
		return;		/* not served since an error */
	d->in_io = true;
	if (!flush_output(d, &moved))
		goto bad_index;
	if (d->reading) {
		/* Take no more than one whole packet ahead of the requests
		 * handled: what waits in the ring costs the guest, not us. */
		size_t held = evbuffer_get_length(d->conn->in);
		size_t room = held < DOMAIN_INPUT_MAX ? DOMAIN_INPUT_MAX - held : 0;
		char buf[XENSTORE_RING_SIZE];
		ptrdiff_t n = room ? ring_read(intf, buf, room < sizeof(buf)
						  ? room : sizeof(buf)) : 0;

		if (n < 0)
			goto bad_index;
		if (n > 0) {
			moved = true;
			if (evbuffer_add(d->conn->in, buf, (size_t)n) != 0) {
				d->in_io = false;
				domain_fail(d, XENSTORE_ERROR_COMM,
					    "out of memory for its requests");
				return;
			}
			conn_handle_input(d->conn);
			if (d->doomed) {
				d->in_io = false;
				domain_destroy(d, true);
				return;
			}
		}
	}
	if (d->conn && !flush_output(d, &moved))
		goto bad_index;
	d->in_io = false;
	if (moved)
		signal_guest(d);
	/* Requests left in the ring for want of room: come back for them
	 * (the guest will not signal again for bytes it already wrote). */
	if (d->conn && d->reading && ring_readable(intf))
		schedule_io(d);
	return;

bad_index:
	d->in_io = false;
	domain_fail(d, XENSTORE_ERROR_RINGIDX, "impossible ring index");
}

/* ---- lifecycle ---- */

/*
 * Forget a domain: its connection, channel and mapping; with gone, also
 * what the tree says about it, and tell @releaseDomain watchers.
 */
static void domain_destroy(struct domain *d, bool gone)
{
	struct domains *ds = d->ds;
	struct domain *o, *tmp;
	unsigned int domid = d->domid;
	bool introduced = d->introduced;

	if (d->in_io) {
		/* One of its own requests released it: finish after the pass. */
		d->doomed = true;
		domain_disconnect(d, "domain released");
		return;
	}
	domain_disconnect(d, gone ? "domain gone" : "shutting down");
	set_port(d, 0);
	if (d->ring.page)
		xen_unmap_ring(ds->xen, &d->ring);
	HASH_DELETE(hh, ds->by_id, d);
	event_free(d->io);
	free(d);
	if (!gone)
		return;
	/* A stubdom acting for this domain now acts for nobody. */
	HASH_ITER(hh, ds->by_id, o, tmp) {
		if (o->target != domid)
			continue;
		o->target = DOMID_NONE;
		if (o->conn)
			o->conn->who.target = DOMID_NONE;
	}
	server_forget_domain(ds->srv, domid);
	if (introduced)
		ops_fire_special(ds->srv, "@releaseDomain", domid);
}

/*
 * Domids the tree names that this table does not know (never introduced):
 * when such a domain is dying or gone, nothing of it may pass to the next
 * domain given its id (XSA-322).  A scan of the store's per-domid counts,
 * cheap next to the hypercall each candidate costs.
 */
static void forget_unknown_dead(struct domains *ds)
{
	struct server *srv = ds->srv;

	for (unsigned int domid = 1; domid < DOMAIN_ID_LIMIT; domid++) {
		if (!store_domid_referenced(&srv->store, domid) ||
		    find_domain(ds, domid) ||
		    server_domid_privileged(srv, domid))
			continue;
		switch (xen_domain_state(ds->xen, domid)) {
		case XEN_DOMAIN_DYING:
		case XEN_DOMAIN_GONE:
			log_info("domain %u, never introduced, is gone", domid);
			server_forget_domain(srv, domid);
			break;
		default:
			break;
		}
	}
}

void domains_check(struct domains *ds)
{
	struct domain *d, *tmp;

	if (!ds->xen)
		return;
	HASH_ITER(hh, ds->by_id, d, tmp) {
		if (d->domid == ds->srv->master_domid)
			continue;
		switch (xen_domain_state(ds->xen, d->domid)) {
		case XEN_DOMAIN_UNKNOWN:
		case XEN_DOMAIN_RUNNING:
			break;
		case XEN_DOMAIN_SHUTDOWN:
			if (d->introduced && !d->shutdown_seen) {
				d->shutdown_seen = true;
				log_info("domain %u shut down", d->domid);
				ops_fire_special(ds->srv, "@releaseDomain",
						 d->domid);
			}
			break;
		case XEN_DOMAIN_DYING:
		case XEN_DOMAIN_GONE:
			log_info("domain %u is gone", d->domid);
			domain_destroy(d, true);
			break;
		}
	}
	forget_unknown_dead(ds);
}

static void check_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	domains_check(arg);
}

static void evtchn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct domains *ds = arg;
	int port;

	(void)fd;
	(void)what;
	for (unsigned int i = 0; i < EVTCHN_BATCH; i++) {
		struct domain *d;

		port = xen_evtchn_pending(ds->xen);
		if (port < 0)
			return;
		if (port == ds->virq_port) {
			evtimer_add(ds->check_ev, &zero_tv);
			continue;
		}
		HASH_FIND(hh_port, ds->by_port, &port, sizeof(port), d);
		if (d)
			schedule_io(d);
	}
}

/* Serve dom0's kernel over the ring it offers in xsd_kva, if any. */
static void dom0_ring_init(struct domains *ds)
{
	unsigned int domid = ds->srv->master_domid, port;
	struct domain *d;
	int err, p;

	d = domain_alloc(ds, domid);
	if (!d)
		goto nomem;
	err = xen_map_dom0_ring(&d->ring, &port);
	if (err) {
		if (err != -ENOENT)
			log_warn("cannot map dom0's ring: %s", strerror(-err));
		HASH_DELETE(hh, ds->by_id, d);
		event_free(d->io);
		free(d);
		return;
	}
	p = xen_evtchn_bind(ds->xen, domid, port);
	if (p < 0) {
		log_warn("cannot bind dom0's ring channel %u: %s", port,
			 strerror(-p));
		domain_destroy(d, false);
		return;
	}
	set_port(d, p);
	intf_of(d)->server_features = d->features;
	if (domain_connect(d) != 0) {
		domain_destroy(d, false);
		goto nomem;
	}
	d->introduced = true;
	/* dom0 may have queued requests already: no reset, just look. */
	signal_guest(d);
	schedule_io(d);
	log_info("serving dom0's ring (port %u)", port);
	return;

nomem:
	log_error("cannot serve dom0's ring: out of memory");
}

struct domains *domains_new(struct server *srv)
{
	struct domains *ds = calloc(1, sizeof(*ds));
	int port;

	if (!ds)
		return NULL;
	ds->srv = srv;
	ds->check_ev = evtimer_new(srv->base, check_cb, ds);
	if (!ds->check_ev) {
		free(ds);
		return NULL;
	}
	ds->xen = xen_open();
	if (!ds->xen) {
		log_warn("guest rings are unavailable (no Xen: %s); "
			 "serving the socket only", strerror(errno));
		return ds;
	}
	port = xen_evtchn_bind_dom_exc(ds->xen);
	if (port < 0)
		log_warn("cannot bind VIRQ_DOM_EXC (%s): dead domains are "
			 "noticed only when released", strerror(-port));
	ds->virq_port = port;
	ds->evtchn_ev = event_new(srv->base, xen_evtchn_fd(ds->xen),
				  EV_READ | EV_PERSIST, evtchn_cb, ds);
	if (!ds->evtchn_ev || event_add(ds->evtchn_ev, NULL) != 0) {
		log_error("cannot watch the event channel device");
		domains_free(ds);
		return NULL;
	}
	dom0_ring_init(ds);
	return ds;
}

void domains_free(struct domains *ds)
{
	struct domain *d, *tmp;

	if (!ds)
		return;
	HASH_ITER(hh, ds->by_id, d, tmp)
		domain_destroy(d, false);
	if (ds->evtchn_ev)
		event_free(ds->evtchn_ev);
	event_free(ds->check_ev);
	if (ds->xen) {
		if (ds->virq_port > 0)
			xen_evtchn_unbind(ds->xen, ds->virq_port);
		xen_close(ds->xen);
	}
	free(ds);
}

/* ---- the management operations ---- */

/* INTRODUCE of a domain already served: new channel, fresh connection. */
static int reintroduce(struct domain *d, unsigned int port)
{
	struct xenstore_domain_interface *intf = intf_of(d);
	int p;

	/* A remote port is bound once: release ours before binding again. */
	set_port(d, 0);
	if (ring_evtchn_port(intf))
		port = ring_evtchn_port(intf);
	p = xen_evtchn_bind(d->ds->xen, d->domid, port);
	if (p < 0)
		log_warn("cannot bind the channel of domain %u again: %s",
			 d->domid, strerror(-p));
	set_port(d, p);
	domain_disconnect(d, "domain introduced again");
	if (start_ring(d) != 0)
		return ENOMEM;
	return p < 0 ? -p : 0;
}

int domains_introduce(struct domains *ds, unsigned int domid, uint64_t gfn,
		      unsigned int port)
{
	struct xenstore_domain_interface *intf;
	struct domain *d;
	bool fresh;
	int err, p;

	if (!ds || !ds->xen) {
		log_warn("cannot introduce domain %u: no Xen here", domid);
		return EIO;
	}
	d = find_domain(ds, domid);
	if (d && d->introduced)
		return reintroduce(d, port);
	fresh = !d;
	if (fresh && !(d = domain_alloc(ds, domid)))
		return ENOMEM;
	err = xen_map_ring(ds->xen, domid, gfn, &d->ring);
	if (err) {
		log_warn("cannot map the ring of domain %u: %s", domid,
			 strerror(-err));
		goto fail;
	}
	intf = intf_of(d);
	/* dom0less: Xen wrote the channel into the page. */
	if (ring_evtchn_port(intf))
		port = ring_evtchn_port(intf);
	p = xen_evtchn_bind(ds->xen, domid, port);
	if (p < 0) {
		err = p;
		log_warn("cannot bind the channel of domain %u: %s", domid,
			 strerror(-err));
		xen_unmap_ring(ds->xen, &d->ring);
		goto fail;
	}
	set_port(d, p);
	if (start_ring(d) != 0) {
		set_port(d, 0);
		xen_unmap_ring(ds->xen, &d->ring);
		err = -ENOMEM;
		goto fail;
	}
	d->introduced = true;
	d->shutdown_seen = false;
	log_info("domain %u introduced (port %u)", domid, port);
	if (!domain_privileged(ds, domid))
		ops_fire_special(ds->srv, "@introduceDomain", domid);
	return 0;

fail:
	if (fresh) {
		HASH_DELETE(hh, ds->by_id, d);
		event_free(d->io);
		free(d);
	}
	return -err;
}

static int introduced_domain(struct domains *ds, unsigned int domid,
			     struct domain **out)
{
	struct domain *d = find_domain(ds, domid);

	if (!d || !d->introduced)
		return ENOENT;
	*out = d;
	return 0;
}

int domains_release(struct domains *ds, unsigned int domid)
{
	struct domain *d;
	int err = introduced_domain(ds, domid, &d);

	if (err)
		return err;
	log_info("domain %u released", domid);
	domain_destroy(d, true);
	return 0;
}

int domains_resume(struct domains *ds, unsigned int domid)
{
	struct domain *d;
	int err = introduced_domain(ds, domid, &d);

	if (err)
		return err;
	d->shutdown_seen = false;
	return 0;
}

int domains_set_target(struct domains *ds, unsigned int domid,
		       unsigned int target)
{
	struct domain *d = find_domain(ds, domid);
	struct domain *t = find_domain(ds, target);

	if (!d || !d->introduced || !t || !t->introduced)
		return ENOENT;
	d->target = target;
	if (d->conn)
		d->conn->who.target = target;
	return 0;
}

bool domains_is_introduced(struct domains *ds, unsigned int domid)
{
	struct domain *d = find_domain(ds, domid);

	return d && d->introduced;
}

bool domains_domid_exists(struct domains *ds, unsigned int domid)
{
	if (!ds || !ds->xen || domains_is_introduced(ds, domid))
		return true;
	return xen_domain_state(ds->xen, domid) != XEN_DOMAIN_GONE;
}

unsigned int domains_count(struct domains *ds)
{
	struct domain *d, *tmp;
	unsigned int n = 0;

	if (!ds)
		return 0;
	HASH_ITER(hh, ds->by_id, d, tmp)
		n += d->introduced;
	return n;
}

int domains_get_features(struct domains *ds, unsigned int domid,
			 unsigned int *features)
{
	struct domain *d = find_or_alloc_existing(ds, domid);

	if (!d)
		return ENOENT;
	*features = d->features;
	return 0;
}

int domains_set_features(struct domains *ds, unsigned int domid,
			 unsigned int features)
{
	struct domain *d = find_or_alloc_existing(ds, domid);

	if (!d)
		return ENOENT;
	if (d->introduced)
		return EBUSY;
	if (features & ~DOMAIN_FEATURES_ALL)
		return EINVAL;
	d->features = features;
	return 0;
}

unsigned int domains_conn_features(struct domains *ds, const struct conn *c)
{
	struct domain *d = c->tp == &ring_transport ? c->tp_data : NULL;

	(void)ds;	/* the connection knows its domain */
	return d ? d->features : DOMAIN_FEATURES_ALL;
}
