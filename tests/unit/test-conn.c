/*
 * conn: framing, batching, held output and flow control of one connection,
 * over a fake in-memory transport (tests/unit/unit.h) and a dispatcher
 * that records.
 */
#include <errno.h>
#include <time.h>

#include "tests/unit/unit.h"

#include "conn/conn.h"

#define MAX_SEEN 512

/* libevent's next allocation fails once this many more have succeeded
 * (-1: never): its allocator is ours (main). */
static int ev_allocs_fail_after = -1;

static bool ev_alloc_fails(void)
{
	if (ev_allocs_fail_after == 0) {
		ev_allocs_fail_after = -1;
		return true;
	}
	if (ev_allocs_fail_after > 0)
		ev_allocs_fail_after--;
	return false;
}

static void *ev_malloc(size_t n)
{
	return ev_alloc_fails() ? NULL : malloc(n);
}

static void *ev_realloc(void *p, size_t n)
{
	return ev_alloc_fails() ? NULL : realloc(p, n);
}

/* What the fake dispatcher saw, and what it should do. */
struct recorder {
	unsigned int dispatched;
	uint32_t type[MAX_SEEN], req_id[MAX_SEEN], tx_id[MAX_SEEN];
	uint32_t len[MAX_SEEN];
	bool terminated[MAX_SEEN];	/* payload[len] was the extra NUL */
	char first_payload[XENSTORE_PAYLOAD_MAX + 1];
	unsigned int closed, freed;
	unsigned int depth, max_depth;	/* nesting of dispatch calls */
	unsigned int holds;		/* hold calls */
	unsigned int dispatched_at_hold[MAX_SEEN];	/* per call */
	/* Behaviour: */
	uint32_t close_on_req_id;	/* 0: never */
	size_t reply_bytes;		/* bytes to queue on c->out per request */
	bool reenter;			/* call conn_handle_input from dispatch */
	uint64_t spin_ns;		/* each dispatch takes this long */
	/* The serve_waiting hook: how often it was asked, how many requests
	 * had been dispatched at each ask, its answer (a guest waits), and
	 * whether it closes the asking connection (a neighbour's request
	 * that does). */
	unsigned int asks;
	unsigned int dispatched_at_ask[MAX_SEEN];
	bool guest_waits, close_on_ask;
};

static struct event_base *base;
static struct unit_tp tp;
static struct recorder rec;
static struct conn_hooks hooks;
static struct conn *c;

static void rec_dispatch(struct conn *conn, const struct request *req)
{
	struct recorder *r = conn->hooks->owner;
	unsigned int i = r->dispatched++;

	ck_assert_uint_lt(i, MAX_SEEN);
	if (++r->depth > r->max_depth)
		r->max_depth = r->depth;
	r->type[i] = req->hdr.type;
	r->req_id[i] = req->hdr.req_id;
	r->tx_id[i] = req->hdr.tx_id;
	r->len[i] = req->hdr.len;
	r->terminated[i] = req->payload[req->hdr.len] == '\0';
	if (i == 0)
		memcpy(r->first_payload, req->payload, req->hdr.len + 1);
	if (r->reply_bytes) {
		char *junk = calloc(1, r->reply_bytes);

		ck_assert_ptr_nonnull(junk);
		evbuffer_add(conn->out, junk, r->reply_bytes);
		free(junk);
	}
	if (r->spin_ns) {
		struct timespec t0, t;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		do
			clock_gettime(CLOCK_MONOTONIC, &t);
		while ((uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000u +
			       (uint64_t)t.tv_nsec - (uint64_t)t0.tv_nsec <
		       r->spin_ns);
	}
	if (r->reenter)
		conn_handle_input(conn);
	if (r->close_on_req_id && req->hdr.req_id == r->close_on_req_id)
		conn_close(conn, "test");
	r->depth--;
}

/* The owner's side of holding: it would release c after its commit. */
static void rec_hold(struct conn *conn)
{
	struct recorder *r = conn->hooks->owner;

	ck_assert_uint_lt(r->holds, MAX_SEEN);
	ck_assert(conn->held);
	r->dispatched_at_hold[r->holds] = r->dispatched;
	r->holds++;
}

static bool rec_serve_waiting(struct conn *conn)
{
	struct recorder *r = conn->hooks->owner;

	ck_assert_uint_lt(r->asks, MAX_SEEN);
	r->dispatched_at_ask[r->asks++] = r->dispatched;
	if (r->close_on_ask)
		conn_close(conn, "a neighbour's request closed it");
	return r->guest_waits;
}

static void rec_closed(struct conn *conn)
{
	((struct recorder *)conn->hooks->owner)->closed++;
}

static void rec_freed(struct conn *conn)
{
	((struct recorder *)conn->hooks->owner)->freed++;
}

static void setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	memset(&rec, 0, sizeof(rec));
	hooks = (struct conn_hooks){ .dispatch = rec_dispatch,
				     .hold = rec_hold,
				     .closed = rec_closed,
				     .freed = rec_freed, .owner = &rec };
	unit_tp_init(&tp);
	c = conn_new(base, unit_transport(), &tp, tp.in, tp.out, &hooks, 5,
		     false);
	ck_assert_ptr_nonnull(c);
}

