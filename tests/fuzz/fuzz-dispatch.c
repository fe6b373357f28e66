/*
 * fuzz-dispatch: bytes from untrusted clients, framed, decoded and
 * dispatched against an in-process server (libFuzzer target).
 *
 * Every input gets a fresh server (ops/) with four connections over fake
 * transports, so transactions, watches and permissions of several clients
 * interact:
 *
 *   slot 0  dom0, privileged, over a fake socket (queues die at close)
 *   slot 1  domain 5, unprivileged, over a fake ring (conn owns queues)
 *   slot 2  domain 6, unprivileged unless the input makes it the
 *           privileged domain (--priv-domid 6), over a fake ring
 *   slot 3  dom0 again, a second socket client
 *
 * Input: one flags byte (bit 0: priv_domid = 6; bit 1: log at debug level,
 * to /dev/null), then commands, each a control byte ctl and its operand:
 *
 *   ctl < 0xb0    a packet for slot ctl & 3: its 16-byte header, then as
 *                 many payload bytes as the header's len says (all that is
 *                 left if fewer; none if len is over XENSTORE_PAYLOAD_MAX,
 *                 which closes the connection); from 0x80 on, queued
 *                 without telling the connection (the daemon was busy)
 *   0xb0..0xbf    what domains/ does for the slot's domain, by bits 2-3:
 *                 0 introduced (@introduceDomain fires), 1 gone (its
 *                 connection closes, server_forget_domain() cleans the
 *                 tree, @releaseDomain fires), 2 SET_TARGET to the other
 *                 guest (5 <-> 6), 3 target cleared; only guests (slots 1,
 *                 2) have these
 *   0xc0..0xc7    raw: a byte n, then n bytes for slot ctl & 3 (packets
 *                 split anywhere); with bit 2, queued without telling
 *   0xc8..0xcf    the connection of slot ctl & 3 is told of its input
 *   0xd0..0xdf    the client of slot ctl & 3 reads its output: all of it,
 *                 or (bits 2-3 = 1, 2, 3) whole messages until 16 kB,
 *                 64 kB or 192 kB are read
 *   0xe0..0xef    one turn of the event loop (resumes, deferred frees)
 *   0xf0..0xff    the client of slot ctl & 3 hangs up; bytes for the slot
 *                 later go to a new connection of the same domain
 *
 * Bytes for a slot are appended to its input queue and, unless queued or
 * flow control stopped reading, conn_handle_input() runs, as the
 * transports do.
 * At the end every client reads until nothing moves.
 *
 * Checked on every input (abort() on failure, so libFuzzer reports it):
 * each request dispatched on an open connection gets exactly one reply,
 * echoing its req_id and tx_id, with its own type or ERROR; every output
 * queue holds whole, well-formed messages (len <= XENSTORE_PAYLOAD_MAX,
 * ERROR carries a known error name, WATCH_EVENT two strings);
 * store_check() finds no problem; and after server_destroy() no event is
 * left in the loop (LeakSanitizer checks the memory).
 *
 * CONTROL commands that name a file (logfile, memreport FILE) have their
 * file arguments replaced by /dev/null before dispatch, so the fuzzer
 * never writes files; the trace file is /dev/null too, so CONTROL "log on"
 * traces every packet through log/trace.c.
 *
 * FUZZ_VERBOSE=1 in the environment prints each request and its reply.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "tests/fuzz/fuzz.h"
#include "conn/conn.h"
#include "log/log.h"
#include "log/trace.h"
#include "ops/ops.h"
#include "protocol/wire.h"

#define NSLOTS 4
#define DRAIN_ROUNDS 64		/* client reads + loop turns at the end */

const char fuzz_target[] = "fuzz-dispatch";


struct slot;

/* One fake transport instance: tp_data of one connection. */
struct fz_tp {
	struct slot *slot;	/* NULL once a new connection took the slot */
	bool socket;		/* close frees the queues, as daemon/socket.c */
	bool reading;
	bool closed;
};

