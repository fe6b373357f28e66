/*
 * persist: the record encoding (record.c) and the tdb file (db.c).
 *
 * Records: round trips, the little-endian layout, and untrusted input: a
 * short or malformed record sets the error flag, yields zeros and empty
 * strings, and is never read past its end (each input is a heap block of
 * exactly its length, so ASan builds catch an overread).
 *
 * The database: a store followed into a new file comes back from
 * db_load_nodes with the same values, permissions and children order;
 * uncommitted changes do not reach the file; files that are not usable
 * databases are refused by db_open or db_load_nodes and left as they were.
 * Every test uses its own temporary directory.
 */
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tdb.h>
#include <zstd.h>

#include "log/log.h"
#include "persist/checkpoint.h"
#include "persist/db.h"
#include "persist/tdb_space.h"
#include "tests/unit/db_rig.h"
#include "tests/unit/fail_alloc.h"
#include "record/record.h"
#include "schema/schema.h"
#include "store/store.h"

/* ------------------------------------------------------------ records */

START_TEST(record_round_trip)
{
	struct evbuffer *b = evbuffer_new(), *src = evbuffer_new();
	static const unsigned char bin[] = { 0, 1, 0, 255, 0 };
	static char parts[50][16];
	struct writer w;
	struct reader r;
	unsigned char *p;
	const unsigned char *got;
	uint32_t len;
	size_t n;

	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(src);
	/* src in 50 chunks: wr_evbuffer copies them all, src kept. */
	for (unsigned int i = 0; i < 50; i++) {
		snprintf(parts[i], sizeof(parts[i]), "chunk%02u;", i % 100);
		ck_assert_int_eq(evbuffer_add_reference(src, parts[i], 8, NULL,
							NULL), 0);
	}
	ck_assert_int_ge(evbuffer_peek(src, -1, NULL, NULL, 0), 2);
	wr_init(&w, b);
	wr_u8(&w, 0xAB);
	wr_u32(&w, 0xDEADBEEF);
	wr_u64(&w, 0x0123456789ABCDEFULL);
	wr_bytes(&w, bin, sizeof(bin));
	wr_bytes(&w, NULL, 0);
	wr_str(&w, "hello");
	wr_str(&w, NULL);
	wr_str(&w, "");
	wr_evbuffer(&w, src);
	wr_u32(&w, 0);
	ck_assert(wr_ok(&w));
	ck_assert_uint_eq(evbuffer_get_length(src), 400);

	p = unit_take(b, &n);
	rd_init(&r, p, n);
	ck_assert_uint_eq(rd_u8(&r), 0xAB);
	ck_assert_uint_eq(rd_u32(&r), 0xDEADBEEF);
	ck_assert(rd_u64(&r) == 0x0123456789ABCDEFULL);
	got = rd_bytes(&r, &len);
	ck_assert_uint_eq(len, sizeof(bin));
	ck_assert_mem_eq(got, bin, sizeof(bin));
	got = rd_bytes(&r, &len);
	ck_assert_uint_eq(len, 0);
	ck_assert(rd_ok(&r));
	ck_assert_str_eq(rd_str(&r), "hello");
	ck_assert_str_eq(rd_str(&r), "");		/* NULL was written as "" */
	ck_assert_str_eq(rd_str(&r), "");
	got = rd_bytes(&r, &len);
	ck_assert_uint_eq(len, 400);
	ck_assert_mem_eq(got, "chunk00;chunk01;", 16);
	ck_assert_mem_eq(got + 392, "chunk49;", 8);
	ck_assert(rd_ok(&r));
	ck_assert(!rd_done(&r));			/* the last u32 is left */
	ck_assert_uint_eq(rd_u32(&r), 0);
	ck_assert(rd_done(&r));
	free(p);
	evbuffer_free(b);
	evbuffer_free(src);
}
END_TEST

START_TEST(record_layout_is_little_endian)
{
	struct evbuffer *b = evbuffer_new();
	struct writer w;
	unsigned char *p;
	size_t n;
	static const unsigned char want[] = {
		0x04, 0x03, 0x02, 0x01,				/* u32 */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,	/* u64 */
		0x03, 0x00, 0x00, 0x00, 'a', 'b', 0x00,		/* str "ab" */
		0x02, 0x00, 0x00, 0x00, 'x', 'y',		/* bytes "xy" */
		0x7F,						/* u8 */
	};

	ck_assert_ptr_nonnull(b);
	wr_init(&w, b);
	wr_u32(&w, 0x01020304);
	wr_u64(&w, 0x0102030405060708ULL);
	wr_str(&w, "ab");
	wr_bytes(&w, "xy", 2);
	wr_u8(&w, 0x7F);
	ck_assert(wr_ok(&w));
	p = unit_take(b, &n);
	ck_assert_uint_eq(n, sizeof(want));
	ck_assert_mem_eq(p, want, sizeof(want));
	free(p);
	evbuffer_free(b);
}
END_TEST

START_TEST(record_oversized_bytes_fail_the_writer)
{
	struct evbuffer *b = evbuffer_new();
	struct writer w;

	ck_assert_ptr_nonnull(b);
	wr_init(&w, b);
	/* The length is refused before the bytes are looked at. */
	wr_bytes(&w, "x", (size_t)UINT32_MAX + 1);
	ck_assert(!wr_ok(&w));
	evbuffer_free(b);
}
END_TEST

/* Read back the record of record_round_trip's first fields. */
static void read_sample(struct reader *r, uint8_t *a, uint32_t *b,
			uint64_t *c, const char **s, uint32_t *blen,
			const void **bytes)
{
	*a = rd_u8(r);
	*b = rd_u32(r);
	*c = rd_u64(r);
	*s = rd_str(r);
	*bytes = rd_bytes(r, blen);
}

START_TEST(record_every_truncation_is_detected)
{
	struct evbuffer *b = evbuffer_new();
	struct writer w;
	unsigned char *full;
	size_t n;

	ck_assert_ptr_nonnull(b);
	wr_init(&w, b);
	wr_u8(&w, 9);
	wr_u32(&w, 77);
	wr_u64(&w, 1234567890123ULL);
	wr_str(&w, "path");
	wr_bytes(&w, "value", 5);
	full = unit_take(b, &n);
	ck_assert_uint_eq(n, 1 + 4 + 8 + (4 + 5) + (4 + 5));

	for (size_t cut = 0; cut < n; cut++) {
		unsigned char *p = unit_exact(full, cut);
		struct reader r;
		uint8_t a;
		uint32_t bb, blen = 99;
		uint64_t c;
		const char *s;
		const void *bytes;

		rd_init(&r, p, cut);
		read_sample(&r, &a, &bb, &c, &s, &blen, &bytes);
		ck_assert_msg(!rd_ok(&r), "a record cut at %zu of %zu is accepted",
			      cut, n);
		ck_assert(!rd_done(&r));
		/* What could not be read is zero or empty, never garbage. */
		ck_assert_ptr_null(bytes);
		ck_assert_uint_eq(blen, 0);
		ck_assert_ptr_nonnull(s);
		if (cut < 1 + 4 + 8 + 4 + 5)
			ck_assert_str_eq(s, "");
		if (cut < 1)
			ck_assert_uint_eq(a, 0);
		if (cut < 5)
			ck_assert_uint_eq(bb, 0);
		if (cut < 9)
			ck_assert(c == 0);
		(void)c;	/* cut inside the u64: record_truncated_u64_is_zero */
		/* Never beyond the end. */
		ck_assert(r.p <= p + cut);
		ck_assert_uint_le(r.left, cut);
		/* Sticky: once bad, every read answers 0. */
		ck_assert_uint_eq(rd_u32(&r), 0);
		ck_assert_uint_eq(rd_u8(&r), 0);
		free(p);
	}
	free(full);
	evbuffer_free(b);
}
END_TEST

START_TEST(record_truncated_u64_is_zero)
{
	/* The low half is there, the high half is not: record.h promises
	 * zeros for what cannot be read, not half a number. */
	unsigned char *p = unit_exact("\x11\x22\x33\x44\x55", 5);
	struct reader r;
	uint64_t v;

	rd_init(&r, p, 5);
	v = rd_u64(&r);
	ck_assert(!rd_ok(&r));
	ck_assert_msg(v == 0, "a truncated u64 reads as %#llx, not 0",
		      (unsigned long long)v);
	free(p);
}
END_TEST

