/*
 * fuzz-ring: a guest's ring page, hostile or not, against the ring reader
 * and writer (domains/ring.c) and the connection they feed (libFuzzer
 * target).
 *
 * The page is a 4096-byte allocation, as the mapped page is, with the
 * struct xenstore_domain_interface at its start.  Every call of
 * ring_read, ring_write, ring_readable and ring_reset is checked against a
 * plain model of xenstore-ring.txt: the bytes copied, the return value
 * (never more than the ring holds, -1 exactly when prod - cons exceeds
 * XENSTORE_RING_SIZE), the index moved, and nothing else on the page
 * changed.  Buffers handed to them are allocated to their exact length, so
 * ASan sees any access past them.
 *
 * Above the ring, a connection of domain 5 to an in-process server is
 * served the way domains/domain.c serves it (flush replies, read at most
 * one packet's worth of requests ahead into the connection, handle them,
 * flush again; come back from the loop when the connection asks or
 * requests are left; an impossible index stops serving until the guest
 * reconnects), while the input plays the guest.
 *
 * Input: 16 bytes, the initial req_cons, req_prod, rsp_cons, rsp_prod
 * (little-endian; missing bytes are 0), then commands: a byte ctl, op =
 * ctl % N_OPS, and its operand (n is 2 bytes, little-endian):
 *
 *   OP_SEND n data      the guest queues up to n request bytes, as far as
 *                       its view of the indices leaves room
 *   OP_SEND_NOTIFY ...  the same, then the server serves the ring
 *   OP_RECV n           the guest takes up to n reply bytes (and checks
 *                       the messages they frame while it plays fair)
 *   OP_IO               the server serves the ring (the event channel
 *                       fired)
 *   OP_SET_INDEX i v    the guest writes index i (0..3) as v (4 bytes)
 *   OP_READ n           ring_read of n bytes, outside the connection
 *   OP_WRITE n data     ring_write of n bytes, outside the connection
 *   OP_READABLE         ring_readable
 *   OP_RECONNECT        the ring starts again (ring_reset, a new
 *                       connection), as on a guest's reconnection
 *   OP_POKE o v         the guest writes byte v at offset o (2 bytes) of
 *                       the page
 *   OP_LOOP             one turn of the event loop (resumes, and the
 *                       ring served again if the connection asked)
 *
 * While the guest plays fair (no OP_SET_INDEX, OP_READ, OP_WRITE or
 * OP_POKE since the last reset) the server must never find an impossible
 * index, and every reply message it sends must be whole and well formed.
 * At the end store_check() must find nothing and server_destroy() leaves
 * no event behind (LeakSanitizer checks memory).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "tests/fuzz/fuzz.h"
#include "conn/conn.h"
#include "log/log.h"
#include "domains/ring.h"
#include "ops/ops.h"
#include "protocol/wire.h"

#define PAGE_SIZE 4096
#define RING XENSTORE_RING_SIZE
/* As domains/domain.c: request bytes taken ahead, one whole packet. */
#define INPUT_MAX (WIRE_HDR_LEN + XENSTORE_PAYLOAD_MAX)
#define MASK(i) ((i) & (RING - 1))

enum {
	OP_SEND, OP_SEND_NOTIFY, OP_RECV, OP_IO, OP_SET_INDEX, OP_READ,
	OP_WRITE, OP_READABLE, OP_RECONNECT, OP_POKE, OP_LOOP, N_OPS
};

const char fuzz_target[] = "fuzz-ring";


static struct event_base *base;
static struct server srv;
static char *page;			/* PAGE_SIZE bytes, the mapped page */
static char *shadow;			/* the page before a call */
static struct conn *conn;		/* the ring's connection, or NULL */
static struct event *io_ev;		/* zero timer: serve from the loop */
static bool in_io;			/* serve() is on the stack */
static bool reading;			/* the connection wants input */
static bool fair;			/* the guest played by the rules */

/* The guest's reply assembler. */
static char rbuf[WIRE_HDR_LEN + XENSTORE_PAYLOAD_MAX];
static size_t rlen;

static struct xenstore_domain_interface *intf(void)
{
	return (struct xenstore_domain_interface *)page;
}

/* ---- ring calls checked against the model ---- */

#define OFF_REQ_CONS offsetof(struct xenstore_domain_interface, req_cons)
#define OFF_REQ_PROD offsetof(struct xenstore_domain_interface, req_prod)
#define OFF_RSP_CONS offsetof(struct xenstore_domain_interface, rsp_cons)
#define OFF_RSP_PROD offsetof(struct xenstore_domain_interface, rsp_prod)
#define OFF_RSP offsetof(struct xenstore_domain_interface, rsp)

