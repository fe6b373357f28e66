/*
 * schema: every persisted record round-trips through its encoder and
 * decoder, and its decoder refuses what its field cannot hold.  Each
 * record is also cut at every length and refused there, and every input
 * is a heap block of exactly its length, so an ASan build catches a read
 * past the end.
 */
#include "tests/unit/unit.h"

#include "schema/schema.h"

/* A fresh writer on b (emptied). */
static struct writer *fresh(struct evbuffer *b)
{
	static struct writer w;

	evbuffer_drain(b, evbuffer_get_length(b));
	wr_init(&w, b);
	return &w;
}

/* decode refuses every proper prefix of p, and p with a byte more. */
static void every_cut_refused(const unsigned char *p, size_t len,
			      bool (*decode)(const void *p, size_t len))
{
	for (size_t cut = 0; cut < len; cut++) {
		unsigned char *q = unit_exact(p, cut);

		ck_assert_msg(!decode(q, cut), "cut at %zu of %zu: accepted",
			      cut, len);
		free(q);
	}
	{
		unsigned char *q = malloc(len + 1);

		ck_assert_ptr_nonnull(q);
		memcpy(q, p, len);
		q[len] = 0;
		ck_assert_msg(!decode(q, len + 1), "a byte left over: accepted");
		free(q);
	}
}

/* ---------------------------------------------------------------- keys */

START_TEST(keys_name_the_domain)
{
	char k[SCHEMA_KEY_MAX];

	schema_key_domain(k, 5);
	ck_assert_str_eq(k, "#domain/5");
	schema_key_input(k, 32752);
	ck_assert_str_eq(k, "#input/32752");
	schema_key_watches(k, 4294967295u);
	ck_assert_str_eq(k, "#watches/4294967295");
	ck_assert(strncmp(k, SCHEMA_PREFIX_WATCHES,
			  strlen(SCHEMA_PREFIX_WATCHES)) == 0);
	ck_assert(!schema_key_is_node(SCHEMA_KEY_FORMAT, 7));
	ck_assert(!schema_key_is_node(SCHEMA_KEY_QUOTAS, 7));
	ck_assert(schema_key_is_node("/a", 2));
	ck_assert(schema_key_is_node("@releaseDomain", 14));
}
END_TEST

/* -------------------------------------------------------------- format */

static bool format_ok(const void *p, size_t len)
{
	uint32_t v;

	return schema_decode_format(p, len, &v) == SCHEMA_OURS;
}

START_TEST(format_is_ours_or_says_which_version)
{
	struct evbuffer *b = evbuffer_new();
	struct writer *w = fresh(b);
	unsigned char *p;
	uint32_t v = 0;
	size_t len;

	schema_write_format(w);
	ck_assert(wr_ok(w));
	p = unit_take(b, &len);
	ck_assert_int_eq(schema_decode_format(p, len, &v), SCHEMA_OURS);
	ck_assert_uint_eq(v, SCHEMA_DB_VERSION);
	every_cut_refused(p, len, format_ok);
	/* The version is the last four bytes.  1 to 3 are still read (an
	 * upgrade keeps the host's state); 5 is a newer daemon's, 0
	 * nobody's. */
	for (unsigned char old = 1; old <= 3; old++) {
		p[len - 4] = old;
		ck_assert_int_eq(schema_decode_format(p, len, &v), SCHEMA_OURS);
		ck_assert_uint_eq(v, old);
	}
	p[len - 4] = 5;
	ck_assert_int_eq(schema_decode_format(p, len, &v), SCHEMA_OTHER_VERSION);
	ck_assert_uint_eq(v, 5);
	p[len - 4] = 0;
	ck_assert_int_eq(schema_decode_format(p, len, &v), SCHEMA_OTHER_VERSION);
	p[4] = 'X';
	ck_assert_int_eq(schema_decode_format(p, len, &v), SCHEMA_FOREIGN);
	free(p);
	evbuffer_free(b);
}
END_TEST

/* --------------------------------------------------------------- nodes */

static const struct perm two_perms[] = {
	{ 5, PERM_READ }, { 65535, PERM_WRITE | PERM_IGNORE },
};

/* The record of a node with n perms (from perms), born and value. */
static unsigned char *node_encoded(uint64_t born, const struct perm *perms,
				   uint32_t n, const void *value,
				   uint32_t vlen, size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	struct schema_node sn = {
		.born = born, .nperms = n, .perms = perms,
		.value = value, .value_len = vlen,
	};
	struct writer *w = fresh(b);
	unsigned char *p;

	schema_write_node(w, &sn);
	ck_assert(wr_ok(w));
	p = unit_take(b, len);
	evbuffer_free(b);
	return p;
}