START_TEST(record_error_flag_is_sticky)
{
	/* A failed u32 on 3 bytes: the u8 after it must not read byte 0. */
	unsigned char *p = unit_exact("\x01\x02\x03", 3);
	struct reader r;

	rd_init(&r, p, 3);
	ck_assert_uint_eq(rd_u32(&r), 0);
	ck_assert(!rd_ok(&r));
	ck_assert_uint_eq(rd_u8(&r), 0);
	ck_assert(!rd_ok(&r));
	free(p);

	/* rd_fail marks a record bad whatever is left. */
	p = unit_exact("\x05", 1);
	rd_init(&r, p, 1);
	rd_fail(&r);
	ck_assert(!rd_ok(&r));
	ck_assert(!rd_done(&r));
	free(p);
}
END_TEST

START_TEST(record_length_beyond_the_end_is_refused)
{
	/* A length of 2^32 - 1 with 4 bytes behind it. */
	unsigned char *p = unit_exact("\xff\xff\xff\xff" "abcd", 8);
	struct reader r;
	uint32_t len = 7;

	rd_init(&r, p, 8);
	ck_assert_ptr_null(rd_bytes(&r, &len));
	ck_assert_uint_eq(len, 0);
	ck_assert(!rd_ok(&r));
	free(p);

	/* One more than what is there. */
	p = unit_exact("\x05\x00\x00\x00" "abcd", 8);
	rd_init(&r, p, 8);
	ck_assert_ptr_null(rd_bytes(&r, &len));
	ck_assert(!rd_ok(&r));
	free(p);
}
END_TEST

/* rd_str of the record "u32 len, bytes": "" and bad unless well-formed. */
static bool str_ok(const void *bytes, uint32_t len, const char **out)
{
	unsigned char *p = malloc(4 + len);
	struct reader r;
	bool ok;

	ck_assert_ptr_nonnull(p);
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(len >> (8 * i));
	if (len)
		memcpy(p + 4, bytes, len);
	rd_init(&r, p, 4 + len);
	*out = rd_str(&r);
	ok = rd_ok(&r);
	if (!ok)
		ck_assert_str_eq(*out, "");
	else
		*out = "(ok)";		/* p is freed: do not hand out its bytes */
	free(p);
	return ok;
}

START_TEST(record_str_needs_its_terminator)
{
	const char *s;

	ck_assert(str_ok("abc", 4, &s));		/* "abc\0" */
	ck_assert(str_ok("", 1, &s));			/* "\0" */
	ck_assert(!str_ok("abc", 3, &s));		/* no NUL at all */
	ck_assert(!str_ok("", 0, &s));			/* no byte at all */
	ck_assert(!str_ok("a\0c", 3, &s));		/* NUL inside, not last */
	ck_assert(!str_ok("a\0c", 4, &s));		/* two NULs */
}
END_TEST

/* ----------------------------------------------------------- database */

static struct perms *mkperms(unsigned int n, const uint32_t *domids,
			     const uint32_t *access)
{
	struct perms *p = perms_alloc(n);

	ck_assert_ptr_nonnull(p);
	for (unsigned int i = 0; i < n; i++) {
		p->e[i].domid = domids[i];
		p->e[i].access = access[i];
	}
	return p;
}

static struct perms *perm1(uint32_t domid, uint32_t access)
{
	return mkperms(1, &domid, &access);
}

static void new_store(struct store *s)
{
	struct perms *root = perm1(0, PERM_NONE);

	store_init(s, root);
	perms_unref(root);
}

/* The store every fresh daemon starts with: "/" and the special nodes. */
static void new_daemon_store(struct store *s)
{
	struct perms *p = perm1(0, PERM_NONE);

	new_store(s);
	ck_assert_ptr_nonnull(store_create(s, "@introduceDomain", p));
	ck_assert_ptr_nonnull(store_create(s, "@releaseDomain", p));
	perms_unref(p);
}

static void put(struct store *s, const char *path, const void *v, size_t len)
{
	struct perms *p = perm1(0, PERM_NONE);

	ck_assert_msg(store_write(s, path, p, v, len) != NULL, "write %s", path);
	perms_unref(p);
}

/* Load the file into *s (a fresh store); returns db_load_nodes' result. */
static int load(struct db *db, struct store *s)
{
	new_store(s);
	return db_load_nodes(db, s);
}

static void children(const struct node *n, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (const struct node *c = node_first_child(n); c; c = node_next(c)) {
		int w = snprintf(buf + len, size - len, ",%s", node_name(c));

		ck_assert(w > 0 && (size_t)w < size - len);
		len += (size_t)w;
	}
}

/* Every node of a is in b with the same value, perms and children order,
 * and b has no other node. */
static void same_store(const struct store *a, const struct store *b)
{
	struct node *n;
	char ca[4096], cb[4096];
	size_t at = 0;

	ck_assert_uint_eq(store_count(a), store_count(b));
	while ((n = index_next(&a->index, &at))) {
		char path[NODE_PATH_BUF];
		struct node *m;

		node_path(n, path, sizeof(path));
		m = store_lookup(b, path);

		ck_assert_msg(m != NULL, "%s is missing after the load", path);
		ck_assert_uint_eq(node_value_len(n), node_value_len(m));
		if (node_value_len(n))
			ck_assert_msg(memcmp(node_value(n), node_value(m), node_value_len(n)) == 0,
				      "value of %s", path);
		ck_assert_msg(perms_equal(node_perms(n), node_perms(m)), "perms of %s",
			      path);
		children(n, ca, sizeof(ca));
		children(m, cb, sizeof(cb));
		ck_assert_msg(strcmp(ca, cb) == 0, "children of %s: %s, loaded %s",
			      path, ca, cb);
		ck_assert_uint_eq(node_count_children(n),
				  node_count_children(m));
		ck_assert_uint_eq(node_children_len(n, SIZE_MAX), node_children_len(m, SIZE_MAX));
	}
	ck_assert_uint_eq(store_check(b, NULL, NULL), 0);
}

/* The database at dbpath, opened and loaded into a fresh store, holds
 * what s does (same_store). */
static void loads_back_as(const struct store *s)
{
	struct db *db = open_db(true);
	struct store loaded;

	ck_assert_int_eq(load(db, &loaded), 0);
	same_store(s, &loaded);
	db_close(db);
	store_destroy(&loaded);
}

/* A tree with every feature: values with NULs, shared and multi-entry
 * perms, children out of alphabetical order, a removal, a re-creation. */
static void build(struct store *s)
{
	static const unsigned char bin[] = { 'a', 0, 'b', 0, 0xff };
	uint32_t d[] = { 5, 6, 7, 8 };
	uint32_t a[] = { PERM_NONE, PERM_READ, PERM_WRITE,
			 PERM_READ | PERM_WRITE };
	struct perms *multi = mkperms(4, d, a), *ign;
	uint32_t d2[] = { 0, 9 };
	uint32_t a2[] = { PERM_READ, PERM_READ | PERM_IGNORE };

	ign = mkperms(2, d2, a2);
	put(s, "/local/domain/5/name", "guest", 5);
	put(s, "/bin", bin, sizeof(bin));
	put(s, "/empty", NULL, 0);
	put(s, "/order/zeta", "z", 1);
	put(s, "/order/alpha", "a", 1);
	put(s, "/order/mid", "m", 1);
	put(s, "/order/beta", "b", 1);
	ck_assert_int_eq(store_remove(s, store_lookup(s, "/order/alpha"),
				      NULL, NULL), 0);
	put(s, "/order/alpha", "again", 5);
	put(s, "/order/zeta", "rewritten", 9);	/* keeps its place */
	store_set_perms(s, store_lookup(s, "/local/domain/5"), multi);
	ck_assert_ptr_nonnull(store_create(s, "/local/domain/5/shared", multi));
	store_set_perms(s, store_lookup(s, "/bin"), ign);
	store_set_perms(s, store_lookup(s, "@releaseDomain"), multi);
	put(s, "/gone/a/b", "x", 1);
	ck_assert_int_eq(store_remove(s, store_lookup(s, "/gone"), NULL, NULL), 0);
	perms_unref(multi);
	perms_unref(ign);
}