static void teardown(void)
{
	if (!tp.frees)
		conn_free(c);
	ck_assert_uint_eq(tp.frees, 1);
	event_base_free(base);
}

/* Let the event loop run what is due now (the zero-timeout resume). */
static void loop_once(void)
{
	unit_loop_once(base);
}

/* Queue the packet type READ, req_id, payload "/p<req_id>\0" on c->in. */
static void add_read(uint32_t req_id)
{
	char path[32];
	int n = snprintf(path, sizeof(path), "/p%u", (unsigned int)req_id);

	unit_add_packet(c->in, XS_READ, req_id, 0, path, (size_t)n + 1);
}

START_TEST(new_connection_has_identity_and_home)
{
	ck_assert_uint_eq(c->who.domid, 5);
	ck_assert(!c->who.privileged);
	ck_assert_uint_eq(c->who.target, DOMID_NONE);
	ck_assert_str_eq(c->home, "/local/domain/5");
	ck_assert_ptr_eq(c->in, tp.in);
	ck_assert_ptr_eq(c->out, tp.out);
	ck_assert_ptr_eq(c->tp_data, &tp);
	ck_assert(!c->closing);
}
END_TEST

START_TEST(split_packet_is_dispatched_once_complete)
{
	struct xsd_sockmsg hdr = { .type = XS_WRITE, .req_id = 77, .tx_id = 0,
				   .len = 9 };
	unsigned char bytes[sizeof(hdr) + 9];

	memcpy(bytes, &hdr, sizeof(hdr));
	memcpy(bytes + sizeof(hdr), "/a\0value", 9);
	for (size_t i = 0; i < sizeof(bytes); i++) {
		ck_assert_uint_eq(rec.dispatched, 0);
		ck_assert_int_eq(evbuffer_add(c->in, bytes + i, 1), 0);
		conn_handle_input(c);
	}
	ck_assert_uint_eq(rec.dispatched, 1);
	ck_assert_uint_eq(rec.type[0], XS_WRITE);
	ck_assert_uint_eq(rec.req_id[0], 77);
	ck_assert_uint_eq(rec.len[0], 9);
	ck_assert(rec.terminated[0]);
	ck_assert_mem_eq(rec.first_payload, "/a\0value", 9);
	ck_assert_uint_eq(evbuffer_get_length(c->in), 0);
	/* Nothing more to do: the loop dispatches nothing further. */
	conn_handle_input(c);
	loop_once();
	ck_assert_uint_eq(rec.dispatched, 1);
}
END_TEST

START_TEST(input_partial_only_while_a_request_is_incomplete)
{
	struct xsd_sockmsg hdr = { .type = XS_WRITE, .req_id = 78, .len = 9 };
	unsigned char bytes[sizeof(hdr) + 9];

	memcpy(bytes, &hdr, sizeof(hdr));
	memcpy(bytes + sizeof(hdr), "/a\0value", 9);
	ck_assert(!conn_input_partial(c));		/* nothing at all */
	for (size_t i = 0; i + 1 < sizeof(bytes); i++) {
		ck_assert_int_eq(evbuffer_add(c->in, bytes + i, 1), 0);
		ck_assert_msg(conn_input_partial(c), "%zu bytes", i + 1);
	}
	ck_assert_int_eq(evbuffer_add(c->in, bytes + sizeof(bytes) - 1, 1), 0);
	ck_assert(!conn_input_partial(c));		/* whole */
	/* A whole request followed by the start of the next is not. */
	ck_assert_int_eq(evbuffer_add(c->in, bytes, 3), 0);
	ck_assert(!conn_input_partial(c));
	conn_handle_input(c);
	ck_assert_uint_eq(rec.dispatched, 1);
	ck_assert(conn_input_partial(c));		/* the 3 bytes left */
}
END_TEST

