/*
 * persist: the journal in front of the tdb file (journal.c, compact.c,
 * db.c, load.c; the layout is schema/schema.h's).
 *
 * The reader: frames written by the schema's encoders are read back
 * change by change; a tail cut anywhere inside the last frame, or a last
 * frame that fails its checksum, is cut at the last whole frame; zeros
 * after the frames (the space a live journal allocates ahead) are its
 * end, and a frame copied in part before them is a torn tail; a frame
 * head that fails its check, a bad frame with more after it, a malformed
 * change in a whole frame, another magic or version are refused.  Every
 * input is a heap block of exactly its length (ASan sees an overread).
 *
 * The database: a commit is one frame, nothing when nothing changed; a
 * restart sees the tdb file with the journals on top, the last change of
 * a key winning, the old journal before the live one; applying a journal
 * twice gives the same file; a compaction (a small limit) brings the tdb
 * file up to date and removes the old journal; a checkpoint leaves the
 * state in the tdb file alone; a damaged journal stops the start and is
 * left as it was; a torn one is cut and written on; a checkpoint that
 * cannot merge a journal writes the state from memory; a write that fails
 * empties the files.
 */
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <tdb.h>

#include "persist/checkpoint.h"
#include "persist/compact.h"
#include "persist/db.h"
#include "persist/db_impl.h"
#include "persist/journal.h"
#include "tests/unit/db_rig.h"
#include "schema/schema.h"
#include "store/store.h"

/*
 * How long a test waits for a compaction, in loop_ticks (10 ms) or
 * milliseconds: 30 s.  The thread runs at SCHED_IDLE, so beside other busy
 * processes (make check runs tests side by side) it may wait its turn for
 * seconds; a wait ends as soon as the compaction does.
 */
#define SETTLE_TICKS 3000
#define SETTLE_MS 30000

/* ------------------------------------------------------------ frames */

/* The version add_head writes (this one's unless a test of an older
 * version's rules asks), and the salt frames are sealed with: the head's,
 * or a journal_out's (seal_with). */
#define TEST_SALT 0x5a17ed5a17ed0001ull
static uint32_t head_version = SCHEMA_JOURNAL_VERSION;
static uint64_t seal_salt = TEST_SALT;

static void seal_with(uint64_t salt)
{
	seal_salt = salt;
}

/* Changes are given as "+key=value" (a put) or "-key" (a delete). */
static void add_change(struct writer *w, const char *spec)
{
	struct schema_change c = { .put = spec[0] == '+' };
	const char *eq = strchr(spec, '=');

	c.key = spec + 1;
	c.key_len = (uint32_t)(c.put ? (size_t)(eq - spec - 1)
				     : strlen(spec + 1));
	if (c.put) {
		c.value = eq + 1;
		c.value_len = (uint32_t)strlen(eq + 1);
	}
	schema_write_change(w, &c);
}

/* A frame begun in a new buffer: room for its head, w writing after. */
static struct evbuffer *frame_begin(struct writer *w)
{
	struct evbuffer *b = evbuffer_new();
	unsigned char room[SCHEMA_FRAME_HEAD] = { 0 };

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(evbuffer_add(b, room, sizeof(room)), 0);
	wr_init(w, b);
	return b;
}

/* The frame in b (w wrote its changes), sealed, appended to out; b
 * freed. */
static void frame_end(struct evbuffer *out, struct evbuffer *b,
		      const struct writer *w)
{
	size_t len = evbuffer_get_length(b);
	unsigned char *p = evbuffer_pullup(b, -1);

	ck_assert(wr_ok(w));
	schema_seal_frame(p, p + SCHEMA_FRAME_HEAD,
			  (uint32_t)(len - SCHEMA_FRAME_HEAD), seal_salt);
	ck_assert_int_eq(evbuffer_add(out, p, len), 0);
	evbuffer_free(b);
}

/* One frame of the NULL-terminated changes, appended to out. */
static void add_frame(struct evbuffer *out, const char *const *changes)
{
	struct writer w;
	struct evbuffer *b = frame_begin(&w);

	for (; *changes; changes++)
		add_change(&w, *changes);
	frame_end(out, b, &w);
}

static void add_head(struct evbuffer *out)
{
	struct writer w;
	uint64_t salt = head_version >= SCHEMA_JOURNAL_VERSION_SALTED
				? TEST_SALT : 0;

	wr_init(&w, out);
	schema_write_journal_head(&w, head_version, salt);
	ck_assert(wr_ok(&w));
	seal_with(salt);
}

#define FRAME(out, ...) add_frame(out, (const char *const[]){ __VA_ARGS__, NULL })

/* What a scan handed over, as "+key=value" / "-key", one a line. */
struct seen {
	char text[4096];
	size_t frames;
};

static int seen_change(const struct schema_change *c, void *arg)
{
	struct seen *s = arg;
	size_t n = strlen(s->text);

	snprintf(s->text + n, sizeof(s->text) - n, "%c%.*s%s%.*s\n",
		 c->put ? '+' : '-', (int)c->key_len, (const char *)c->key,
		 c->put ? "=" : "", c->put ? (int)c->value_len : 0,
		 c->put ? (const char *)c->value : "");
	return 0;
}

static int seen_frame(const void *bytes, size_t len, void *arg)
{
	(void)bytes;
	(void)len;
	((struct seen *)arg)->frames++;
	return 0;
}

/* Scan the first len bytes of b (a copy of exactly that length). */
static enum journal_state scan(struct evbuffer *b, size_t len,
			       struct journal_scan *s, struct seen *seen)
{
	unsigned char *all, *p;
	size_t n;

	all = unit_take(b, &n);
	ck_assert_uint_le(len, n);
	p = unit_exact(all, len);
	memset(seen, 0, sizeof(*seen));
	ck_assert_int_eq(journal_scan(p, len, s, true, seen_change,
				      seen_frame, seen), 0);
	free(p);
	free(all);
	return s->state;
}

START_TEST(frames_are_read_back_in_order)
{
	struct evbuffer *b = evbuffer_new();
	struct journal_scan s;
	struct seen seen;

	add_head(b);
	FRAME(b, "+#a=1", "-#b");
	FRAME(b, "+#a=2");
	FRAME(b, "+#c=", "-#a", "+#d=xyz");
	ck_assert_int_eq(scan(b, evbuffer_get_length(b), &s, &seen),
			 JOURNAL_WHOLE);
	ck_assert_str_eq(seen.text, "+#a=1\n-#b\n+#a=2\n+#c=\n-#a\n+#d=xyz\n");
	ck_assert_uint_eq(seen.frames, 3);
	ck_assert_uint_eq(s.frames, 3);
	ck_assert_uint_eq(s.changes, 6);
	ck_assert_uint_eq(s.whole, evbuffer_get_length(b));
	evbuffer_free(b);
}
END_TEST

START_TEST(an_empty_file_or_a_head_cut_short_is_an_empty_journal)
{
	struct evbuffer *b = evbuffer_new();
	struct journal_scan s;
	struct seen seen;

	add_head(b);
	ck_assert_int_eq(scan(b, 0, &s, &seen), JOURNAL_WHOLE);
	ck_assert_uint_eq(s.whole, 0);
	for (size_t cut = 1; cut < schema_journal_head_len(); cut++) {
		ck_assert_int_eq(scan(b, cut, &s, &seen), JOURNAL_TORN);
		ck_assert_uint_eq(s.whole, 0);
	}
	ck_assert_int_eq(scan(b, schema_journal_head_len(), &s, &seen),
			 JOURNAL_WHOLE);
	ck_assert_uint_eq(s.whole, schema_journal_head_len());
	ck_assert_uint_eq(s.frames, 0);
	evbuffer_free(b);
}
END_TEST

START_TEST(a_tail_cut_anywhere_in_the_last_frame_is_cut_off)
{
	struct evbuffer *b = evbuffer_new();
	struct journal_scan s;
	struct seen seen;
	size_t first, all;

	add_head(b);
	FRAME(b, "+#kept=1");
	first = evbuffer_get_length(b);
	FRAME(b, "+#torn=2", "+/x=never");
	all = evbuffer_get_length(b);
	for (size_t cut = first + 1; cut < all; cut++) {
		ck_assert_msg(scan(b, cut, &s, &seen) == JOURNAL_TORN,
			      "cut at %zu of %zu: not torn", cut, all);
		ck_assert_uint_eq(s.whole, first);
		ck_assert_uint_eq(s.at, first);
		/* Nothing of the torn frame is handed over. */
		ck_assert_str_eq(seen.text, "+#kept=1\n");
	}
	evbuffer_free(b);
}
END_TEST

/* b with byte at flipped. */
static struct evbuffer *flipped(struct evbuffer *b, size_t at)
{
	struct evbuffer *c = evbuffer_new();
	unsigned char *p;
	size_t n;

	p = unit_take(b, &n);
	ck_assert_uint_lt(at, n);
	p[at] ^= 0x20;
	ck_assert_int_eq(evbuffer_add(c, p, n), 0);
	free(p);
	return c;
}

START_TEST(a_last_frame_failing_its_checksum_is_a_torn_tail)
{
	struct evbuffer *b = evbuffer_new(), *c;
	struct journal_scan s;
	struct seen seen;
	size_t first;

	add_head(b);
	FRAME(b, "+#kept=1");
	first = evbuffer_get_length(b);
	FRAME(b, "+#bad=2");
	/* A byte of the payload (a disk that kept the length, not the
	 * bytes): the frame runs to the end of the file. */
	c = flipped(b, evbuffer_get_length(b) - 1);
	ck_assert_int_eq(scan(c, evbuffer_get_length(c), &s, &seen),
			 JOURNAL_TORN);
	ck_assert_uint_eq(s.whole, first);
	ck_assert_str_eq(seen.text, "+#kept=1\n");
	evbuffer_free(c);
	evbuffer_free(b);
}
END_TEST

START_TEST(damage_before_the_end_is_refused)
{
	struct evbuffer *b = evbuffer_new(), *c;
	struct journal_scan s;
	struct seen seen;
	size_t first, second;

	/* Version 2's rules: nothing but zeros may follow a bad frame
	 * (version 3's: version_3_reads_past_a_bad_frame_for_its_life). */
	head_version = 2;
	add_head(b);
	first = evbuffer_get_length(b);
	FRAME(b, "+#a=1");
	second = evbuffer_get_length(b);
	FRAME(b, "+#b=2");
	/* A payload byte of the first frame: a bad frame, more after it. */
	c = flipped(b, second - 1);
	ck_assert_int_eq(scan(c, evbuffer_get_length(c), &s, &seen),
			 JOURNAL_BAD);
	ck_assert_uint_eq(s.at, first);
	evbuffer_free(c);
	/* Each byte of a frame head, even of the last frame: its length
	 * cannot be trusted, so it is not a torn tail. */
	for (size_t i = 0; i < SCHEMA_FRAME_HEAD; i++) {
		c = flipped(b, second + i);
		ck_assert_msg(scan(c, evbuffer_get_length(c), &s, &seen) ==
			      JOURNAL_BAD, "head byte %zu", i);
		evbuffer_free(c);
	}
	/* The magic, the version. */
	c = flipped(b, 5);
	ck_assert_int_eq(scan(c, evbuffer_get_length(c), &s, &seen),
			 JOURNAL_BAD);
	evbuffer_free(c);
	c = flipped(b, schema_journal_head_len_of(2) - 4);
	ck_assert_int_eq(scan(c, evbuffer_get_length(c), &s, &seen),
			 JOURNAL_BAD);
	evbuffer_free(c);
	evbuffer_free(b);
}
END_TEST

/* b's bytes, then those of frames sealed with another salt (an earlier
 * life of the file) and some of their bytes cut at any point. */
static struct evbuffer *with_earlier_life(struct evbuffer *b, size_t cut)
{
	struct evbuffer *c = evbuffer_new(), *old = evbuffer_new();
	unsigned char *p, *q;
	size_t n, m;

	seal_with(TEST_SALT + 1);
	FRAME(old, "+#old=1", "+#older=2");
	FRAME(old, "+#old=3");
	seal_with(TEST_SALT);
	p = unit_take(b, &n);
	q = unit_take(old, &m);
	ck_assert_uint_lt(cut, m);
	ck_assert_int_eq(evbuffer_add(c, p, n), 0);
	ck_assert_int_eq(evbuffer_add(c, q + cut, m - cut), 0);
	free(p);
	free(q);
	evbuffer_free(old);
	return c;
}

/*
 * Version 3: a spare's file keeps its last life's frames after the new
 * head, so the bytes after a journal's frames may be anything but a frame
 * of its salt.  Those end it (whole frames, at any cut of theirs); a
 * frame of its own that fails, with none of its salt after, is a torn
 * tail; one with a frame of its salt anywhere after is damage.
 */