START_TEST(db_new_file_is_created_and_not_restorable)
{
	struct db *db = open_db(false);
	struct store s;
	struct stat st;

	/* Nothing is written before the first state is there to write. */
	ck_assert_int_ne(stat(dbpath, &st), 0);
	ck_assert_str_eq(db_path(db), dbpath);
	new_daemon_store(&s);
	db_close(db);
	/* Never followed, it holds no state and is new again: its first
	 * state goes in with its format record. */
	db = open_db(false);
	db_follow(db, &s, true);
	ck_assert_int_eq(stat(dbpath, &st), 0);
	ck_assert_int_gt(st.st_size, 0);
	db_close(db);
	db = open_db(true);
	db_close(db);
	store_destroy(&s);
}
END_TEST

START_TEST(db_empty_file_counts_as_new)
{
	struct db *db;

	write_file(dbpath, "", 0);
	db = open_db(false);
	db_close(db);
}
END_TEST

START_TEST(db_followed_store_loads_back_the_same)
{
	struct store s, loaded;
	struct db *db = open_db(false);

	new_daemon_store(&s);
	db_follow(db, &s, true);
	build(&s);
	ck_assert_int_eq(db_commit(db), 0);
	db_close(db);

	db = open_db(true);
	ck_assert_int_eq(load(db, &loaded), 0);
	same_store(&s, &loaded);
	{
		char buf[256];

		children(store_lookup(&loaded, "/order"), buf, sizeof(buf));
		ck_assert_str_eq(buf, ",zeta,mid,beta,alpha");
		ck_assert_ptr_null(store_lookup(&loaded, "/gone"));
		ck_assert_ptr_null(store_lookup(&loaded, "/gone/a/b"));
		ck_assert_uint_eq(node_value_len(store_lookup(&loaded, "/bin")), 5);
		ck_assert_mem_eq(node_value(store_lookup(&loaded, "/bin")),
				 "a\0b\0\xff", 5);
		/* XSA-322's ignore bit is kept. */
		ck_assert_uint_eq(node_perms(store_lookup(&loaded, "/bin"))->e[1].access,
				  PERM_READ | PERM_IGNORE);
		ck_assert_uint_eq(node_perms(store_lookup(&loaded, "@releaseDomain"))->n, 4);
	}
	db_close(db);
	store_destroy(&s);
	store_destroy(&loaded);
}
END_TEST

START_TEST(db_save_all_saves_what_the_store_held)
{
	struct store s;
	struct db *db = open_db(false);

	new_daemon_store(&s);
	build(&s);			/* before db_follow */
	db_follow(db, &s, true);
	db_close(db);
	loads_back_as(&s);
	store_destroy(&s);
}
END_TEST

START_TEST(db_nodes_made_after_a_load_follow_the_loaded_ones)
{
	struct store s, loaded, again;
	struct db *db = open_db(false);
	char buf[256];

	new_daemon_store(&s);
	db_follow(db, &s, true);
	build(&s);
	db_close(db);
	store_destroy(&s);

	db = open_db(true);
	ck_assert_int_eq(load(db, &loaded), 0);
	db_follow(db, &loaded, false);
	put(&loaded, "/order/new", "n", 1);
	put(&loaded, "/order/zeta", "z2", 2);
	put(&loaded, "/later/x", "x", 1);
	children(store_lookup(&loaded, "/order"), buf, sizeof(buf));
	ck_assert_str_eq(buf, ",zeta,mid,beta,alpha,new");
	ck_assert_int_eq(db_commit(db), 0);
	db_close(db);

	/* Generations continue after the loaded ones: a second load works
	 * and keeps the order. */
	db = open_db(true);
	ck_assert_int_eq(load(db, &again), 0);
	same_store(&loaded, &again);
	db_close(db);
	store_destroy(&loaded);
	store_destroy(&again);
}
END_TEST

START_TEST(db_uncommitted_changes_do_not_reach_the_file)
{
	struct store s, loaded;
	struct db *db = open_db(false);
	pid_t pid;
	int st;

	new_daemon_store(&s);
	db_follow(db, &s, true);
	put(&s, "/committed", "c", 1);
	ck_assert_int_eq(db_commit(db), 0);
	/* A child changes more without a commit, then dies. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		put(&s, "/uncommitted", "u", 1);
		put(&s, "/committed", "changed", 7);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* And another commits, then dies. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		put(&s, "/second", "s", 1);
		_exit(db_commit(db) == 0 ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	s.observer = NULL;
	store_destroy(&s);
	db_close(db);		/* nothing pending here: writes nothing */

	db = open_db(true);
	ck_assert_int_eq(load(db, &loaded), 0);
	ck_assert_ptr_nonnull(store_lookup(&loaded, "/committed"));
	ck_assert_mem_eq(node_value(store_lookup(&loaded, "/committed")), "c", 1);
	ck_assert_uint_eq(node_value_len(store_lookup(&loaded, "/committed")), 1);
	ck_assert_ptr_null(store_lookup(&loaded, "/uncommitted"));
	ck_assert_ptr_nonnull(store_lookup(&loaded, "/second"));
	db_close(db);
	store_destroy(&loaded);
}
END_TEST

struct seen {
	char names[8][32];
	size_t lens[8];
	unsigned int n;
	int stop_after;		/* return 42 after this many, 0: never */
};

static int record_cb(const char *name, const void *data, size_t len,
		     void *arg)
{
	struct seen *s = arg;

	(void)data;
	ck_assert_uint_lt(s->n, 8);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->lens[s->n] = len;
	s->n++;
	return s->stop_after && (int)s->n >= s->stop_after ? 42 : 0;
}