/* The record of a node with two_perms and value. */
static unsigned char *node_bytes(uint64_t born, const void *value,
				 uint32_t vlen, size_t *len)
{
	return node_encoded(born, two_perms, 2, value, vlen, len);
}

static bool node_ok(const void *p, size_t len)
{
	struct schema_node n;

	return schema_decode_node("/a", 2, p, len, &n);
}

START_TEST(node_round_trips)
{
	struct schema_node n;
	unsigned char *p;
	size_t len;
	struct perm e;

	p = node_bytes(77, "va\0ue", 5, &len);
	ck_assert(schema_decode_node("/a/b", 4, p, len, &n));
	ck_assert(n.born == 77);
	ck_assert_uint_eq(n.nperms, 2);
	ck_assert_uint_eq(schema_node_perms_len(&n), 16);
	for (uint32_t i = 0; i < 2; i++) {
		e = schema_node_perm(&n, i);
		ck_assert_uint_eq(e.domid, two_perms[i].domid);
		ck_assert_uint_eq(e.access, two_perms[i].access);
	}
	ck_assert_uint_eq(n.value_len, 5);
	ck_assert_mem_eq(n.value, "va\0ue", 5);
	every_cut_refused(p, len, node_ok);
	free(p);
	/* An empty value. */
	p = node_bytes(1, NULL, 0, &len);
	ck_assert(schema_decode_node("@introduceDomain", 16, p, len, &n));
	ck_assert_uint_eq(n.value_len, 0);
	free(p);
}
END_TEST

/* A put encoded in place (the journal's, a change at a time) is byte for
 * byte what the writers make of the same change. */
START_TEST(node_put_in_place_is_the_writers_encoding)
{
	static const char *values[] = { "va\0ue", "" };

	for (size_t i = 0; i < 2; i++) {
		uint32_t vlen = (uint32_t)(i ? 0 : 5);
		struct schema_node n = {
			.born = 0x1122334455667788ull, .nperms = 2,
			.perms = two_perms, .value = values[i],
			.value_len = vlen,
		};
		struct evbuffer *b = evbuffer_new();
		size_t node_len, want_len, len = schema_put_node_len(8, &n);
		unsigned char *node = node_bytes(n.born, values[i], vlen,
						 &node_len), *want;
		unsigned char *got = malloc(len);
		struct schema_change c = {
			.put = true, .key = "/a/b/ccc", .key_len = 8,
			.value = node, .value_len = node_len,
		};
		struct writer *w = fresh(b);

		schema_write_change(w, &c);
		ck_assert(wr_ok(w));
		want = unit_take(b, &want_len);
		ck_assert_ptr_nonnull(got);
		schema_put_node_at(got, "/a/b/ccc", 8, &n);
		ck_assert_uint_eq(len, want_len);
		ck_assert_mem_eq(got, want, len);
		free(got);
		free(want);
		free(node);
		evbuffer_free(b);
	}
}
END_TEST

START_TEST(node_out_of_range_is_refused)
{
	static char big[XENSTORE_PAYLOAD_MAX + 1];
	struct schema_node n;
	unsigned char *p;
	size_t len;

	/* Born 0: a journal's "as before", which whoever restores the
	 * node resolves (store_restore refuses a 0). */
	p = node_bytes(0, "v", 1, &len);
	ck_assert(node_ok(p, len));
	ck_assert_uint_eq(schema_record_born("/a", 2, p, len), 0);
	schema_node_set_born(p, 0x0102030405060708ull);
	ck_assert_uint_eq(schema_record_born("/a", 2, p, len),
			  0x0102030405060708ull);
	ck_assert_uint_eq(schema_record_born("#quotas", 7, p, len), 0);
	ck_assert_uint_eq(schema_record_born("/a", 2, p, 7), 0);
	ck_assert(node_ok(p, len));
	free(p);
	/* A value over a payload. */
	p = node_bytes(3, big, sizeof(big), &len);
	ck_assert(!node_ok(p, len));
	free(p);
	p = node_bytes(3, "v", 1, &len);
	ck_assert(node_ok(p, len));
	/* Keys: empty, a '#' record's, with a NUL, too long. */
	ck_assert(!schema_decode_node("", 0, p, len, &n));
	ck_assert(!schema_decode_node("#quotas", 7, p, len, &n));
	ck_assert(!schema_decode_node("/a\0b", 4, p, len, &n));
	ck_assert(!schema_decode_node(big, sizeof(big), p, len, &n));
	/* No permissions: the count at byte 8. */
	p[8] = 0;
	ck_assert(!node_ok(p, len));
	/* More than there are bytes for. */
	p[8] = 0xff;
	ck_assert(!node_ok(p, len));
	p[8] = 2;
	ck_assert(node_ok(p, len));
	/* A domid past the store's (entry 0's at byte 12). */
	p[14] = 1;
	ck_assert(!node_ok(p, len));
	p[14] = 0;
	/* An access bit never stored (PERM_OWNER). */
	p[16] = PERM_OWNER;
	ck_assert(!node_ok(p, len));
	free(p);
}
END_TEST