START_TEST(version_3_reads_past_a_bad_frame_for_its_life)
{
	struct evbuffer *b = evbuffer_new(), *c, *d;
	struct journal_scan s;
	struct seen seen;
	size_t first, second, all;

	add_head(b);
	first = evbuffer_get_length(b);
	FRAME(b, "+#a=1");
	second = evbuffer_get_length(b);
	FRAME(b, "+#b=2");
	all = evbuffer_get_length(b);
	for (size_t cut = 0; cut < 40; cut++) {
		c = with_earlier_life(b, cut);
		ck_assert_msg(scan(c, evbuffer_get_length(c), &s, &seen) ==
			      JOURNAL_WHOLE, "an earlier life cut at %zu", cut);
		ck_assert_uint_eq(s.whole, all);
		ck_assert_uint_eq(s.frames, 2);
		ck_assert_str_eq(seen.text, "+#a=1\n+#b=2\n");
		ck_assert_uint_eq(s.salt, TEST_SALT);
		evbuffer_free(c);
	}
	/* The last frame's payload damaged, an earlier life after it: a
	 * torn tail.  Its head damaged: the end, where it starts. */
	c = flipped(b, all - 1);
	d = with_earlier_life(c, 5);
	ck_assert_int_eq(scan(d, evbuffer_get_length(d), &s, &seen),
			 JOURNAL_TORN);
	ck_assert_uint_eq(s.whole, second);
	ck_assert_str_eq(seen.text, "+#a=1\n");
	evbuffer_free(c);
	evbuffer_free(d);
	for (size_t i = 0; i < SCHEMA_FRAME_HEAD; i++) {
		c = flipped(b, second + i);
		d = with_earlier_life(c, 3);
		ck_assert_msg(scan(d, evbuffer_get_length(d), &s, &seen) ==
			      JOURNAL_WHOLE, "head byte %zu", i);
		ck_assert_uint_eq(s.whole, second);
		evbuffer_free(c);
		evbuffer_free(d);
	}
	/* The first frame damaged, in its payload or its head: a frame of
	 * the journal's salt follows, so it is damage, not the end. */
	for (size_t at = first; at < second; at += 3) {
		c = flipped(b, at);
		d = with_earlier_life(c, 7);
		ck_assert_msg(scan(d, evbuffer_get_length(d), &s, &seen) ==
			      JOURNAL_BAD, "byte %zu of the first frame", at);
		ck_assert_uint_eq(s.at, first);
		evbuffer_free(c);
		evbuffer_free(d);
	}
	evbuffer_free(b);
}
END_TEST

static void add_zeros(struct evbuffer *b, size_t n)
{
	unsigned char z[256] = { 0 };

	for (; n; n -= n < sizeof(z) ? n : sizeof(z))
		ck_assert_int_eq(evbuffer_add(b, z, n < sizeof(z) ? n
							: sizeof(z)), 0);
}

/* The live journal is a mapping over space allocated ahead: zeros after
 * the last frame are its end, and a copy cut short leaves the first
 * bytes of a frame (its head first) with zeros after. */
START_TEST(zeros_after_the_frames_are_the_end_and_a_copy_cut_short_is_torn)
{
	struct evbuffer *b = evbuffer_new(), *whole = evbuffer_new(), *c;
	struct journal_scan s;
	struct seen seen;
	unsigned char *all;
	size_t first, n;

	add_head(b);
	FRAME(b, "+#kept=1");
	first = evbuffer_get_length(b);
	FRAME(b, "+#torn=2", "+#more=3");
	all = unit_take(b, &n);
	/* Two whole frames, then zeros. */
	ck_assert_int_eq(evbuffer_add(whole, all, n), 0);
	add_zeros(whole, 3000);
	ck_assert_int_eq(scan(whole, evbuffer_get_length(whole), &s, &seen),
			 JOURNAL_WHOLE);
	ck_assert_uint_eq(s.whole, n);
	ck_assert_uint_eq(s.frames, 2);
	/* The second frame's first k bytes, then zeros: torn at it. */
	for (size_t k = 1; k < n - first; k++) {
		c = evbuffer_new();
		ck_assert_int_eq(evbuffer_add(c, all, first + k), 0);
		add_zeros(c, n - first - k + 100);
		ck_assert_msg(scan(c, evbuffer_get_length(c), &s, &seen) ==
			      JOURNAL_TORN, "%zu bytes copied: not torn", k);
		ck_assert_uint_eq(s.whole, first);
		ck_assert_uint_eq(s.at, first);
		ck_assert_str_eq(seen.text, "+#kept=1\n");
		evbuffer_free(c);
	}
	/* A head and zeros alone: an empty journal. */
	c = evbuffer_new();
	ck_assert_int_eq(evbuffer_add(c, all, schema_journal_head_len()), 0);
	add_zeros(c, 500);
	ck_assert_int_eq(scan(c, evbuffer_get_length(c), &s, &seen),
			 JOURNAL_WHOLE);
	ck_assert_uint_eq(s.whole, schema_journal_head_len());
	ck_assert_uint_eq(s.frames, 0);
	evbuffer_free(c);
	/* Half a frame, zeros, then a whole frame: not a copy cut short
	 * (nothing is copied after one), so damage. */
	c = evbuffer_new();
	ck_assert_int_eq(evbuffer_add(c, all, first + 20), 0);
	add_zeros(c, 64);
	ck_assert_int_eq(evbuffer_add(c, all + schema_journal_head_len(),
				      first - schema_journal_head_len()), 0);
	ck_assert_int_eq(scan(c, evbuffer_get_length(c), &s, &seen),
			 JOURNAL_BAD);
	ck_assert_uint_eq(s.at, first);
	evbuffer_free(c);
	free(all);
	evbuffer_free(whole);
	evbuffer_free(b);
}
END_TEST

START_TEST(a_malformed_change_in_a_whole_frame_is_refused)
{
	static const char *const bad[] = {
		"+/no-node=not a node record",	/* a node's value */
		"+=empty key",			/* an empty key */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct evbuffer *b = evbuffer_new();
		struct journal_scan s;
		struct seen seen;

		add_head(b);
		FRAME(b, "+#a=1");
		FRAME(b, "+#b=2", bad[i]);
		ck_assert_msg(scan(b, evbuffer_get_length(b), &s, &seen) ==
			      JOURNAL_BAD, "%s accepted", bad[i]);
		evbuffer_free(b);
	}
}
END_TEST

START_TEST(a_fold_keeps_the_last_change_of_each_key)
{
	struct evbuffer *b = evbuffer_new();
	const struct fold_entry *e;
	struct journal_scan s;
	unsigned char *p;
	struct fold f;
	size_t n;
	char key[32];

	add_head(b);
	FRAME(b, "+#a=1", "+#b=1", "-#c");
	FRAME(b, "+#a=2", "-#b", "+#c=3");
	/* Enough keys to grow the table a few times. */
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "+#k%d=%d", i % 1500, i);
		FRAME(b, key);
	}
	p = unit_take(b, &n);
	fold_init(&f);
	ck_assert_int_eq(journal_scan(p, n, &s, true, fold_change, NULL, &f),
			 0);
	ck_assert_int_eq(s.state, JOURNAL_WHOLE);
	ck_assert_uint_eq(f.count, 3 + 1500);
	e = fold_find(&f, "#a", 2);
	ck_assert(e && e->c.put && e->c.value_len == 1 &&
		  memcmp(e->c.value, "2", 1) == 0);
	e = fold_find(&f, "#b", 2);
	ck_assert(e && !e->c.put);
	e = fold_find(&f, "#c", 2);
	ck_assert(e && e->c.put);
	e = fold_find(&f, "#k7", 3);
	ck_assert(e && e->c.value_len == 4 && memcmp(e->c.value, "1507", 4) == 0);
	ck_assert_ptr_null(fold_find(&f, "#k1500", 6));
	ck_assert_ptr_null(fold_find(&f, "#", 1));
	fold_free(&f);
	free(p);
	evbuffer_free(b);
}
END_TEST

/* ----------------------------------------------------------- database */

static struct perms *perm0(void)
{
	struct perms *p = perms_alloc(1);

	ck_assert_ptr_nonnull(p);
	p->e[0].domid = 0;
	p->e[0].access = PERM_NONE;
	return p;
}

/* The store every fresh daemon starts with. */
static void new_store(struct store *s, bool special)
{
	struct perms *p = perm0();

	store_init(s, p);
	if (special) {
		ck_assert_ptr_nonnull(store_create(s, "@introduceDomain", p));
		ck_assert_ptr_nonnull(store_create(s, "@releaseDomain", p));
	}
	perms_unref(p);
}

static void put(struct store *s, const char *path, const char *value)
{
	struct perms *p = perm0();

	ck_assert_msg(store_write(s, path, p, value, strlen(value)) != NULL,
		      "write %s", path);
	perms_unref(p);
}

static void rm(struct store *s, const char *path)
{
	ck_assert_int_eq(store_remove(s, store_lookup(s, path), NULL, NULL), 0);
}

/* A new database following a new daemon's store, started. */
static struct db *new_db(struct store *s)
{
	struct db *db = open_db(false);

	new_store(s, true);
	db_follow(db, s, true);
	db_loaded_done(db);
	return db;
}

/* A daemon started again on the files: s loaded and followed; with
 * started, its start-up over (compactions may run). */
static struct db *restarted(struct store *s, bool started)
{
	struct db *db = open_db(true);

	new_store(s, false);
	ck_assert_int_eq(db_load_nodes(db, s), 0);
	db_follow(db, s, false);
	if (started)
		db_loaded_done(db);
	return db;
}

/* The value of path after a restart on the files (NULL: none), and the
 * number of nodes. */
static char *reload(const char *path, unsigned long *count)
{
	struct db *db = open_db(true);
	struct store s;
	struct node *n;
	char *v = NULL;

	new_store(&s, false);
	ck_assert_int_eq(db_load_nodes(db, &s), 0);
	n = store_lookup(&s, path);
	if (n) {
		v = malloc(node_value_len(n) + 1);
		ck_assert_ptr_nonnull(v);
		memcpy(v, node_value(n), node_value_len(n));
		v[node_value_len(n)] = '\0';
	}
	if (count)
		*count = store_count(&s);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	store_destroy(&s);
	db_close(db);		/* not started: changes nothing */
	return v;
}

/* A fresh load of the files has want at path. */
static void reloads_as(const char *path, const char *want)
{
	char *v = reload(path, NULL);

	ck_assert_msg(v != NULL, "%s is missing", path);
	ck_assert_str_eq(v, want);
	free(v);
}

static bool exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

static off_t size_of(const char *path)
{
	struct stat sb;

	ck_assert_int_eq(stat(path, &sb), 0);
	return sb.st_size;
}

/* Leave the files as a crash would: the process that has them dies. */
#define CRASHED(...) do {						\
		pid_t pid_ = fork();					\
		int st_;						\
									\
		ck_assert_int_ge(pid_, 0);				\
		if (pid_ == 0) {					\
			__VA_ARGS__;					\
			_exit(0);					\
		}							\
		ck_assert_int_eq(waitpid(pid_, &st_, 0), pid_);		\
		ck_assert(WIFEXITED(st_) && WEXITSTATUS(st_) == 0);	\
	} while (0)

START_TEST(a_commit_is_one_frame_and_nothing_when_nothing_changed)
{
	CRASHED({
		struct store s;
		struct db *db = new_db(&s);
		off_t after;
		struct journal_map m;
		struct journal_scan sc;

		/* The first state is in the tdb file: no journal yet. */
		ck_assert_int_eq(db_commit(db), 0);
		ck_assert(!exists(jpath));
		put(&s, "/a", "1");
		put(&s, "/b", "2");
		rm(&s, "/a");
		ck_assert_int_eq(db_commit(db), 0);
		after = size_of(jpath);
		ck_assert_int_gt(after, (off_t)schema_journal_head_len());
		ck_assert_int_eq(db_commit(db), 0);
		ck_assert_int_eq(size_of(jpath), after);
		ck_assert_int_eq(journal_map(jpath, true, &m), 0);
		ck_assert_int_eq(journal_scan(m.p, m.len, &sc, true, NULL,
					      NULL, NULL), 0);
		ck_assert_int_eq(sc.state, JOURNAL_WHOLE);
		ck_assert_uint_eq(sc.frames, 1);
		/* Space is allocated ahead of the frame, zeros. */
		ck_assert_uint_lt(sc.whole, m.len);
		journal_unmap(&m);
		/* Nothing yet in the tdb file. */
		ck_assert(!exists(oldpath));
	});
	{
		char *v = reload("/b", NULL), *a = reload("/a", NULL);

		ck_assert_str_eq(v, "2");
		ck_assert_ptr_null(a);
		free(v);
	}
}
END_TEST

/* The files a new daemon leaves that wrote the NULL-terminated pairs of
 * path and value, then a checkpoint: no journal, only the tdb file. */