static bool seen_has(const struct seen *s, const char *name)
{
	for (unsigned int i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return true;
	return false;
}

static void put_record(struct db *db, const char *key, const char *value)
{
	struct evbuffer *b = evbuffer_new();

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(evbuffer_add(b, value, strlen(value)), 0);
	db_put(db, key, b);
	evbuffer_free(b);
}

START_TEST(db_each_selects_by_prefix)
{
	struct db *db = open_db(false);
	struct store s, loaded;
	struct seen seen = { 0 };

	new_daemon_store(&s);
	db_follow(db, &s, true);
	put(&s, "/watches/5", "not a record", 12);
	put_record(db, "#watches/5", "five");
	put_record(db, "#watches/16", "sixteen!");
	put_record(db, "#watches/6", "x");
	put_record(db, "#domain/5", "dom");
	put_record(db, "#quotas", "q");
	db_delete(db, "#watches/6");
	db_delete(db, "#never-there");
	ck_assert_int_eq(db_commit(db), 0);
	db_close(db);

	db = open_db(true);
	/* Nothing before the load: it reads the files. */
	ck_assert_int_eq(db_each(db, "#", record_cb, &seen), 0);
	ck_assert_uint_eq(seen.n, 0);
	ck_assert_int_eq(load(db, &loaded), 0);
	ck_assert_int_eq(db_each(db, "#watches/", record_cb, &seen), 0);
	ck_assert_uint_eq(seen.n, 2);
	ck_assert(seen_has(&seen, "5"));
	ck_assert(seen_has(&seen, "16"));
	for (unsigned int i = 0; i < seen.n; i++)
		ck_assert_uint_eq(seen.lens[i],
				  strcmp(seen.names[i], "5") == 0 ? 4 : 8);
	/* The whole key: the rest is empty. */
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(db_each(db, "#quotas", record_cb, &seen), 0);
	ck_assert_uint_eq(seen.n, 1);
	ck_assert_str_eq(seen.names[0], "");
	/* Stops at fn's first nonzero result and returns it. */
	memset(&seen, 0, sizeof(seen));
	seen.stop_after = 1;
	ck_assert_int_eq(db_each(db, "#", record_cb, &seen), 42);
	ck_assert_uint_eq(seen.n, 1);
	/* Nodes are not '#' records, and '#' records are not nodes. */
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(db_each(db, "#", record_cb, &seen), 0);
	ck_assert(!seen_has(&seen, "/watches/5"));
	ck_assert(!seen_has(&seen, "watches/6"));
	ck_assert_ptr_nonnull(store_lookup(&loaded, "/watches/5"));
	ck_assert_ptr_null(store_lookup(&loaded, "#quotas"));
	same_store(&s, &loaded);
	db_close(db);
	store_destroy(&s);
	store_destroy(&loaded);
}
END_TEST

/* ---- a change that cannot be recorded ---- */

/* The live state of a '#' record's owner, and its saver. */
static const char *live_watches;
static int saves;

static void save_watches(void *db)
{
	saves++;
	put_record(db, "#watches/5", live_watches);
}

static void encode_str(const void *str, struct writer *w)
{
	wr_bytes(w, str, strlen(str));
}

static int value_is(const void *data, size_t len, void *want)
{
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_mem_eq(data, want, len);
	return 1;
}

/* A database following *s with the saver, a commit in its journal. */
static struct db *rewrite_rig(struct store *s)
{
	struct db *db;

	/* libevent's allocations too may fail (its buffers are the
	 * database's): through the wrapped allocator (fail_alloc.h). */
	event_set_mem_functions(__wrap_malloc, __wrap_realloc, free);
	db = open_db(false);

	new_daemon_store(s);
	db_follow(db, s, true);
	ck_assert_int_eq(db_add_saver(db, save_watches, db), 0);
	build(s);
	live_watches = "first";
	put_record(db, "#watches/5", live_watches);
	put_record(db, "#domain/7", "seven");	/* no saver owns it */
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_int_eq(access(jpath, F_OK), 0);
	/* A change, and a record that cannot be encoded for want of memory:
	 * the journal cannot tell the turn. */
	put(s, "/later", "x", 1);
	live_watches = "second";
	saves = 0;
	fail_alloc_after = 0;
	ck_assert_int_eq(db_put_encoded(db, "#watches/5", encode_str,
					live_watches), -1);
	ck_assert_int_eq(fail_alloc_after, -1);
	ck_assert(db_pending(db));
	return db;
}

START_TEST(db_a_change_without_memory_is_written_with_the_whole_state)
{
	struct store s, loaded;
	struct db *db = rewrite_rig(&s);

	/* The commit writes the whole state anew, the savers' records with
	 * it, and the journals it supersedes are gone. */
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_int_eq(saves, 1);
	ck_assert(!db_pending(db));
	ck_assert_int_ne(access(jpath, F_OK), 0);
	ck_assert_int_ne(access(oldpath, F_OK), 0);
	/* Recording goes on as before. */
	put(&s, "/after", "y", 1);
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_int_eq(access(jpath, F_OK), 0);
	db_close(db);

	db = open_db(true);
	ck_assert_int_eq(load(db, &loaded), 0);
	same_store(&s, &loaded);
	ck_assert_ptr_nonnull(store_lookup(&loaded, "/later"));
	ck_assert_int_eq(db_get(db, "#watches/5", value_is, "second"), 1);
	/* A record no saver puts again is not in the state written anew. */
	ck_assert_int_eq(db_get(db, "#domain/7", value_is, "seven"), 0);
	db_close(db);
	store_destroy(&s);
	store_destroy(&loaded);
}
END_TEST

START_TEST(db_a_rewrite_that_fails_too_turns_persistence_off)
{
	struct store s;
	struct db *db = rewrite_rig(&s);
	struct stat sb;

	fail_alloc_after = 0;		/* the rewrite's first allocation */
	ck_assert_int_eq(db_commit(db), -1);
	ck_assert(!db_pending(db));
	/* Emptied: no restart loads a state older than the one served. */
	ck_assert_int_eq(stat(dbpath, &sb), 0);
	ck_assert_int_eq(sb.st_size, 0);
	ck_assert_int_ne(access(jpath, F_OK), 0);
	db_close(db);
	store_destroy(&s);
}
END_TEST

/* A database with a few nodes, all in the tdb file, closed; its bytes
 * in *p. */
static void valid_file(unsigned char **p, size_t *len)
{
	struct store s;
	struct db *db = open_db(false);

	new_daemon_store(&s);
	db_follow(db, &s, true);
	build(&s);
	ck_assert_int_eq(db_checkpoint(db), 0);
	db_close(db);
	store_destroy(&s);
	file_bytes(dbpath, p, len);
}

/* db_open refuses the file, or db_load_nodes does; the file is kept. */
static void refused(const char *what)
{
	unsigned char *before, *after;
	size_t blen, alen;
	bool restorable = false;
	struct db *db;

	file_bytes(dbpath, &before, &blen);
	db = db_open(dbpath, &restorable);
	if (db) {
		struct store s;

		ck_assert_msg(restorable, "%s: opened as a new database", what);
		ck_assert_msg(load(db, &s) != 0, "%s: loaded", what);
		store_destroy(&s);
		db_close(db);
	}
	file_bytes(dbpath, &after, &alen);
	ck_assert_msg(alen == blen && memcmp(before, after, blen) == 0,
		      "%s: the file was changed (%zu bytes, now %zu)", what,
		      blen, alen);
	free(before);
	free(after);
}

START_TEST(db_random_bytes_file_is_refused)
{
	unsigned char junk[8192];
	unsigned int seed = 7;

	for (size_t i = 0; i < sizeof(junk); i++) {
		seed = seed * 1103515245u + 12345u;
		junk[i] = (unsigned char)(seed >> 16);
	}
	write_file(dbpath, junk, sizeof(junk));
	refused("random bytes");
}
END_TEST

START_TEST(db_text_file_is_refused)
{
	write_file(dbpath, "not a database\n", 15);
	refused("a line of text");
}
END_TEST

START_TEST(db_half_file_is_refused)
{
	unsigned char *p;
	size_t len;

	valid_file(&p, &len);
	write_file(dbpath, p, len / 2);
	refused("half a database");
	free(p);
}
END_TEST

START_TEST(db_header_only_file_is_refused)
{
	unsigned char *p;
	size_t len;

	valid_file(&p, &len);
	write_file(dbpath, p, 100);
	refused("the first 100 bytes of a database");
	free(p);
}
END_TEST

/* A tdb made here, with the daemon's flags, holding key -> value. */
static void raw_tdb(const char *key, const void *value, size_t len,
		    bool keep_contents)
{
	struct tdb_context *t;
	TDB_DATA k = { (unsigned char *)key, strlen(key) };
	TDB_DATA v = { (unsigned char *)value, len };

	if (!keep_contents)
		unlink(dbpath);
	t = tdb_open(dbpath, 0, TDB_NOLOCK | TDB_INCOMPATIBLE_HASH, O_RDWR | O_CREAT,
		     0600);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(tdb_store(t, k, v, TDB_REPLACE), 0);
	ck_assert_int_eq(tdb_close(t), 0);
}

/* The record encoding of a string, as wr_str writes it. */
static size_t rec_str(unsigned char *out, const char *s)
{
	uint32_t n = (uint32_t)strlen(s) + 1;

	for (int i = 0; i < 4; i++)
		out[i] = (unsigned char)(n >> (8 * i));
	memcpy(out + 4, s, n);
	return 4 + n;
}

START_TEST(db_foreign_or_other_version_tdb_is_refused)
{
	unsigned char fmt[64];
	size_t n;

	raw_tdb("hello", "world", 5, false);
	refused("a tdb of someone else");

	n = rec_str(fmt, "xenstored-db");
	memcpy(fmt + n, "\x03\x00\x00\x00", 4);		/* version 3 */
	raw_tdb("#format", fmt, n + 4, false);
	refused("a database of another version");

	n = rec_str(fmt, "xenstored-db");
	memcpy(fmt + n, "\x00\x00\x00\x00", 4);		/* before any */
	raw_tdb("#format", fmt, n + 4, false);
	refused("a database of version 0");

	n = rec_str(fmt, "xenstored-dc");
	memcpy(fmt + n, "\x02\x00\x00\x00", 4);
	raw_tdb("#format", fmt, n + 4, false);
	refused("another magic");
}
END_TEST

/*
 * The checkpoint at dbpath written again with key's record set to val
 * (removed when val is NULL; added when it was not there), its nodes in
 * blocks as the daemon writes them: a file damaged in what it says, not
 * in how it is packed.
 */
struct rewrite {
	struct ckpt_writer *w;
	const char *key;
	const void *val;
	size_t vlen;
	bool twice;		/* keep key's record, and add val too */
	bool done;
};

static int rewrite_one(const void *k, size_t klen, const void *v, size_t vlen,
		       void *arg)
{
	struct rewrite *r = arg;

	if (klen == strlen(r->key) && !memcmp(k, r->key, klen)) {
		r->done = true;
		if (r->twice && ckpt_add(r->w, k, klen, v, vlen) != 0)
			return -1;
		if (!r->val)
			return 0;
		v = r->val;
		vlen = r->vlen;
	}
	return ckpt_add(r->w, k, klen, v, vlen);
}

static void rewrite(const char *key, const void *val, size_t vlen,
		    bool twice)
{
	struct tdb_context *t = tdb_open(dbpath, 0, TDB_NOLOCK, O_RDONLY, 0);
	struct rewrite r = { .key = key, .val = val, .vlen = vlen,
			     .twice = twice };
	char why[200];

	ck_assert_ptr_nonnull(t);
	r.w = ckpt_create(dbpath, 0, 0, why, sizeof(why));
	ck_assert_ptr_nonnull(r.w);
	ck_assert_int_eq(ckpt_read(t, SCHEMA_DB_VERSION, rewrite_one, &r, why,
				   sizeof(why)), 0);
	tdb_close(t);
	if (!r.done && val)
		ck_assert_int_eq(ckpt_add(r.w, key, strlen(key), val, vlen), 0);
	ck_assert_int_eq(ckpt_commit(r.w), 0);
}

static void rewrite_record(const char *key, const void *val, size_t vlen)
{
	rewrite(key, val, vlen, false);
}

/* The record under key in the tdb file at dbpath, through libtdb. */
static TDB_DATA fetch_raw(const char *key)
{
	struct tdb_context *t = tdb_open(dbpath, 0, TDB_NOLOCK, O_RDONLY, 0);
	TDB_DATA v;

	ck_assert_ptr_nonnull(t);
	v = tdb_fetch(t, (TDB_DATA){ (unsigned char *)key, strlen(key) });
	tdb_close(t);
	ck_assert_ptr_nonnull(v.dptr);
	return v;
}

static void delete_raw(const char *key)
{
	struct tdb_context *t = tdb_open(dbpath, 0,
					 TDB_NOLOCK | TDB_INCOMPATIBLE_HASH,
					 O_RDWR, 0600);
	TDB_DATA k = { (unsigned char *)key, strlen(key) };

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(tdb_delete(t, k), 0);
	tdb_close(t);
}

/* Every record of a checkpoint, copied, in the order read. */
struct records {
	char *key[1024];
	unsigned char *val[1024];
	size_t klen[1024], vlen[1024];
	unsigned int n, nodes;
};

static int keep_record(const void *k, size_t klen, const void *v,
		       size_t vlen, void *arg)
{
	struct records *r = arg;

	ck_assert_uint_lt(r->n, 1024);
	r->key[r->n] = malloc(klen ? klen : 1);
	r->val[r->n] = malloc(vlen ? vlen : 1);
	ck_assert(r->key[r->n] && r->val[r->n]);
	memcpy(r->key[r->n], k, klen);
	memcpy(r->val[r->n], v, vlen);
	r->klen[r->n] = klen;
	r->vlen[r->n] = vlen;
	r->nodes += schema_key_is_node(k, klen);
	r->n++;
	return 0;
}

/* The checkpoint at dbpath written again by a writer made with replaces
 * and nodes (ckpt_create), its records in the order read or in reverse:
 * then every child before its parent, every younger sibling first. */
static void copy_checkpoint(uint64_t replaces, uint64_t nodes, bool reverse)
{
	struct tdb_context *t = tdb_open(dbpath, 0, TDB_NOLOCK, O_RDONLY, 0);
	struct records r = { .n = 0 };
	struct ckpt_writer *w;
	char why[200];

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(ckpt_read(t, SCHEMA_DB_VERSION, keep_record, &r, why,
				   sizeof(why)), 0);
	tdb_close(t);
	ck_assert_uint_gt(r.nodes, 10);
	w = ckpt_create(dbpath, replaces, nodes, why, sizeof(why));
	ck_assert_ptr_nonnull(w);
	for (unsigned int k = 0; k < r.n; k++) {
		unsigned int i = reverse ? r.n - 1 - k : k;

		ck_assert_int_eq(ckpt_add(w, r.key[i], r.klen[i], r.val[i],
					  r.vlen[i]), 0);
		free(r.key[i]);
		free(r.val[i]);
	}
	ck_assert_int_eq(ckpt_commit(w), 0);
}

/* The checkpoint at dbpath written again as if it replaced a file of
 * replaces bytes and were to hold nodes nodes: its first block of nodes
 * is zstd's frame of the same content at level, as libzstd packs it. */
static void repacked_at(uint64_t replaces, uint64_t nodes, int level)
{
	struct tdb_context *t;
	char key[SCHEMA_KEY_MAX];
	unsigned long long n;
	unsigned char *content, *again;
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t bound, len;
	TDB_DATA v;

	copy_checkpoint(replaces, nodes, false);
	t = tdb_open(dbpath, 0, TDB_NOLOCK, O_RDONLY, 0);
	ck_assert_ptr_nonnull(t);
	schema_key_block(key, 0);
	v = tdb_fetch(t, (TDB_DATA){ (unsigned char *)key, strlen(key) });
	tdb_close(t);
	ck_assert_ptr_nonnull(v.dptr);
	n = ZSTD_getFrameContentSize(v.dptr, v.dsize);
	ck_assert(n > 0 && n < (1u << 20));
	bound = ZSTD_compressBound((size_t)n);
	content = malloc((size_t)n);
	again = malloc(bound);
	ck_assert(content && again && c);
	ck_assert_uint_eq(ZSTD_decompress(content, (size_t)n, v.dptr, v.dsize),
			  n);
	ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(
		c, ZSTD_c_compressionLevel, level)));
	ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(
		c, ZSTD_c_checksumFlag, 1)));
	len = ZSTD_compress2(c, again, bound, content, (size_t)n);
	ck_assert_uint_eq(len, v.dsize);
	ck_assert_mem_eq(again, v.dptr, len);
	ZSTD_freeCCtx(c);
	free(content);
	free(again);
	free(v.dptr);
}