/* ------------------------------------------------------------- domains */

static bool domain_ok(const void *p, size_t len)
{
	struct schema_domain d;

	return schema_decode_domain(p, len, &d);
}

START_TEST(domain_round_trips)
{
	struct evbuffer *b = evbuffer_new();
	struct schema_domain d = {
		.domid = 7, .gfn = 0x123456789aULL, .port = 33,
		.features = 3, .target = UINT32_MAX, .introduced = true,
		.shutdown_seen = false,
	}, got;
	struct writer *w = fresh(b);
	unsigned char *p;
	size_t len;

	schema_write_domain(w, &d);
	p = unit_take(b, &len);
	ck_assert_uint_eq(len, 4 + 8 + 4 + 4 + 4 + 1 + 1);
	ck_assert(schema_decode_domain(p, len, &got));
	ck_assert_uint_eq(got.domid, 7);
	ck_assert(got.gfn == 0x123456789aULL);
	ck_assert_uint_eq(got.port, 33);
	ck_assert_uint_eq(got.features, 3);
	ck_assert_uint_eq(got.target, UINT32_MAX);
	ck_assert(got.introduced && !got.shutdown_seen);
	every_cut_refused(p, len, domain_ok);
	/* A bool is 0 or 1. */
	p[len - 1] = 2;
	ck_assert(!domain_ok(p, len));
	free(p);
	evbuffer_free(b);
}
END_TEST

/* --------------------------------------------------------------- input */

static bool input_ok(const void *p, size_t len)
{
	struct schema_input in;

	return schema_decode_input(p, len, &in);
}

/* The record of an input of n bytes: a header for len, then payload. */
static unsigned char *input_bytes(uint32_t hdr_len, size_t n, size_t *len)
{
	static unsigned char raw[WIRE_HDR_LEN + XENSTORE_PAYLOAD_MAX + 8];
	struct evbuffer *b = evbuffer_new(), *src = evbuffer_new();
	struct xsd_sockmsg hdr = { .type = XS_WRITE, .len = hdr_len };
	struct writer *w = fresh(b);
	unsigned char *p;

	memset(raw, 'x', sizeof(raw));
	memcpy(raw, &hdr, sizeof(hdr));
	ck_assert_int_eq(evbuffer_add(src, raw, n), 0);
	schema_write_input(w, 1234, src);
	ck_assert_uint_eq(evbuffer_get_length(src), n);	/* src kept */
	p = unit_take(b, len);
	evbuffer_free(src);
	evbuffer_free(b);
	return p;
}

START_TEST(input_round_trips_and_is_a_request_start)
{
	struct schema_input in;
	unsigned char *p;
	size_t len;

	p = input_bytes(100, WIRE_HDR_LEN + 10, &len);
	ck_assert(schema_decode_input(p, len, &in));
	ck_assert_uint_eq(in.end, 1234);
	ck_assert_uint_eq(in.len, WIRE_HDR_LEN + 10);
	every_cut_refused(p, len, input_ok);
	free(p);
	/* Part of a header only. */
	p = input_bytes(100, 3, &len);
	ck_assert(input_ok(p, len));
	free(p);
	/* Nothing. */
	p = input_bytes(100, 0, &len);
	ck_assert(!input_ok(p, len));
	free(p);
	/* A whole request, or a header claiming more than a payload. */
	p = input_bytes(10, WIRE_HDR_LEN + 10, &len);
	ck_assert(!input_ok(p, len));
	free(p);
	p = input_bytes(XENSTORE_PAYLOAD_MAX + 1, WIRE_HDR_LEN + 10, &len);
	ck_assert(!input_ok(p, len));
	free(p);
}
END_TEST

/* ------------------------------------------------------------- watches */

static const struct schema_watch some_watches[] = {
	{ "/local/domain/5/device", "tok", 15, -1, false },
	{ "@releaseDomain", "", 0, 1, true },
	{ "/", "t2", 0, 0, false },
};

static unsigned char *watches_bytes(const struct schema_watch *ws,
				    uint32_t n, size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	struct writer *w = fresh(b);
	unsigned char *p;

	schema_write_watch_count(w, n);
	for (uint32_t i = 0; i < n; i++)
		schema_write_watch(w, &ws[i]);
	ck_assert(wr_ok(w));
	p = unit_take(b, len);
	evbuffer_free(b);
	return p;
}

