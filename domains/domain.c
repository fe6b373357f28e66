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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <uthash.h>

#include "conn/conn.h"
#include "log/log.h"
#include "domains/domain.h"
#include "domains/ring.h"
#include "domains/xen.h"
#include "persist/db.h"
#include "record/record.h"

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
	uint64_t gfn;			/* as introduced: to map it again */
	unsigned int remote_port;	/* the guest's end of the channel */
	int port;			/* local event channel port, or 0 */
	/* Request bytes copied out of the ring beyond its consumer index:
	 * a request leaves the ring only once handled (and committed), so
	 * a daemon that dies before finds it there again. */
	size_t peeked;
	size_t in_consumed;		/* bytes at the front of conn->in that
					 * already left the ring (see below) */
	bool input_saved;		/* a #input record may exist */
	uint64_t handled_seen;		/* conn->in_handled when last looked */
	struct conn *conn;		/* NULL when not served (error) */
	struct event *io;		/* zero-timeout timer: serve the ring */
	UT_hash_handle hh;		/* ds->by_id */
	UT_hash_handle hh_port;		/* ds->by_port, while port > 0 */
};

struct domains {
	struct event_base *base;
	struct db *db;			/* NULL: nothing persists */
	unsigned int master_domid;	/* whose ring is xsd_kva */
	const struct domain_hooks *up;	/* the owner's; it outlives us */
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

/* ---- the domain table in the database ---- */

static void record_key(char *buf, size_t len, unsigned int domid)
{
	snprintf(buf, len, "#domain/%u", domid);
}

/* The start of a request that left the ring before its end arrived. */
static void input_key(char *buf, size_t len, unsigned int domid)
{
	snprintf(buf, len, "#input/%u", domid);
}

static void encode_domain(const void *obj, struct writer *w)
{
	const struct domain *d = obj;

	wr_u32(w, d->domid);
	wr_u64(w, d->gfn);
	wr_u32(w, d->remote_port);
	wr_u32(w, d->features);
	wr_u32(w, d->target);
	wr_u8(w, d->introduced);
	wr_u8(w, d->shutdown_seen);
}

/* Save what a restart needs to serve d again. */
static void save_domain(struct domain *d)
{
	char key[32];

	if (d->domid == d->ds->master_domid)
		return;		/* dom0's own ring is found again at start */
	record_key(key, sizeof(key), d->domid);
	db_put_encoded(d->ds->db, key, encode_domain, d);
}

static void forget_input(struct domain *d)
{
	char key[32];

	if (!d->input_saved)
		return;
	input_key(key, sizeof(key), d->domid);
	db_delete(d->ds->db, key);
	d->input_saved = false;
}

static void forget_record(struct domains *ds, unsigned int domid)
{
	char key[32];

	record_key(key, sizeof(key), domid);
	db_delete(ds->db, key);
	input_key(key, sizeof(key), domid);
	db_delete(ds->db, key);
}

static struct domain *domain_alloc(struct domains *ds, unsigned int domid)
{
	struct domain *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->io = evtimer_new(ds->base, domain_io, d);
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
	return ds->up->privileged(ds->up->owner, domid);
}

/* A fresh connection for the domain's ring. */
static int domain_connect(struct domain *d)
{
	struct conn *c = d->ds->up->new_conn(d->ds->up->owner, &ring_transport,
					     d, d->domid);

	if (!c)
		return ENOMEM;
	c->who.target = d->target;
	c->resumable = true;
	d->handled_seen = 0;
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
	d->peeked = 0;
	d->in_consumed = 0;
	forget_input(d);
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

/* Handled request bytes leave the ring (the connection may have handled
 * some from its own resume timer since the last pass). */
static void consume_handled(struct domain *d, bool *moved)
{
	size_t bytes = (size_t)(d->conn->in_handled - d->handled_seen);
	size_t gone = bytes < d->in_consumed ? bytes : d->in_consumed;

	d->handled_seen = d->conn->in_handled;
	d->in_consumed -= gone;
	bytes -= gone;
	/* The saved start is handled: the record goes with the next
	 * commit, which comes after the ring moved past its index. */
	if (gone && !d->in_consumed)
		forget_input(d);
	if (!bytes)
		return;
	ring_consume(intf_of(d), bytes);
	d->peeked -= bytes;
	d->conn->replaying = false;
	*moved = true;
}

struct held_input {
	uint32_t end;			/* the ring index after its bytes */
	struct evbuffer *bytes;		/* conn->in: the request's start */
};

static void encode_input(const void *obj, struct writer *w)
{
	const struct held_input *h = obj;

	wr_u32(w, h->end);
	wr_evbuffer(w, h->bytes);
}

/*
 * The connection holds the start of a request whose end the guest has not
 * written yet.  Linux's xenbus signals only when we have consumed all it
 * wrote before, so these bytes must leave the ring now, or we would wait
 * for the rest as the guest waits for its reply.  First they go into the
 * database with the ring index they end at, so that a daemon that dies
 * before the rest arrives finds them again (restore_input).
 */
static void release_partial(struct domain *d)
{
	struct xenstore_domain_interface *intf = intf_of(d);
	struct held_input h = {
		.end = intf->req_cons + (uint32_t)d->peeked,
		.bytes = d->conn->in,
	};
	struct domains *ds = d->ds;
	char key[32];

	if (ds->db) {
		input_key(key, sizeof(key), d->domid);
		db_put_encoded(ds->db, key, encode_input, &h);
		ds->up->commit(ds->up->owner);
		d->input_saved = true;
	}
	ring_consume(intf, d->peeked);
	d->in_consumed += d->peeked;
	d->peeked = 0;
}

struct input_check {
	struct domain *d;
	uint32_t cons;
};

static int restore_input_cb(const void *data, size_t len, void *arg)
{
	struct input_check *ic = arg;
	struct domain *d = ic->d;
	struct reader r;
	uint32_t end, n;
	const unsigned char *bytes;
	struct xsd_sockmsg hdr;

	rd_init(&r, data, len);
	end = rd_u32(&r);
	bytes = rd_bytes(&r, &n);
	if (!rd_done(&r) || n == 0 || n >= DOMAIN_INPUT_MAX) {
		log_error("database: a malformed #input/%u record: ignored",
			  d->domid);
		return 0;
	}
	/* Another index: the rest was handled, or the ring was reset. */
	if (end != ic->cons)
		return 0;
	if (n >= WIRE_HDR_LEN) {
		wire_decode_header(bytes, &hdr);
		if (hdr.len > XENSTORE_PAYLOAD_MAX ||
		    n >= WIRE_HDR_LEN + hdr.len) {
			log_error("database: #input/%u is no request's start: "
				  "ignored", d->domid);
			return 0;
		}
	}
	if (evbuffer_add(d->conn->in, bytes, n) != 0)
		return -1;
	d->in_consumed = n;
	return 0;
}

/* After a restart: the start of a request that had left the ring. */
static void restore_input(struct domain *d)
{
	struct input_check ic = { d, intf_of(d)->req_cons };
	char key[32];

	input_key(key, sizeof(key), d->domid);
	d->input_saved = true;	/* whatever is there goes once handled */
	if (db_get(d->ds->db, key, restore_input_cb, &ic) < 0)
		log_error("domain %u: out of memory for its partial request",
			  d->domid);
	else if (d->in_consumed)
		log_info("domain %u: %zu bytes of a request restored",
			 d->domid, d->in_consumed);
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
		struct conn *c = d->conn;
		size_t held = evbuffer_get_length(c->in);
		size_t room = held < DOMAIN_INPUT_MAX ? DOMAIN_INPUT_MAX - held : 0;
		char buf[XENSTORE_RING_SIZE];
		ptrdiff_t n = room ? ring_peek(intf, d->peeked, buf,
					       room < sizeof(buf) ? room
								  : sizeof(buf))
				   : 0;

		if (n < 0)
			goto bad_index;
		if (n > 0) {
			if (evbuffer_add(c->in, buf, (size_t)n) != 0) {
				d->in_io = false;
				domain_fail(d, XENSTORE_ERROR_COMM,
					    "out of memory for its requests");
				return;
			}
			d->peeked += (size_t)n;
			conn_handle_input(c);
			if (d->doomed) {
				d->in_io = false;
				domain_destroy(d, true);
				return;
			}
		}
		if (d->conn == c)
			consume_handled(d, &moved);
		if (d->conn == c && d->peeked && conn_input_partial(c)) {
			release_partial(d);
			moved = true;
		}
	}
	if (d->conn)
		consume_handled(d, &moved);
	if (d->conn && !flush_output(d, &moved))
		goto bad_index;
	d->in_io = false;
	if (moved)
		signal_guest(d);
	/* Requests left in the ring for want of room: come back for them
	 * (the guest will not signal again for bytes it already wrote). */
	if (d->conn && d->reading && ring_readable(intf) > d->peeked)
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
	if (gone)
		forget_record(ds, domid);
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
		save_domain(o);
	}
	ds->up->forget(ds->up->owner, domid);
	if (introduced)
		ds->up->special(ds->up->owner, "@releaseDomain", domid);
}