/* A small store's checkpoint, merged most often for its size, is packed
 * at a fast level; a larger one's as small as the file's RAM asks
 * (checkpoint.c).  Either loads back the same. */
START_TEST(db_a_small_store_is_packed_fast_a_large_one_small)
{
	struct store s;
	struct db *db = open_db(false);

	ck_assert_int_ne(CKPT_LEVEL, CKPT_LEVEL_SMALL);
	new_daemon_store(&s);
	db_follow(db, &s, true);
	for (unsigned int i = 0; i < 600; i++) {
		static const char *const name[] = {
			"backend", "state", "mac", "handle", "tx-ring-ref",
			"event-channel",
		};
		char path[80], value[80];

		snprintf(path, sizeof(path), "/local/domain/%u/device/vif/0/%s",
			 i / 6 + 1, name[i % 6]);
		snprintf(value, sizeof(value), "/local/domain/0/backend/vif/"
			 "%u/0 %08x", i / 6 + 1, (i * 2654435761u) >> 8);
		put(&s, path, value, strlen(value));
	}
	ck_assert_int_eq(db_checkpoint(db), 0);
	db_close(db);
	repacked_at(0, 0, CKPT_LEVEL_SMALL);
	repacked_at(CKPT_SMALL - 1, CKPT_SMALL_NODES - 1, CKPT_LEVEL_SMALL);
	repacked_at(CKPT_SMALL, 0, CKPT_LEVEL);
	repacked_at(0, CKPT_SMALL_NODES, CKPT_LEVEL);
	loads_back_as(&s);
	store_destroy(&s);
}
END_TEST

/* A load puts nodes in as it reads them, those without their parent yet
 * later, and children out of order back in order of birth: a checkpoint
 * in any order gives the same tree. */
START_TEST(db_checkpoint_in_any_order_loads_the_same)
{
	struct store s, loaded;
	struct db *db = open_db(false);
	char buf[256];

	new_daemon_store(&s);
	db_follow(db, &s, true);
	build(&s);
	ck_assert_int_eq(db_checkpoint(db), 0);	/* all in the file */
	db_close(db);
	copy_checkpoint(0, 0, true);

	db = open_db(true);
	ck_assert_int_eq(load(db, &loaded), 0);
	same_store(&s, &loaded);
	children(store_lookup(&loaded, "/order"), buf, sizeof(buf));
	ck_assert_str_eq(buf, ",zeta,mid,beta,alpha");
	db_close(db);
	store_destroy(&s);
	store_destroy(&loaded);
}
END_TEST

/* Every node of a checkpoint read comes after its parent. */
struct in_order {
	struct store *seen;	/* the paths read so far */
	struct perms *p;
	unsigned int nodes, early;
};

