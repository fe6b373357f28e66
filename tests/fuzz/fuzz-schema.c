/*
 * fuzz-schema: the decoders of every persisted record (schema/schema.h)
 * against untrusted bytes: a database file or a live-update image someone
 * else wrote (libFuzzer target).
 *
 * Input: one byte that picks the record (its value modulo N_RECORDS),
 * then the record's bytes, copied to an allocation of exactly their
 * length so ASan sees any read past them.  A record a decoder accepts
 * must encode back to the very same bytes: each has one encoding, so a
 * decoder that accepts more than its encoder writes has let something
 * through unchecked.  The image's stream (its head, then socket clients
 * with their watches, then guests' queues) is read as live update reads
 * it, and checked the same way.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "schema/schema.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "fuzz-schema";

enum {
	R_FORMAT, R_NODE, R_DOMAIN, R_INPUT, R_WATCHES, R_QUOTAS, R_IMAGE,
	R_QUOTAS_V1,
	N_RECORDS
};

static struct evbuffer *out;
static struct writer w;

static void restart(void)
{
	evbuffer_drain(out, evbuffer_get_length(out));
	wr_init(&w, out);
}

/* What the encoder wrote is p[0..len). */
static void same(const void *p, size_t len, const char *what)
{
	size_t n = evbuffer_get_length(out);
	unsigned char *q = evbuffer_pullup(out, -1);

	CHECK(wr_ok(&w), "%s: no memory to encode", what);
	CHECK(n == len && (!n || memcmp(q, p, n) == 0),
	      "%s: accepted, but encodes to other bytes (%zu, not %zu)",
	      what, n, len);
}

static int put_watch(const struct schema_watch *sw, void *arg)
{
	(void)arg;
	CHECK(strlen(sw->path) >= sw->strip && sw->depth >= -1,
	      "a watch out of range accepted");
	schema_write_watch(&w, sw);
	return 0;
}

static int put_quota(const struct schema_quota *q, void *arg)
{
	(void)arg;
	CHECK(*q->name, "a quota without a name accepted");
	schema_write_quota(&w, q);
	return 0;
}

static int count_quota(const struct schema_quota *q, void *arg)
{
	(void)q;
	++*(uint32_t *)arg;
	return 0;
}

static void node(const unsigned char *p, size_t len)
{
	static struct perm perms[4096];
	struct schema_node n;

	/* The key: a path, or the record's first bytes up to a NUL. */
	if (!schema_decode_node("/fuzz", 5, p, len, &n))
		return;
	/* born may be 0: a journal's "as before". */
	CHECK(n.nperms && n.nperms <= sizeof(perms) / sizeof(perms[0]),
	      "a node out of range accepted");
	for (uint32_t i = 0; i < n.nperms; i++) {
		perms[i] = schema_node_perm(&n, i);
		CHECK(perms[i].domid < STORE_DOMIDS, "a domid out of range");
	}
	n.perms = perms;
	schema_write_node(&w, &n);
	same(p, len, "node");
}

/* One queues record read from r and written again to w, through in and o
 * as the daemon's buffers would hold it. */
static bool queues_again(struct reader *r, struct evbuffer *in,
			 struct evbuffer *o)
{
	struct schema_queues q;

	if (!schema_read_queues(r, &q))
		return false;
	evbuffer_drain(in, evbuffer_get_length(in));
	evbuffer_drain(o, evbuffer_get_length(o));
	evbuffer_add(in, q.in, q.in_len);
	evbuffer_add(o, q.out, q.out_len);
	schema_write_queues(&w, q.id, in, q.in_len, o, NULL, 0);
	return true;
}

static void image(const unsigned char *p, size_t len)
{
	struct schema_lu_head h;
	struct evbuffer *in = evbuffer_new(), *o = evbuffer_new();
	struct reader r;
	uint32_t version, n;
	bool whole = false;

	CHECK(in && o, "out of memory");
	rd_init(&r, p, len);
	if (schema_read_lu_head(&r, &h, &version) != SCHEMA_OURS)
		goto out;
	schema_write_lu_head(&w, &h);
	if (!schema_read_queues_count(&r, &n))
		goto out;
	schema_write_queues_count(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		if (!queues_again(&r, in, o))
			goto out;
		/* Its watch list: the count as read, then each watch. */
		{
			struct reader peek = r;

			schema_write_watch_count(&w, rd_u32(&peek));
		}
		if (schema_read_watches(&r, put_watch, NULL) != 0)
			goto out;
	}
	if (!schema_read_queues_count(&r, &n))
		goto out;
	schema_write_queues_count(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		if (!queues_again(&r, in, o))
			goto out;
	}
	whole = rd_done(&r);
out:
	if (whole)
		same(p, len, "image");
	evbuffer_free(in);
	evbuffer_free(o);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	out = evbuffer_new();
	CHECK(out, "out of memory");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *p;
	size_t len;
	uint32_t v, soft, nq = 0;
	struct schema_domain d;
	struct schema_input in;

	if (size < 1)
		return 0;
	p = after_mode_byte(data, size, &len);
	restart();
	switch (data[0] % N_RECORDS) {
	case R_FORMAT:
		/* An older version is read, but written as this one. */
		if (schema_decode_format(p, len, &v) == SCHEMA_OURS &&
		    v == SCHEMA_DB_VERSION) {
			schema_write_format(&w);
			same(p, len, "format");
		}
		break;
	case R_NODE:
		node(p, len);
		break;
	case R_DOMAIN:
		if (schema_decode_domain(p, len, &d)) {
			schema_write_domain(&w, &d);
			same(p, len, "domain");
		}
		break;
	case R_INPUT:
		if (schema_decode_input(p, len, &in)) {
			struct evbuffer *b = evbuffer_new();

			CHECK(b && evbuffer_add(b, in.bytes, in.len) == 0,
			      "out of memory");
			schema_write_input(&w, in.end, b);
			evbuffer_free(b);
			same(p, len, "input");
		}
		break;
	case R_WATCHES:
		if (len >= 4) {
			struct reader r;

			rd_init(&r, p, len);
			schema_write_watch_count(&w, rd_u32(&r));
		}
		if (schema_decode_watches(p, len, put_watch, NULL) == 0)
			same(p, len, "watches");
		break;
	case R_QUOTAS:
		if (schema_decode_quotas(p, len, SCHEMA_DB_VERSION, &soft, count_quota, &nq) == 0) {
			schema_write_quotas_head(&w, soft, nq);
			schema_decode_quotas(p, len, SCHEMA_DB_VERSION, &soft, put_quota, NULL);
			same(p, len, "quotas");
		}
		break;
	case R_IMAGE:
		image(p, len);
		break;
	case R_QUOTAS_V1:	/* read from an old file, never written */
		schema_decode_quotas(p, len, 1, &soft, count_quota, &nq);
		break;
	}
	free(p);
	return 0;
}
