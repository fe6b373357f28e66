/*
 * persist/jindex.c: where the live journal holds each node's last change.
 *
 * A journal made of random puts, removals (the id then used again by
 * another node, as the pool does) and other records, with the index
 * noting each change as the database does, folds through the index to
 * exactly what a fold of the whole journal gives, reading fewer changes;
 * an index of mostly distinct nodes is given up, and its memory freed;
 * an offset that holds no change is an error, never a read past the end.
 */
#include "tests/unit/unit.h"

#include "persist/jindex.h"
#include "persist/journal.h"
#include "schema/schema.h"

/* A journal being written: its bytes, and the frame being filled. */
struct jbuild {
	struct evbuffer *file;
	struct evbuffer *frame;
};

/* The salt of the journals built here (schema.h). */
#define JB_SALT 0x6a6f75726e616c31ull

static void jb_init(struct jbuild *j)
{
	struct writer w;

	j->file = evbuffer_new();
	j->frame = evbuffer_new();
	ck_assert(j->file && j->frame);
	wr_init(&w, j->file);
	schema_write_journal_head(&w, SCHEMA_JOURNAL_VERSION, JB_SALT);
	ck_assert(wr_ok(&w));
}

/* Where the next change lands in the file, its frame's head room made. */
static uint64_t jb_offset(struct jbuild *j)
{
	static const unsigned char room[SCHEMA_FRAME_HEAD];

	if (!evbuffer_get_length(j->frame))
		ck_assert_int_eq(evbuffer_add(j->frame, room, sizeof(room)), 0);
	return evbuffer_get_length(j->file) + evbuffer_get_length(j->frame);
}

static void jb_change(struct jbuild *j, bool put, const char *key,
		      const char *value)
{
	struct schema_change c = {
		.put = put, .key = key, .key_len = (uint32_t)strlen(key),
		.value = value, .value_len = put ? (uint32_t)strlen(value) : 0,
	};
	struct writer w;

	wr_init(&w, j->frame);
	schema_write_change(&w, &c);
	ck_assert(wr_ok(&w));
}

static void jb_commit(struct jbuild *j)
{
	size_t len = evbuffer_get_length(j->frame);
	unsigned char *p;

	if (!len)
		return;
	p = evbuffer_pullup(j->frame, -1);
	schema_seal_frame(p, p + SCHEMA_FRAME_HEAD,
			  (uint32_t)(len - SCHEMA_FRAME_HEAD), JB_SALT);
	ck_assert_int_eq(evbuffer_add(j->file, p, len), 0);
	evbuffer_drain(j->frame, len);
}

static void jb_free(struct jbuild *j)
{
	evbuffer_free(j->file);
	evbuffer_free(j->frame);
}

/* Every key's last change in f, in a form to compare, in key order. */
static int by_key(const void *a, const void *b)
{
	const struct fold_entry *x = a, *y = b;
	size_t n = x->c.key_len < y->c.key_len ? x->c.key_len : y->c.key_len;
	int d = memcmp(x->c.key, y->c.key, n);

	return d ? d : (x->c.key_len > y->c.key_len) - (x->c.key_len < y->c.key_len);
}

static void same_folds(struct fold *a, struct fold *b)
{
	ck_assert_uint_eq(a->count, b->count);
	qsort(a->v, a->count, sizeof(*a->v), by_key);
	qsort(b->v, b->count, sizeof(*b->v), by_key);
	for (size_t i = 0; i < a->count; i++) {
		const struct schema_change *x = &a->v[i].c, *y = &b->v[i].c;

		ck_assert_uint_eq(x->key_len, y->key_len);
		ck_assert(memcmp(x->key, y->key, x->key_len) == 0);
		ck_assert_msg(x->put == y->put, "%.*s: put differs",
			      (int)x->key_len, (const char *)x->key);
		ck_assert_uint_eq(x->value_len, y->value_len);
		if (x->value_len)
			ck_assert(memcmp(x->value, y->value, x->value_len) == 0);
	}
}

enum { PATHS = 40, IDS = 64, ROUNDS = 5000 };