struct got_watches {
	unsigned int n;
	int stop_at;		/* fn answers -1 at this one (-1: never) */
};

static int check_watch(const struct schema_watch *sw, void *arg)
{
	struct got_watches *g = arg;
	const struct schema_watch *want = &some_watches[g->n];

	if ((int)g->n == g->stop_at)
		return -1;
	ck_assert_str_eq(sw->path, want->path);
	ck_assert_str_eq(sw->token, want->token);
	ck_assert_uint_eq(sw->strip, want->strip);
	ck_assert_int_eq(sw->depth, want->depth);
	ck_assert_int_eq(sw->held, want->held);
	g->n++;
	return 0;
}

static int any_watch(const struct schema_watch *sw, void *arg)
{
	(void)sw;
	(void)arg;
	return 0;
}

static bool watches_ok(const void *p, size_t len)
{
	return schema_decode_watches(p, len, any_watch, NULL) == 0;
}

START_TEST(watches_round_trip)
{
	struct got_watches g = { 0, -1 };
	struct reader r;
	unsigned char *p;
	size_t len;

	p = watches_bytes(some_watches, 3, &len);
	ck_assert_int_eq(schema_decode_watches(p, len, check_watch, &g), 0);
	ck_assert_uint_eq(g.n, 3);
	every_cut_refused(p, len, watches_ok);
	/* From a stream: the list, and what follows is left. */
	g.n = 0;
	rd_init(&r, p, len);
	ck_assert_int_eq(schema_read_watches(&r, check_watch, &g), 0);
	ck_assert(rd_done(&r));
	/* fn stops it. */
	g = (struct got_watches){ 0, 1 };
	ck_assert_int_eq(schema_decode_watches(p, len, check_watch, &g), -1);
	ck_assert_uint_eq(g.n, 1);
	/* A count past what the bytes can hold. */
	p[0] = 4;
	ck_assert(!watches_ok(p, len));
	p[3] = 0x80;
	ck_assert(!watches_ok(p, len));
	free(p);
	/* None. */
	p = watches_bytes(NULL, 0, &len);
	ck_assert(watches_ok(p, len));
	free(p);
}
END_TEST

START_TEST(watches_out_of_range_are_refused)
{
	static const struct schema_watch bad[] = {
		{ "/a", "t", 3, -1, false },		/* strip past the path */
		{ "/a", "t", 0, -2, false },		/* depth */
		{ "a/b", "t", 0, -1, false },		/* not a path */
		{ "/a//b", "t", 0, -1, false },
	};
	unsigned char *p;
	size_t len;

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = watches_bytes(&bad[i], 1, &len);
		ck_assert_msg(!watches_ok(p, len), "bad watch %u accepted", i);
		free(p);
	}
	/* held is a bool: its byte is the record's last. */
	p = watches_bytes(some_watches, 1, &len);
	p[len - 1] = 7;
	ck_assert(!watches_ok(p, len));
	free(p);
}
END_TEST

/* -------------------------------------------------------------- quotas */

static const struct schema_quota some_quotas[] = {
	{ SCHEMA_QUOTA_GLOBAL, "nodes", 1000 },
	{ SCHEMA_QUOTA_GLOBAL, "a-kind-added-later", 0 },
	{ 5, "watches", 4 },
};

static unsigned char *quotas_bytes(const struct schema_quota *qs, uint32_t n,
				   size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	struct writer *w = fresh(b);
	unsigned char *p;

	schema_write_quotas_head(w, 2097152, n);
	for (uint32_t i = 0; i < n; i++)
		schema_write_quota(w, &qs[i]);
	ck_assert(wr_ok(w));
	p = unit_take(b, len);
	evbuffer_free(b);
	return p;
}

static int check_quota(const struct schema_quota *q, void *arg)
{
	unsigned int *n = arg;

	ck_assert_uint_eq(q->domid, some_quotas[*n].domid);
	ck_assert_str_eq(q->name, some_quotas[*n].name);
	ck_assert_uint_eq(q->value, some_quotas[*n].value);
	++*n;
	return 0;
}

static bool quotas_ok(const void *p, size_t len)
{
	uint32_t soft;

	return schema_decode_quotas(p, len, SCHEMA_DB_VERSION, &soft, NULL, NULL) == 0;
}

