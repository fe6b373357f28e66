/*
 * Framing and flow control of one connection.  Input bytes wait in c->in
 * until a whole packet is there; each packet is copied out once into a
 * NUL-terminated buffer and handed to the dispatcher.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn/conn.h"
#include "log/log.h"
#include "log/probes.h"
#include "log/trace.h"

static unsigned long next_conn_id = 1;

static void resume_cb(evutil_socket_t fd, short what, void *arg);
static void delay_cb(evutil_socket_t fd, short what, void *arg);

struct conn *conn_new(struct event_base *base, const struct conn_transport *tp,
		      void *tp_data, struct evbuffer *in, struct evbuffer *out,
		      const struct conn_hooks *hooks, uint32_t domid,
		      bool privileged)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->base = base;
	c->tp = tp;
	c->tp_data = tp_data;
	c->hooks = hooks;
	if (!in && !out) {
		in = evbuffer_new();
		out = evbuffer_new();
		c->owns_queues = true;
		if (!in || !out)
			goto fail;
	}
	c->in = in;
	c->out = out;
	c->who.domid = domid;
	c->who.target = DOMID_NONE;
	c->who.privileged = privileged;
	snprintf(c->home, sizeof(c->home), "/local/domain/%u",
		 (unsigned int)domid);
	c->id = next_conn_id++;
	c->resume = evtimer_new(base, resume_cb, c);
	c->delay_ev = evtimer_new(base, delay_cb, c);
	if (!c->resume || !c->delay_ev)
		goto fail;
	if (trace_active & TRACE_CONN)
		trace_conn(c->id, domid, tp->kind, "opened");
	return c;

fail:
	if (c->resume)
		event_free(c->resume);
	if (c->delay_ev)
		event_free(c->delay_ev);
	if (c->owns_queues) {
		if (in)
			evbuffer_free(in);
		if (out)
			evbuffer_free(out);
	}
	free(c);
	return NULL;
}

void conn_free(struct conn *c)
{
	if (c->hooks->freed)
		c->hooks->freed(c);
	event_free(c->resume);
	event_free(c->delay_ev);
	free(c->reply_ends);
	c->tp->free(c);
	if (c->owns_queues) {
		evbuffer_free(c->in);
		evbuffer_free(c->out);
	}
	free(c);
}

/* Continue later, after other connections had their turn. */
static void schedule_resume(struct conn *c)
{
	static const struct timeval now = { 0, 0 };

	evtimer_add(c->resume, &now);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->closing)
		conn_free(c);
	else
		conn_handle_input(c);
}

/* Replies queued and not yet sent (tracked for unprivileged ones only). */
static unsigned int outstanding(struct conn *c)
{
	uint64_t sent = c->out_total - evbuffer_get_length(c->out);

	while (c->nreplies && c->reply_ends[c->reply_head] <= sent) {
		c->reply_head = (c->reply_head + 1) % c->reply_cap;
		c->nreplies--;
	}
	return c->nreplies;
}

static unsigned int outstanding_limit(struct conn *c)
{
	return c->who.privileged || !c->hooks->max_outstanding
	       ? 0 : c->hooks->max_outstanding(c);
}

/* Remember where the reply just queued ends; false on ENOMEM. */
static bool push_reply_end(struct conn *c)
{
	if (c->nreplies == c->reply_cap) {
		unsigned int cap = c->reply_cap ? c->reply_cap * 2 : 32;
		uint64_t *ends = malloc(cap * sizeof(*ends));

		if (!ends)
			return false;
		for (unsigned int i = 0; i < c->nreplies; i++)
			ends[i] = c->reply_ends[(c->reply_head + i) %
						c->reply_cap];
		free(c->reply_ends);
		c->reply_ends = ends;
		c->reply_cap = cap;
		c->reply_head = 0;
	}
	c->reply_ends[(c->reply_head + c->nreplies) % c->reply_cap] =
		c->out_total;
	c->nreplies++;
	return true;
}

/* The header at the front of c->in, left there; false if not all of it
 * has come. */