START_TEST(pipelined_packets_are_dispatched_in_order)
{
	struct xsd_sockmsg hdr = { .type = XS_RM, .req_id = 3, .len = 4 };

	add_read(1);
	unit_add_packet(c->in, XS_MKDIR, 2, 9, UNIT_BYTES("/q\0"));
	/* And the first half of a third. */
	ck_assert_int_eq(evbuffer_add(c->in, &hdr, sizeof(hdr)), 0);
	ck_assert_int_eq(evbuffer_add(c->in, "/r", 2), 0);
	conn_handle_input(c);
	ck_assert_uint_eq(rec.dispatched, 2);
	ck_assert_uint_eq(rec.req_id[0], 1);
	ck_assert_uint_eq(rec.type[0], XS_READ);
	ck_assert_str_eq(rec.first_payload, "/p1");
	ck_assert_uint_eq(rec.req_id[1], 2);
	ck_assert_uint_eq(rec.type[1], XS_MKDIR);
	ck_assert_uint_eq(rec.tx_id[1], 9);
	ck_assert_uint_eq(evbuffer_get_length(c->in), sizeof(hdr) + 2);
	ck_assert_int_eq(evbuffer_add(c->in, "x", 2), 0);
	conn_handle_input(c);
	ck_assert_uint_eq(rec.dispatched, 3);
	ck_assert_uint_eq(rec.req_id[2], 3);
	ck_assert_uint_eq(rec.len[2], 4);
}
END_TEST

START_TEST(oversized_header_closes_connection)
{
	struct xsd_sockmsg hdr = { .type = XS_READ, .req_id = 1,
				   .len = XENSTORE_PAYLOAD_MAX + 1 };

	ck_assert_int_eq(evbuffer_add(c->in, &hdr, sizeof(hdr)), 0);
	conn_handle_input(c);
	ck_assert_uint_eq(rec.dispatched, 0);
	ck_assert_uint_eq(tp.closes, 1);
	ck_assert_uint_eq(rec.closed, 1);
	ck_assert(c->closing);
	ck_assert_uint_eq(tp.frees, 0);	/* freed later, from the loop */
	/* More input is ignored. */
	add_read(2);
	conn_handle_input(c);
	ck_assert_uint_eq(rec.dispatched, 0);
	loop_once();
	ck_assert_uint_eq(tp.frees, 1);
	ck_assert_uint_eq(rec.freed, 1);
	ck_assert_uint_eq(rec.dispatched, 0);
}
END_TEST

START_TEST(huge_length_closes_connection)
{
	struct xsd_sockmsg hdr = { .type = XS_READ, .len = UINT32_MAX };

	ck_assert_int_eq(evbuffer_add(c->in, &hdr, sizeof(hdr)), 0);
	conn_handle_input(c);
	ck_assert_uint_eq(rec.dispatched, 0);
	ck_assert_uint_eq(tp.closes, 1);
	loop_once();
	ck_assert_uint_eq(tp.frees, 1);
}
END_TEST

START_TEST(payload_of_exactly_payload_max_is_dispatched)
{
	static char payload[XENSTORE_PAYLOAD_MAX];

	memset(payload, 'v', sizeof(payload));
	unit_add_packet(c->in, XS_WRITE, 4, 0, payload, sizeof(payload));
	conn_handle_input(c);
	ck_assert_uint_eq(rec.dispatched, 1);
	ck_assert_uint_eq(rec.len[0], XENSTORE_PAYLOAD_MAX);
	ck_assert(rec.terminated[0]);
	ck_assert_uint_eq(tp.closes, 0);
}
END_TEST

START_TEST(zero_length_packet_is_dispatched_at_once)
{
	unit_add_packet(c->in, XS_TRANSACTION_START, 12, 0, NULL, 0);
	conn_handle_input(c);
	ck_assert_uint_eq(rec.dispatched, 1);
	ck_assert_uint_eq(rec.req_id[0], 12);
	ck_assert_uint_eq(rec.len[0], 0);
	ck_assert(rec.terminated[0]);
	ck_assert_uint_eq(evbuffer_get_length(c->in), 0);
}
END_TEST

/* Queue total requests, handle them to the end, one batch a turn (the
 * first from the caller, the others from the loop), and note how many
 * each batch took in counts[]: how many batches there were.  A turn ends
 * with its commit and its replies sent, so a neighbour's packet that came
 * meanwhile is seen by the next turn's poll. */