START_TEST(quotas_round_trip_by_name)
{
	unsigned char *p;
	unsigned int n = 0;
	uint32_t soft = 0;
	size_t len;

	p = quotas_bytes(some_quotas, 3, &len);
	ck_assert_int_eq(schema_decode_quotas(p, len, SCHEMA_DB_VERSION, &soft, check_quota, &n),
			 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(soft, 2097152);
	every_cut_refused(p, len, quotas_ok);
	free(p);
	/* A quota without a name, or for a domid no store holds. */
	p = quotas_bytes(&(struct schema_quota){ 5, "", 1 }, 1, &len);
	ck_assert(!quotas_ok(p, len));
	free(p);
	p = quotas_bytes(&(struct schema_quota){ 65536, "nodes", 1 }, 1, &len);
	ck_assert(!quotas_ok(p, len));
	free(p);
}
END_TEST

/* Version 1's "#quotas": 9 kinds by position, then the soft limit, then
 * per domain a mask of the kinds set and all 9 values. */
static size_t v1_quotas(uint32_t *u, uint32_t kinds, uint32_t mask)
{
	size_t n = 0;

	u[n++] = kinds;
	for (uint32_t k = 0; k < 9; k++)
		u[n++] = 100 + k;		/* global limits */
	u[n++] = 777;				/* soft */
	u[n++] = 1;				/* one domain */
	u[n++] = 5;
	u[n++] = mask;
	for (uint32_t k = 0; k < 9; k++)
		u[n++] = 50 + k;
	return n * 4;		/* little-endian hosts only, as the daemon */
}

struct v1_seen {
	unsigned int n;
	char names[16][24];
	uint32_t domid[16], value[16];
};

static int see_v1(const struct schema_quota *q, void *arg)
{
	struct v1_seen *s = arg;

	ck_assert_uint_lt(s->n, 16);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", q->name);
	s->domid[s->n] = q->domid;
	s->value[s->n++] = q->value;
	return 0;
}

static bool v1_ok(const void *p, size_t len)
{
	uint32_t soft;

	return schema_decode_quotas(p, len, 1, &soft, NULL, NULL) == 0;
}

START_TEST(version_1_quotas_come_out_by_name)
{
	uint32_t u[32], soft = 0;
	struct v1_seen s = { 0 };
	size_t len = v1_quotas(u, 9, (1u << 0) | (1u << 8));

	ck_assert_int_eq(schema_decode_quotas(u, len, 1, &soft, see_v1, &s), 0);
	ck_assert_uint_eq(soft, 777);
	ck_assert_uint_eq(s.n, 9 + 2);
	/* The globals in version 1's order... */
	ck_assert_str_eq(s.names[0], "nodes");
	ck_assert_uint_eq(s.value[0], 100);
	ck_assert_uint_eq(s.domid[0], SCHEMA_QUOTA_GLOBAL);
	ck_assert_str_eq(s.names[4], "transaction-nodes");
	ck_assert_str_eq(s.names[8], "permissions");
	ck_assert_uint_eq(s.value[8], 108);
	/* ... then only the kinds domain 5 had set. */
	ck_assert_str_eq(s.names[9], "nodes");
	ck_assert_uint_eq(s.domid[9], 5);
	ck_assert_uint_eq(s.value[9], 50);
	ck_assert_str_eq(s.names[10], "permissions");
	ck_assert_uint_eq(s.value[10], 58);
	every_cut_refused((const unsigned char *)u, len, v1_ok);
	/* Another count of kinds, or a mask naming a tenth, is not version 1. */
	len = v1_quotas(u, 10, 1);
	ck_assert(!v1_ok(u, len));
	len = v1_quotas(u, 9, 1u << 9);
	ck_assert(!v1_ok(u, len));
	/* Version 2 bytes are not read as version 1. */
	ck_assert(!v1_ok(u, 8));
}
END_TEST

/* ------------------------------------------------------------- the image */

START_TEST(image_head_round_trips_and_says_which_version)
{
	struct evbuffer *b = evbuffer_new();
	struct schema_lu_head h = { 9, "/run/xenstored/socket" }, got;
	struct writer *w = fresh(b);
	struct reader r;
	unsigned char *p;
	uint32_t v = 0;
	size_t len;

	schema_write_lu_head(w, &h);
	p = unit_take(b, &len);
	rd_init(&r, p, len);
	ck_assert_int_eq(schema_read_lu_head(&r, &got, &v), SCHEMA_OURS);
	ck_assert(rd_done(&r));
	ck_assert_uint_eq(got.listen_fd, 9);
	ck_assert_str_eq(got.listen_path, h.listen_path);
	for (size_t cut = 0; cut < len; cut++) {
		unsigned char *q = unit_exact(p, cut);

		rd_init(&r, q, cut);
		ck_assert_int_ne(schema_read_lu_head(&r, &got, &v), SCHEMA_OURS);
		free(q);
	}
	/* The version follows the magic's 4 + 13 bytes. */
	p[17] = 2;
	rd_init(&r, p, len);
	ck_assert_int_eq(schema_read_lu_head(&r, &got, &v),
			 SCHEMA_OTHER_VERSION);
	ck_assert_uint_eq(v, 2);
	/* The database's magic is not the image's. */
	evbuffer_drain(b, evbuffer_get_length(b));
	schema_write_format(fresh(b));
	free(p);
	p = unit_take(b, &len);
	rd_init(&r, p, len);
	ck_assert_int_eq(schema_read_lu_head(&r, &got, &v), SCHEMA_FOREIGN);
	free(p);
	evbuffer_free(b);
}
END_TEST

START_TEST(queues_round_trip)
{
	struct evbuffer *b = evbuffer_new(), *in = evbuffer_new(),
			*out = evbuffer_new();
	struct schema_queues q;
	struct writer *w = fresh(b);
	struct reader r;
	unsigned char *p;
	uint32_t n;
	size_t len;

	evbuffer_add(in, "request-and-more", 16);
	evbuffer_add(out, "reply", 5);
	schema_write_queues_count(w, 2);
	schema_write_queues(w, 3, in, 7, out, "+OK", 3);
	schema_write_queues(w, 4, in, 0, out, NULL, 0);
	ck_assert(wr_ok(w));
	ck_assert_uint_eq(evbuffer_get_length(in), 16);	/* both kept */
	ck_assert_uint_eq(evbuffer_get_length(out), 5);
	/* More of in than it holds fails the writer. */
	schema_write_queues(w, 5, in, 17, out, NULL, 0);
	ck_assert(!wr_ok(w));
	p = unit_take(b, &len);
	rd_init(&r, p, len);
	ck_assert(schema_read_queues_count(&r, &n));
	ck_assert_uint_eq(n, 2);
	ck_assert(schema_read_queues(&r, &q));
	ck_assert_uint_eq(q.id, 3);
	ck_assert_uint_eq(q.in_len, 7);
	ck_assert_mem_eq(q.in, "request", 7);
	ck_assert_uint_eq(q.out_len, 8);
	ck_assert_mem_eq(q.out, "reply+OK", 8);
	ck_assert(schema_read_queues(&r, &q));
	ck_assert_uint_eq(q.id, 4);
	ck_assert_uint_eq(q.in_len, 0);
	ck_assert_uint_eq(q.out_len, 5);
	ck_assert(rd_done(&r));
	ck_assert(!schema_read_queues(&r, &q));
	/* A count past what the bytes can hold. */
	p[0] = 200;
	rd_init(&r, p, len);
	ck_assert(!schema_read_queues_count(&r, &n));
	ck_assert_uint_eq(n, 0);
	free(p);
	evbuffer_free(in);
	evbuffer_free(out);
	evbuffer_free(b);
}
END_TEST

/* ------------------------------------------------------------ varints */

static uint64_t varint_of(const unsigned char *p, size_t len, bool *ok)
{
	struct reader r;
	uint64_t v;

	rd_init(&r, p, len);
	v = rd_varint(&r);
	*ok = rd_done(&r);
	return v;
}

START_TEST(varints_round_trip_with_one_spelling)
{
	static const uint64_t vs[] = { 0, 1, 127, 128, 16383, 16384,
				       UINT32_MAX, (uint64_t)1 << 63,
				       UINT64_MAX };
	static const size_t lens[] = { 1, 1, 1, 2, 2, 3, 5, 10, 10 };
	unsigned char buf[REC_VARINT_MAX];
	bool ok;

	for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
		size_t len = (size_t)(rec_put_varint(buf, vs[i]) - buf);

		ck_assert_uint_eq(len, lens[i]);
		ck_assert(varint_of(buf, len, &ok) == vs[i] && ok);
		for (size_t cut = 0; cut < len; cut++) {
			(void)varint_of(buf, cut, &ok);
			ck_assert(!ok);
		}
	}
	/* 0 in two bytes; 1 in three. */
	(void)varint_of((const unsigned char[]){ 0x80, 0 }, 2, &ok);
	ck_assert(!ok);
	(void)varint_of((const unsigned char[]){ 0x81, 0x80, 0 }, 3, &ok);
	ck_assert(!ok);
	/* Past 64 bits: a tenth byte above 1, or an eleventh. */
	memset(buf, 0xff, 9);
	buf[9] = 2;
	(void)varint_of(buf, 10, &ok);
	ck_assert(!ok);
	(void)varint_of((const unsigned char[]){ 0xff, 0xff, 0xff, 0xff, 0xff,
						 0xff, 0xff, 0xff, 0xff, 0x81,
						 0 }, 11, &ok);
	ck_assert(!ok);
}
END_TEST