static bool peek_header(struct conn *c, struct xsd_sockmsg *hdr)
{
	unsigned char buf[WIRE_HDR_LEN];

	if (evbuffer_get_length(c->in) < WIRE_HDR_LEN)
		return false;
	evbuffer_copyout(c->in, buf, sizeof(buf));
	wire_decode_header(buf, hdr);
	return true;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * How many requests of c's make a slice (CONN_SLICE_NS): a batch asks
 * whether a neighbour waits after each that many.  Judged by its recent
 * pipelined batches' time a request, so that no request needs the clock:
 * only a batch of more than one reads it, at its start and its end.
 */
static unsigned int slice_requests(const struct conn *c)
{
	uint32_t per = c->batch_req_ns, n;

	if (!c->hooks->serve_waiting || !per)
		return CONN_BATCH_MAX;
	n = CONN_SLICE_NS / per;
	return n < 1 ? 1 : n < CONN_BATCH_MAX ? n : CONN_BATCH_MAX;
}

/*
 * The batch of a turn, when avail bytes of requests the size of the
 * first (size) are queued: half of them, so that the client refills the
 * half whose replies it gets while the other half is handled, or as many
 * as the batch before while that many are queued (half of the second
 * half would shrink a deep pipeline's batches to the least); no longer
 * than CONN_TURN_NS by its recent batches' time a request; within
 * CONN_BATCH_MIN and CONN_BATCH_MAX.
 */
static unsigned int batch_requests(const struct conn *c, size_t avail,
				   size_t size)
{
	size_t queued = avail / size, n = queued / 2;

	if (n < c->last_batch)
		n = queued < c->last_batch ? queued : c->last_batch;
	if (c->batch_req_ns && n > CONN_TURN_NS / c->batch_req_ns)
		n = CONN_TURN_NS / c->batch_req_ns;
	return n < CONN_BATCH_MIN ? CONN_BATCH_MIN
	       : n > CONN_BATCH_MAX ? CONN_BATCH_MAX : (unsigned int)n;
}

void conn_handle_input(struct conn *c)
{
	char packet[WIRE_HDR_LEN + XENSTORE_PAYLOAD_MAX + 1];
	unsigned int handled = 0, slice = slice_requests(c), asked = 0;
	unsigned int batch = CONN_BATCH_MIN;
	uint64_t start = 0;	/* a batch of more than one: when it began */

	if (c->in_progress || c->delayed)
		return;
	c->in_progress = true;
	while (!c->closing && !c->delayed) {
		size_t avail = evbuffer_get_length(c->in);
		struct request req;

		if (evbuffer_get_length(c->out) >= CONN_OUT_HIGH) {
			c->output_full = true;
			c->tp->set_reading(c, false);
			break;
		}
		/* A pipelining client gets a batch a turn. */
		if (handled == batch) {
			schedule_resume(c);
			break;
		}
		if (c->nreplies) {
			unsigned int limit = outstanding_limit(c);

			if (limit && outstanding(c) >= limit) {
				c->outstanding_full = true;
				c->tp->set_reading(c, false);
				break;
			}
		}
		if (!peek_header(c, &req.hdr))
			break;
		if (req.hdr.len > XENSTORE_PAYLOAD_MAX) {
			char why[64];

			snprintf(why, sizeof(why), "payload of %u bytes",
				 (unsigned int)req.hdr.len);
			c->protocol_error = true;
			conn_close(c, why);
			break;
		}
		if (avail < WIRE_HDR_LEN + req.hdr.len)
			break;
		if (!handled)
			batch = batch_requests(c, avail,
					       WIRE_HDR_LEN + req.hdr.len);
		if (!handled && avail > WIRE_HDR_LEN + req.hdr.len &&
		    c->hooks->serve_waiting)
			start = mono_ns();
		/* A neighbour waits behind a slice of c, not its batch. */
		if (handled && handled % slice == 0 && handled != asked) {
			uint64_t t = start ? mono_ns() : 0;

			asked = handled;
			if (c->hooks->serve_waiting(c)) {
				schedule_resume(c);
				break;
			}
			if (start)	/* their time is not c's */
				start += mono_ns() - t;
			continue;	/* they may have closed or paused c */
		}
		evbuffer_remove(c->in, packet, WIRE_HDR_LEN + req.hdr.len);
		c->in_handled += WIRE_HDR_LEN + req.hdr.len;
		packet[WIRE_HDR_LEN + req.hdr.len] = '\0';
		req.payload = packet + WIRE_HDR_LEN;
		if (trace_active & TRACE_IO)
			trace_packet(c->id, c->who.domid, false, &req.hdr,
				     req.payload);
		c->hooks->dispatch(c, &req);
		handled++;
	}
	c->in_progress = false;
	if (handled)
		c->last_batch = handled;
	if (start && handled > 1) {
		uint64_t per = (mono_ns() - start) / handled;

		/* Recent batches count most; a slow one (a preemption)
		 * shortens the next slices only a little. */
		if (c->batch_req_ns)
			per = (3 * (uint64_t)c->batch_req_ns + per) / 4;
		c->batch_req_ns = per > UINT32_MAX ? UINT32_MAX : (uint32_t)per;
	}
	if (handled) {
		PROBE_COUNT(PROBE_REQUEST, handled);
		/* Even a request without a reply leaves a ring only once
		 * durable. */
		conn_hold(c);
		if (c->hooks->batch_done)
			c->hooks->batch_done(c);
	}
}

bool conn_input_partial(struct conn *c)
{
	size_t avail = evbuffer_get_length(c->in);
	struct xsd_sockmsg hdr;

	if (!peek_header(c, &hdr))
		return avail > 0;
	return avail < WIRE_HDR_LEN + (size_t)hdr.len;
}

void conn_delay(struct conn *c, const struct timeval *tv)
{
	if (c->closing)
		return;
	c->delayed = true;
	c->tp->set_reading(c, false);
	evtimer_add(c->delay_ev, tv);
}

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	c->delayed = false;
	if (c->closing)
		return;
	if (!c->output_full && !c->outstanding_full)
		c->tp->set_reading(c, true);
	schedule_resume(c);
}