static unsigned int batches_of(unsigned int total, unsigned int *counts,
			       unsigned int max)
{
	unsigned int n = 0;

	for (unsigned int i = 1; i <= total; i++)
		add_read(i);
	conn_handle_input(c);
	counts[n++] = rec.dispatched;
	while (rec.dispatched < total) {
		unsigned int before = rec.dispatched;

		ck_assert_uint_lt(n, max);
		loop_once();
		counts[n++] = rec.dispatched - before;
	}
	for (unsigned int i = 0; i < total; i++)
		ck_assert_uint_eq(rec.req_id[i], i + 1);
	ck_assert_uint_eq(evbuffer_get_length(c->in), 0);
	return n;
}

/* A pipelining client's batch is half of what it has queued (it refills
 * that half while the other is handled), and then as many as its batch
 * before while that many are queued, not half again. */
START_TEST(a_batch_is_half_of_what_is_queued)
{
	unsigned int counts[8];

	ck_assert_uint_eq(batches_of(40, counts, 8), 2);
	ck_assert_uint_eq(counts[0], 20);
	ck_assert_uint_eq(counts[1], 20);
}
END_TEST

/* However deep the pipeline, a batch is at most CONN_BATCH_MAX. */
START_TEST(a_deep_pipeline_is_handled_in_batches_of_the_most)
{
	const unsigned int total = 3 * CONN_BATCH_MAX + 4;
	unsigned int counts[16];

	ck_assert_uint_eq(batches_of(total, counts, 16), 4);
	for (unsigned int i = 0; i < 3; i++)
		ck_assert_uint_eq(counts[i], CONN_BATCH_MAX);
	ck_assert_uint_eq(counts[3], 4);
}
END_TEST

/* A shallow one: at least CONN_BATCH_MIN a batch, even of a few queued. */
START_TEST(a_shallow_pipeline_is_handled_in_batches_of_the_least)
{
	unsigned int counts[8];

	ck_assert_uint_eq(batches_of(2 * CONN_BATCH_MIN, counts, 8), 2);
	ck_assert_uint_eq(counts[0], CONN_BATCH_MIN);
	ck_assert_uint_eq(counts[1], CONN_BATCH_MIN);
}
END_TEST

/* Queue total slow requests (each longer than a slice) for a connection
 * with the serve_waiting hook and handle its first batch, which only
 * learns their time: it asks nothing. */
static void first_slow_batch(unsigned int total)
{
	hooks.serve_waiting = rec_serve_waiting;
	rec.spin_ns = 2 * CONN_SLICE_NS;
	for (unsigned int i = 1; i <= total; i++)
		add_read(i);
	conn_handle_input(c);
	ck_assert_uint_eq(rec.dispatched, CONN_BATCH_MIN);
	ck_assert_uint_eq(rec.asks, 0);
}

/* A deep pipeline of slow requests (each longer than a slice) is
 * handled CONN_BATCH_MIN a turn once they are timed, so that a turn
 * stays within CONN_TURN_NS. */
START_TEST(slow_requests_keep_to_the_least_batch)
{
	hooks.serve_waiting = rec_serve_waiting;
	rec.spin_ns = 2 * CONN_SLICE_NS;
	for (unsigned int i = 1; i <= 4 * CONN_BATCH_MAX; i++)
		add_read(i);
	conn_handle_input(c);
	/* Not timed yet: half of what is queued, up to the most. */
	ck_assert_uint_eq(rec.dispatched, CONN_BATCH_MAX);
	ck_assert_uint_gt(c->batch_req_ns, CONN_TURN_NS / CONN_BATCH_MIN);
	loop_once();
	ck_assert_uint_eq(rec.dispatched, CONN_BATCH_MAX + CONN_BATCH_MIN);
	loop_once();
	ck_assert_uint_eq(rec.dispatched, CONN_BATCH_MAX + 2 * CONN_BATCH_MIN);
}
END_TEST

/* With the serve_waiting hook, a batch of slow requests (each longer
 * than a slice) has the waiting neighbours served after each of them, and
 * goes on: after the first batch, the next asks before each request
 * after its first. */
START_TEST(slow_requests_have_the_neighbours_served_each_slice)
{
	first_slow_batch(2 * CONN_BATCH_MIN);
	loop_once();
	ck_assert_uint_eq(rec.dispatched, 2 * CONN_BATCH_MIN);
	ck_assert_uint_eq(rec.asks, CONN_BATCH_MIN - 1);
	for (unsigned int i = 0; i < rec.asks; i++)
		ck_assert_uint_eq(rec.dispatched_at_ask[i], CONN_BATCH_MIN + 1 + i);
	for (unsigned int i = 0; i < rec.dispatched; i++)
		ck_assert_uint_eq(rec.req_id[i], i + 1);
}
END_TEST