static int parent_first(const void *k, size_t klen, const void *v,
			size_t vlen, void *arg)
{
	struct in_order *o = arg;
	char path[256];

	(void)v;
	(void)vlen;
	if (!schema_key_is_node(k, klen) || *(const char *)k == '@')
		return 0;
	ck_assert_uint_lt(klen, sizeof(path));
	memcpy(path, k, klen);
	path[klen] = '\0';
	o->nodes++;
	if (klen > 1) {
		char *slash = strrchr(path, '/');

		*slash = '\0';
		if (slash > path && !store_lookup(o->seen, path))
			o->early++;
		*slash = '/';
		/* Made with any parents missing, to count each once. */
		ck_assert_ptr_nonnull(store_create(o->seen, path, o->p));
	}
	return 0;
}

/*
 * A merge that changes a node of the checkpoint's first block packs that
 * block again, and copies the untouched ones after it as they are: the
 * file still holds every node after its parent (a load puts such a node
 * in at once; the others wait, to be sorted at the end).
 */
START_TEST(db_merge_keeps_parents_before_children)
{
	struct store s, seen;
	struct db *db = open_db(false);
	struct tdb_context *t;
	struct in_order o = { .seen = &seen };
	char path[64], why[200];
	TDB_DATA nodes;
	uint32_t blocks;

	new_daemon_store(&s);
	db_follow(db, &s, true);
	/* Values that compress badly, for several blocks. */
	for (unsigned int i = 0; i < 12000; i++) {
		char v[40];

		snprintf(path, sizeof(path), "/m/k%05u", i);
		snprintf(v, sizeof(v), "%08x%08x", i * 2654435761u,
			 i * 40503u + 7);
		put(&s, path, v, strlen(v));
	}
	ck_assert_int_eq(db_checkpoint(db), 0);
	nodes = fetch_raw(SCHEMA_KEY_NODES);
	memcpy(&blocks, nodes.dptr, 4);
	free(nodes.dptr);
	ck_assert_uint_ge(blocks, 3);
	put(&s, "/m/k00001", "changed", 7);	/* in the first block */
	ck_assert_int_eq(db_checkpoint(db), 0);
	db_close(db);

	new_store(&seen);
	o.p = perm1(0, PERM_NONE);
	t = tdb_open(dbpath, 0, TDB_NOLOCK, O_RDONLY, 0);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(ckpt_read(t, SCHEMA_DB_VERSION, parent_first, &o, why,
				   sizeof(why)), 0);
	tdb_close(t);
	ck_assert_uint_ge(o.nodes, 12000 + 2);	/* and "/" and "/m" */
	ck_assert_uint_eq(o.early, 0);
	perms_unref(o.p);
	store_destroy(&seen);
	store_destroy(&s);
}
END_TEST

/* A store of more nodes than a load reads ahead of the store (load.c),
 * with values of every size around what a read-ahead slot holds (a node
 * too big for one goes in at once, after those read before it) and
 * children under the big ones: it loads back the same, from the file in
 * its order and reversed (children first, kept for the end). */
START_TEST(db_nodes_of_every_size_load_back_the_same)
{
	static char big[4200];
	struct store s;
	struct db *db = open_db(false);
	char path[64];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i * 7 % 26);
	new_daemon_store(&s);
	db_follow(db, &s, true);
	for (unsigned int i = 0; i < 60; i++) {
		/* "/r/nNN" and its NUL are 7 bytes: values of 230 to 241
		 * bytes straddle a slot's 240. */
		size_t len = i % 5 == 0 ? 230 + i / 5 : i % 7 == 0 ? 4000 + i : i;

		snprintf(path, sizeof(path), "/r/n%02u", i);
		put(&s, path, big + i, len);	/* each its own bytes */
		if (i % 10 == 0 || i % 7 == 0) {
			snprintf(path, sizeof(path), "/r/n%02u/c", i);
			put(&s, path, big + 60 - i, i % 2 ? 3000 : i);
		}
	}
	ck_assert_int_eq(db_checkpoint(db), 0);	/* all in the file */
	db_close(db);

	loads_back_as(&s);
	copy_checkpoint(0, 0, true);
	loads_back_as(&s);
	store_destroy(&s);
}
END_TEST

/* The load finds a path twice only when it puts the second in, 16 nodes
 * after reading it: the log names that node, not the one being read. */
START_TEST(db_a_node_found_bad_after_reading_ahead_is_the_one_named)
{
	unsigned char rec[64];
	char path[64], logpath[160], text[4096];
	struct store s, loaded;
	struct db *db = open_db(false);
	size_t len;
	FILE *f;

	new_daemon_store(&s);
	db_follow(db, &s, true);
	for (unsigned int i = 0; i < 40; i++) {
		snprintf(path, sizeof(path), "/r/n%02u", i);
		put(&s, path, "value", 5);
	}
	ck_assert_int_eq(db_checkpoint(db), 0);
	db_close(db);
	store_destroy(&s);
	memset(rec, 0, sizeof(rec));
	rec[0] = 1;
	rec[7] = 0x40;				/* born far after the rest */
	rec[8] = 1;
	rewrite("/r/n05", rec, 8 + 4 + 8 + 4, true);

	snprintf(logpath, sizeof(logpath), "%s/log", dir);
	ck_assert_int_eq(log_open(LOG_TO_FILE, logpath, LOG_LVL_ERROR), 0);
	db = open_db(true);
	ck_assert_int_ne(load(db, &loaded), 0);
	db_close(db);
	store_destroy(&loaded);
	log_close();
	ck_assert_int_eq(log_open(LOG_TO_STDERR, NULL, LOG_LVL_WARN), 0);
	f = fopen(logpath, "r");
	ck_assert_ptr_nonnull(f);
	len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = '\0';
	ck_assert_msg(strstr(text, "a path twice") &&
		      strstr(text, " at /r/n05\n"), "logged: %s", text);
}
END_TEST

/*
 * The checkpoint at dbpath written again as an older daemon wrote it:
 * version 2, a tdb record a node; version 3, the nodes in one block of
 * version 3's entries (u32 shared, bytes rest of the path, bytes node
 * record).  key's record, if key is not NULL, is val instead: damage that
 * a version 4 block cannot hold.
 */
struct older {
	uint32_t version;
	struct tdb_context *out;
	unsigned char *block;
	size_t used, cap;
	uint64_t nodes;
	const char *key;
	const void *val;
	size_t vlen;
};

static int to_older(const void *k, size_t klen, const void *v, size_t vlen,
		    void *arg)
{
	struct older *o = arg;

	if (o->key && klen == strlen(o->key) && !memcmp(k, o->key, klen)) {
		v = o->val;
		vlen = o->vlen;
	}
	if (o->version == 2 || !schema_key_is_node(k, klen))
		return tdb_store(o->out, (TDB_DATA){ (unsigned char *)k, klen },
				 (TDB_DATA){ (unsigned char *)v, vlen },
				 TDB_INSERT);
	while (o->cap - o->used < 12 + klen + vlen) {
		o->cap = o->cap ? 2 * o->cap : 4096;
		o->block = realloc(o->block, o->cap);
		ck_assert_ptr_nonnull(o->block);
	}
	o->used = (size_t)(rec_put_u32(o->block + o->used, 0) - o->block);
	o->used = (size_t)(rec_put_u32(o->block + o->used,
				       (uint32_t)klen) - o->block);
	memcpy(o->block + o->used, k, klen);
	o->used += klen;
	o->used = (size_t)(rec_put_u32(o->block + o->used,
				       (uint32_t)vlen) - o->block);
	memcpy(o->block + o->used, v, vlen);
	o->used += vlen;
	o->nodes++;
	return 0;
}