/* --------------------------------------------------------- node blocks */

/* The record of a node with n perms (from perms), born and a string
 * value. */
static unsigned char *node_rec(uint64_t born, const struct perm *perms,
			       uint32_t n, const char *value, size_t *len)
{
	return node_encoded(born, perms, n, value, (uint32_t)strlen(value),
			    len);
}

static const struct perm one_perm[] = { { 0, PERM_NONE } };

/* A block's entries: paths, births (not in order), lists and values. */
static const struct {
	const char *path, *value;
	uint64_t born;
	const struct perm *perms;
	uint32_t n;
} block_nodes[] = {
	{ "/local", "", 2, one_perm, 1 },
	{ "/local/domain", "", 3, one_perm, 1 },
	{ "/local/domain/5", "", 900, two_perms, 2 },
	{ "/local/domain/5/name", "guest", 901, two_perms, 2 },
	{ "/local/domain/5/domid", "5", 4, two_perms, 2 },
	{ "/tool", "x", UINT64_MAX, one_perm, 1 },
	{ "@releaseDomain", "", 1, two_perms, 2 },
};
#define BLOCK_NODES (sizeof(block_nodes) / sizeof(block_nodes[0]))

/* Add block_nodes to b (those from `from` on). */
static void add_block_nodes(struct schema_block *b, size_t from)
{
	for (size_t i = from; i < BLOCK_NODES; i++) {
		size_t len;
		unsigned char *p = node_rec(block_nodes[i].born,
					    block_nodes[i].perms,
					    block_nodes[i].n,
					    block_nodes[i].value, &len);
		struct schema_node n;
		const char *path = block_nodes[i].path;

		ck_assert(schema_decode_node(path, strlen(path), p, len, &n));
		ck_assert(schema_block_add(b, path, strlen(path), &n));
		free(p);
	}
}