static void checkpoint_of(const char *const *pairs)
{
	CRASHED({
		struct store s;
		struct db *db = new_db(&s);

		for (const char *const *p = pairs; *p; p += 2)
			put(&s, p[0], p[1]);
		ck_assert_int_eq(db_checkpoint(db), 0);
		ck_assert(!exists(jpath));
	});
}

START_TEST(the_last_change_of_a_key_wins_over_the_file)
{
	unsigned long count;
	char *v;

	/* In the tdb file: /x=file, /gone=1. */
	checkpoint_of((const char *const[]){ "/x", "file", "/gone", "1",
					      NULL });
	/* In the journals on top: /x changed three times, /gone removed. */
	CRASHED({
		struct store s;
		struct db *db = restarted(&s, true);

		put(&s, "/x", "one");
		ck_assert_int_eq(db_commit(db), 0);
		put(&s, "/x", "two");
		rm(&s, "/gone");
		ck_assert_int_eq(db_commit(db), 0);
		put(&s, "/x", "three");
		ck_assert_int_eq(db_commit(db), 0);
	});
	ck_assert(exists(jpath));
	v = reload("/x", &count);
	ck_assert_str_eq(v, "three");
	free(v);
	ck_assert_ptr_null(reload("/gone", NULL));
	/* The old journal is replayed before the live one. */
	ck_assert_int_eq(rename(jpath, oldpath), 0);
	CRASHED({
		struct store s;
		struct db *db = restarted(&s, false);

		/* Not started: the old journal stays for the next start. */
		put(&s, "/x", "newest");
		ck_assert_int_eq(db_commit(db), 0);
	});
	ck_assert(exists(oldpath) && exists(jpath));
	reloads_as("/x", "newest");
}
END_TEST

/* Every record of the checkpoint at dbpath (nodes out of their blocks),
 * as "key=value-length;" in key order. */
struct dump {
	char *lines[512];
	size_t n;
};

static int dump_one(const void *k, size_t klen, const void *v, size_t vlen,
		    void *arg)
{
	struct dump *d = arg;

	(void)v;
	ck_assert_uint_lt(d->n, 512);
	ck_assert_int_gt(asprintf(&d->lines[d->n++], "%.*s=%zu;", (int)klen,
				  (const char *)k, vlen), 0);
	return 0;
}

static int by_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dump_tdb(char out[8192])
{
	struct tdb_context *t = tdb_open(dbpath, 0, TDB_NOLOCK, O_RDONLY, 0);
	struct dump d = { .n = 0 };
	char why[200];

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(ckpt_read(t, SCHEMA_DB_VERSION, dump_one, &d, why,
				   sizeof(why)), 0);
	tdb_close(t);
	qsort(d.lines, d.n, sizeof(*d.lines), by_line);
	out[0] = '\0';
	for (size_t i = 0; i < d.n; i++) {
		strncat(out, d.lines[i], 8191 - strlen(out));
		free(d.lines[i]);
	}
}

static void copy_file(const char *from, const char *to)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(applying_a_journal_twice_gives_the_same_file)
{
	char once[8192], twice[8192], why[200], saved[200];
	unsigned long c1, c2;
	char *v;

	CRASHED({
		struct store s;
		struct db *db = new_db(&s);

		ck_assert_int_eq(db_checkpoint(db), 0);
		put(&s, "/a/b", "1");
		put(&s, "/a/c", "2");
		ck_assert_int_eq(db_commit(db), 0);
		rm(&s, "/a/b");
		put(&s, "/a/c", "22");
		ck_assert_int_eq(db_commit(db), 0);
	});
	snprintf(saved, sizeof(saved), "%s.saved", jpath);
	copy_file(jpath, saved);
	ck_assert_int_eq(compact_file(dbpath, jpath, true, NULL, why, sizeof(why)), 0);
	ck_assert(!exists(jpath));
	dump_tdb(once);
	ck_assert_ptr_nonnull(strstr(once, "/a/c="));
	ck_assert_ptr_null(strstr(once, "/a/b="));
	v = reload("/a/c", &c1);
	ck_assert_str_eq(v, "22");
	free(v);
	/* A crash after the tdb commit, before the unlink: again. */
	copy_file(saved, jpath);
	ck_assert_int_eq(compact_file(dbpath, jpath, true, NULL, why, sizeof(why)), 0);
	dump_tdb(twice);
	ck_assert_str_eq(once, twice);
	v = reload("/a/c", &c2);
	ck_assert_str_eq(v, "22");
	ck_assert_uint_eq(c1, c2);
	free(v);
	/* And a restart that finds it still there reads the same. */
	copy_file(saved, jpath);
	v = reload("/a/c", &c2);
	ck_assert_str_eq(v, "22");
	ck_assert_uint_eq(c1, c2);
	free(v);
}
END_TEST

/*
 * The compaction thread keeps zstd's contexts from one checkpoint to the
 * next (ckpt_keep_contexts): each checkpoint written and read with a
 * context used before holds what it must.
 */
START_TEST(checkpoints_with_kept_contexts_read_back_the_same)
{
	char first[8192], second[8192];
	struct store s;
	struct db *db;
	char *v;

	ckpt_keep_contexts(true);
	db = new_db(&s);
	put(&s, "/a", "1");
	put(&s, "/a/b", "22");
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_int_eq(db_checkpoint(db), 0);
	dump_tdb(first);
	ck_assert_ptr_nonnull(strstr(first, "/a/b="));
	rm(&s, "/a/b");
	put(&s, "/a/c", "333");
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_int_eq(db_checkpoint(db), 0);
	dump_tdb(second);
	ck_assert_ptr_null(strstr(second, "/a/b="));
	ck_assert_ptr_nonnull(strstr(second, "/a/c="));
	v = reload("/a/c", NULL);
	ck_assert_str_eq(v, "333");
	free(v);
	s.observer = NULL;
	db_close(db);
	store_destroy(&s);
	ckpt_keep_contexts(false);
}
END_TEST

START_TEST(a_compaction_brings_the_file_up_to_date)
{
	unsigned long count;
	char *v;

	setenv("XENSTORED_JOURNAL_LIMIT", "2k", 1);
	CRASHED({
		struct store s;
		struct db *db = new_db(&s);
		char path[64], val[64];
		bool rotated = false;

		for (int i = 0; i < 400; i++) {
			snprintf(path, sizeof(path), "/c/%d", i % 50);
			snprintf(val, sizeof(val), "value %d", i);
			put(&s, path, val);
			ck_assert_int_eq(db_commit(db), 0);
			rotated |= exists(oldpath);
			/* The journal stays near its limit: one frame more,
			 * or what came while a compaction ran. */
			ck_assert_int_lt(size_of(jpath), 64 * 1024);
		}
		ck_assert(rotated);
		/* The last compaction done (a commit reaps it), without a
		 * close: the compactions and the journals hold the state. */
		for (int i = 0; i < SETTLE_MS && exists(oldpath); i++) {
			usleep(1000);
			ck_assert_int_eq(db_commit(db), 0);
		}
	});
	v = reload("/c/49", &count);
	ck_assert_str_eq(v, "value 399");
	free(v);
	ck_assert_uint_eq(count, 1 + 2 + 1 + 50);
	/* The tdb file was written by compactions: it has /c/0 at least. */
	{
		char all[8192];

		dump_tdb(all);
		ck_assert_ptr_nonnull(strstr(all, "/c/0="));
	}
}
END_TEST

/*
 * Without XENSTORED_JOURNAL_LIMIT, a small store's journal is merged when
 * it passes 16 MiB (db.c): not at 8 MiB, the limit before, and not much
 * past 16 (the file is allocated up to 256 KiB ahead of its frames).
 */
START_TEST(a_small_stores_journal_is_merged_past_16_mib)
{
	CRASHED({
		struct store s;
		struct db *db = new_db(&s);
		char path[64], val[160];
		off_t last = 0;

		memset(val, 'v', sizeof(val) - 1);
		val[sizeof(val) - 1] = '\0';
		for (int i = 0; !exists(oldpath); i++) {
			ck_assert_int_lt(i, 200000);
			last = exists(jpath) ? size_of(jpath) : 0;
			snprintf(path, sizeof(path), "/small/%d", i % 100);
			put(&s, path, val);
			ck_assert_int_eq(db_commit(db), 0);
		}
		ck_assert_int_gt(last, (16 << 20) - (256 << 10));
		ck_assert_int_le(last, (16 << 20) + (256 << 10));
		db_close(db);
		store_destroy(&s);
	});
}
END_TEST

/*
 * Compactions read only the last change of each node (the live journal's
 * index, jindex.h): nodes written many times, removed, created again
 * under ids used again, across many rotations, come back as the last
 * change left them.
 */
START_TEST(compactions_through_the_index_keep_the_last_state)
{
	enum { PATHS = 24, OPS = 3000 };
	char want[PATHS][32];
	bool alive[PATHS] = { false };
	unsigned int seed = 7;

	setenv("XENSTORED_JOURNAL_LIMIT", "2k", 1);
	/* The model: the same choices, made again outside the child. */
	for (int i = 0; i < OPS; i++) {
		int k = rand_r(&seed) % PATHS;

		if (alive[k] && rand_r(&seed) % 4 == 0)
			alive[k] = false;
		else {
			snprintf(want[k], sizeof(want[k]), "v%d", i);
			alive[k] = true;
		}
	}
	CRASHED({
		struct store s;
		struct db *db = new_db(&s);
		bool on[PATHS] = { false };
		unsigned int seed2 = 7;
		char path[64], val[32];

		for (int i = 0; i < OPS; i++) {
			int k = rand_r(&seed2) % PATHS;

			snprintf(path, sizeof(path), "/r/%d", k);
			if (on[k] && rand_r(&seed2) % 4 == 0) {
				rm(&s, path);
				on[k] = false;
			} else {
				snprintf(val, sizeof(val), "v%d", i);
				put(&s, path, val);
				on[k] = true;
			}
			ck_assert_int_eq(db_commit(db), 0);
		}
		for (int i = 0; i < SETTLE_MS && exists(oldpath); i++) {
			usleep(1000);
			ck_assert_int_eq(db_commit(db), 0);
		}
		ck_assert(!exists(oldpath));
	});
	for (int k = 0; k < PATHS; k++) {
		char path[64], *v;

		snprintf(path, sizeof(path), "/r/%d", k);
		v = reload(path, NULL);
		if (alive[k]) {
			ck_assert_msg(v != NULL, "%s lost", path);
			ck_assert_str_eq(v, want[k]);
		} else {
			ck_assert_msg(v == NULL, "%s came back", path);
		}
		free(v);
	}
}
END_TEST

/* The children of path after a restart on the files, as ",a,b". */
static void reload_children(const char *path, char *out, size_t size)
{
	struct db *db = open_db(true);
	struct store s;
	size_t len = 0;

	new_store(&s, false);
	ck_assert_int_eq(db_load_nodes(db, &s), 0);
	out[0] = '\0';
	for (const struct node *c = node_first_child(store_lookup(&s, path));
	     c; c = node_next(c)) {
		int w = snprintf(out + len, size - len, ",%s", node_name(c));

		ck_assert(w > 0 && (size_t)w < size - len);
		len += (size_t)w;
	}
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	store_destroy(&s);
	db_close(db);
}

/*
 * A node does not keep its birth in memory, so the journal puts a node it
 * changes "as before" (schema.h), and whoever reads it takes the birth
 * from the node's put before: in the same journal (a fold of it whole,
 * or through the index, which reads the first put too), an older one, or
 * the checkpoint.  Siblings then come back in the order they were made,
 * whatever mix of changes, removals, merges and restarts came between:
 * random changes to the children of /r against a model of that order,
 * with merges through the index (a small limit) or none, and a restart
 * (the journals read whole) half way.
 */