struct slot {
	struct conn *c;		/* NULL: none (yet, or freed) */
	uint32_t domid;
	uint32_t target;	/* SET_TARGET, for its connections */
	bool socket;
};

static struct event_base *base;
static struct server srv;
static struct slot slots[NSLOTS];
static bool verbose;		/* FUZZ_VERBOSE: print requests, replies */

/* ---- the fake transports ---- */

static void fz_kick(struct conn *c)
{
	(void)c;	/* output waits until the client reads it */
}

static void fz_set_reading(struct conn *c, bool on)
{
	struct fz_tp *t = c->tp_data;

	CHECK(t && !t->closed, "set_reading on a closed connection");
	t->reading = on;
}

static void fz_close(struct conn *c)
{
	struct fz_tp *t = c->tp_data;

	CHECK(!t->closed, "transport closed twice");
	t->closed = true;
	if (t->socket) {
		/* As daemon/socket.c: the queues die with the socket. */
		evbuffer_free(c->in);
		evbuffer_free(c->out);
		c->in = c->out = NULL;
	}
}

static void fz_free(struct conn *c)
{
	struct fz_tp *t = c->tp_data;

	if (t->socket && !t->closed) {
		evbuffer_free(c->in);
		evbuffer_free(c->out);
	}
	if (t->slot && t->slot->c == c)
		t->slot->c = NULL;
	free(t);
}

static const struct conn_transport fz_socket = {
	.kind = "socket", .kick = fz_kick, .set_reading = fz_set_reading,
	.close = fz_close, .free = fz_free,
};

static const struct conn_transport fz_ring = {
	.kind = "ring", .kick = fz_kick, .set_reading = fz_set_reading,
	.close = fz_close, .free = fz_free,
};

static struct fz_tp *tp_of(const struct conn *c)
{
	return c->tp_data;
}

/* The slot's open connection, made anew if it has none or it closed. */
static struct conn *slot_conn(struct slot *s)
{
	struct fz_tp *t;
	struct evbuffer *in = NULL, *out = NULL;

	if (s->c && !s->c->closing)
		return s->c;
	if (s->c)
		tp_of(s->c)->slot = NULL;	/* freed from the loop later */
	s->c = NULL;
	t = calloc(1, sizeof(*t));
	CHECK(t, "out of memory");
	t->slot = s;
	t->socket = s->socket;
	t->reading = true;
	if (s->socket) {
		in = evbuffer_new();
		out = evbuffer_new();
		CHECK(in && out, "out of memory");
	}
	s->c = server_new_conn(&srv, s->socket ? &fz_socket : &fz_ring, t,
			       in, out, s->domid,
			       server_domid_privileged(&srv, s->domid));
	CHECK(s->c, "server_new_conn failed");
	s->c->who.target = s->target;
	return s->c;
}

/* ---- checks of what the daemon sends ---- */

static bool known_error(const char *p, uint32_t len)
{
	if (len == 0 || p[len - 1] != '\0')
		return false;
	for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]);
	     i++)
		if (strcmp(p, xsd_errors[i].errstring) == 0 &&
		    strlen(p) + 1 == len)
			return true;
	return false;
}

/*
 * Check the messages in b from offset from on: all whole and well formed.
 * Returns how many are not WATCH_EVENTs; the last of those in *last.
 */
static unsigned int check_messages(struct evbuffer *b, size_t from,
				   struct xsd_sockmsg *last)
{
	static char payload[XENSTORE_PAYLOAD_MAX + 1];
	size_t total = evbuffer_get_length(b);
	unsigned int replies = 0;
	struct evbuffer_ptr pos;