/* The content at p holds block_nodes from `from` on, as they were. */
static void block_reads_back(const void *p, size_t len, size_t from)
{
	struct schema_block_reader br = { 0 };
	const void *rec;
	size_t rec_len, i = from;
	int got;

	ck_assert(schema_block_open(&br, p, len));
	while ((got = schema_block_next(&br, &rec, &rec_len)) == 1) {
		size_t want_len;
		unsigned char *want;

		ck_assert_uint_lt(i, BLOCK_NODES);
		want = node_rec(block_nodes[i].born, block_nodes[i].perms,
				block_nodes[i].n, block_nodes[i].value,
				&want_len);
		ck_assert_uint_eq(br.path_len, strlen(block_nodes[i].path));
		ck_assert_mem_eq(br.path, block_nodes[i].path, br.path_len);
		ck_assert_uint_eq(rec_len, want_len);
		ck_assert_mem_eq(rec, want, want_len);
		free(want);
		i++;
	}
	ck_assert_int_eq(got, 0);
	ck_assert_uint_eq(i, BLOCK_NODES);
	schema_block_reader_free(&br);
}

static bool block_ok(const void *p, size_t len)
{
	struct schema_block_reader br = { 0 };
	const void *rec;
	size_t rec_len;
	int got = -1;

	if (schema_block_open(&br, p, len))
		while ((got = schema_block_next(&br, &rec, &rec_len)) == 1)
			;
	schema_block_reader_free(&br);
	return got == 0;
}

START_TEST(node_block_round_trips)
{
	struct schema_block b = { 0 };
	const void *p;
	unsigned char *copy;
	size_t len;

	add_block_nodes(&b, 0);
	ck_assert_uint_eq(b.entries, BLOCK_NODES);
	ck_assert(schema_block_finish(&b, &p, &len));
	block_reads_back(p, len, 0);
	copy = unit_exact(p, len);
	every_cut_refused(copy, len, block_ok);
	free(copy);
	/* The next block starts afresh: its first entry shares nothing with
	 * the last one's, and says its list again. */
	ck_assert_uint_eq(b.entries, 0);
	add_block_nodes(&b, 3);
	ck_assert(schema_block_finish(&b, &p, &len));
	block_reads_back(p, len, 3);
	schema_block_free(&b);
}
END_TEST

/* A node of the host's shape after its sibling costs five bytes of head:
 * what it shares of the path, the rest's length, its birth's distance,
 * its list "as before", its value's length. */
START_TEST(node_block_says_only_what_changed)
{
	static const struct perm p1[] = { { 7, PERM_READ } };
	struct schema_block b = { 0 };
	struct schema_node n;
	unsigned char *r;
	size_t len, head;

	r = node_rec(1000, p1, 1, "1", &len);
	ck_assert(schema_decode_node("/d/7/a", 6, r, len, &n));
	ck_assert(schema_block_add(&b, "/d/7/a", 6, &n));
	head = b.head.len;
	ck_assert(schema_block_add(&b, "/d/7/b", 6, &n));
	ck_assert_uint_eq(b.head.len - head, 5);
	ck_assert_uint_eq(b.names.len, 6 + 1);
	free(r);
	schema_block_free(&b);
}
END_TEST