static uint32_t idx_at(const char *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

/* The page equals the shadow except [from, from + len). */
static void check_unchanged_except(const char *what, size_t from, size_t len)
{
	size_t end = from + len;

	if (memcmp(page, shadow, from) == 0 &&
	    memcmp(page + end, shadow + end, PAGE_SIZE - end) == 0)
		return;
	for (size_t i = 0; i < PAGE_SIZE; i++)
		CHECK((i >= from && i < end) || page[i] == shadow[i],
		      "%s changed byte %zu of the page", what, i);
}

static ptrdiff_t checked_read(void *buf, size_t len)
{
	uint32_t cons = intf()->req_cons, prod = intf()->req_prod;
	uint32_t avail = prod - cons;
	char *dst = malloc(len ? len : 1);
	ptrdiff_t n;

	CHECK(dst, "out of memory");
	memcpy(shadow, page, PAGE_SIZE);
	n = ring_read(intf(), dst, len);
	if (avail > RING) {
		CHECK(n == -1, "ring_read with %u bytes unread returned %td",
		      avail, n);
		check_unchanged_except("a failed ring_read", 0, 0);
		free(dst);
		return -1;
	}
	CHECK(n == (ptrdiff_t)(len < avail ? len : avail),
	      "ring_read(%zu) with %u unread returned %td", len, avail, n);
	for (ptrdiff_t i = 0; i < n; i++)
		CHECK(dst[i] == shadow[MASK(cons + (uint32_t)i)],
		      "ring_read byte %td is wrong", i);
	CHECK(intf()->req_cons == cons + (uint32_t)n,
	      "ring_read moved req_cons from %u to %u for %td bytes", cons,
	      intf()->req_cons, n);
	check_unchanged_except("ring_read", OFF_REQ_CONS, 4);
	if (buf)
		memcpy(buf, dst, (size_t)n);
	free(dst);
	return n;
}

static ptrdiff_t checked_write(const void *data, size_t len)
{
	uint32_t cons = intf()->rsp_cons, prod = intf()->rsp_prod;
	uint32_t used = prod - cons;
	char *src = malloc(len ? len : 1);
	ptrdiff_t n;

	CHECK(src, "out of memory");
	if (len)
		memcpy(src, data, len);
	memcpy(shadow, page, PAGE_SIZE);
	n = ring_write(intf(), src, len);
	if (used > RING) {
		CHECK(n == -1, "ring_write with %u bytes used returned %td",
		      used, n);
		check_unchanged_except("a failed ring_write", 0, 0);
		free(src);
		return -1;
	}
	CHECK(n == (ptrdiff_t)(len < RING - used ? len : RING - used),
	      "ring_write(%zu) with %u used returned %td", len, used, n);
	for (ptrdiff_t i = 0; i < n; i++) {
		size_t at = OFF_RSP + MASK(prod + (uint32_t)i);

		CHECK(page[at] == src[i], "ring_write byte %td is wrong", i);
		shadow[at] = src[i];	/* expected to change */
	}
	CHECK(intf()->rsp_prod == prod + (uint32_t)n,
	      "ring_write moved rsp_prod from %u to %u for %td bytes", prod,
	      intf()->rsp_prod, n);
	check_unchanged_except("ring_write", OFF_RSP_PROD, 4);
	free(src);
	return n;
}

static size_t checked_readable(void)
{
	uint32_t avail = intf()->req_prod - intf()->req_cons;
	size_t r;

	memcpy(shadow, page, PAGE_SIZE);
	r = ring_readable(intf());
	CHECK(r == (avail > RING ? 0 : avail),
	      "ring_readable says %zu with prod - cons = %u", r, avail);
	check_unchanged_except("ring_readable", 0, 0);
	CHECK(ring_evtchn_port(intf()) ==
	      idx_at(page, RING_EVTCHN_PORT_OFFSET), "ring_evtchn_port");
	return r;
}

static void checked_reset(void)
{
	memcpy(shadow, page, PAGE_SIZE);
	ring_reset(intf());
	CHECK(!intf()->req_cons && !intf()->req_prod && !intf()->rsp_cons &&
	      !intf()->rsp_prod, "ring_reset left an index");
	check_unchanged_except("ring_reset", OFF_REQ_CONS, 16);
}

/* ---- the ring transport, as domains/domain.c has it ---- */

static void schedule_io(void)
{
	static const struct timeval now = { 0, 0 };

	evtimer_add(io_ev, &now);
}

static void rt_kick(struct conn *c)
{
	(void)c;
	if (!in_io)
		schedule_io();
}

static void rt_set_reading(struct conn *c, bool on)
{
	CHECK(c == conn, "set_reading on a detached connection");
	reading = on;
	if (on)
		schedule_io();
}

static void rt_close(struct conn *c)
{
	if (c == conn)
		conn = NULL;
	c->tp_data = NULL;
}

static void rt_free(struct conn *c)
{
	(void)c;	/* conn_new made the queues */
}

static const struct conn_transport ring_tp = {
	.kind = "ring", .kick = rt_kick, .set_reading = rt_set_reading,
	.close = rt_close, .free = rt_free,
};

static void connect_ring(void)
{
	conn = server_new_conn(&srv, &ring_tp, page, NULL, NULL, 5, false);
	CHECK(conn, "server_new_conn failed");
	reading = true;
}

static void bad_index(void)
{
	CHECK(!fair, "impossible ring index, yet the guest played fair");
	if (conn)
		conn_close(conn, "impossible ring index");
}

/* Push queued replies into the ring until one of them is full or empty. */
static bool flush_output(void)
{
	size_t len;

	while (conn && (len = evbuffer_get_length(conn->out))) {
		size_t chunk = len < RING ? len : RING;
		unsigned char *p = evbuffer_pullup(conn->out, (ssize_t)chunk);
		ptrdiff_t n;

		CHECK(p, "evbuffer_pullup failed");
		n = checked_write(p, chunk);
		if (n < 0)
			return false;
		if (n == 0)
			break;
		evbuffer_drain(conn->out, (size_t)n);
		conn_output_drained(conn);
	}
	return true;
}

static void serve(void)
{
	if (!conn)
		return;
	in_io = true;
	if (!flush_output())
		goto bad;
	if (conn && reading) {
		size_t held = evbuffer_get_length(conn->in);
		size_t room = held < INPUT_MAX ? INPUT_MAX - held : 0;
		char buf[RING];
		ptrdiff_t n = room ? checked_read(buf, room < RING ? room
								   : RING) : 0;

		if (n < 0)
			goto bad;
		if (n > 0) {
			CHECK(evbuffer_add(conn->in, buf, (size_t)n) == 0,
			      "out of memory");
			conn_handle_input(conn);
		}
	}
	if (conn && !flush_output())
		goto bad;
	in_io = false;
	/* Requests left in the ring: the guest will not signal again. */
	if (conn && reading && checked_readable())
		schedule_io();
	return;

bad:
	in_io = false;
	bad_index();
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	serve();
}

/* ---- the guest ---- */

static size_t guest_send(const uint8_t *p, size_t n)
{
	uint32_t cons = intf()->req_cons, prod = intf()->req_prod;
	uint32_t used = prod - cons;
	size_t room = used > RING ? 0 : RING - used;

	if (n > room)
		n = room;
	for (size_t i = 0; i < n; i++)
		intf()->req[MASK(prod + (uint32_t)i)] = (char)p[i];
	intf()->req_prod = prod + (uint32_t)n;
	return n;
}

/* Check the whole messages at the front of the assembler. */
static void guest_parse(void)
{
	for (;;) {
		struct xsd_sockmsg h;
		size_t whole;

		if (rlen < WIRE_HDR_LEN)
			return;
		memcpy(&h, rbuf, sizeof(h));
		CHECK(h.len <= XENSTORE_PAYLOAD_MAX,
		      "reply of %u bytes in the ring", (unsigned int)h.len);
		CHECK(h.type < XS_TYPE_MAX, "reply of type %u in the ring",
		      (unsigned int)h.type);
		whole = WIRE_HDR_LEN + h.len;
		if (rlen < whole)
			return;
		memmove(rbuf, rbuf + whole, rlen - whole);
		rlen -= whole;
	}
}

static void guest_recv(size_t n)
{
	uint32_t cons = intf()->rsp_cons, prod = intf()->rsp_prod;
	uint32_t avail = prod - cons;

	if (avail > RING)
		return;		/* the guest would see its ring is broken */
	if (n > avail)
		n = avail;
	for (size_t i = 0; i < n; i++) {
		char b = intf()->rsp[MASK(cons + (uint32_t)i)];

		if (fair) {
			CHECK(rlen < sizeof(rbuf), "reply assembler full");
			rbuf[rlen++] = b;
			guest_parse();
		}
	}
	intf()->rsp_cons = cons + (uint32_t)n;
}

static void reconnect(void)
{
	if (conn)
		conn_close(conn, "the guest reconnected");
	checked_reset();
	rlen = 0;
	fair = true;
	connect_ring();
}

/* ---- the harness ---- */

static size_t take(const uint8_t *data, size_t size, size_t *i, void *out,
		   size_t n)
{
	size_t got = size - *i < n ? size - *i : n;

	memset(out, 0, n);
	memcpy(out, data + *i, got);
	*i += got;
	return got;
}

static unsigned int take16(const uint8_t *data, size_t size, size_t *i)
{
	uint8_t b[2];

	take(data, size, i, b, 2);
	return b[0] | (unsigned int)b[1] << 8;
}

static void loop_turn(void)
{
	CHECK(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK) >= 0,
	      "event_base_loop failed");
}