static void as_older(uint32_t version, const char *key, const void *val,
		     size_t vlen)
{
	struct older o = { .version = version, .key = key, .val = val,
			   .vlen = vlen };
	unsigned char fmt[64], head[12];
	struct tdb_context *in;
	char path[PATH_MAX], why[200];
	size_t n;

	snprintf(path, sizeof(path), "%s.older", dbpath);
	in = tdb_open(dbpath, 0, TDB_NOLOCK, O_RDONLY, 0);
	o.out = tdb_open(path, 0, TDB_NOLOCK | TDB_INCOMPATIBLE_HASH,
			 O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(o.out);
	ck_assert_int_eq(ckpt_read(in, SCHEMA_DB_VERSION, to_older, &o, why,
				   sizeof(why)), 0);
	if (version == 3) {
		size_t bound = ZSTD_compressBound(o.used), len;
		unsigned char *frame = malloc(bound);
		ZSTD_CCtx *c = ZSTD_createCCtx();

		ck_assert(frame && c);
		ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(
			c, ZSTD_c_checksumFlag, 1)));
		len = ZSTD_compress2(c, frame, bound, o.block, o.used);
		ck_assert(!ZSTD_isError(len));
		ck_assert_int_eq(to_older(SCHEMA_PREFIX_BLOCK "0",
					  strlen(SCHEMA_PREFIX_BLOCK "0"),
					  frame, len, &o), 0);
		rec_put_u64(rec_put_u32(head, 1), o.nodes);
		ck_assert_int_eq(to_older(SCHEMA_KEY_NODES,
					  strlen(SCHEMA_KEY_NODES), head,
					  sizeof(head), &o), 0);
		ZSTD_freeCCtx(c);
		free(frame);
	}
	n = rec_str(fmt, "xenstored-db");
	rec_put_u32(fmt + n, version);
	ck_assert_int_eq(to_older(SCHEMA_KEY_FORMAT, strlen(SCHEMA_KEY_FORMAT),
				  fmt, n + 4, &o), 0);
	tdb_close(in);
	tdb_close(o.out);
	free(o.block);
	ck_assert_int_eq(rename(path, dbpath), 0);
}

START_TEST(db_malformed_node_records_are_refused)
{
	unsigned char *p, rec[64];
	size_t len;

	/* Records a version-4 block cannot hold, in a version-3 file's
	 * block, which holds each as it is, and in version 2's tdb
	 * record a node. */
	valid_file(&p, &len);
	for (uint32_t v = 2; v <= 3; v++) {
		/* Too short for its header. */
		write_file(dbpath, p, len);
		as_older(v, "/order/mid", "\x01\x02", 2);
		refused("a node record of two bytes");
		/* Zero permissions. */
		write_file(dbpath, p, len);
		memset(rec, 0, sizeof(rec));
		rec[0] = 77;			/* born 77, n 0, value "" */
		as_older(v, "/order/mid", rec, 8 + 4 + 4);
		refused("a node without permissions");
		/* Trailing bytes after the value. */
		write_file(dbpath, p, len);
		memset(rec, 0, sizeof(rec));
		rec[0] = 78;
		rec[8] = 1;			/* one perm: domid 0, none */
		as_older(v, "/order/mid", rec, 8 + 4 + 8 + 4 + 3);
		refused("a node record with bytes left over");
	}
	/* A domid out of range: the record's own check (schema.h). */
	write_file(dbpath, p, len);
	memset(rec, 0, sizeof(rec));
	rec[0] = 79;
	rec[8] = 1;
	rec_put_u32(rec + 12, STORE_DOMIDS);
	as_older(3, "/order/mid", rec, 8 + 4 + 8 + 4);
	refused("a permission of a domid out of range");
	/* A parent missing. */
	write_file(dbpath, p, len);
	rewrite_record("/order", NULL, 0);
	refused("a node without its parent");
	/* A node twice (another generation, so only its path repeats). */
	write_file(dbpath, p, len);
	memset(rec, 0, sizeof(rec));
	rec[0] = 1;
	rec[7] = 0x40;				/* born far after the rest */
	rec[8] = 1;
	rewrite("/order/mid", rec, 8 + 4 + 8 + 4, true);
	refused("a node twice");
	free(p);
}
END_TEST

/* The blocks' packing damaged: each is refused, the file left as it is. */
START_TEST(db_damaged_node_blocks_are_refused)
{
	unsigned char *p, head[12] = { 0 };
	TDB_DATA block;
	size_t len;

	valid_file(&p, &len);
	block = fetch_raw(SCHEMA_PREFIX_BLOCK "0");
	/* A byte of the compressed block changed: its checksum fails. */
	block.dptr[block.dsize / 2] ^= 0x10;
	raw_tdb(SCHEMA_PREFIX_BLOCK "0", block.dptr, block.dsize, true);
	refused("a node block with a byte changed");
	/* Cut short. */
	write_file(dbpath, p, len);
	raw_tdb(SCHEMA_PREFIX_BLOCK "0", block.dptr, block.dsize - 3, true);
	refused("a node block cut short");
	/* Missing. */
	write_file(dbpath, p, len);
	delete_raw(SCHEMA_PREFIX_BLOCK "0");
	refused("a node block missing");
	/* Numbered past the count, or spelt with a leading zero. */
	write_file(dbpath, p, len);
	delete_raw(SCHEMA_PREFIX_BLOCK "0");
	block.dptr[block.dsize / 2] ^= 0x10;	/* whole again */
	raw_tdb(SCHEMA_PREFIX_BLOCK "1", block.dptr, block.dsize, true);
	refused("a node block past the count");
	write_file(dbpath, p, len);
	raw_tdb(SCHEMA_PREFIX_BLOCK "00", block.dptr, block.dsize, true);
	refused("a second block 0");
	/* The count says one node more. */
	write_file(dbpath, p, len);
	free(block.dptr);
	block = fetch_raw(SCHEMA_KEY_NODES);
	ck_assert_uint_eq(block.dsize, sizeof(head));
	memcpy(head, block.dptr, sizeof(head));
	head[4]++;
	raw_tdb(SCHEMA_KEY_NODES, head, sizeof(head), true);
	refused("a node count that is wrong");
	/* No count at all. */
	write_file(dbpath, p, len);
	delete_raw(SCHEMA_KEY_NODES);
	refused("no node count");
	/* A node as a record of its own, outside the blocks. */
	write_file(dbpath, p, len);
	memset(head, 0, sizeof(head));
	head[0] = 99;
	raw_tdb("/order/extra", head, sizeof(head), true);
	refused("a node record outside the blocks");
	free(block.dptr);
	free(p);
}
END_TEST

/* An older daemon's file is read as it is, then written as this
 * version's by the first compaction: the blocks of a version-3 file are
 * packed again, not copied as they are. */
static void older_file_is_read_and_compacted(uint32_t version)
{
	unsigned char *p;
	struct store s, loaded, ref;
	const struct node *after;
	struct db *db;
	size_t len;

	valid_file(&p, &len);
	as_older(version, NULL, NULL, 0);

	/* Read as it is, the same state as this version's file. */
	db = open_db(true);
	ck_assert_uint_eq(db_version(db), version);
	ck_assert_int_eq(load(db, &loaded), 0);
	new_daemon_store(&ref);
	build(&ref);
	same_store(&ref, &loaded);
	/* A change, then a checkpoint: the file is this version's since. */
	db_follow(db, &loaded, false);
	ck_assert_int_eq(db_upgraded(db), 0);
	db_loaded_done(db);
	put(&loaded, "/order/after", "v4", 2);
	ck_assert_int_eq(db_checkpoint(db), 0);
	db_close(db);
	free(fetch_raw(SCHEMA_KEY_NODES).dptr);
	db = open_db(true);
	ck_assert_uint_eq(db_version(db), SCHEMA_DB_VERSION);
	ck_assert_int_eq(load(db, &s), 0);
	after = store_lookup(&s, "/order/after");
	ck_assert_ptr_nonnull(after);
	ck_assert_uint_eq(node_value_len(after), 2);
	ck_assert_int_eq(memcmp(node_value(after), "v4", 2), 0);
	put(&ref, "/order/after", "v4", 2);
	same_store(&ref, &s);
	db_close(db);
	store_destroy(&ref);
	store_destroy(&s);
	store_destroy(&loaded);
	free(p);
}

START_TEST(db_version_2_file_is_read_and_compacted_to_version_4)
{
	older_file_is_read_and_compacted(2);
}
END_TEST

START_TEST(db_version_3_file_is_read_and_compacted_to_version_4)
{
	older_file_is_read_and_compacted(3);
}
END_TEST

/* ---- a checkpoint's free space (persist/tdb_space.h) ---- */

/* Record i's value: len bytes that depend on i. */
static void space_value(unsigned int i, unsigned char *v, size_t len)
{
	unsigned int x = i * 2654435761u + 1;

	for (size_t k = 0; k < len; k++) {
		x = x * 1103515245u + 12345u;
		v[k] = (unsigned char)(x >> 16);
	}
}

#define SPACE_RECORDS 300
#define SPACE_LEN 20000

/* Records 0..SPACE_RECORDS-1 as space_value made them, but every third
 * deleted: 1 when they all are so and tdb_check passes. */