START_TEST(siblings_keep_their_order_through_changes_merges_and_restarts)
{
	enum { PATHS = 16, OPS = 1200 };
	static const char *const limits[] = { "2k", "64m" };
	char logp[4200];

	for (unsigned int l = 0; l < 2; l++) {
		int order[PATHS], n = 0;
		char want[PATHS * 8] = "", got[PATHS * 8];
		unsigned int seed = 11 + l;

		unlink(dbpath);
		unlink(jpath);
		unlink(oldpath);
		setenv("XENSTORED_JOURNAL_LIMIT", limits[l], 1);
		/* The model: creation order, the same choices as below. */
		for (int i = 0; i < OPS; i++) {
			int k = rand_r(&seed) % PATHS, at = -1;

			for (int j = 0; j < n; j++)
				if (order[j] == k)
					at = j;
			if (at >= 0 && rand_r(&seed) % 3 == 0) {
				memmove(order + at, order + at + 1,
					(size_t)(n - at - 1) * sizeof(*order));
				n--;
			} else if (at < 0) {
				order[n++] = k;
			}
		}
		for (int j = 0; j < n; j++)
			snprintf(want + strlen(want), sizeof(want) - strlen(want),
				 ",%d", order[j]);
		snprintf(logp, sizeof(logp), "%s.stderr", dbpath);
		for (int half = 0; half < 2; half++) {
			CRASHED({
				struct store s;
				struct db *db;

				/* What it logs: no merge may fail (the whole
				 * state written anew would hide it). */
				ck_assert_ptr_nonnull(freopen(logp, "a",
							      stderr));
				setvbuf(stderr, NULL, _IONBF, 0); /* _exit */
				db = half ? restarted(&s, true) : new_db(&s);
				bool on[PATHS] = { false };
				unsigned int seed2 = 11 + l;
				char path[64], val[32];

				for (int i = 0; i < OPS; i++) {
					int k = rand_r(&seed2) % PATHS;
					bool mine = (i < OPS / 2) == !half;

					snprintf(path, sizeof(path), "/r/%d", k);
					if (on[k] && rand_r(&seed2) % 3 == 0) {
						on[k] = false;
						if (mine)
							rm(&s, path);
					} else {
						on[k] = true;
						snprintf(val, sizeof(val), "v%d", i);
						if (mine)
							put(&s, path, val);
					}
					ck_assert_int_eq(db_commit(db), 0);
				}
				for (int i = 0; i < SETTLE_MS && exists(oldpath);
				     i++) {
					usleep(1000);
					ck_assert_int_eq(db_commit(db), 0);
				}
			});
		}
		reload_children("/r", got, sizeof(got));
		ck_assert_str_eq(got, want);
		{
			FILE *f = fopen(logp, "r");
			char line[512];

			ck_assert_ptr_nonnull(f);
			while (fgets(line, sizeof(line), f))
				ck_assert_msg(!strstr(line, "failed"), "%s",
					      line);
			fclose(f);
			unlink(logp);
		}
	}
}
END_TEST

/* The checkpoint's node paths, in the order a load reads them. */
static int order_one(const void *k, size_t klen, const void *v, size_t vlen,
		     void *arg)
{
	char *out = arg;

	(void)v;
	(void)vlen;
	if (schema_key_is_node(k, klen))
		snprintf(out + strlen(out), 4096 - strlen(out), "%.*s,",
			 (int)klen, (const char *)k);
	return 0;
}

static void checkpoint_order(char out[4096])
{
	struct tdb_context *t = tdb_open(dbpath, 0, TDB_NOLOCK, O_RDONLY, 0);
	char why[200];

	ck_assert_ptr_nonnull(t);
	out[0] = '\0';
	ck_assert_int_eq(ckpt_read(t, SCHEMA_DB_VERSION, order_one, out, why,
				   sizeof(why)), 0);
	tdb_close(t);
}

/*
 * A merge writes a node the journal changed in its old record's place
 * and new nodes after, in the order they were made: the file keeps every
 * parent before its children, which a load reads straight into the
 * store.  A node made again (a new generation) goes after the others.
 */
START_TEST(a_merge_keeps_parents_before_their_children)
{
	char order[4096];

	CRASHED({
		struct store s;
		struct db *db = new_db(&s);

		put(&s, "/p", "1");
		put(&s, "/p/c", "2");
		put(&s, "/q", "3");
		put(&s, "/r", "4");
		ck_assert_int_eq(db_checkpoint(db), 0);
		put(&s, "/p", "changed");
		put(&s, "/p/d", "5");
		rm(&s, "/q");
		put(&s, "/q", "again");
		ck_assert_int_eq(db_checkpoint(db), 0);
	});
	checkpoint_order(order);
	ck_assert_str_eq(order, "/,@releaseDomain,@introduceDomain,/p,/p/c,/r,"
				"/p/d,/q,");
	{
		char *v = reload("/p", NULL);

		ck_assert_str_eq(v, "changed");
		free(v);
	}
}
END_TEST

/*
 * What came while a compaction ran is compacted once it ends, with no
 * commit to notice the end: db_notify's wake-up.  A batch of more than
 * the limit is committed just after a rotation, while the thread works
 * on the old journal, so the batch stays in the live journal; then no
 * client writes again, and only the event loop runs.
 */
/*
 * A compaction runs at SCHED_IDLE, the loop's requests first, until
 * compact_hurry puts it at the loop's priority.  Its job is kept running
 * meanwhile by the wake-up it ends with: a write to a pipe already full.
 */
START_TEST(a_compaction_runs_idle_until_hurried)
{
	struct compaction c;
	struct sched_param sp;
	char why[200], buf[4096];
	int fds[2], policy = -1;
	bool failed;

	compact_init(&c);
	ck_assert_int_eq(pipe2(fds, O_NONBLOCK), 0);
	while (write(fds[1], buf, sizeof(buf)) > 0)
		;
	ck_assert_int_eq(fcntl(fds[1], F_SETFL, 0), 0);
	snprintf(why, sizeof(why), "%s.none", jpath);
	ck_assert_int_eq(compact_start(&c, dbpath, why, NULL, false, NULL, NULL, fds[1]),
			 0);
	ck_assert_int_eq(pthread_getschedparam(c.thread, &policy, &sp), 0);
	ck_assert_int_eq(policy, SCHED_IDLE);
	compact_hurry(&c);
	ck_assert(c.hurried);
	ck_assert_int_eq(pthread_getschedparam(c.thread, &policy, &sp), 0);
	ck_assert_int_eq(policy, SCHED_OTHER);
	while (read(fds[0], buf, sizeof(buf)) == (ssize_t)sizeof(buf))
		if (atomic_load(&c.done))
			break;
	ck_assert_int_eq(compact_poll(&c, true, &failed), 1);
	ck_assert(!failed);
	close(fds[0]);
	close(fds[1]);
	compact_stop(&c);
}
END_TEST

/* Whether c's thread has ended, idle or told to. */
static bool retired(struct compaction *c)
{
	bool r;

	pthread_mutex_lock(&c->lock);
	r = c->retired;
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Whether c's thread has ended, waiting up to 3 s for it. */
static bool ends_within_3_s(struct compaction *c)
{
	for (int i = 0; i < 300; i++) {
		if (retired(c))
			return true;
		usleep(10 * 1000);
	}
	return retired(c);
}

/*
 * One thread serves a burst of compactions (making one each cost more
 * than a small merge), ends when told (compact_retire) or after idle_ms
 * without one, and the next compaction makes another.
 */
START_TEST(the_compaction_thread_serves_a_burst_then_ends)
{
	struct compaction c;
	struct sched_param sp;
	int policy = -1;
	char why[200];
	pthread_t first;
	bool failed;

	compact_init(&c);
	snprintf(why, sizeof(why), "%s.none", jpath);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(compact_start(&c, dbpath, why, NULL, false,
					       NULL, NULL, -1), 0);
		if (i == 0)
			first = c.thread;
		ck_assert(pthread_equal(c.thread, first));
		/* Hurried once, idle again for the next job. */
		ck_assert_int_eq(pthread_getschedparam(c.thread, &policy, &sp),
				 0);
		ck_assert_int_eq(policy, SCHED_IDLE);
		if (i == 1)
			compact_hurry(&c);
		ck_assert_int_eq(compact_poll(&c, true, &failed), 1);
		ck_assert(!failed);
		ck_assert(c.have_thread);
	}
	/* Idle, it waits its idle_ms (10 s) for the next job... */
	ck_assert_uint_ge(c.idle_ms, 10000);
	usleep(1200 * 1000);
	ck_assert(!c.retired);
	/* ... unless told to end: it does at once. */
	compact_retire(&c);
	ck_assert(ends_within_3_s(&c));
	ck_assert_int_eq(compact_start(&c, dbpath, why, NULL, false, NULL,
				       NULL, -1), 0);
	ck_assert(c.have_thread && !c.retired);
	/* Told while a job runs: nothing (the job ends it no sooner). */
	compact_retire(&c);
	ck_assert(!c.retire);
	ck_assert_int_eq(compact_poll(&c, true, &failed), 1);
	ck_assert(!failed);
	/* Idle past a shorter idle_ms: it ends by itself. */
	compact_stop(&c);
	c.idle_ms = 100;
	ck_assert_int_eq(compact_start(&c, dbpath, why, NULL, false, NULL,
				       NULL, -1), 0);
	ck_assert_int_eq(compact_poll(&c, true, &failed), 1);
	ck_assert(ends_within_3_s(&c));
	compact_stop(&c);
	ck_assert(!c.have_thread);
	/* Stopped, it is made again. */
	ck_assert_int_eq(compact_start(&c, dbpath, why, NULL, false, NULL,
				       NULL, -1), 0);
	ck_assert_int_eq(compact_poll(&c, true, &failed), 1);
	compact_stop(&c);
}
END_TEST

/* The event loop run for 10 ms: a compaction's end is learnt there. */
static void loop_tick(struct event_base *loop)
{
	struct timeval tick = { 0, 10 * 1000 };

	event_base_loopexit(loop, &tick);
	event_base_dispatch(loop);
}

/* A new database on s, told of the events of a new loop (*loop). */
static struct db *looped_db(struct store *s, struct event_base **loop)
{
	struct db *db;

	*loop = event_base_new();
	ck_assert_ptr_nonnull(*loop);
	db = new_db(s);
	ck_assert_int_eq(db_notify(db, *loop), 0);
	return db;
}

static void looped_db_close(struct db *db, struct store *s,
			    struct event_base *loop)
{
	s->observer = NULL;
	db_close(db);
	event_base_free(loop);
}

START_TEST(an_idle_database_compacts_what_came_during_a_compaction)
{
	setenv("XENSTORED_JOURNAL_LIMIT", "2k", 1);
	CRASHED({
		struct event_base *loop;
		struct store s;
		struct db *db = looped_db(&s, &loop);
		char path[64], val[128], all[8192];
		bool held = false;

		for (int round = 0; !held && round < 50; round++) {
			/* Up to a rotation: a compaction starts. */
			for (int i = 0; !exists(oldpath) && i < 1000; i++) {
				snprintf(path, sizeof(path), "/r/%d", i % 20);
				put(&s, path, "a value of some length");
				ck_assert_int_eq(db_commit(db), 0);
			}
			ck_assert(exists(oldpath));
			/* The batch: 100 nodes of 100 bytes, one frame. */
			for (int i = 0; i < 100; i++) {
				snprintf(path, sizeof(path), "/batch/%d/%d",
					 round, i);
				memset(val, 'v', 100);
				val[100] = '\0';
				put(&s, path, val);
			}
			ck_assert_int_eq(db_commit(db), 0);
			/* Still in the live journal (past a new journal's
			 * 8 KiB: its head, rounded up, and 4 KiB allocated
			 * ahead), or try again. */
			held = size_of(jpath) > 8192;
			snprintf(path, sizeof(path), "/batch/%d/99=", round);
			for (int i = 0; !held && i < SETTLE_TICKS &&
					exists(oldpath); i++)
				loop_tick(loop);
		}
		ck_assert_msg(held, "no batch was committed during a "
			      "compaction in 50 tries");
		/* Idle: only the loop runs, until both compactions are
		 * done. */
		for (int i = 0; i < SETTLE_TICKS && (exists(oldpath) ||
						     size_of(jpath) > 8192);
		     i++)
			loop_tick(loop);
		ck_assert(!exists(oldpath));
		ck_assert_int_le(size_of(jpath), 8192);
		/* The batch reached the tdb file. */
		dump_tdb(all);
		ck_assert_msg(strstr(all, path) != NULL, "%s is not in the "
			      "file", path);
		looped_db_close(db, &s, loop);
	});
}
END_TEST

static enum journal_state scan_file(const char *path, struct seen *seen);

/* Frames in the live journal now. */
static size_t journal_frames(void)
{
	struct seen seen;

	if (!exists(jpath))
		return 0;
	scan_file(jpath, &seen);
	return seen.frames;
}

/*
 * The quiet rule falls due while the burst's last merge still runs: the
 * live journal is merged once that is done, not left until the next
 * write (a host at rest kept up to twice the limit of journals).
 */
