/*
 * The ring transport: a domain's connection over its ring page.
 *
 * A ring is served by one zero-timeout timer per domain (d->io): the event
 * channel callback only finds the domain by port and arms that timer, so a
 * storm of signals costs one pass per loop turn, and every ready ring gets
 * its turn before any of them gets a second one.  A pass handles a
 * reconnection request, pulls the request bytes the ring holds into the
 * connection and lets it handle up to its batch of requests.  Their
 * replies wait, and the requests stay in the ring, until the loop turn's
 * commit: its release kicks the transport, which takes the handled
 * requests off the ring, pushes the replies into the free space and
 * signals the guest once.
 *
 * A guest that breaks the ring protocol (impossible indices, a packet
 * over 4096 bytes) gets the error indicator set and its connection
 * dropped; the domain itself stays known, so @releaseDomain still fires
 * when it dies, and the guest may ask to reconnect.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "domains/domain_impl.h"
#include "log/log.h"
#include "persist/db.h"
#include "schema/schema.h"

static void ring_kick(struct conn *c)
{
	struct domain *d = c->tp_data;

	/* A pass on the stack sends at its end. */
	if (d && !d->in_io)
		ring_release(d, false);
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

const struct conn_transport ring_transport = {
	.kind = "ring",
	.kick = ring_kick,
	.set_reading = ring_set_reading,
	.close = ring_close,
	.free = ring_free,
};

/* A fresh connection for the domain's ring. */
int domain_connect(struct domain *d)
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

void domain_disconnect(struct domain *d, const char *why)
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
int start_ring(struct domain *d)
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
 * Push released output into the ring until one of them is empty or full.
 * false: the guest's indices are impossible.
 */
static bool flush_output(struct domain *d, bool *moved)
{
	struct conn *c;
	size_t len;

	while ((c = d->conn) && (len = conn_out_ready(c))) {
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

/* Request bytes handled and committed leave the ring (the connection may
 * have handled some from its own resume timer since the last pass). */
static void consume_handled(struct domain *d, bool *moved)
{
	size_t bytes = (size_t)(d->conn->in_released - d->handled_seen);
	size_t gone = bytes < d->in_consumed ? bytes : d->in_consumed;

	d->handled_seen = d->conn->in_released;
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

/*
 * The connection holds the start of a request whose end the guest has not
 * written yet.  Linux's xenbus signals only when we have consumed all it
 * wrote before, so these bytes must leave the ring now, or we would wait
 * for the rest as the guest waits for its reply.  First they go into the
 * database with the ring index they end at, so that a daemon that dies
 * before the rest arrives finds them again (restore_input).
 */
static void release_partial(struct domain *d, bool *moved)
{
	struct xenstore_domain_interface *intf = intf_of(d);
	struct domains *ds = d->ds;

	if (ds->db)
		save_input(d, intf->req_cons + (uint32_t)d->peeked, d->conn->in,
			   true);
	/* Mid-turn: the requests handled before it are durable now too, and
	 * leave the ring first (without a database the commit is a no-op
	 * and releases all the same). */
	ds->up->commit(ds->up->owner);
	consume_handled(d, moved);
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
	struct schema_input in;

	if (!schema_decode_input(data, len, &in)) {
		log_error("domain %u: its saved partial request is malformed "
			  "(no request's start): ignored", d->domid);
		return 0;
	}
	/* Another index: the rest was handled, or the ring was reset. */
	if (in.end != ic->cons)
		return 0;
	if (evbuffer_add(d->conn->in, in.bytes, in.len) != 0)
		return -1;
	d->in_consumed = in.len;
	save_input(d, in.end, d->conn->in, false);
	return 0;
}

/* After a restart: the start of a request that had left the ring. */
void restore_input(struct domain *d)
{
	struct input_check ic = { d, intf_of(d)->req_cons };
	char key[SCHEMA_KEY_MAX];

	schema_key_input(key, d->domid);
	d->input_saved = true;	/* whatever is there goes once handled */
	if (db_get(d->ds->db, key, restore_input_cb, &ic) < 0)
		log_error("domain %u: out of memory for its partial request",
			  d->domid);
	else if (d->in_consumed)
		log_info("domain %u: %zu bytes of a request restored",
			 d->domid, d->in_consumed);
}

void domain_io(evutil_socket_t fd, short what, void *arg)
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
			release_partial(d, &moved);
			moved = true;
		}
	}
	d->in_io = false;
	ring_release(d, moved);
	return;

bad_index:
	d->in_io = false;
	domain_fail(d, XENSTORE_ERROR_RINGIDX, "impossible ring index");
}

/*
 * What was released leaves: handled requests off the ring, replies into
 * it, one signal if they or the pass before (moved) changed the ring.
 * Handles no request, so the turn's end may call it after its commit.
 */
void ring_release(struct domain *d, bool moved)
{
	struct xenstore_domain_interface *intf = intf_of(d);

	if (!d->conn) {
		if (moved)
			signal_guest(d);
		return;
	}
	consume_handled(d, &moved);
	if (!flush_output(d, &moved)) {
		domain_fail(d, XENSTORE_ERROR_RINGIDX, "impossible ring index");
		return;
	}
	if (moved)
		signal_guest(d);
	/* Come back for requests left in the ring for want of room or
	 * written while these waited, and for the start of one left behind
	 * requests the connection handled on its own (its resume): the
	 * guest signals no bytes while earlier ones are still there. */
	if (d->conn && d->reading &&
	    (ring_readable(intf) > d->peeked ||
	     (d->peeked && conn_input_partial(d->conn))))
		schedule_io(d);
}