static void space_check(const char *path)
{
	static unsigned char want[SPACE_LEN];
	struct tdb_context *t = tdb_open(path, 0, TDB_NOLOCK |
					 TDB_INCOMPATIBLE_HASH, O_RDWR, 0600);

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(tdb_check(t, NULL, NULL), 0);
	for (unsigned int i = 0; i < SPACE_RECORDS; i++) {
		TDB_DATA k = { (unsigned char *)&i, sizeof(i) };
		TDB_DATA v = tdb_fetch(t, k);

		if (i % 3 == 0) {
			ck_assert_ptr_null(v.dptr);
			continue;
		}
		space_value(i, want, sizeof(want));
		ck_assert_uint_eq(v.dsize, SPACE_LEN);
		ck_assert_mem_eq(v.dptr, want, SPACE_LEN);
		free(v.dptr);
	}
	tdb_close(t);
}

/* A tdb grown by libtdb, with free records at its end and (deletions)
 * in its middle: their pages are punched, every record reads back, and
 * the file still takes writes. */
START_TEST(tdb_space_punches_free_records_only)
{
	static unsigned char v[SPACE_LEN];
	struct tdb_context *t = tdb_open(dbpath, 131, TDB_NOLOCK |
					 TDB_INCOMPATIBLE_HASH,
					 O_RDWR | O_CREAT | O_EXCL, 0600);
	struct stat before, after;
	size_t released;

	ck_assert_ptr_nonnull(t);
	for (unsigned int i = 0; i < SPACE_RECORDS; i++) {
		TDB_DATA k = { (unsigned char *)&i, sizeof(i) };

		space_value(i, v, sizeof(v));
		ck_assert_int_eq(tdb_store(t, k, (TDB_DATA){ v, SPACE_LEN },
					   TDB_INSERT), 0);
	}
	for (unsigned int i = 0; i < SPACE_RECORDS; i += 3)
		ck_assert_int_eq(tdb_delete(t, (TDB_DATA){ (unsigned char *)&i,
							   sizeof(i) }), 0);
	ck_assert_int_eq(tdb_close(t), 0);
	ck_assert_int_eq(stat(dbpath, &before), 0);
	released = tdb_release_free_space(dbpath);
	ck_assert_int_eq(stat(dbpath, &after), 0);
	/* A hundred deleted records of 20 KB, and libtdb's room ahead. */
	ck_assert_uint_ge(released, 100 * (SPACE_LEN - 8192));
	ck_assert_int_eq(after.st_size, before.st_size);
	/* (A disk's file system may keep a block of its own.) */
	ck_assert_int_le(after.st_blocks * 512,
			 before.st_blocks * 512 - (off_t)released + 65536);
	space_check(dbpath);
	/* Written again: libtdb reuses the punched space. */
	t = tdb_open(dbpath, 0, TDB_NOLOCK | TDB_INCOMPATIBLE_HASH, O_RDWR,
		     0600);
	ck_assert_ptr_nonnull(t);
	for (unsigned int i = 0; i < SPACE_RECORDS; i += 3) {
		TDB_DATA k = { (unsigned char *)&i, sizeof(i) };

		space_value(i, v, sizeof(v));
		ck_assert_int_eq(tdb_store(t, k, (TDB_DATA){ v, SPACE_LEN },
					   TDB_INSERT), 0);
	}
	ck_assert_int_eq(tdb_check(t, NULL, NULL), 0);
	for (unsigned int i = 0; i < SPACE_RECORDS; i += 3)
		ck_assert_int_eq(tdb_delete(t, (TDB_DATA){ (unsigned char *)&i,
							   sizeof(i) }), 0);
	tdb_close(t);
	space_check(dbpath);
}
END_TEST

static void same_file(const char *path, const unsigned char *p, size_t len,
		      const char *what)
{
	unsigned char *now;
	size_t now_len;

	file_bytes(path, &now, &now_len);
	ck_assert_msg(now_len == len && memcmp(now, p, len) == 0,
		      "%s: the file was changed", what);
	free(now);
}

/* Anything but a tdb file as expected is left as it is. */
START_TEST(tdb_space_leaves_other_files_alone)
{
	unsigned char junk[65536], *p;
	size_t len;
	uint32_t bad = 0xfffffff0u;
	struct tdb_context *t;
	int fd;

	ck_assert_uint_eq(tdb_release_free_space(dbpath), 0);	/* none */
	memset(junk, 0x42, sizeof(junk));
	memcpy(junk, "TDB file\n", 10);
	write_file(dbpath, junk, sizeof(junk));
	ck_assert_uint_eq(tdb_release_free_space(dbpath), 0);
	same_file(dbpath, junk, sizeof(junk), "pad bytes");
	/* A real tdb whose free list's head points out of the file. */
	unlink(dbpath);
	t = tdb_open(dbpath, 131, TDB_NOLOCK | TDB_INCOMPATIBLE_HASH,
		     O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(tdb_store(t, (TDB_DATA){ junk, 4 },
				   (TDB_DATA){ junk, 30000 }, TDB_INSERT), 0);
	tdb_close(t);
	fd = open(dbpath, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, &bad, sizeof(bad), 168), sizeof(bad));
	close(fd);
	file_bytes(dbpath, &p, &len);
	ck_assert_uint_eq(tdb_release_free_space(dbpath), 0);
	same_file(dbpath, p, len, "a broken free list");
	free(p);
}
END_TEST

/* A test case whose tests each get a directory of their own (db_rig.h). */
static TCase *file_case(const char *name)
{
	TCase *t = tcase_create(name);

	tcase_add_unchecked_fixture(t, db_rig_make_top, db_rig_remove_top);
	tcase_add_checked_fixture(t, db_rig_setup, db_rig_teardown);
	return t;
}

static Suite *persist_suite(void)
{
	Suite *s = suite_create("persist");
	TCase *t = tcase_create("record");

	tcase_add_test(t, record_round_trip);
	tcase_add_test(t, record_layout_is_little_endian);
	tcase_add_test(t, record_oversized_bytes_fail_the_writer);
	tcase_add_test(t, record_every_truncation_is_detected);
	tcase_add_test(t, record_truncated_u64_is_zero);
	tcase_add_test(t, record_error_flag_is_sticky);
	tcase_add_test(t, record_length_beyond_the_end_is_refused);
	tcase_add_test(t, record_str_needs_its_terminator);
	suite_add_tcase(s, t);

	t = file_case("db");
	tcase_add_test(t, db_new_file_is_created_and_not_restorable);
	tcase_add_test(t, db_empty_file_counts_as_new);
	tcase_add_test(t, db_followed_store_loads_back_the_same);
	tcase_add_test(t, db_save_all_saves_what_the_store_held);
	tcase_add_test(t, db_nodes_made_after_a_load_follow_the_loaded_ones);
	tcase_add_test(t, db_uncommitted_changes_do_not_reach_the_file);
	tcase_add_test(t, db_each_selects_by_prefix);
	tcase_add_test(t, db_a_change_without_memory_is_written_with_the_whole_state);
	tcase_add_test(t, db_a_rewrite_that_fails_too_turns_persistence_off);
	suite_add_tcase(s, t);

	t = file_case("bad files");
	tcase_add_test(t, db_random_bytes_file_is_refused);
	tcase_add_test(t, db_text_file_is_refused);
	tcase_add_test(t, db_half_file_is_refused);
	tcase_add_test(t, db_header_only_file_is_refused);
	tcase_add_test(t, db_foreign_or_other_version_tdb_is_refused);
	tcase_add_test(t, db_damaged_node_blocks_are_refused);
	tcase_add_test(t, db_version_2_file_is_read_and_compacted_to_version_4);
	tcase_add_test(t, db_version_3_file_is_read_and_compacted_to_version_4);
	tcase_add_test(t, db_checkpoint_in_any_order_loads_the_same);
	tcase_add_test(t, db_a_small_store_is_packed_fast_a_large_one_small);
	tcase_add_test(t, db_merge_keeps_parents_before_children);
	tcase_add_test(t, db_malformed_node_records_are_refused);
	tcase_add_test(t, db_nodes_of_every_size_load_back_the_same);
	tcase_add_test(t, db_a_node_found_bad_after_reading_ahead_is_the_one_named);
	suite_add_tcase(s, t);

	t = file_case("free space");
	tcase_add_test(t, tdb_space_punches_free_records_only);
	tcase_add_test(t, tdb_space_leaves_other_files_alone);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(persist_suite());
}
