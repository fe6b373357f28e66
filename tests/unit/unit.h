/*
 * tests/unit: what every Check suite shares.
 *
 * unit_main() runs one suite and turns its result into the exit status;
 * run with CK_TAP_LOG_FILE_NAME=- for TAP on stdout (what `prove` reads).
 * unit_request() builds a request the way conn/ frames one (payload
 * followed by an extra NUL).  The fake transport records what a
 * connection asks of its medium and owns the two evbuffers it is given.
 *
 * Everything here is static inline so a suite that does not use a helper
 * compiles cleanly under -Werror.
 */
#ifndef XS_TESTS_UNIT_H
#define XS_TESTS_UNIT_H

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn/conn.h"
#include "protocol/wire.h"

/* A string literal as (bytes, length without the literal's own NUL). */
#define UNIT_BYTES(lit) (lit), (sizeof(lit) - 1)

/* Run s; 0 when every test passed. */
static inline int unit_main(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static inline int unit_remove_one(const char *path, const struct stat *sb,
				  int type, struct FTW *ftw)
{
	(void)sb, (void)type, (void)ftw;
	if (remove(path) != 0)
		perror(path);
	return 0;
}

/* Remove a scratch directory and whatever a test left in it (the
 * database's journals and spares as well as its file). */
static inline void unit_remove_dir(const char *dir)
{
	nftw(dir, unit_remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* The bytes of b (left in it) as one malloc'd block of exactly their
 * length, so a read past the end is ASan's to catch. */
static inline unsigned char *unit_take(struct evbuffer *b, size_t *len)
{
	unsigned char *p;

	*len = evbuffer_get_length(b);
	p = malloc(*len ? *len : 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(evbuffer_copyout(b, p, *len), (ssize_t)*len);
	return p;
}

/* A copy of p[0..len) in a block of exactly len bytes. */
static inline unsigned char *unit_exact(const void *p, size_t len)
{
	unsigned char *q = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(q);
	if (len)
		memcpy(q, p, len);
	return q;
}

/* Let the event loop run what is due now (zero-timeout timers: a closed
 * connection's free, a resume), without waiting. */
static inline void unit_loop_once(struct event_base *b)
{
	ck_assert_int_ge(event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
}

/* A request and the bytes its payload points at. */
struct unit_req {
	struct request req;
	char buf[XENSTORE_PAYLOAD_MAX + 1];
};

/* Fill u with one request; payload gets the framer's extra NUL. */
static inline const struct request *
unit_request(struct unit_req *u, uint32_t type, uint32_t req_id,
	     uint32_t tx_id, const void *payload, size_t len)
{
	ck_assert_uint_le(len, XENSTORE_PAYLOAD_MAX);
	memset(&u->req, 0, sizeof(u->req));
	u->req.hdr.type = type;
	u->req.hdr.req_id = req_id;
	u->req.hdr.tx_id = tx_id;
	u->req.hdr.len = (uint32_t)len;
	if (len)
		memcpy(u->buf, payload, len);
	u->buf[len] = '\0';
	u->req.payload = u->buf;
	return &u->req;
}

/* Append one packet (header + payload) to an evbuffer. */
static inline void unit_add_packet(struct evbuffer *b, uint32_t type,
				   uint32_t req_id, uint32_t tx_id,
				   const void *payload, size_t len)
{
	struct xsd_sockmsg hdr = { .type = type, .req_id = req_id,
				   .tx_id = tx_id, .len = (uint32_t)len };

	ck_assert_int_eq(evbuffer_add(b, &hdr, sizeof(hdr)), 0);
	if (len)
		ck_assert_int_eq(evbuffer_add(b, payload, len), 0);
}

/*
 * Take one message off the front of b: its header into *hdr and its
 * payload (NUL-terminated for convenience) into buf, which holds
 * XENSTORE_PAYLOAD_MAX + 1 bytes.  Fails the test if none is complete.
 */
static inline void unit_take_packet(struct evbuffer *b,
				    struct xsd_sockmsg *hdr, char *buf)
{
	ck_assert_uint_ge(evbuffer_get_length(b), sizeof(*hdr));
	ck_assert_int_eq(evbuffer_remove(b, hdr, sizeof(*hdr)),
			 (int)sizeof(*hdr));
	ck_assert_uint_le(hdr->len, XENSTORE_PAYLOAD_MAX);
	ck_assert_uint_ge(evbuffer_get_length(b), hdr->len);
	if (hdr->len)
		ck_assert_int_eq(evbuffer_remove(b, buf, hdr->len),
				 (int)hdr->len);
	buf[hdr->len] = '\0';
}

/* What a connection asked of the fake transport. */
struct unit_tp {
	unsigned int kicks;
	unsigned int reading_off, reading_on;	/* set_reading calls */
	bool reading;				/* last state asked for */
	unsigned int closes;
	unsigned int frees;
	unsigned int read_nows;			/* read_now calls */
	struct evbuffer *in, *out;		/* owned; freed by the free hook */
};

static inline void unit_tp_kick(struct conn *c)
{
	((struct unit_tp *)c->tp_data)->kicks++;
}

static inline void unit_tp_set_reading(struct conn *c, bool on)
{
	struct unit_tp *t = c->tp_data;

	if (on)
		t->reading_on++;
	else
		t->reading_off++;
	t->reading = on;
}

static inline void unit_tp_close(struct conn *c)
{
	((struct unit_tp *)c->tp_data)->closes++;
}

static inline void unit_tp_free(struct conn *c)
{
	struct unit_tp *t = c->tp_data;

	t->frees++;
	evbuffer_free(t->in);
	evbuffer_free(t->out);
	t->in = t->out = NULL;
}

/* The medium had nothing more: its queued input is handled, as the
 * socket's read_now would after reading. */
static inline void unit_tp_read_now(struct conn *c)
{
	((struct unit_tp *)c->tp_data)->read_nows++;
	conn_handle_input(c);
}

static inline const struct conn_transport *unit_transport(void)
{
	static const struct conn_transport tp = {
		.kind = "fake",
		.kick = unit_tp_kick,
		.set_reading = unit_tp_set_reading,
		.close = unit_tp_close,
		.free = unit_tp_free,
		.read_now = unit_tp_read_now,
	};

	return &tp;
}

/*
 * A connection of domid on srv over the fake transport t (made fresh here),
 * privileged or not: a socket client of dom0, or a guest.
 */
#define unit_server_conn(srv, t, domid, privileged) \
	(unit_tp_init(t), \
	 server_new_conn((srv), unit_transport(), (t), (t)->in, (t)->out, \
			 (domid), (privileged)))

/* Fresh queues for t, handed to conn_new or server_new_conn. */
static inline void unit_tp_init(struct unit_tp *t)
{
	memset(t, 0, sizeof(*t));
	t->reading = true;
	t->in = evbuffer_new();
	t->out = evbuffer_new();
	ck_assert_ptr_nonnull(t->in);
	ck_assert_ptr_nonnull(t->out);
}

#endif