	CHECK(from <= total, "output queue shrank");
	while (from < total) {
		struct xsd_sockmsg h;

		CHECK(total - from >= WIRE_HDR_LEN, "partial header queued");
		CHECK(evbuffer_ptr_set(b, &pos, from, EVBUFFER_PTR_SET) == 0,
		      "evbuffer_ptr_set");
		CHECK(evbuffer_copyout_from(b, &pos, &h, sizeof(h)) ==
		      (ssize_t)sizeof(h), "copyout header");
		CHECK(h.len <= XENSTORE_PAYLOAD_MAX,
		      "message of %u bytes queued", (unsigned int)h.len);
		CHECK(total - from - WIRE_HDR_LEN >= h.len,
		      "partial payload queued");
		from += WIRE_HDR_LEN;
		if (h.len) {
			CHECK(evbuffer_ptr_set(b, &pos, from,
					       EVBUFFER_PTR_SET) == 0,
			      "evbuffer_ptr_set");
			CHECK(evbuffer_copyout_from(b, &pos, payload, h.len) ==
			      (ssize_t)h.len, "copyout payload");
		}
		payload[h.len] = '\0';
		from += h.len;
		if (h.type == XS_WATCH_EVENT) {
			CHECK(h.req_id == 0 && h.tx_id == 0,
			      "watch event with req_id %u tx_id %u",
			      (unsigned int)h.req_id, (unsigned int)h.tx_id);
			CHECK(h.len >= 2 && payload[h.len - 1] == '\0' &&
			      strlen(payload) + 1 < h.len,
			      "watch event without path and token");
			continue;
		}
		if (h.type == XS_ERROR)
			CHECK(known_error(payload, h.len),
			      "ERROR reply \"%s\" (%u bytes)", payload,
			      (unsigned int)h.len);
		else
			CHECK(h.type < XS_TYPE_MAX, "reply of type %u",
			      (unsigned int)h.type);
		replies++;
		*last = h;
	}
	return replies;
}

/* The client of c reads whole messages, at least limit bytes if there. */
static void client_reads(struct conn *c, size_t limit)
{
	struct xsd_sockmsg last, h;
	size_t n = 0, total;

	if (c->closing)
		return;
	total = evbuffer_get_length(c->out);
	check_messages(c->out, 0, &last);
	while (n < limit && n < total) {
		struct evbuffer_ptr pos;

		evbuffer_ptr_set(c->out, &pos, n, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(c->out, &pos, &h, sizeof(h));
		n += WIRE_HDR_LEN + h.len;
	}
	evbuffer_drain(c->out, n);
	conn_output_drained(c);
}

/* The first bytes of a payload, NULs as '|', others escaped. */
static const char *show(const char *p, size_t len, char *buf, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < size; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == '\0')
			buf[o++] = '|';
		else if (ch >= 0x20 && ch < 0x7f)
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
	}
	buf[o] = '\0';
	return buf;
}