/*
 * Domids the tree names that this table does not know (never introduced):
 * when such a domain is dying or gone, nothing of it may pass to the next
 * domain given its id (XSA-322).  A scan of the store's per-domid counts,
 * cheap next to the hypercall each candidate costs.
 */
static void forget_unknown_dead(struct domains *ds)
{
	for (unsigned int domid = 1; domid < DOMAIN_ID_LIMIT; domid++) {
		if (!ds->up->referenced(ds->up->owner, domid) ||
		    find_domain(ds, domid) || domain_privileged(ds, domid))
			continue;
		switch (xen_domain_state(ds->xen, domid)) {
		case XEN_DOMAIN_DYING:
		case XEN_DOMAIN_GONE:
			log_info("domain %u, never introduced, is gone", domid);
			ds->up->forget(ds->up->owner, domid);
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
		if (d->domid == ds->master_domid)
			continue;
		switch (xen_domain_state(ds->xen, d->domid)) {
		case XEN_DOMAIN_UNKNOWN:
		case XEN_DOMAIN_RUNNING:
			break;
		case XEN_DOMAIN_SHUTDOWN:
			if (d->introduced && !d->shutdown_seen) {
				d->shutdown_seen = true;
				save_domain(d);
				log_info("domain %u shut down", d->domid);
				ds->up->special(ds->up->owner,
						"@releaseDomain", d->domid);
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
	struct domains *ds = arg;

	(void)fd;
	(void)what;
	domains_check(ds);
	/* Before any @releaseDomain event queued here can be sent. */
	ds->up->commit(ds->up->owner);
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
	unsigned int domid = ds->master_domid, port;
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

struct domains *domains_new(struct event_base *base, struct db *db,
			    unsigned int master_domid,
			    const struct domain_hooks *hooks)
{
	struct domains *ds = calloc(1, sizeof(*ds));
	int port;

	if (!ds)
		return NULL;
	ds->base = base;
	ds->db = db;
	ds->master_domid = master_domid;
	ds->up = hooks;
	ds->check_ev = evtimer_new(base, check_cb, ds);
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
	ds->evtchn_ev = event_new(base, xen_evtchn_fd(ds->xen),
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

/* ---- restart ---- */

/* Serve a saved, live domain again: its ring as the guest left it. */
static void resume_domain(struct domain *d, bool fire)
{
	struct domains *ds = d->ds;
	struct xenstore_domain_interface *intf;
	unsigned int port = d->remote_port;
	int err, p;

	err = xen_map_ring(ds->xen, d->domid, d->gfn, &d->ring);
	if (err) {
		log_error("domain %u: cannot map its ring again: %s; it stays "
			  "unserved", d->domid, strerror(-err));
		return;
	}
	intf = intf_of(d);
	if (ring_evtchn_port(intf))
		port = ring_evtchn_port(intf);
	p = xen_evtchn_bind(ds->xen, d->domid, port);
	if (p < 0) {
		log_error("domain %u: cannot bind its channel again: %s; it "
			  "stays unserved", d->domid, strerror(-p));
		xen_unmap_ring(ds->xen, &d->ring);
		return;
	}
	set_port(d, p);
	if (domain_connect(d) != 0) {
		log_error("domain %u: out of memory to serve it again",
			  d->domid);
		return;
	}
	restore_input(d);
	ds->up->restored(ds->up->owner, d->conn, fire);
	/* Whatever it wrote while we were away, and a signal we missed. */
	signal_guest(d);
	schedule_io(d);
	log_info("domain %u served again (port %u)", d->domid, port);
}

struct restore {
	struct domains *ds;
	bool fire;
	/* Saved domains that died meanwhile: released after the database
	 * traversal, which must not write. */
	struct { unsigned int domid; bool introduced; } *dead;
	unsigned int ndead;
};

static int restore_one(const char *name, const void *data, size_t len,
		       void *arg)
{
	struct domains *ds = ((struct restore *)arg)->ds;
	struct reader r;
	struct domain *d;
	uint32_t domid, port, features, target;
	uint64_t gfn;
	bool introduced, shutdown_seen;

	(void)name;
	rd_init(&r, data, len);
	domid = rd_u32(&r);
	gfn = rd_u64(&r);
	port = rd_u32(&r);
	features = rd_u32(&r);
	target = rd_u32(&r);
	introduced = rd_u8(&r);
	shutdown_seen = rd_u8(&r);
	if (!rd_done(&r) || domid >= DOMAIN_ID_LIMIT ||
	    features & ~DOMAIN_FEATURES_ALL) {
		log_error("database: a malformed domain record (%s): ignored",
			  name);
		return 0;
	}
	if (find_domain(ds, domid))
		return 0;
	switch (xen_domain_state(ds->xen, domid)) {
	case XEN_DOMAIN_DYING:
	case XEN_DOMAIN_GONE: {
		struct restore *how = arg;
		void *dead = realloc(how->dead, (how->ndead + 1) *
				     sizeof(*how->dead));

		if (!dead) {
			log_error("domain %u: out of memory to release it",
				  domid);
			return 0;
		}
		how->dead = dead;
		how->dead[how->ndead].domid = domid;
		how->dead[how->ndead++].introduced = introduced;
		return 0;
	}
	default:
		break;
	}
	d = domain_alloc(ds, domid);
	if (!d) {
		log_error("domain %u: out of memory to restore it", domid);
		return 0;
	}
	d->gfn = gfn;
	d->remote_port = port;
	d->features = features;
	d->target = target;
	d->introduced = introduced;
	d->shutdown_seen = shutdown_seen;
	if (introduced)
		resume_domain(d, ((struct restore *)arg)->fire);
	return 0;
}

static int count_one(const char *name, const void *data, size_t len,
		     void *arg)
{
	(void)name;
	(void)data;
	(void)len;
	++*(unsigned int *)arg;
	return 0;
}

void domains_restore(struct domains *ds, bool fire)
{
	struct restore how = { ds, fire };
	struct domain *d, *tmp;
	unsigned int saved = 0;

	if (!ds->db)
		return;
	if (!ds->xen) {
		db_each(ds->db, "#domain/", count_one, &saved);
		if (saved)
			log_warn("the database names %u domains, but there is "
				 "no Xen here: they are not served", saved);
		return;
	}
	db_each(ds->db, "#domain/", restore_one, &how);
	/* dom0's own ring came up before its watches were known. */
	d = find_domain(ds, ds->master_domid);
	if (d && d->conn)
		ds->up->restored(ds->up->owner, d->conn, fire);
	for (unsigned int i = 0; i < how.ndead; i++) {
		unsigned int domid = how.dead[i].domid;

		log_info("domain %u died while the daemon was down", domid);
		forget_record(ds, domid);
		HASH_ITER(hh, ds->by_id, d, tmp) {
			if (d->target == domid) {
				d->target = DOMID_NONE;
				save_domain(d);
			}
		}
		ds->up->forget(ds->up->owner, domid);
		if (how.dead[i].introduced)
			ds->up->special(ds->up->owner, "@releaseDomain", domid);
	}
	free(how.dead);
	/* Targets name domains restored only now. */
	HASH_ITER(hh, ds->by_id, d, tmp)
		if (d->conn)
			d->conn->who.target = d->target;
	domains_check(ds);
	ds->up->commit(ds->up->owner);
}

void domains_save_conns(struct domains *ds, struct writer *w,
			const struct conn *extra_for, const void *extra,
			size_t extra_len)
{
	struct domain *d, *tmp;
	unsigned int n = 0;

	HASH_ITER(hh, ds->by_id, d, tmp)
		n += d->conn != NULL;
	wr_u32(w, n);
	HASH_ITER(hh, ds->by_id, d, tmp) {
		struct conn *c = d->conn;
		unsigned char *in;

		if (!c)
			continue;
		wr_u32(w, d->domid);
		/* Only the requests already gone from the ring: the new
		 * program peeks the others again. */
		in = evbuffer_pullup(c->in, (ssize_t)d->in_consumed);
		wr_bytes(w, in, in ? d->in_consumed : 0);
		wr_evbuffer_and(w, c->out, c == extra_for ? extra : NULL,
				c == extra_for ? extra_len : 0);
	}
}

int domains_load_conns(struct domains *ds, struct reader *r)
{
	uint32_t n = rd_u32(r);

	for (uint32_t i = 0; i < n && rd_ok(r); i++) {
		uint32_t domid = rd_u32(r), in_len, out_len;
		const void *in = rd_bytes(r, &in_len);
		const void *out = rd_bytes(r, &out_len);
		struct domain *d = find_domain(ds, domid);

		if (!rd_ok(r))
			break;
		if (!d || !d->conn) {
			log_warn("live update: domain %u is not served any more; "
				 "its queued bytes are dropped", domid);
			continue;
		}
		/* The image, not the database, has what left the ring. */
		evbuffer_drain(d->conn->in, evbuffer_get_length(d->conn->in));
		if (evbuffer_add(d->conn->in, in, in_len) != 0 ||
		    evbuffer_add(d->conn->out, out, out_len) != 0)
			return -1;
		d->conn->out_total += out_len;
		d->in_consumed = in_len;
		schedule_io(d);
	}
	return rd_ok(r) ? 0 : -1;
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
	d->remote_port = port;
	save_domain(d);
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
	d->gfn = gfn;
	d->remote_port = port;
	save_domain(d);
	log_info("domain %u introduced (port %u)", domid, port);
	if (!domain_privileged(ds, domid))
		ds->up->special(ds->up->owner, "@introduceDomain", domid);
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
	save_domain(d);
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
	save_domain(d);
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
	save_domain(d);
	return 0;
}

unsigned int domains_conn_features(struct domains *ds, const struct conn *c)
{
	struct domain *d = c->tp == &ring_transport ? c->tp_data : NULL;

	(void)ds;	/* the connection knows its domain */
	return d ? d->features : DOMAIN_FEATURES_ALL;
}