/* A guest waiting (only the loop can serve it) ends the batch at the
 * slice; the rest comes in the next turns. */
START_TEST(a_waiting_guest_ends_the_batch_at_the_slice)
{
	first_slow_batch(CONN_BATCH_MIN + 3);
	rec.guest_waits = true;
	loop_once();
	ck_assert_uint_eq(rec.asks, 1);
	ck_assert_uint_eq(rec.dispatched, CONN_BATCH_MIN + 1);
	loop_once();
	ck_assert_uint_eq(rec.dispatched, CONN_BATCH_MIN + 2);
	rec.guest_waits = false;
	loop_once();
	ck_assert_uint_eq(rec.dispatched, CONN_BATCH_MIN + 3);
	ck_assert_uint_eq(evbuffer_get_length(c->in), 0);
}
END_TEST

/* A client with one request at a time never asks (nor reads the clock):
 * there is no batch to cut. */
START_TEST(one_request_at_a_time_never_asks)
{
	hooks.serve_waiting = rec_serve_waiting;
	rec.spin_ns = 2 * CONN_SLICE_NS;
	for (unsigned int i = 1; i <= 20; i++) {
		add_read(i);
		conn_handle_input(c);
	}
	ck_assert_uint_eq(rec.dispatched, 20);
	ck_assert_uint_eq(rec.asks, 0);
	ck_assert_uint_eq(c->batch_req_ns, 0);
}
END_TEST

/* A neighbour served mid-batch may close the busy connection (a
 * toolstack releasing its domain): its batch stops there, nothing more is
 * handled, and it is freed from the loop. */
START_TEST(a_connection_closed_by_a_served_neighbour_stops)
{
	first_slow_batch(2 * CONN_BATCH_MIN);
	rec.close_on_ask = true;
	loop_once();
	ck_assert_uint_eq(rec.asks, 1);
	ck_assert_uint_eq(rec.dispatched, CONN_BATCH_MIN + 1);
	ck_assert_uint_eq(rec.closed, 1);
	loop_once();
	ck_assert_uint_eq(rec.freed, 1);
	ck_assert_uint_eq(rec.dispatched, CONN_BATCH_MIN + 1);
}
END_TEST

/* Handled requests hold the connection once, however many turns they
 * take, until the owner's release; then the next ones hold it again. */
START_TEST(handled_requests_hold_the_connection_until_flushed)
{
	const unsigned int total = 2 * CONN_BATCH_MIN + 1;

	/* Nothing complete to handle: nothing to hold. */
	ck_assert_int_eq(evbuffer_add(c->in, "\1\0", 2), 0);
	conn_handle_input(c);
	ck_assert_uint_eq(rec.holds, 0);
	ck_assert(!c->held);
	evbuffer_drain(c->in, 2);
	for (unsigned int i = 1; i <= total; i++)
		add_read(i);
	conn_handle_input(c);
	ck_assert_uint_eq(rec.holds, 1);
	ck_assert_uint_eq(rec.dispatched_at_hold[0], CONN_BATCH_MIN);
	ck_assert_uint_eq(c->in_released, 0);
	loop_once();
	ck_assert_uint_eq(rec.dispatched, 2 * CONN_BATCH_MIN);
	ck_assert_uint_eq(rec.holds, 1);	/* still held */
	ck_assert_uint_eq(c->in_released, 0);
	conn_flush(c);
	ck_assert(!c->held);
	ck_assert_uint_eq(c->in_released, c->in_handled);
	ck_assert_uint_eq(tp.kicks, 1);
	loop_once();
	ck_assert_uint_eq(rec.dispatched, total);
	ck_assert_uint_eq(rec.holds, 2);
	ck_assert_uint_eq(rec.dispatched_at_hold[1], total);
	ck_assert_uint_lt(c->in_released, c->in_handled);
}
END_TEST

/* A connection closed by its input is not held: it sends nothing more. */
START_TEST(closing_connection_is_not_held)
{
	struct xsd_sockmsg hdr = { .type = XS_READ, .req_id = 9,
				   .len = XENSTORE_PAYLOAD_MAX + 1 };

	add_read(1);
	add_read(2);
	ck_assert_int_eq(evbuffer_add(c->in, &hdr, sizeof(hdr)), 0);
	conn_handle_input(c);
	ck_assert(c->closing);
	ck_assert_uint_eq(rec.dispatched, 2);
	ck_assert_uint_eq(rec.holds, 0);
	conn_flush(c);
	ck_assert_uint_eq(tp.kicks, 0);
}
END_TEST