static void print_exchange(const struct conn *c, const struct request *req,
			   size_t before)
{
	char a[120], b[120], p[XENSTORE_PAYLOAD_MAX];
	struct xsd_sockmsg h, reply = { 0 };
	struct evbuffer_ptr pos;
	unsigned int events = 0;

	b[0] = '\0';
	/* The reply is the message queued that is no watch event. */
	while (!c->closing && before < evbuffer_get_length(c->out)) {
		evbuffer_ptr_set(c->out, &pos, before, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(c->out, &pos, &h, sizeof(h));
		evbuffer_ptr_set(c->out, &pos, before + sizeof(h),
				 EVBUFFER_PTR_SET);
		before += sizeof(h) + h.len;
		if (h.type == XS_WATCH_EVENT) {
			events++;
			continue;
		}
		reply = h;
		h.len = h.len < sizeof(p) ? h.len : sizeof(p);
		evbuffer_copyout_from(c->out, &pos, p, h.len);
		show(p, h.len, b, sizeof(b));
	}
	fprintf(stderr, "d%u %s tx %u \"%s\" -> %s \"%s\" (+%u events)\n",
		(unsigned int)c->who.domid, wire_type_name(req->hdr.type),
		(unsigned int)req->hdr.tx_id,
		show(req->payload, req->hdr.len, a, sizeof(a)),
		c->closing ? "(closed)" : wire_type_name(reply.type), b,
		events);
}

/* ---- dispatch: the daemon's, with file names made harmless ---- */

static const struct request *harmless(const struct request *req,
				      struct request *copy, char *buf)
{
	const char *argv[16];
	unsigned int argc;
	size_t len = 0;
	bool logfile;

	if (req->hdr.type != XS_CONTROL)
		return req;
	argc = wire_split(req, argv, 16);
	if (argc < 2)
		return req;
	logfile = strcmp(argv[0], "logfile") == 0;
	if (!logfile && strcmp(argv[0], "memreport") != 0)
		return req;
	for (unsigned int i = 0; i < argc; i++) {
		/* memreport refuses relative names; logfile puts them in
		 * XS_TRACE_DIR. */
		const char *a = i && argv[i][0] &&
				(logfile || argv[i][0] == '/')
				? "/dev/null" : argv[i];
		size_t n = strlen(a) + 1;

		memcpy(buf + len, a, n);
		len += n;
	}
	buf[len] = '\0';
	*copy = *req;
	copy->hdr.len = (uint32_t)len;
	copy->payload = buf;
	return copy;
}

static void fuzz_dispatch(struct conn *c, const struct request *req)
{
	static char buf[XENSTORE_PAYLOAD_MAX + 16 * 16];
	struct request copy;
	struct xsd_sockmsg reply;
	size_t before;
	unsigned int replies;

	CHECK(!c->closing, "request dispatched on a closed connection");
	CHECK(req->hdr.len <= XENSTORE_PAYLOAD_MAX &&
	      req->payload[req->hdr.len] == '\0', "badly framed request");
	before = evbuffer_get_length(c->out);
	ops_dispatch(c, harmless(req, &copy, buf));
	if (verbose)
		print_exchange(c, req, before);
	if (c->closing)
		return;
	replies = check_messages(c->out, before, &reply);
	CHECK(replies == 1, "%u replies to one request of type %u", replies,
	      (unsigned int)req->hdr.type);
	CHECK(reply.req_id == req->hdr.req_id && reply.tx_id == req->hdr.tx_id,
	      "reply to (req_id %u, tx_id %u) says (%u, %u)",
	      (unsigned int)req->hdr.req_id, (unsigned int)req->hdr.tx_id,
	      (unsigned int)reply.req_id, (unsigned int)reply.tx_id);
	CHECK(reply.type == req->hdr.type || reply.type == XS_ERROR,
	      "reply of type %u to a request of type %u",
	      (unsigned int)reply.type, (unsigned int)req->hdr.type);
}

/* ---- the harness ---- */

static void loop_turn(void)
{
	CHECK(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK) >= 0,
	      "event_base_loop failed");
}

/* Bytes arrive for s; the transport tells the connection if notify. */
static void feed(struct slot *s, const uint8_t *p, size_t n, bool notify)
{
	struct conn *c = slot_conn(s);

	CHECK(evbuffer_add(c->in, p, n) == 0, "out of memory");
	if (notify && tp_of(c)->reading)
		conn_handle_input(c);
}

static void hang_up(struct slot *s)
{
	if (s->c && !s->c->closing)
		conn_close(s->c, "closed by the client");
}

/* What domains/domain.c does to the server when a guest comes or goes. */
static void domain_event(struct slot *s, unsigned int what)
{
	if (s->socket)
		return;		/* dom0 stays */
	switch (what) {
	case 0:
		server_fire_special(&srv, "@introduceDomain", s->domid);
		break;
	case 1:
		hang_up(s);
		server_forget_domain(&srv, s->domid);
		server_fire_special(&srv, "@releaseDomain", s->domid);
		break;
	case 2:
	case 3:
		s->target = what == 3 ? DOMID_NONE : s->domid == 5 ? 6 : 5;
		if (s->c && !s->c->closing)
			s->c->who.target = s->target;
		break;
	}
}