START_TEST(a_quiet_period_during_a_compaction_merges_after_it)
{
	setenv("XENSTORED_JOURNAL_LIMIT", "64M", 1);
	setenv("XENSTORED_JOURNAL_QUIET_MS", "5", 1);
	CRASHED({
		struct event_base *loop;
		struct store s;
		struct db *db = looped_db(&s, &loop);
		char path[64], val[128];
		bool caught = false;

		memset(val, 'v', 100);
		val[100] = '\0';
		/* A checkpoint big enough that merging into it outlasts a
		 * quiet period. */
		for (int i = 0; i < 200000; i++) {
			snprintf(path, sizeof(path), "/big/%d/%d", i / 100, i);
			put(&s, path, "a value of some forty bytes, or about");
		}
		ck_assert_int_eq(db_checkpoint(db), 0);
		for (int round = 0; !caught && round < 20; round++) {
			/* A burst the quiet rule merges, into every block of
			 * the checkpoint (tens of milliseconds)... */
			for (int i = 0; i < 200000; i++) {
				snprintf(path, sizeof(path), "/big/%d/%d",
					 i / 100, i);
				put(&s, path, round % 2 ? "odd" : "even");
			}
			ck_assert_int_eq(db_commit(db), 0);
			for (int i = 0;
			     i < SETTLE_TICKS && !exists(oldpath); i++)
				loop_tick(loop);
			ck_assert(exists(oldpath));
			/* ...and another while that merge runs. */
			for (int i = 0; i < 2000; i++) {
				snprintf(path, sizeof(path), "/q2/%d", i);
				put(&s, path, val);
			}
			ck_assert_int_eq(db_commit(db), 0);
			caught = exists(oldpath);
			for (int i = 0;
			     i < SETTLE_TICKS && (exists(oldpath) ||
						  journal_frames() > 0); i++)
				loop_tick(loop);
			ck_assert(!exists(oldpath));
			ck_assert_msg(journal_frames() == 0, "round %d: at "
				      "rest with %zu frames in the journal",
				      round, journal_frames());
		}
		ck_assert_msg(caught, "no burst ended during a merge");
		looped_db_close(db, &s, loop);
	});
	unsetenv("XENSTORED_JOURNAL_QUIET_MS");
}
END_TEST

/* Milliseconds since a. */
static uint64_t ms_since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (uint64_t)((b.tv_sec - a->tv_sec) * 1000 +
			  (b.tv_nsec - a->tv_nsec) / 1000000);
}

/* Runs the loop for ms milliseconds, or until the live journal has no
 * frames; how long it ran, in ms. */
static uint64_t run_until_merged(struct event_base *loop, uint64_t ms)
{
	struct timespec a;
	uint64_t ran = 0;

	clock_gettime(CLOCK_MONOTONIC, &a);
	while (ran < ms && journal_frames() > 0) {
		loop_tick(loop);
		ran = ms_since(&a);
	}
	return ran;
}

/* 1,000 values of 100 bytes below under: past the quiet rule's 64 KiB. */
static void put_past_quiet_min(struct store *s, const char *under)
{
	char path[64], val[101];

	memset(val, 'v', 100);
	val[100] = '\0';
	for (int i = 0; i < 1000; i++) {
		snprintf(path, sizeof(path), "%s/%d", under, i);
		put(s, path, val);
	}
}

/*
 * The quiet rule counts its period from the last commit: a commit just
 * after the timer was armed neither brings the merge forward nor puts it
 * off by a second period (it did: a host at rest kept its journal for one
 * to two periods, and the benchmark's reading at rest caught it or not by
 * chance).
 */
START_TEST(the_quiet_period_counts_from_the_last_commit)
{
	setenv("XENSTORED_JOURNAL_LIMIT", "64M", 1);
	setenv("XENSTORED_JOURNAL_QUIET_MS", "500", 1);
	CRASHED({
		struct event_base *loop;
		struct store s;
		struct db *db = looped_db(&s, &loop);
		uint64_t waited;

		/* Past the rule's 64 KiB, twice: the timer is armed at the
		 * first commit, the second comes 50 ms later. */
		for (int round = 0; round < 2; round++) {
			put_past_quiet_min(&s, round ? "/q/1" : "/q/0");
			ck_assert_int_eq(db_commit(db), 0);
			if (!round)
				ck_assert_uint_eq(run_until_merged(loop, 50) >=
						  50, true);
		}
		/* Not before a period after the last commit... */
		waited = run_until_merged(loop, 400);
		ck_assert_msg(journal_frames() > 0, "merged %llu ms after "
			      "the last commit, in a period of 500",
			      (unsigned long long)waited);
		/* ...and not a whole period after the first was due (950
		 * ms after the last commit). */
		waited += run_until_merged(loop, 5000);
		ck_assert_msg(waited < 750, "merged %llu ms after the last "
			      "commit, in a period of 500",
			      (unsigned long long)waited);
		looped_db_close(db, &s, loop);
	});
	unsetenv("XENSTORED_JOURNAL_QUIET_MS");
	unsetenv("XENSTORED_JOURNAL_LIMIT");
}
END_TEST

/* Whether the compaction's thread has ended, idle or told to. */
static bool thread_retired(struct db *db)
{
	return retired(&db->compaction);
}

/*
 * The quiet rule's merge ends a burst: its thread ends right after it,
 * giving back its contexts and its arena's free memory, instead of
 * waiting a second for a job that a quiet host will not give it.
 */
START_TEST(the_quiet_merge_ends_its_thread)
{
	setenv("XENSTORED_JOURNAL_LIMIT", "64M", 1);
	setenv("XENSTORED_JOURNAL_QUIET_MS", "100", 1);
	CRASHED({
		struct event_base *loop;
		struct store s;
		struct db *db = looped_db(&s, &loop);
		struct timespec a;
		uint64_t ms;

		put_past_quiet_min(&s, "/q");
		ck_assert_int_eq(db_commit(db), 0);
		/* The quiet merge starts, runs and is reaped. */
		for (int i = 0; i < SETTLE_TICKS && (journal_frames() > 0 ||
						     !db->compaction.have_thread ||
						     db->compaction.running);
		     i++)
			loop_tick(loop);
		ck_assert_int_eq(journal_frames(), 0);
		ck_assert(!db->compaction.running);
		clock_gettime(CLOCK_MONOTONIC, &a);
		do {
			loop_tick(loop);
			ms = ms_since(&a);
		} while (!thread_retired(db) && ms < 5000);
		/* Idle, it would have waited a whole second. */
		ck_assert_msg(ms < 500, "the thread ended %llu ms after the "
			      "quiet merge", (unsigned long long)ms);
		looped_db_close(db, &s, loop);
	});
	unsetenv("XENSTORED_JOURNAL_QUIET_MS");
	unsetenv("XENSTORED_JOURNAL_LIMIT");
}
END_TEST

/* A journal past a 64 KiB limit in one commit (with what is put
 * already), rotated and merged: the compaction's thread made, its job
 * reaped. */
static void rotate_once(struct db *db, struct store *s,
			struct event_base *loop, const char *under)
{
	put_past_quiet_min(s, under);
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert(db->compaction.have_thread);
	for (int i = 0; i < SETTLE_TICKS && db->compaction.running; i++)
		loop_tick(loop);
	ck_assert(!db->compaction.running);
}

/*
 * A quiet period with too little to merge ends the burst all the same:
 * the thread ends then (a host at rest keeps no stack, arena or
 * contexts for it), not after its idle 10 s.
 */
START_TEST(a_quiet_period_with_nothing_to_merge_ends_the_thread)
{
	setenv("XENSTORED_JOURNAL_LIMIT", "64K", 1);
	setenv("XENSTORED_JOURNAL_QUIET_MS", "100", 1);
	CRASHED({
		struct event_base *loop;
		struct store s;
		struct db *db = looped_db(&s, &loop);
		struct timespec a;
		uint64_t ms;

		rotate_once(db, &s, loop, "/r");
		ck_assert(!thread_retired(db));
		/* A few bytes: under the quiet rule's 64 KiB. */
		put(&s, "/small", "x");
		ck_assert_int_eq(db_commit(db), 0);
		clock_gettime(CLOCK_MONOTONIC, &a);
		do {
			loop_tick(loop);
			ms = ms_since(&a);
		} while (!thread_retired(db) && ms < 5000);
		ck_assert_msg(ms < 600, "the thread ended %llu ms after the "
			      "last commit", (unsigned long long)ms);
		/* Nothing was merged: the change is in the live journal. */
		ck_assert_int_eq(journal_frames(), 1);
		looped_db_close(db, &s, loop);
	});
	unsetenv("XENSTORED_JOURNAL_QUIET_MS");
	unsetenv("XENSTORED_JOURNAL_LIMIT");
}
END_TEST

/*
 * Whether a merged journal is kept as the spare goes by the loop's own
 * CPU time since the rotation before, not the clock's: a loop that
 * shares its CPU fills journals over more seconds for the same work.
 * Here a second of the clock passes between two rotations, the loop
 * asleep: the spare is kept.  With a bound of 0, none ever is.
 */
START_TEST(a_spare_is_kept_by_the_loops_cpu_time_not_the_clocks)
{
	setenv("XENSTORED_JOURNAL_LIMIT", "64K", 1);
	setenv("XENSTORED_JOURNAL_QUIET_MS", "0", 1);
	for (int bound = 0; bound < 2; bound++) {
		CRASHED({
			struct event_base *loop;
			struct store s;
			struct db *db = looped_db(&s, &loop);

			if (!bound)
				db->spare_within_ns = 0;
			/* The first rotation has none before it: no spare. */
			rotate_once(db, &s, loop, "/a");
			ck_assert(!db->spare_ready);
			usleep(1100 * 1000);
			rotate_once(db, &s, loop, "/b");
			ck_assert(db->spare_ready == (bound != 0));
			ck_assert(exists(db->spare_path) == (bound != 0));
			looped_db_close(db, &s, loop);
		});
		/* The next in a new directory: a new database. */
		db_rig_teardown();
		db_rig_setup();
		setenv("XENSTORED_JOURNAL_LIMIT", "64K", 1);
	}
	unsetenv("XENSTORED_JOURNAL_QUIET_MS");
	unsetenv("XENSTORED_JOURNAL_LIMIT");
}
END_TEST

/*
 * The quiet rule's merge ends a burst: its journal is not kept as a spare,
 * however little of the loop's CPU time passed since the rotation before
 * (the loop was idle for the quiet period): a spare kept then would stay,
 * mapped, while the host rests.
 */
START_TEST(the_quiet_merge_keeps_no_spare)
{
	setenv("XENSTORED_JOURNAL_LIMIT", "256K", 1);
	setenv("XENSTORED_JOURNAL_QUIET_MS", "100", 1);
	CRASHED({
		struct event_base *loop;
		struct store s;
		struct db *db = looped_db(&s, &loop);
		struct timespec a;

		/* A rotation by the limit (twice the quiet rule's 64 KiB in
		 * one commit), so that the next one has one before it. */
		put_past_quiet_min(&s, "/r1");
		rotate_once(db, &s, loop, "/r0");
		/* Past the quiet rule's 64 KiB, under the limit. */
		put_past_quiet_min(&s, "/q");
		ck_assert_int_eq(db_commit(db), 0);
		clock_gettime(CLOCK_MONOTONIC, &a);
		do
			loop_tick(loop);
		while ((journal_frames() > 0 || !thread_retired(db)) &&
		       ms_since(&a) < 5000);
		ck_assert_int_eq(journal_frames(), 0);
		ck_assert(thread_retired(db));
		/* Reaped by the next commit. */
		put(&s, "/after", "x");
		ck_assert_int_eq(db_commit(db), 0);
		ck_assert(!db->spare_ready);
		ck_assert(!exists(db->spare_path));
		ck_assert_ptr_null(db->kept.map);
		looped_db_close(db, &s, loop);
	});
	unsetenv("XENSTORED_JOURNAL_QUIET_MS");
	unsetenv("XENSTORED_JOURNAL_LIMIT");
}
END_TEST

/* Writes 100-byte values below under, a commit each 100, until the live
 * journal holds at least bytes. */
static void fill_journal_to(struct db *db, struct store *s, const char *under,
			   uint64_t bytes)
{
	char path[64], val[101];
	int i = 0;

	memset(val, 'w', 100);
	val[100] = '\0';
	/* Closed (after db_checkpoint), its end is the last journal's. */
	while (db->jout.fd < 0 || db->jout.end < bytes) {
		snprintf(path, sizeof(path), "%s/%d", under, i++);
		put(s, path, val);
		if (i % 100 == 0)
			ck_assert_int_eq(db_commit(db), 0);
	}
	ck_assert_int_eq(db_commit(db), 0);
}

/*
 * The quiet rule's share: at rest, a journal past 64 KiB but under a
 * sixteenth of the checkpoint stays (merging it would rewrite the whole
 * checkpoint for a few changes); past the sixteenth, it is merged (a
 * quarter kept up to 3.9 MB of journal with a million nodes at rest).
 */