/* Queued output is not to be sent until released, then only up to what
 * was queued by then; the transport is kicked by conn_flush only. */
START_TEST(output_waits_for_its_release)
{
	conn_send(c, XS_READ, 1, 0, "a", 1);
	ck_assert(c->held);
	ck_assert_uint_eq(rec.holds, 1);
	ck_assert_uint_eq(conn_out_ready(c), 0);
	conn_send(c, XS_WATCH_EVENT, 0, 0, "b", 1);
	ck_assert_uint_eq(rec.holds, 1);
	conn_release(c);
	ck_assert_uint_eq(conn_out_ready(c), 2 * (WIRE_HDR_LEN + 1));
	ck_assert_uint_eq(tp.kicks, 0);
	conn_send(c, XS_READ, 2, 0, "c", 1);
	ck_assert_uint_eq(conn_out_ready(c), 2 * (WIRE_HDR_LEN + 1));
	/* Sent by the transport: what is ready shrinks with it. */
	evbuffer_drain(c->out, WIRE_HDR_LEN + 1);
	ck_assert_uint_eq(conn_out_ready(c), WIRE_HDR_LEN + 1);
	conn_flush(c);
	ck_assert(!c->held);
	ck_assert_uint_eq(tp.kicks, 1);
	ck_assert_uint_eq(conn_out_ready(c), 2 * (WIRE_HDR_LEN + 1));
	ck_assert_uint_eq(conn_out_ready(c), evbuffer_get_length(c->out));
	conn_send(c, XS_READ, 3, 0, "d", 1);
	ck_assert_uint_eq(rec.holds, 2);
}
END_TEST

/* With no owner to commit, output is released and kicked at once. */
START_TEST(output_without_a_hold_hook_leaves_at_once)
{
	hooks.hold = NULL;
	conn_send(c, XS_READ, 1, 0, "a", 1);
	ck_assert(!c->held);
	ck_assert_uint_eq(tp.kicks, 1);
	ck_assert_uint_eq(conn_out_ready(c), WIRE_HDR_LEN + 1);
	add_read(2);
	conn_handle_input(c);
	ck_assert_uint_eq(c->in_released, c->in_handled);
	ck_assert_uint_eq(tp.kicks, 2);
}
END_TEST

START_TEST(full_output_pauses_input_until_drained)
{
	static char junk[CONN_OUT_HIGH];

	ck_assert_int_eq(evbuffer_add(c->out, junk, sizeof(junk)), 0);
	add_read(1);
	conn_handle_input(c);
	ck_assert_uint_eq(rec.dispatched, 0);
	ck_assert_uint_eq(tp.reading_off, 1);
	ck_assert(!tp.reading);
	ck_assert(c->output_full);

	/* Still above the low mark: stays paused. */
	evbuffer_drain(c->out, CONN_OUT_HIGH - CONN_OUT_LOW - 1);
	conn_output_drained(c);
	loop_once();
	ck_assert_uint_eq(tp.reading_on, 0);
	ck_assert_uint_eq(rec.dispatched, 0);

	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	conn_output_drained(c);
	ck_assert_uint_eq(tp.reading_on, 1);
	ck_assert(tp.reading);
	ck_assert(!c->output_full);
	loop_once();
	ck_assert_uint_eq(rec.dispatched, 1);
	ck_assert_uint_eq(rec.req_id[0], 1);
}
END_TEST

START_TEST(drained_without_pause_does_nothing)
{
	conn_output_drained(c);
	ck_assert_uint_eq(tp.reading_on, 0);
	ck_assert_uint_eq(tp.reading_off, 0);
}
END_TEST

START_TEST(replies_filling_output_stop_the_batch)
{
	rec.reply_bytes = 100 * 1024;
	for (unsigned int i = 1; i <= 5; i++)
		add_read(i);
	conn_handle_input(c);
	/* 3 * 100 KiB crosses CONN_OUT_HIGH (256 KiB). */
	ck_assert_uint_eq(rec.dispatched, 3);
	ck_assert_uint_eq(tp.reading_off, 1);
	loop_once();
	ck_assert_uint_eq(rec.dispatched, 3);
	rec.reply_bytes = 0;
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	conn_output_drained(c);
	loop_once();
	ck_assert_uint_eq(rec.dispatched, 5);
	ck_assert_uint_eq(rec.req_id[4], 5);
}
END_TEST