static void check_store(const char *what, const char *path, void *arg)
{
	(void)arg;
	fprintf(stderr, "fuzz-ring: store check: %s: %s\n", path, what);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	base = event_base_new();
	CHECK(base, "event_base_new failed");
	CHECK(log_open(LOG_TO_FILE, "/dev/null", LOG_LVL_ERROR) == 0,
	      "cannot log to /dev/null");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t idx[4];
	size_t i = 0;
	unsigned int problems;

	page = malloc(PAGE_SIZE);
	shadow = malloc(PAGE_SIZE);
	CHECK(page && shadow, "out of memory");
	for (size_t k = 0; k < PAGE_SIZE; k++)
		page[k] = (char)(k * 7 + 1);
	intf()->server_features = 0;
	intf()->connection = XENSTORE_CONNECTED;
	intf()->error = XENSTORE_ERROR_NONE;
	take(data, size, &i, idx, sizeof(idx));
	intf()->req_cons = idx[0];
	intf()->req_prod = idx[1];
	intf()->rsp_cons = idx[2];
	intf()->rsp_prod = idx[3];
	/* Fair only from a consistent start. */
	fair = idx[1] - idx[0] <= RING && idx[3] - idx[2] <= RING &&
	       idx[3] == idx[2];
	rlen = 0;

	CHECK(server_init(&srv, base, ops_dispatch) == 0, "server_init failed");
	io_ev = evtimer_new(base, io_cb, NULL);
	CHECK(io_ev, "evtimer_new failed");
	in_io = false;
	connect_ring();

	while (i < size) {
		uint8_t ctl = data[i++];
		unsigned int n;

		switch (ctl % N_OPS) {
		case OP_SEND:
		case OP_SEND_NOTIFY:
			n = take16(data, size, &i);
			if (n > size - i)
				n = (unsigned int)(size - i);
			guest_send(data + i, n);
			i += n;
			if (ctl % N_OPS == OP_SEND_NOTIFY)
				serve();
			break;
		case OP_RECV:
			guest_recv(take16(data, size, &i));
			break;
		case OP_IO:
			serve();
			break;
		case OP_SET_INDEX: {
			uint8_t which = 0;
			uint32_t v;

			take(data, size, &i, &which, 1);
			take(data, size, &i, &v, sizeof(v));
			memcpy(page + OFF_REQ_CONS + 4 * (which & 3), &v,
			       sizeof(v));
			fair = false;
			break;
		}
		case OP_READ:
			checked_read(NULL, take16(data, size, &i));
			fair = false;
			break;
		case OP_WRITE:
			n = take16(data, size, &i);
			if (n > size - i)
				n = (unsigned int)(size - i);
			checked_write(data + i, n);
			i += n;
			fair = false;
			break;
		case OP_READABLE:
			checked_readable();
			break;
		case OP_RECONNECT:
			reconnect();
			break;
		case OP_POKE: {
			unsigned int off = take16(data, size, &i) % PAGE_SIZE;
			uint8_t v = 0;

			take(data, size, &i, &v, 1);
			page[off] = (char)v;
			fair = false;
			break;
		}
		case OP_LOOP:
			loop_turn();
			break;
		}
	}

	/* The guest reads everything the server has for it. */
	for (unsigned int round = 0; round < 64 && conn; round++) {
		serve();
		guest_recv(RING);
		loop_turn();
		if (!conn || (!evbuffer_get_length(conn->out) &&
			      intf()->rsp_prod == intf()->rsp_cons &&
			      !event_base_get_num_events(base,
					EVENT_BASE_COUNT_ACTIVE |
					EVENT_BASE_COUNT_ADDED)))
			break;
	}
	if (fair && conn && !evbuffer_get_length(conn->out) &&
	    intf()->rsp_prod == intf()->rsp_cons)
		CHECK(rlen == 0, "a partial reply of %zu bytes was left", rlen);

	problems = store_check(&srv.store, check_store, NULL);
	CHECK(problems == 0, "store_check found %u problems", problems);
	server_destroy(&srv);
	conn = NULL;
	event_free(io_ev);
	CHECK(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED |
					      EVENT_BASE_COUNT_ACTIVE) == 0,
	      "events left in the loop after server_destroy");
	free(page);
	free(shadow);
	return 0;
}