START_TEST(an_index_folds_to_what_the_whole_journal_folds_to)
{
	struct jbuild j;
	struct jindex ix;
	struct fold whole, indexed;
	struct journal_scan scan;
	uint32_t id_of[PATHS] = { 0 };	/* 0: no node there */
	bool used[IDS + 1] = { false };
	unsigned int seed = (unsigned int)_i + 1;
	unsigned char *p;
	const char *why = NULL;
	size_t len;

	jb_init(&j);
	jindex_init(&ix);
	for (int i = 0; i < ROUNDS; i++) {
		int k = rand_r(&seed) % PATHS, what = rand_r(&seed) % 10;
		char key[32], value[32];

		snprintf(key, sizeof(key), "/n/%d", k);
		snprintf(value, sizeof(value), "%d", i);
		if (what == 0) {		/* another record */
			snprintf(key, sizeof(key), "#side/%d", k % 3);
			jindex_other(&ix, jb_offset(&j));
			jb_change(&j, i % 2, key, value);
		} else if (what <= 2 && id_of[k]) {	/* a removal */
			jindex_removed(&ix, id_of[k], jb_offset(&j));
			jb_change(&j, false, key, NULL);
			used[id_of[k]] = false;
			id_of[k] = 0;
		} else {			/* a put, a new node maybe */
			if (!id_of[k]) {
				/* The lowest free id, as the pool reuses. */
				uint32_t id = 1;

				while (used[id])
					id++;
				used[id] = true;
				id_of[k] = id;
			}
			jindex_put(&ix, id_of[k], jb_offset(&j));
			jb_change(&j, true, key, value);
		}
		if (rand_r(&seed) % 5 == 0)
			jb_commit(&j);
	}
	jb_commit(&j);
	ck_assert(!ix.off);
	p = unit_take(j.file, &len);

	fold_init(&whole);
	fold_init(&indexed);
	ck_assert_int_eq(journal_scan(p, len, &scan, false, fold_change, NULL,
				      &whole), 0);
	ck_assert_msg(scan.state == JOURNAL_WHOLE, "%s at %zu", scan.why, scan.at);
	ck_assert_int_eq(jindex_fold(&ix, p, len, &indexed, &why), 0);
	/* Fewer entries than changes: that is the point of it. */
	ck_assert_uint_lt(jindex_count(&ix), ROUNDS / 2);
	same_folds(&whole, &indexed);

	fold_free(&whole);
	fold_free(&indexed);
	jindex_free(&ix);
	free(p);
	jb_free(&j);
}
END_TEST

START_TEST(an_index_of_distinct_nodes_is_given_up)
{
	struct jindex ix;

	jindex_init(&ix);
	for (uint32_t id = 1; id <= 2 * JINDEX_MIN && !ix.off; id++)
		jindex_put(&ix, id, 64 + 16 * (uint64_t)id);
	ck_assert(ix.off);
	ck_assert_ptr_null(ix.v);
	ck_assert_ptr_null(ix.slots);
	/* Off, it notes nothing more. */
	jindex_put(&ix, 1, 1 << 20);
	jindex_other(&ix, 1 << 21);
	ck_assert_uint_eq(jindex_count(&ix), 0);
	jindex_free(&ix);
}
END_TEST

START_TEST(nodes_written_many_times_keep_their_index)
{
	struct jindex ix;

	jindex_init(&ix);
	for (uint64_t at = 64, n = 0; n < 8 * JINDEX_MIN; n++, at += 20)
		jindex_put(&ix, 1 + (uint32_t)(n % 1000), at);
	ck_assert(!ix.off);
	ck_assert_uint_eq(jindex_count(&ix), 1000);
	jindex_free(&ix);
}
END_TEST

START_TEST(an_offset_past_4_gib_gives_the_index_up)
{
	struct jindex ix;

	jindex_init(&ix);
	jindex_put(&ix, 1, 64);
	jindex_put(&ix, 1, (uint64_t)1 << 32);
	ck_assert(ix.off);
	jindex_free(&ix);
}
END_TEST

START_TEST(an_offset_holding_no_change_is_an_error)
{
	struct jbuild j;
	struct jindex ix;
	struct fold f;
	unsigned char *p;
	const char *why = NULL;
	size_t len;

	jb_init(&j);
	jindex_init(&ix);
	jindex_put(&ix, 1, jb_offset(&j));
	jb_change(&j, true, "/a", "1");
	jb_commit(&j);
	p = unit_take(j.file, &len);
	/* Past the end. */
	jindex_put(&ix, 2, len + 100);
	fold_init(&f);
	ck_assert_int_eq(jindex_fold(&ix, p, len, &f, &why), -1);
	ck_assert_ptr_nonnull(why);
	fold_free(&f);
	/* Inside, but in the middle of a change: its bytes do not parse as
	 * one ending in the file (the journal's head, say). */
	jindex_free(&ix);
	jindex_init(&ix);
	jindex_put(&ix, 1, len - 1);
	fold_init(&f);
	why = NULL;
	ck_assert_int_eq(jindex_fold(&ix, p, len, &f, &why), -1);
	ck_assert_ptr_nonnull(why);
	fold_free(&f);
	jindex_free(&ix);
	free(p);
	jb_free(&j);
}
END_TEST

static Suite *jindex_suite(void)
{
	Suite *s = suite_create("jindex");
	TCase *t = tcase_create("jindex");

	tcase_add_loop_test(t, an_index_folds_to_what_the_whole_journal_folds_to,
			    0, 8);
	tcase_add_test(t, an_index_of_distinct_nodes_is_given_up);
	tcase_add_test(t, nodes_written_many_times_keep_their_index);
	tcase_add_test(t, an_offset_past_4_gib_gives_the_index_up);
	tcase_add_test(t, an_offset_holding_no_change_is_an_error);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(jindex_suite());
}