START_TEST(a_quiet_journal_is_merged_past_a_sixteenth_of_the_checkpoint)
{
	setenv("XENSTORED_JOURNAL_LIMIT", "64M", 1);
	setenv("XENSTORED_JOURNAL_QUIET_MS", "50", 1);
	CRASHED({
		struct event_base *loop;
		struct store s;
		struct db *db = looped_db(&s, &loop);
		char path[64], val[129];
		uint64_t share, held;
		struct stat sb;

		/* A checkpoint of about 3 MB: values that do not compress
		 * (hex of a scrambled counter). */
		for (int i = 0; i < 30000; i++) {
			uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15u + 1;

			for (int k = 0; k < 128; k++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				val[k] = "0123456789abcdef"[x & 15];
			}
			val[128] = '\0';
			snprintf(path, sizeof(path), "/big/%d/%d", i / 100, i);
			put(&s, path, val);
		}
		ck_assert_int_eq(db_checkpoint(db), 0);
		ck_assert_int_eq(stat(dbpath, &sb), 0);
		share = (uint64_t)sb.st_size / 16;
		ck_assert_msg(share > 128 << 10, "a checkpoint of %lld bytes",
			      (long long)sb.st_size);
		/* Past 64 KiB, short of the share: kept at rest. */
		fill_journal_to(db, &s, "/q/0", (64 << 10) + 8192);
		held = db->jout.end;
		ck_assert_uint_lt(held, share);
		run_until_merged(loop, 500);
		ck_assert_msg(journal_frames() > 0, "a journal of %llu bytes "
			      "merged, under %llu", (unsigned long long)held,
			      (unsigned long long)share);
		/* Past the share (well short of a quarter): merged. */
		fill_journal_to(db, &s, "/q/1", share + 4096);
		ck_assert_uint_lt(db->jout.end, 4 * share);
		run_until_merged(loop, 5000);
		ck_assert_msg(journal_frames() == 0, "a journal past %llu "
			      "bytes kept at rest",
			      (unsigned long long)share);
		looped_db_close(db, &s, loop);
	});
	unsetenv("XENSTORED_JOURNAL_QUIET_MS");
	unsetenv("XENSTORED_JOURNAL_LIMIT");
}
END_TEST

/*
 * A compaction that ends in the middle of a turn, with changes pending
 * and the live journal past its limit: the journal is not rotated under
 * them (the index has them at offsets of that journal), the turn's
 * commit writes them there, and the next compaction applies them.
 */
START_TEST(a_compaction_ending_with_changes_pending_leaves_them_in_place)
{
	setenv("XENSTORED_JOURNAL_LIMIT", "2k", 1);
	CRASHED({
		struct event_base *loop;
		struct store s;
		struct db *db = looped_db(&s, &loop);
		char path[64];
		int round;

		for (round = 0; round < 20; round++) {
			/* Up to a rotation, then on past the limit while
			 * the compaction runs. */
			for (int i = 0; !exists(oldpath) && i < 1000; i++) {
				snprintf(path, sizeof(path), "/p/%d", i % 20);
				put(&s, path, "a value of some length");
				ck_assert_int_eq(db_commit(db), 0);
			}
			for (int i = 0; i < 40; i++) {
				snprintf(path, sizeof(path), "/p/%d", i % 20);
				put(&s, path, "a value written on");
				ck_assert_int_eq(db_commit(db), 0);
			}
			/* Changes pending as the compaction's end is
			 * learnt. */
			snprintf(path, sizeof(path), "/pending/%d", round);
			put(&s, path, "pending");
			for (int i = 0;
			     i < SETTLE_TICKS && exists(oldpath); i++)
				loop_tick(loop);
			ck_assert_int_eq(db_commit(db), 0);
		}
		for (int i = 0; i < SETTLE_TICKS && exists(oldpath); i++)
			loop_tick(loop);
		ck_assert_int_eq(db_commit(db), 0);
		looped_db_close(db, &s, loop);
	});
	for (int round = 0; round < 20; round++) {
		char path[64], *v;

		snprintf(path, sizeof(path), "/pending/%d", round);
		v = reload(path, NULL);
		ck_assert_msg(v != NULL, "%s lost", path);
		ck_assert_str_eq(v, "pending");
		free(v);
	}
}
END_TEST

/* A journal that puts the checkpoint's own keys ("#nodes/3": no daemon
 * writes one, a damaged or foreign journal may): the merge leaves them
 * out, rather than fail and turn persistence off. */
START_TEST(a_journal_putting_the_checkpoints_own_keys_is_merged_without_them)
{
	struct evbuffer *b = evbuffer_new();
	char why[200], all[8192];
	struct store s;
	struct db *db = new_db(&s);
	unsigned long count;
	char *v;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(evbuffer_add(b, "junk", 4), 0);
	put(&s, "/kept", "1");
	db_put(db, SCHEMA_PREFIX_BLOCK "3", b);
	db_put(db, SCHEMA_KEY_NODES, b);
	db_put(db, "#extra", b);
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_int_eq(compact_file(dbpath, jpath, false, NULL, why, sizeof(why)),
			 0);
	dump_tdb(all);
	ck_assert_ptr_nonnull(strstr(all, "#extra=4;"));
	ck_assert_ptr_nonnull(strstr(all, "/kept="));
	v = reload("/kept", &count);
	ck_assert_str_eq(v, "1");
	free(v);
	evbuffer_free(b);
	s.observer = NULL;
	db_close(db);
	store_destroy(&s);
}
END_TEST

/* The stored bytes of every node block of the checkpoint at dbpath. */
static size_t raw_blocks(TDB_DATA *out, size_t max)
{
	struct tdb_context *t = tdb_open(dbpath, 0, TDB_NOLOCK, O_RDONLY, 0);
	char key[SCHEMA_KEY_MAX];
	size_t n = 0;

	ck_assert_ptr_nonnull(t);
	for (;;) {
		schema_key_block(key, (uint32_t)n);
		out[n] = tdb_fetch(t, (TDB_DATA){ (unsigned char *)key,
						 strlen(key) });
		if (!out[n].dptr)
			break;
		ck_assert_uint_lt(++n, max);
	}
	tdb_close(t);
	return n;
}

/* A merge copies the blocks its journal did not touch as they were
 * stored, and packs again only the one holding the node it changed. */
START_TEST(a_merge_copies_the_blocks_its_journal_left_alone)
{
	TDB_DATA before[64], after[64];
	char path[64], why[200], value[101];
	size_t nb, na, same = 0;
	unsigned long count;
	struct store s;
	struct db *db = new_db(&s);
	char *v;

	memset(value, 'v', 100);
	value[100] = '\0';
	for (int i = 0; i < 6000; i++) {
		snprintf(path, sizeof(path), "/big/%d", i);
		put(&s, path, value);
	}
	ck_assert_int_eq(db_checkpoint(db), 0);
	nb = raw_blocks(before, 64);
	ck_assert_uint_ge(nb, 4);
	put(&s, "/big/3000", "changed");
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_int_eq(compact_file(dbpath, jpath, false, NULL, why, sizeof(why)),
			 0);
	na = raw_blocks(after, 64);
	for (size_t i = 0; i < nb; i++)
		for (size_t j = 0; j < na; j++)
			if (before[i].dsize == after[j].dsize &&
			    !memcmp(before[i].dptr, after[j].dptr,
				    before[i].dsize)) {
				same++;
				break;
			}
	ck_assert_uint_eq(same, nb - 1);
	v = reload("/big/3000", &count);
	ck_assert_str_eq(v, "changed");
	free(v);
	v = reload("/big/5999", &count);
	ck_assert_str_eq(v, value);
	free(v);
	for (size_t i = 0; i < nb; i++)
		free(before[i].dptr);
	for (size_t i = 0; i < na; i++)
		free(after[i].dptr);
	s.observer = NULL;
	db_close(db);
	store_destroy(&s);
}
END_TEST

START_TEST(a_checkpoint_leaves_the_state_in_the_file_alone)
{
	setenv("XENSTORED_JOURNAL_LIMIT", "1k", 1);
	CRASHED({
		struct store s;
		struct db *db = new_db(&s);

		for (int i = 0; i < 100; i++)
			put(&s, "/k", i % 2 ? "odd" : "even");
		put(&s, "/last", "1");
		/* A clean stop: the tdb file takes everything. */
		s.observer = NULL;
		db_close(db);
		ck_assert(!exists(jpath));
		ck_assert(!exists(oldpath));
	});
	reloads_as("/k", "odd");
	reloads_as("/last", "1");
}
END_TEST

/* Mappings of the tdb file in this process. */
static int tdb_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, dbpath) && !strstr(line, ".journal"))
			n++;
	fclose(f);
	return n;
}

START_TEST(a_compaction_leaves_no_mapping_of_the_file)
{
	struct store s;
	struct db *db = new_db(&s);
	char path[64];

	/* Compactions that grow the file: libtdb leaves part of its
	 * mapping behind after such a transaction (compact.c). */
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 3000; i++) {
			snprintf(path, sizeof(path), "/m/%d/%d", round, i);
			put(&s, path, "a value of some forty bytes, or about so");
		}
		ck_assert_int_eq(db_checkpoint(db), 0);
		ck_assert_msg(tdb_mappings() == 0, "round %d: the tdb file is "
			      "still mapped %d times", round, tdb_mappings());
	}
	s.observer = NULL;
	db_close(db);
	store_destroy(&s);
}
END_TEST

/* Fails unless db_open refuses the files and leaves them as they were. */
static void refused(const char *what)
{
	unsigned char *before[2], *after;
	size_t blen[2], alen;
	const char *paths[2] = { dbpath, jpath };
	bool restorable;
	FILE *f;

	for (int i = 0; i < 2; i++) {
		f = fopen(paths[i], "rb");
		ck_assert_ptr_nonnull(f);
		before[i] = malloc(1 << 20);
		blen[i] = fread(before[i], 1, 1 << 20, f);
		fclose(f);
	}
	ck_assert_msg(db_open(dbpath, &restorable) == NULL,
		      "%s: opened", what);
	for (int i = 0; i < 2; i++) {
		f = fopen(paths[i], "rb");
		ck_assert_ptr_nonnull(f);
		after = malloc(1 << 20);
		alen = fread(after, 1, 1 << 20, f);
		fclose(f);
		ck_assert_msg(alen == blen[i] &&
			      memcmp(after, before[i], alen) == 0,
			      "%s: %s changed", what, paths[i]);
		free(after);
		free(before[i]);
	}
}

/* The journal of a database with a few commits, its bytes in *p. */
static void some_commits(unsigned char **p, size_t *len)
{
	struct journal_map m;
	CRASHED({
		struct store s;
		struct db *db = new_db(&s);

		put(&s, "/one", "1");
		ck_assert_int_eq(db_commit(db), 0);
		put(&s, "/two", "2");
		ck_assert_int_eq(db_commit(db), 0);
		put(&s, "/three", "3");
		ck_assert_int_eq(db_commit(db), 0);
	});
	struct journal_scan sc;

	ck_assert_int_eq(journal_map(jpath, true, &m), 0);
	/* What a write() of each frame would have left: no zeros after. */
	ck_assert_int_eq(journal_scan(m.p, m.len, &sc, true, NULL, NULL,
				      NULL), 0);
	ck_assert_int_eq(sc.state, JOURNAL_WHOLE);
	*p = unit_exact(m.p, sc.whole);
	*len = sc.whole;
	journal_unmap(&m);
}

struct resealed {
	struct evbuffer *out;
};

static int reseal_frame(const void *bytes, size_t len, void *arg)
{
	struct resealed *r = arg;
	unsigned char *p = malloc(len);

	ck_assert_ptr_nonnull(p);
	memcpy(p, bytes, len);
	schema_seal_frame(p, p + SCHEMA_FRAME_HEAD,
			  (uint32_t)(len - SCHEMA_FRAME_HEAD), 0);
	ck_assert_int_eq(evbuffer_add(r->out, p, len), 0);
	free(p);
	return 0;
}

/* The whole journal p (len bytes) as one of an older version (no salt):
 * its frames sealed again.  *out_len bytes, freed by the caller. */
static unsigned char *as_version(const unsigned char *p, size_t len,
				 uint32_t version, size_t *out_len)
{
	struct resealed r = { evbuffer_new() };
	struct journal_scan sc;
	struct writer w;
	unsigned char *q;

	ck_assert_ptr_nonnull(r.out);
	wr_init(&w, r.out);
	schema_write_journal_head(&w, version, 0);
	ck_assert(wr_ok(&w));
	ck_assert_int_eq(journal_scan(p, len, &sc, true, NULL, reseal_frame,
				      &r), 0);
	ck_assert_int_eq(sc.state, JOURNAL_WHOLE);
	q = unit_take(r.out, out_len);
	evbuffer_free(r.out);
	return q;
}

/* A journal of one frame: puts of each path "as before" (born 0) with
 * value v, written at jpath. */