void conn_output_drained(struct conn *c)
{
	bool resume = false;

	if (c->closing)
		return;
	if (c->outstanding_full) {
		unsigned int limit = outstanding_limit(c);

		/* The limit may have been lifted (0) or raised meanwhile. */
		if (!limit || outstanding(c) < limit) {
			c->outstanding_full = false;
			resume = true;
		}
	}
	if (evbuffer_get_length(c->out) <= CONN_OUT_LOW) {
		if (c->hooks->drained)
			c->hooks->drained(c);
		if (c->output_full) {
			c->output_full = false;
			resume = true;
		}
	}
	if (resume && !c->output_full && !c->outstanding_full && !c->delayed) {
		c->tp->set_reading(c, true);
		schedule_resume(c);
	}
}

void conn_send(struct conn *c, uint32_t type, uint32_t req_id,
	       uint32_t tx_id, const void *payload, size_t len)
{
	struct xsd_sockmsg hdr = {
		.type = type, .req_id = req_id, .tx_id = tx_id,
		.len = (uint32_t)len,
	};

	if (c->closing)
		return;
	if (trace_active & TRACE_IO)
		trace_packet(c->id, c->who.domid, true, &hdr, payload);
	/*
	 * Room for the whole packet first, so that the two copies cannot
	 * fail between them: a header queued without its payload would
	 * desynchronise the client for good.  Without memory, an event is
	 * lost (logged), but a client must never wait for a reply that will
	 * not come: its connection is closed instead.
	 */
	if (evbuffer_expand(c->out, sizeof(hdr) + len) != 0 ||
	    evbuffer_add(c->out, &hdr, sizeof(hdr)) != 0 ||
	    evbuffer_add(c->out, payload, len) != 0) {
		log_error("connection %lu: out of memory queueing %s", c->id,
			  type == XS_WATCH_EVENT ? "a watch event"
						 : "a reply");
		if (type != XS_WATCH_EVENT)
			conn_close(c, "out of memory for a reply");
		return;
	}
	c->out_total += sizeof(hdr) + len;
	/* Events are not replies: only answers count as outstanding. */
	if (!c->who.privileged && type != XS_WATCH_EVENT && !push_reply_end(c))
		log_warn("connection %lu: cannot track its replies: out of "
			 "memory", c->id);
	conn_hold(c);
}

void conn_hold(struct conn *c)
{
	if (c->held || c->closing)
		return;
	if (!c->hooks->hold) {
		conn_flush(c);
		return;
	}
	c->held = true;
	c->hooks->hold(c);
}

void conn_release(struct conn *c)
{
	c->out_released = c->out_total;
	c->in_released = c->in_handled;
}

void conn_flush(struct conn *c)
{
	c->held = false;
	conn_release(c);
	if (!c->closing)
		c->tp->kick(c);
}

size_t conn_out_ready(const struct conn *c)
{
	uint64_t sent;

	if (!c->out)
		return 0;	/* a closed socket's queues are gone */
	sent = c->out_total - evbuffer_get_length(c->out);

	return c->out_released > sent ? (size_t)(c->out_released - sent) : 0;
}

void conn_send_error(struct conn *c, const struct request *req, int err)
{
	const char *name = wire_error_name(err);

	conn_send(c, XS_ERROR, req->hdr.req_id, req->hdr.tx_id, name,
		  strlen(name) + 1);
}

void conn_close(struct conn *c, const char *why)
{
	if (c->closing)
		return;
	log_info("connection %lu (%s, domain %u) closed: %s", c->id,
		 c->tp->kind, (unsigned int)c->who.domid, why);
	if (trace_active & TRACE_CONN)
		trace_conn(c->id, c->who.domid, c->tp->kind, why);
	c->closing = true;
	c->tp->close(c);
	if (c->hooks->closed)
		c->hooks->closed(c);
	/* Free from the loop: a request handler may still hold c. */
	schedule_resume(c);
}