/* Whether a content of one entry is read: head bytes h (hlen), then
 * names (nl bytes), then values. */
static bool entry_ok(const unsigned char *h, size_t hlen, const char *names,
		     size_t nl, const char *values)
{
	unsigned char buf[256], *e, *exact;
	size_t vl = strlen(values);
	bool ok;

	e = rec_put_varint(buf, hlen);
	e = rec_put_varint(e, nl);
	memcpy(e, h, hlen);
	memcpy(e + hlen, names, nl);
	memcpy(e + hlen + nl, values, vl);
	e += hlen + nl + vl;
	exact = unit_exact(buf, (size_t)(e - buf));
	ok = block_ok(exact, (size_t)(e - buf));
	free(exact);
	return ok;
}

static bool one_entry_ok(const unsigned char *h, size_t hlen,
			 const char *names, const char *values)
{
	return entry_ok(h, hlen, names, strlen(names), values);
}

START_TEST(node_block_malformed_is_refused)
{
	/* shared 0, rest 2, born +1, one perm (domid 0, access 0), value 1 */
	static const unsigned char good[] = { 0, 2, 2, 1, 0, 0, 1 };
	unsigned char h[16];

	ck_assert(one_entry_ok(good, sizeof(good), "/a", "v"));
	/* Names or values left over, or too few. */
	ck_assert(!one_entry_ok(good, sizeof(good), "/ab", "v"));
	ck_assert(!one_entry_ok(good, sizeof(good), "/a", "vv"));
	ck_assert(!one_entry_ok(good, sizeof(good), "/", "v"));
	ck_assert(!one_entry_ok(good, sizeof(good), "/a", ""));
	/* A list "as before" in the block's first entry. */
	ck_assert(!one_entry_ok((const unsigned char[]){ 0, 2, 2, 0, 1 }, 5,
				"/a", "v"));
	/* Sharing more than the previous path (there is none). */
	memcpy(h, good, sizeof(good));
	h[0] = 1;
	ck_assert(!one_entry_ok(h, sizeof(good), "/a", "v"));
	/* No rest of the path. */
	ck_assert(!one_entry_ok((const unsigned char[]){ 0, 0, 2, 1, 0, 0, 0 },
				7, "", ""));
	/* A NUL in the path, a '#' key for a node. */
	ck_assert(!entry_ok(good, sizeof(good), "/\0", 2, "v"));
	ck_assert(!one_entry_ok(good, sizeof(good), "#a", "v"));
	/* A length spelt longer than it needs (two bytes for 2). */
	ck_assert(!one_entry_ok((const unsigned char[]){ 0, 0x82, 0, 2, 1, 0, 0,
							 1 }, 8, "/a", "v"));
	/* More permissions than the head could hold. */
	ck_assert(!one_entry_ok((const unsigned char[]){ 0, 2, 2, 5, 0, 0, 1 },
				7, "/a", "v"));
	/* A domid past 32 bits. */
	ck_assert(!one_entry_ok((const unsigned char[]){ 0, 2, 2, 1, 0x80, 0x80,
							 0x80, 0x80, 0x10, 0,
							 1 }, 11, "/a", "v"));
	/* No entry at all. */
	ck_assert(!block_ok((const unsigned char[]){ 0, 0 }, 2));
}
END_TEST

static Suite *schema_suite(void)
{
	Suite *s = suite_create("schema");
	TCase *t = tcase_create("records");

	tcase_add_test(t, keys_name_the_domain);
	tcase_add_test(t, format_is_ours_or_says_which_version);
	tcase_add_test(t, node_round_trips);
	tcase_add_test(t, node_put_in_place_is_the_writers_encoding);
	tcase_add_test(t, node_out_of_range_is_refused);
	tcase_add_test(t, domain_round_trips);
	tcase_add_test(t, input_round_trips_and_is_a_request_start);
	tcase_add_test(t, watches_round_trip);
	tcase_add_test(t, watches_out_of_range_are_refused);
	tcase_add_test(t, quotas_round_trip_by_name);
	tcase_add_test(t, version_1_quotas_come_out_by_name);
	tcase_add_test(t, image_head_round_trips_and_says_which_version);
	tcase_add_test(t, queues_round_trip);
	tcase_add_test(t, varints_round_trip_with_one_spelling);
	tcase_add_test(t, node_block_round_trips);
	tcase_add_test(t, node_block_says_only_what_changed);
	tcase_add_test(t, node_block_malformed_is_refused);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(schema_suite());
}