static void as_before_journal(const char *const *paths, const char *v)
{
	struct evbuffer *out = evbuffer_new(), *rec = evbuffer_new(), *b;
	struct perm perm = { 0, PERM_NONE };
	struct schema_node n = { .born = 0, .nperms = 1, .perms = &perm,
				 .value = v, .value_len = (uint32_t)strlen(v) };
	struct writer w, rw;

	ck_assert(out && rec);
	add_head(out);
	b = frame_begin(&w);
	for (; *paths; paths++) {
		struct schema_change c = { .put = true, .key = *paths,
					   .key_len = (uint32_t)strlen(*paths) };

		evbuffer_drain(rec, evbuffer_get_length(rec));
		wr_init(&rw, rec);
		schema_write_node(&rw, &n);
		ck_assert(wr_ok(&rw));
		c.value_len = (uint32_t)evbuffer_get_length(rec);
		c.value = evbuffer_pullup(rec, -1);
		schema_write_change(&w, &c);
	}
	frame_end(out, b, &w);
	write_file(jpath, evbuffer_pullup(out, -1), evbuffer_get_length(out));
	evbuffer_free(rec);
	evbuffer_free(out);
}

/*
 * A put "as before" takes its birth from the checkpoint; one of a node
 * that neither the journals nor the checkpoint made is damage: a start
 * refuses the files (and leaves them as they were), a merge fails and
 * says why.
 */
START_TEST(a_put_as_before_of_a_node_nobody_made_is_damage)
{
	char why[200], got[64];
	struct db *db;
	struct store s;

	checkpoint_of((const char *const[]){ "/a", "1", "/b", "2", NULL });
	/* /a changed "as before": it keeps its birth, so its place. */
	as_before_journal((const char *const[]){ "/a", NULL }, "new");
	reloads_as("/a", "new");
	reload_children("/", got, sizeof(got));
	ck_assert_str_eq(got, ",a,b");
	/* /c "as before": nothing made it. */
	as_before_journal((const char *const[]){ "/a", "/c", NULL }, "x");
	db = open_db(true);
	new_store(&s, false);
	ck_assert_int_eq(db_load_nodes(db, &s), -1);
	store_destroy(&s);
	db_close(db);
	ck_assert(exists(jpath));
	ck_assert_int_eq(compact_file(dbpath, jpath, true, NULL, why,
				      sizeof(why)), -1);
	ck_assert_msg(strstr(why, "/c") && strstr(why, "lacks"), "%s", why);
	/* The good journal merges, /a in its place. */
	as_before_journal((const char *const[]){ "/a", NULL }, "merged");
	ck_assert_int_eq(compact_file(dbpath, jpath, true, NULL, why,
				      sizeof(why)), 0);
	ck_assert(!exists(jpath));
	reloads_as("/a", "merged");
	reload_children("/", got, sizeof(got));
	ck_assert_str_eq(got, ",a,b");
}
END_TEST

START_TEST(a_damaged_journal_stops_the_start)
{
	unsigned char *p;
	size_t len;

	some_commits(&p, &len);
	/* A payload byte of the first frame, whole frames after it. */
	p[schema_journal_head_len() + SCHEMA_FRAME_HEAD + 2] ^= 1;
	write_file(jpath, p, len);
	refused("a bad frame with more after it");
	p[schema_journal_head_len() + SCHEMA_FRAME_HEAD + 2] ^= 1;
	p[0] ^= 1;
	write_file(jpath, p, len);
	refused("another magic");
	free(p);
}
END_TEST

/*
 * A journal of version 1 (an older daemon's: every put gives its node's
 * birth) is read as it is; a daemon that writes on after it makes its
 * head version 2 first, since its puts may say "as before".
 */
START_TEST(a_version_1_journal_is_read_and_written_on_as_version_2)
{
	size_t at = schema_journal_head_len_of(1) - 4, len, v1_len;
	unsigned char *p, *v1, version[4];
	char got[64];
	FILE *f;

	some_commits(&p, &len);
	v1 = as_version(p, len, 1, &v1_len);
	ck_assert_uint_eq(v1[at], 1);
	write_file(jpath, v1, v1_len);
	reloads_as("/two", "2");
	CRASHED({
		struct store s;
		struct db *db = restarted(&s, true);

		put(&s, "/one", "changed");	/* "as before" */
		ck_assert_int_eq(db_commit(db), 0);
	});
	f = fopen(jpath, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, (long)at, SEEK_SET), 0);
	ck_assert_uint_eq(fread(version, 1, 4, f), 4);
	fclose(f);
	ck_assert_uint_eq(version[0], 2);
	ck_assert_uint_eq(version[1] | version[2] | version[3], 0);
	reloads_as("/one", "changed");
	reload_children("/", got, sizeof(got));
	ck_assert_str_eq(got, ",one,two,three");
	free(v1);
	free(p);
}
END_TEST

/*
 * A journal of version 2 (no salt: an older daemon's, or this one's
 * before the twenty-seventh session) is written on as it is, its head and
 * the seed of its sums unchanged (a head cannot grow in front of frames),
 * and read back whole.
 */
START_TEST(a_version_2_journal_is_written_on_as_version_2)
{
	size_t len, v2_len;
	unsigned char *p, *v2;
	struct journal_map m;
	struct journal_scan sc;

	some_commits(&p, &len);
	v2 = as_version(p, len, 2, &v2_len);
	write_file(jpath, v2, v2_len);
	CRASHED({
		struct store s;
		struct db *db = restarted(&s, true);

		put(&s, "/four", "4");
		ck_assert_int_eq(db_commit(db), 0);
	});
	ck_assert_int_eq(journal_map(jpath, true, &m), 0);
	ck_assert_int_eq(journal_scan(m.p, m.len, &sc, true, NULL, NULL,
				      NULL), 0);
	ck_assert_int_eq(sc.state, JOURNAL_WHOLE);
	ck_assert_uint_eq(sc.version, 2);
	ck_assert_uint_eq(sc.salt, 0);
	ck_assert_uint_eq(sc.frames, 4);
	ck_assert_int_eq(memcmp(m.p, v2, schema_journal_head_len_of(2)), 0);
	journal_unmap(&m);
	reloads_as("/four", "4");
	reloads_as("/two", "2");
	free(v2);
	free(p);
}
END_TEST

START_TEST(a_torn_journal_is_cut_and_written_on)
{
	unsigned char *p;
	size_t len;

	some_commits(&p, &len);
	/* The last commit (/three) half written. */
	write_file(jpath, p, len - 5);
	reloads_as("/two", "2");
	ck_assert_ptr_null(reload("/three", NULL));
	/* A daemon goes on from there: the torn bytes are cut before its
	 * first frame, so the journal reads whole. */
	CRASHED({
		struct store s;
		struct db *db = restarted(&s, true);

		put(&s, "/four", "4");
		ck_assert_int_eq(db_commit(db), 0);
	});
	reloads_as("/four", "4");
	{
		struct journal_map m;
		struct journal_scan sc;

		ck_assert_int_eq(journal_map(jpath, true, &m), 0);
		ck_assert_int_eq(journal_scan(m.p, m.len, &sc, true, NULL,
					      NULL, NULL), 0);
		ck_assert_int_eq(sc.state, JOURNAL_WHOLE);
		journal_unmap(&m);
	}
	free(p);
}
END_TEST

START_TEST(a_checkpoint_that_cannot_merge_writes_the_whole_state)
{
	CRASHED({
		struct store s;
		struct db *db = new_db(&s);
		int fd;

		put(&s, "/one", "1");
		ck_assert_int_eq(db_commit(db), 0);
		put(&s, "/two", "2");
		ck_assert_int_eq(db_commit(db), 0);
		/* The journal's head spoilt behind the daemon's back: the
		 * checkpoint cannot merge it, and writes the state from
		 * memory instead, as a rewrite. */
		fd = open(jpath, O_WRONLY);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(pwrite(fd, "XXXX", 4, 4), 4);
		close(fd);
		ck_assert_int_eq(db_checkpoint(db), 0);
		ck_assert(!exists(jpath));
		ck_assert(!exists(oldpath));
		/* Persistence goes on. */
		put(&s, "/three", "3");
		ck_assert_int_eq(db_commit(db), 0);
	});
	reloads_as("/two", "2");
	reloads_as("/three", "3");
}
END_TEST

START_TEST(journals_beside_a_new_database_are_removed)
{
	unsigned char *p;
	size_t len;
	struct db *db;

	some_commits(&p, &len);
	copy_file(jpath, oldpath);
	unlink(dbpath);
	db = open_db(false);
	ck_assert(!exists(jpath));
	ck_assert(!exists(oldpath));
	db_close(db);
	free(p);
}
END_TEST

/* db_get's fn: 7 for the value "journal". */
static int journal_value(const void *data, size_t len, void *arg)
{
	(void)arg;
	return len == 7 && memcmp(data, "journal", 7) == 0 ? 7 : -1;
}

START_TEST(db_get_reads_the_records_with_the_journals)
{
	struct store s;
	struct db *db;

	CRASHED({
		struct store st;
		struct db *d = new_db(&st);
		struct evbuffer *b = evbuffer_new();

		evbuffer_add(b, "file", 4);
		db_put(d, "#domain/5", b);
		ck_assert_int_eq(db_checkpoint(d), 0);
		evbuffer_drain(b, 4);
		evbuffer_add(b, "journal", 7);
		db_put(d, "#domain/5", b);
		db_put(d, "#domain/6", b);
		db_delete(d, "#domain/7");
		ck_assert_int_eq(db_commit(d), 0);
		evbuffer_free(b);
	});
	db = open_db(true);
	new_store(&s, false);
	ck_assert_int_eq(db_load_nodes(db, &s), 0);
	ck_assert_int_eq(db_get(db, "#domain/5", journal_value, NULL), 7);
	ck_assert_int_eq(db_get(db, "#domain/6", journal_value, NULL), 7);
	ck_assert_int_eq(db_get(db, "#domain/7", journal_value, NULL), 0);
	db_loaded_done(db);
	/* After the start-up, nothing is read back. */
	ck_assert_int_eq(db_get(db, "#domain/5", journal_value, NULL), 0);
	store_destroy(&s);
	db_close(db);
}
END_TEST

START_TEST(a_journal_that_cannot_be_written_empties_the_files)
{
	CRASHED({
		struct store s;
		struct db *db = new_db(&s);
		struct rlimit rl;
		char big[4000];

		/* A full file system, as far as this process can tell: the
		 * journal's space allocated ahead holds less than 200 big
		 * values, so the commit needs more, and is refused it. */
		signal(SIGXFSZ, SIG_IGN);
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		put(&s, "/small", "1");
		ck_assert_int_eq(db_commit(db), 0);
		rl.rlim_cur = rl.rlim_max = (rlim_t)size_of(jpath) + 100;
		ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
		for (int i = 0; i < 200; i++) {
			char path[32];

			snprintf(path, sizeof(path), "/big/%d", i);
			put(&s, path, big);
		}
		ck_assert_int_eq(db_commit(db), -1);
		ck_assert_int_eq(size_of(dbpath), 0);
		ck_assert(!exists(jpath));
		/* Persistence stays off. */
		put(&s, "/after", "1");
		ck_assert_int_eq(db_commit(db), -1);
	});
	/* A restart starts empty rather than from an older state. */
	{
		struct db *db = open_db(false);

		db_close(db);
	}
}
END_TEST

/* A frame of one put of key=value, sealed, in *len bytes at *p (freed by
 * the caller). */
static unsigned char *one_frame(const char *spec, size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	unsigned char *p;

	ck_assert_ptr_nonnull(b);
	FRAME(b, spec);
	p = unit_take(b, len);
	evbuffer_free(b);
	return p;
}

/* What the journal at path holds, as a scan sees it. */
static enum journal_state scan_file(const char *path, struct seen *seen)
{
	struct journal_map m;
	struct journal_scan s;

	ck_assert_int_eq(journal_map(path, true, &m), 0);
	memset(seen, 0, sizeof(*seen));
	ck_assert_int_eq(journal_scan(m.p, m.len, &s, true, seen_change,
				      seen_frame, seen), 0);
	journal_unmap(&m);
	return s.state;
}