static void check_store(const char *what, const char *path, void *arg)
{
	(void)arg;
	fprintf(stderr, "fuzz-dispatch: store check: %s: %s\n", path, what);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	base = event_base_new();
	CHECK(base, "event_base_new failed");
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	CHECK(log_open(LOG_TO_FILE, "/dev/null", LOG_LVL_ERROR) == 0,
	      "cannot log to /dev/null");
	CHECK(trace_set_file("/dev/null", false) == 0,
	      "cannot trace to /dev/null");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i = 1;
	unsigned int problems;

	if (size < 1)
		return 0;
	/* Per-input state of the daemon's globals: as a fresh start. */
	log_current_level = data[0] & 2 ? LOG_LVL_DEBUG : LOG_LVL_ERROR;
	trace_stop();
	trace_control("+io");
	trace_control("+conn");

	CHECK(server_init(&srv, base, ops_dispatch) == 0, "server_init failed");
	srv.hooks.dispatch = fuzz_dispatch;
	if (data[0] & 1)
		srv.priv_domid = 6;
	for (unsigned int k = 0; k < NSLOTS; k++)
		slots[k] = (struct slot){ .domid = k == 1 ? 5 : k == 2 ? 6 : 0,
					  .target = DOMID_NONE,
					  .socket = k == 0 || k == 3 };
	for (unsigned int k = 0; k < NSLOTS; k++)
		slot_conn(&slots[k]);

	while (i < size) {
		uint8_t ctl = data[i++];
		struct slot *s = &slots[ctl & 3];

		if (ctl < 0xb0) {
			struct xsd_sockmsg h;
			size_t n = size - i;

			if (n >= WIRE_HDR_LEN) {
				memcpy(&h, data + i, sizeof(h));
				n = WIRE_HDR_LEN;
				if (h.len <= XENSTORE_PAYLOAD_MAX)
					n += h.len < size - i - WIRE_HDR_LEN
					     ? h.len : size - i - WIRE_HDR_LEN;
			}
			feed(s, data + i, n, ctl < 0x80);
			i += n;
		} else if (ctl < 0xc0) {
			domain_event(s, (ctl >> 2) & 3);
		} else if (ctl < 0xc8) {
			size_t n = i < size ? data[i++] : 0;

			if (n > size - i)
				n = size - i;
			feed(s, data + i, n, !(ctl & 4));
			i += n;
		} else if (ctl < 0xd0) {
			feed(s, data + i, 0, true);
		} else if (ctl < 0xe0) {
			static const size_t limits[] = {
				SIZE_MAX, 16 * 1024, 64 * 1024, 192 * 1024,
			};

			if (s->c)
				client_reads(s->c, limits[(ctl >> 2) & 3]);
		} else if (ctl < 0xf0) {
			loop_turn();
		} else {
			hang_up(s);
		}
	}

	/* Every client reads until nothing is left to do. */
	for (unsigned int round = 0; round < DRAIN_ROUNDS; round++) {
		for (unsigned int k = 0; k < NSLOTS; k++)
			if (slots[k].c)
				client_reads(slots[k].c, SIZE_MAX);
		if (!event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE |
						     EVENT_BASE_COUNT_ADDED))
			break;
		loop_turn();
	}

	problems = store_check(&srv.store, check_store, NULL);
	CHECK(problems == 0, "store_check found %u problems", problems);

	server_destroy(&srv);
	CHECK(srv.nconns == 0 && LIST_EMPTY(&srv.conns),
	      "connections left after server_destroy");
	for (unsigned int k = 0; k < NSLOTS; k++)
		CHECK(!slots[k].c, "slot %u not freed", k);
	CHECK(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED |
					      EVENT_BASE_COUNT_ACTIVE) == 0,
	      "events left in the loop after server_destroy");
	trace_stop();
	return 0;
}