START_TEST(input_during_dispatch_is_not_reentered)
{
	rec.reenter = true;
	add_read(1);
	add_read(2);
	conn_handle_input(c);
	ck_assert_uint_eq(rec.dispatched, 2);
	ck_assert_uint_eq(rec.req_id[0], 1);
	ck_assert_uint_eq(rec.req_id[1], 2);
	ck_assert_uint_eq(rec.max_depth, 1);
}
END_TEST

START_TEST(close_from_dispatch_stops_input_and_frees_from_loop)
{
	rec.close_on_req_id = 1;
	add_read(1);
	add_read(2);
	conn_handle_input(c);
	ck_assert_uint_eq(rec.dispatched, 1);
	ck_assert_uint_eq(tp.closes, 1);
	ck_assert_uint_eq(rec.closed, 1);
	ck_assert_uint_eq(tp.frees, 0);
	/* A second close is a no-op. */
	conn_close(c, "again");
	ck_assert_uint_eq(tp.closes, 1);
	ck_assert_uint_eq(rec.closed, 1);
	loop_once();
	ck_assert_uint_eq(tp.frees, 1);
	ck_assert_uint_eq(rec.freed, 1);
	ck_assert_uint_eq(rec.dispatched, 1);
}
END_TEST

START_TEST(send_after_close_queues_nothing)
{
	conn_close(c, "test");
	conn_send(c, XS_READ, 1, 0, "x", 1);
	ck_assert_uint_eq(evbuffer_get_length(c->out), 0);
	ck_assert_uint_eq(tp.kicks, 0);
	loop_once();
	ck_assert_uint_eq(tp.frees, 1);
}
END_TEST

START_TEST(send_queues_header_and_payload)
{
	struct xsd_sockmsg hdr;
	char buf[XENSTORE_PAYLOAD_MAX + 1];

	conn_send(c, XS_READ, 7, 3, "a\0c", 3);
	ck_assert_uint_eq(evbuffer_get_length(c->out), WIRE_HDR_LEN + 3);
	unit_take_packet(c->out, &hdr, buf);
	ck_assert_uint_eq(hdr.type, XS_READ);
	ck_assert_uint_eq(hdr.req_id, 7);
	ck_assert_uint_eq(hdr.tx_id, 3);
	ck_assert_uint_eq(hdr.len, 3);
	ck_assert_mem_eq(buf, "a\0c", 3);

	conn_send(c, XS_WATCH_EVENT, 0, 0, NULL, 0);
	unit_take_packet(c->out, &hdr, buf);
	ck_assert_uint_eq(hdr.type, XS_WATCH_EVENT);
	ck_assert_uint_eq(hdr.len, 0);
	ck_assert_uint_eq(evbuffer_get_length(c->out), 0);
}
END_TEST

/* Without memory for a packet, nothing of it is queued (never a header
 * without its payload): each of libevent's allocations fails in turn.
 * A reply's connection is then closed, since its client would wait for
 * ever; an event is only lost. */
START_TEST(send_without_memory_queues_all_or_nothing_and_closes_for_a_reply)
{
	char big[2000] = "x";

	for (int n = 0; n < 3; n++) {
		ev_allocs_fail_after = n;
		conn_send(c, XS_WATCH_EVENT, 0, 0, big, sizeof(big));
		ev_allocs_fail_after = -1;
		ck_assert(!c->closing);
		if (evbuffer_get_length(c->out)) {
			ck_assert_uint_eq(evbuffer_get_length(c->out),
					  WIRE_HDR_LEN + sizeof(big));
			evbuffer_drain(c->out, WIRE_HDR_LEN + sizeof(big));
		}
	}
	ev_allocs_fail_after = 0;
	conn_send(c, XS_READ, 7, 0, big, sizeof(big));
	ev_allocs_fail_after = -1;
	ck_assert_uint_eq(evbuffer_get_length(c->out), 0);
	ck_assert(c->closing);
	ck_assert_uint_eq(rec.closed, 1);
	loop_once();
}
END_TEST

/* A transport with no queues of its own: nothing to free. */
static void bare_free(struct conn *conn)
{
	((struct unit_tp *)conn->tp_data)->frees++;
}