/* Bytes of the file at path from offset at on: all zeros? */
static bool zeros_from(const char *path, off_t at)
{
	unsigned char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n;
	bool zero = true;

	ck_assert_int_ge(fd, 0);
	while (zero && (n = pread(fd, buf, sizeof(buf), at)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			zero = zero && !buf[i];
		at += n;
	}
	close(fd);
	return zero;
}

START_TEST(a_renewed_journal_is_empty_and_reused_in_place)
{
	char spare[200];
	struct journal_out j;
	struct seen seen;
	struct stat before, after;
	unsigned char *f;
	size_t len;

	snprintf(spare, sizeof(spare), "%s.spare", jpath);
	ck_assert_int_eq(journal_open(&j, jpath, 0, 4096), 0);
	seal_with(j.salt);
	for (int i = 0; i < 200; i++) {
		char spec[64];

		snprintf(spec, sizeof(spec), "+#k%d=%0*d", i, 40, i);
		f = one_frame(spec, &len);
		ck_assert_int_eq(journal_append(&j, f, len), 0);
		free(f);
	}
	ck_assert_int_eq(journal_close(&j, true), 0);
	ck_assert_int_eq(scan_file(jpath, &seen), JOURNAL_WHOLE);
	ck_assert_uint_eq(seen.frames, 200);

	/* Renewed: a head of another salt, its frames left where they
	 * were (nothing else written), none of them read any more. */
	ck_assert_int_eq(rename(jpath, spare), 0);
	ck_assert_int_eq(stat(spare, &before), 0);
	ck_assert_int_eq(journal_renew(spare), 0);
	ck_assert_int_eq(stat(spare, &after), 0);
	ck_assert_int_eq(after.st_size, before.st_size);
	ck_assert_int_eq(after.st_blocks, before.st_blocks);
	ck_assert(!zeros_from(spare, (off_t)schema_journal_head_len()));
	ck_assert_int_eq(scan_file(spare, &seen), JOURNAL_WHOLE);
	ck_assert_uint_eq(seen.frames, 0);

	/* Reused: renamed to the live name, written from its head on, and
	 * only the new frames are read, its last life's bytes after them
	 * (closed without the cut that a rotation makes). */
	ck_assert_int_eq(journal_reuse(&j, spare, jpath, 4096, NULL), 0);
	seal_with(j.salt);
	ck_assert(!exists(spare));
	ck_assert_int_eq(stat(jpath, &after), 0);
	ck_assert_int_eq(after.st_ino, before.st_ino);
	f = one_frame("+#new=1", &len);
	ck_assert_int_eq(journal_append(&j, f, len), 0);
	free(f);
	ck_assert_int_eq(journal_close(&j, false), 0);
	ck_assert_int_eq(scan_file(jpath, &seen), JOURNAL_WHOLE);
	ck_assert_uint_eq(seen.frames, 1);
	ck_assert_str_eq(seen.text, "+#new=1\n");

	/* No spare: nothing opened. */
	ck_assert_int_eq(journal_reuse(&j, spare, jpath, 4096, NULL), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(j.fd, -1);
}
END_TEST

START_TEST(a_spare_keeps_its_mapping_from_one_life_to_the_next)
{
	char spare[200], other[200];
	struct journal_out j;
	struct journal_kept k, k2;
	struct seen seen;
	unsigned char *f, *map;
	size_t len, populated;

	snprintf(spare, sizeof(spare), "%s.spare", jpath);
	snprintf(other, sizeof(other), "%s.other", jpath);
	/* A first life: frames larger than a copy's (JOURNAL_COPY_MAX) go
	 * by pwrite, small ones are copies, and fill page tables. */
	ck_assert_int_eq(journal_open(&j, jpath, 0, 4096), 0);
	seal_with(j.salt);
	for (int i = 0; i < 300; i++) {
		char spec[2100];

		snprintf(spec, sizeof(spec), "+#k%d=%0*d", i,
			 i % 2 ? 40 : 2000, i);
		f = one_frame(spec, &len);
		ck_assert_int_eq(journal_append(&j, f, len), 0);
		free(f);
	}
	map = j.map;
	ck_assert_int_eq(journal_close_keep(&j, &k), 0);
	ck_assert_ptr_eq(k.map, map);
	ck_assert_uint_gt(k.populated, 4096);
	ck_assert_int_eq(j.fd, -1);
	ck_assert_ptr_null(j.map);
	ck_assert_int_eq(scan_file(jpath, &seen), JOURNAL_WHOLE);
	ck_assert_uint_eq(seen.frames, 300);

	/* Renewed: none of its frames is read any more. */
	ck_assert_int_eq(rename(jpath, spare), 0);
	ck_assert_int_eq(journal_renew(spare), 0);
	ck_assert_int_eq(scan_file(spare, &seen), JOURNAL_WHOLE);
	ck_assert_uint_eq(seen.frames, 0);
	/* As if its page tables reached only this far: the next life's
	 * frames past them are copies all the same. */
	k.populated = 8192 + 100;

	/* The next life takes the mapping over, its page tables with it,
	 * and every frame is a copy: its bytes are in the mapping. */
	populated = k.populated;
	ck_assert_int_eq(journal_reuse(&j, spare, jpath, 4096, &k), 0);
	seal_with(j.salt);
	ck_assert_ptr_null(k.map);
	ck_assert_ptr_eq(j.map, map);
	ck_assert_uint_eq(j.populated, populated);
	ck_assert(j.reused);
	{
		char spec[2100];

		snprintf(spec, sizeof(spec), "+#big=%0*d", 2000, 7);
		f = one_frame(spec, &len);
	}
	ck_assert_uint_gt(len, 1024);
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(journal_append(&j, f, len), 0);
	free(f);
	/* By pwrite, the page tables would have stayed as they were. */
	ck_assert_uint_gt(j.end, populated);
	ck_assert_uint_ge(j.populated, j.end);
	f = one_frame("+#last=1", &len);
	ck_assert_int_eq(journal_append(&j, f, len), 0);
	free(f);
	ck_assert_uint_ge(j.populated, j.end);
	ck_assert_int_eq(journal_close_keep(&j, &k), 0);
	ck_assert_ptr_eq(k.map, map);
	ck_assert_int_eq(scan_file(jpath, &seen), JOURNAL_WHOLE);
	ck_assert_uint_eq(seen.frames, 41);

	/* Another file's mapping is not taken: it is let go, and the
	 * spare mapped anew. */
	ck_assert_int_eq(journal_open(&j, other, 0, 4096), 0);
	ck_assert_int_eq(journal_close_keep(&j, &k2), 0);
	ck_assert_int_eq(rename(jpath, spare), 0);
	ck_assert_int_eq(journal_renew(spare), 0);
	ck_assert_int_eq(journal_reuse(&j, spare, jpath, 4096, &k2), 0);
	ck_assert_ptr_null(k2.map);
	ck_assert_uint_eq(j.populated, schema_journal_head_len());
	ck_assert_int_eq(journal_close(&j, true), 0);
	journal_kept_free(&k);
	ck_assert_ptr_null(k.map);
	unlink(other);
}
END_TEST

/*
 * A journal at rest gives back its file's pages past its frames: a
 * reused spare's file is as long as its last life, whose frames follow
 * the new ones.
 * Appends then go on as in a fresh journal, allocating as they need.
 */
START_TEST(a_shrunk_journal_gives_its_pages_back_and_goes_on)
{
	char spare[200], spec[2100];
	struct journal_out j;
	struct journal_kept k;
	struct seen seen;
	struct stat st;
	unsigned char *f;
	size_t len;

	snprintf(spare, sizeof(spare), "%s.spare", jpath);
	ck_assert_int_eq(journal_open(&j, jpath, 0, 4096), 0);
	seal_with(j.salt);
	for (int i = 0; i < 200; i++) {
		snprintf(spec, sizeof(spec), "+#k%d=%0*d", i, 1000, i);
		f = one_frame(spec, &len);
		ck_assert_int_eq(journal_append(&j, f, len), 0);
		free(f);
	}
	ck_assert_int_eq(journal_close_keep(&j, &k), 0);
	ck_assert_int_eq(rename(jpath, spare), 0);
	ck_assert_int_eq(journal_renew(spare), 0);
	ck_assert_int_eq(journal_reuse(&j, spare, jpath, 4096, &k), 0);
	seal_with(j.salt);
	f = one_frame("+#first=1", &len);
	ck_assert_int_eq(journal_append(&j, f, len), 0);
	free(f);
	ck_assert_int_eq(stat(jpath, &st), 0);
	ck_assert_int_gt(st.st_size, 100 * 1000);
	ck_assert_int_gt(st.st_blocks * 512, 100 * 1000);

	ck_assert_int_eq(journal_shrink(&j), 0);
	ck_assert_int_eq(stat(jpath, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)((j.end + 4095) / 4096 * 4096));
	/* (A disk's file system may keep a block or two more.) */
	ck_assert_int_le(st.st_blocks * 512, st.st_size + 16384);
	ck_assert_uint_le(j.populated, j.allocated);
	ck_assert(!j.reused);
	/* Nothing more to give back: a second time changes nothing. */
	ck_assert_int_eq(journal_shrink(&j), 0);
	ck_assert_int_eq(stat(jpath, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)((j.end + 4095) / 4096 * 4096));

	/* On past the cut, big frames and small. */
	for (int i = 0; i < 40; i++) {
		snprintf(spec, sizeof(spec), "+#b%d=%0*d", i,
			 i % 2 ? 30 : 2000, i);
		f = one_frame(spec, &len);
		ck_assert_int_eq(journal_append(&j, f, len), 0);
		free(f);
	}
	ck_assert_int_eq(journal_close(&j, true), 0);
	journal_kept_free(&k);
	ck_assert_int_eq(scan_file(jpath, &seen), JOURNAL_WHOLE);
	ck_assert_uint_eq(seen.frames, 41);
	ck_assert(strncmp(seen.text, "+#first=1\n+#b0=", 15) == 0);
}
END_TEST

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *t = tcase_create("reader");

	tcase_add_test(t, frames_are_read_back_in_order);
	tcase_add_test(t, an_empty_file_or_a_head_cut_short_is_an_empty_journal);
	tcase_add_test(t, a_tail_cut_anywhere_in_the_last_frame_is_cut_off);
	tcase_add_test(t, a_last_frame_failing_its_checksum_is_a_torn_tail);
	tcase_add_test(t, damage_before_the_end_is_refused);
	tcase_add_test(t, version_3_reads_past_a_bad_frame_for_its_life);
	tcase_add_test(t, zeros_after_the_frames_are_the_end_and_a_copy_cut_short_is_torn);
	tcase_add_test(t, a_malformed_change_in_a_whole_frame_is_refused);
	tcase_add_test(t, a_fold_keeps_the_last_change_of_each_key);
	suite_add_tcase(s, t);

	t = tcase_create("db");
	tcase_add_unchecked_fixture(t, db_rig_make_top, db_rig_remove_top);
	tcase_add_checked_fixture(t, db_rig_setup, db_rig_teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, a_commit_is_one_frame_and_nothing_when_nothing_changed);
	tcase_add_test(t, the_last_change_of_a_key_wins_over_the_file);
	tcase_add_test(t, applying_a_journal_twice_gives_the_same_file);
	tcase_add_test(t, a_compaction_brings_the_file_up_to_date);
	tcase_add_test(t, a_small_stores_journal_is_merged_past_16_mib);
	tcase_add_test(t, compactions_through_the_index_keep_the_last_state);
	tcase_add_test(t, siblings_keep_their_order_through_changes_merges_and_restarts);
	tcase_add_test(t, an_idle_database_compacts_what_came_during_a_compaction);
	tcase_add_test(t, a_compaction_ending_with_changes_pending_leaves_them_in_place);
	tcase_add_test(t, a_quiet_period_during_a_compaction_merges_after_it);
	tcase_add_test(t, the_quiet_period_counts_from_the_last_commit);
	tcase_add_test(t, the_quiet_merge_ends_its_thread);
	tcase_add_test(t, a_quiet_period_with_nothing_to_merge_ends_the_thread);
	tcase_add_test(t, the_quiet_merge_keeps_no_spare);
	tcase_add_test(t, a_spare_is_kept_by_the_loops_cpu_time_not_the_clocks);
	tcase_add_test(t, a_quiet_journal_is_merged_past_a_sixteenth_of_the_checkpoint);
	tcase_add_test(t, a_compaction_runs_idle_until_hurried);
	tcase_add_test(t, the_compaction_thread_serves_a_burst_then_ends);
	tcase_add_test(t, checkpoints_with_kept_contexts_read_back_the_same);
	tcase_add_test(t, a_checkpoint_leaves_the_state_in_the_file_alone);
	tcase_add_test(t, a_merge_copies_the_blocks_its_journal_left_alone);
	tcase_add_test(t, a_merge_keeps_parents_before_their_children);
	tcase_add_test(t, a_journal_putting_the_checkpoints_own_keys_is_merged_without_them);
	tcase_add_test(t, a_compaction_leaves_no_mapping_of_the_file);
	tcase_add_test(t, a_damaged_journal_stops_the_start);
	tcase_add_test(t, a_put_as_before_of_a_node_nobody_made_is_damage);
	tcase_add_test(t, a_torn_journal_is_cut_and_written_on);
	tcase_add_test(t, a_version_1_journal_is_read_and_written_on_as_version_2);
	tcase_add_test(t, a_version_2_journal_is_written_on_as_version_2);
	tcase_add_test(t, a_checkpoint_that_cannot_merge_writes_the_whole_state);
	tcase_add_test(t, journals_beside_a_new_database_are_removed);
	tcase_add_test(t, db_get_reads_the_records_with_the_journals);
	tcase_add_test(t, a_journal_that_cannot_be_written_empties_the_files);
	tcase_add_test(t, a_renewed_journal_is_empty_and_reused_in_place);
	tcase_add_test(t, a_spare_keeps_its_mapping_from_one_life_to_the_next);
	tcase_add_test(t, a_shrunk_journal_gives_its_pages_back_and_goes_on);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(journal_suite());
}