START_TEST(null_queues_are_made_and_freed_by_the_connection)
{
	static const struct conn_transport bare = {
		.kind = "bare",
		.kick = unit_tp_kick,
		.set_reading = unit_tp_set_reading,
		.close = unit_tp_close,
		.free = bare_free,
	};
	struct unit_tp own = { 0 };	/* no queues of its own */
	struct conn *nc = conn_new(base, &bare, &own, NULL, NULL, &hooks, 3,
				   false);
	struct xsd_sockmsg hdr;
	char buf[XENSTORE_PAYLOAD_MAX + 1];

	ck_assert_ptr_nonnull(nc);
	ck_assert(nc->owns_queues);
	conn_send(nc, XS_READ, 9, 0, "x", 1);
	unit_take_packet(nc->out, &hdr, buf);
	ck_assert_uint_eq(hdr.req_id, 9);
	ck_assert_str_eq(buf, "x");
	conn_close(nc, "test");
	conn_free(nc);	/* the sanitizer build checks both queues are freed */
	ck_assert_uint_eq(own.frees, 1);
}
END_TEST

START_TEST(send_error_payload_is_error_name)
{
	struct unit_req u;
	const struct request *req = unit_request(&u, XS_READ, 9, 4,
						 UNIT_BYTES("/x\0"));
	struct xsd_sockmsg hdr;
	char buf[XENSTORE_PAYLOAD_MAX + 1];

	conn_send_error(c, req, EACCES);
	unit_take_packet(c->out, &hdr, buf);
	ck_assert_uint_eq(hdr.type, XS_ERROR);
	ck_assert_uint_eq(hdr.req_id, 9);
	ck_assert_uint_eq(hdr.tx_id, 4);
	ck_assert_uint_eq(hdr.len, sizeof("EACCES"));
	ck_assert_mem_eq(buf, "EACCES", sizeof("EACCES"));

	conn_send_error(c, req, 9999);
	unit_take_packet(c->out, &hdr, buf);
	ck_assert_uint_eq(hdr.len, sizeof("EINVAL"));
	ck_assert_mem_eq(buf, "EINVAL", sizeof("EINVAL"));
}
END_TEST

static Suite *conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *t = tcase_create("framing");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, new_connection_has_identity_and_home);
	tcase_add_test(t, split_packet_is_dispatched_once_complete);
	tcase_add_test(t, input_partial_only_while_a_request_is_incomplete);
	tcase_add_test(t, pipelined_packets_are_dispatched_in_order);
	tcase_add_test(t, oversized_header_closes_connection);
	tcase_add_test(t, huge_length_closes_connection);
	tcase_add_test(t, payload_of_exactly_payload_max_is_dispatched);
	tcase_add_test(t, zero_length_packet_is_dispatched_at_once);
	suite_add_tcase(s, t);

	t = tcase_create("flow");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, a_batch_is_half_of_what_is_queued);
	tcase_add_test(t, a_deep_pipeline_is_handled_in_batches_of_the_most);
	tcase_add_test(t, a_shallow_pipeline_is_handled_in_batches_of_the_least);
	tcase_add_test(t, slow_requests_keep_to_the_least_batch);
	tcase_add_test(t, slow_requests_have_the_neighbours_served_each_slice);
	tcase_add_test(t, a_waiting_guest_ends_the_batch_at_the_slice);
	tcase_add_test(t, one_request_at_a_time_never_asks);
	tcase_add_test(t, a_connection_closed_by_a_served_neighbour_stops);
	tcase_add_test(t, handled_requests_hold_the_connection_until_flushed);
	tcase_add_test(t, closing_connection_is_not_held);
	tcase_add_test(t, output_waits_for_its_release);
	tcase_add_test(t, output_without_a_hold_hook_leaves_at_once);
	tcase_add_test(t, full_output_pauses_input_until_drained);
	tcase_add_test(t, drained_without_pause_does_nothing);
	tcase_add_test(t, replies_filling_output_stop_the_batch);
	tcase_add_test(t, input_during_dispatch_is_not_reentered);
	suite_add_tcase(s, t);

	t = tcase_create("close_and_send");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, close_from_dispatch_stops_input_and_frees_from_loop);
	tcase_add_test(t, send_after_close_queues_nothing);
	tcase_add_test(t, send_queues_header_and_payload);
	tcase_add_test(t, send_without_memory_queues_all_or_nothing_and_closes_for_a_reply);
	tcase_add_test(t, send_error_payload_is_error_name);
	tcase_add_test(t, null_queues_are_made_and_freed_by_the_connection);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	event_set_mem_functions(ev_malloc, ev_realloc, free);
	return unit_main(conn_suite());
}
