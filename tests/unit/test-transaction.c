/* transactions: the copy-on-write overlay and its conflict detection. */
#include "tests/unit/unit.h"

#include <errno.h>

#include "store/slab.h"
#include "tests/unit/fail_alloc.h"
#include "transactions/transaction.h"
#include "transactions/txn_impl.h"	/* the entries' table */

static struct store st;
static struct txn_set set;
static struct perms *dom0;

/* The changed paths a commit reported, as "+path" or "-path" lines. */
static char changes[1024];

static void record_change(const char *path, bool removed,
			  const struct perms *perms, void *arg)
{
	(void)arg;
	ck_assert_ptr_nonnull(perms);
	strcat(changes, removed ? "-" : "+");
	strcat(changes, path);
	strcat(changes, "\n");
}

static void setup(void)
{
	dom0 = perms_alloc(1);
	ck_assert_ptr_nonnull(dom0);
	store_init(&st, dom0);
	txn_set_init(&set);
	changes[0] = '\0';
}

static void teardown(void)
{
	txn_set_clear(&set);
	store_destroy(&st);
	perms_unref(dom0);
}

static void live_write(const char *path, const char *value)
{
	ck_assert_ptr_nonnull(store_write(&st, path, dom0, value,
					  strlen(value)));
}

static void live_rm(const char *path)
{
	ck_assert_int_eq(store_remove(&st, store_lookup(&st, path), NULL, NULL),
			 0);
}

static void tx_write(struct txn *t, const char *path, const char *value)
{
	ck_assert_int_eq(view_write(&st, t, path, dom0, value, strlen(value)),
			 0);
}

/* The value of path as t sees it, or NULL when it does not exist there. */
static const char *tx_read(struct txn *t, const char *path)
{
	static char buf[256];
	struct view_node n;

	if (!view_get(&st, t, path, &n))
		return NULL;
	ck_assert_uint_lt(n.value_len, sizeof(buf));
	if (n.value_len)	/* value is NULL when empty */
		memcpy(buf, n.value, n.value_len);
	buf[n.value_len] = '\0';
	return buf;
}

static int add_name(const char *name, void *arg)
{
	strcat(arg, name);
	strcat(arg, " ");
	return 0;
}

/* Children of path as t sees them, space-separated. */
static const char *tx_list(struct txn *t, const char *path)
{
	static char buf[256];
	struct view_node n;

	buf[0] = '\0';
	ck_assert(view_get(&st, t, path, &n));
	ck_assert_int_eq(view_list(&st, t, path, add_name, buf), 0);
	return buf;
}

static int commit(struct txn *t)
{
	return txn_commit(&set, t, &st, NULL, record_change, NULL);
}

START_TEST(start_copies_nothing_and_ids_are_nonzero)
{
	unsigned long before;
	struct txn *a, *b;

	live_write("/a", "1");
	before = store_count(&st);
	a = txn_start(&set);
	b = txn_start(&set);
	ck_assert_uint_ne(txn_id(a), 0);
	ck_assert_uint_ne(txn_id(a), txn_id(b));
	ck_assert_ptr_eq(txn_find(&set, txn_id(b)), b);
	ck_assert_uint_eq(set.count, 2);
	ck_assert_uint_eq(store_count(&st), before);
}
END_TEST

START_TEST(ids_skip_zero_and_live_ids_after_wrapping)
{
	struct txn *low, *t;

	set.last_id = 0;
	low = txn_start(&set);			/* id 1 */
	ck_assert_uint_eq(txn_id(low), 1);
	set.last_id = UINT32_MAX - 1;
	t = txn_start(&set);
	ck_assert_uint_eq(txn_id(t), UINT32_MAX);
	t = txn_start(&set);			/* wraps past 0 and the live 1 */
	ck_assert_uint_eq(txn_id(t), 2);
	ck_assert_ptr_null(txn_find(&set, 0));
}
END_TEST

START_TEST(transaction_sees_its_writes_and_nobody_else_does)
{
	struct txn *t = txn_start(&set);

	live_write("/a", "old");
	tx_write(t, "/a", "new");
	tx_write(t, "/b/c", "x");
	ck_assert_str_eq(tx_read(t, "/a"), "new");
	ck_assert_str_eq(tx_read(t, "/b/c"), "x");
	ck_assert_str_eq(tx_read(t, "/b"), "");
	ck_assert_str_eq(tx_read(NULL, "/a"), "old");
	ck_assert_ptr_null(tx_read(NULL, "/b"));
	ck_assert_int_eq(commit(t), 0);
	ck_assert_str_eq(tx_read(NULL, "/a"), "new");
	ck_assert_str_eq(tx_read(NULL, "/b/c"), "x");
	ck_assert_uint_eq(set.count, 0);
	ck_assert_uint_eq(store_check(&st, NULL, NULL), 0);
}
END_TEST

START_TEST(discard_leaves_no_trace)
{
	struct txn *t = txn_start(&set);
	uint64_t gen;

	live_write("/a", "old");
	gen = st.gen;
	tx_write(t, "/a", "new");
	tx_write(t, "/n/m", "x");
	ck_assert_int_eq(view_remove(&st, t, "/a"), 0);
	txn_discard(&set, t);
	ck_assert_str_eq(tx_read(NULL, "/a"), "old");
	ck_assert_ptr_null(store_lookup(&st, "/n"));
	ck_assert_uint_eq(st.gen, gen);
	ck_assert_uint_eq(set.count, 0);
}
END_TEST

START_TEST(reads_are_repeatable)
{
	struct txn *t = txn_start(&set);

	live_write("/a", "old");
	ck_assert_str_eq(tx_read(t, "/a"), "old");
	live_write("/a", "outside");
	ck_assert_str_eq(tx_read(t, "/a"), "old");
}
END_TEST

START_TEST(read_then_changed_is_eagain)
{
	struct txn *t = txn_start(&set);

	live_write("/a", "1");
	tx_read(t, "/a");
	tx_write(t, "/b", "2");
	live_write("/a", "changed");
	ck_assert_int_eq(commit(t), EAGAIN);
	ck_assert_ptr_null(store_lookup(&st, "/b"));	/* nothing applied */
	ck_assert_uint_eq(set.count, 0);		/* and the tx is gone */
}
END_TEST

START_TEST(read_of_missing_node_then_created_is_eagain)
{
	struct txn *t = txn_start(&set);

	ck_assert_ptr_null(tx_read(t, "/a"));
	tx_write(t, "/b", "2");
	live_write("/a", "now here");
	ck_assert_int_eq(commit(t), EAGAIN);
}
END_TEST

START_TEST(listed_then_child_added_is_eagain)
{
	struct txn *t = txn_start(&set);

	live_write("/d/x", "1");
	ck_assert_str_eq(tx_list(t, "/d"), "x ");
	tx_write(t, "/other", "1");
	live_write("/d/y", "2");
	ck_assert_int_eq(commit(t), EAGAIN);
}
END_TEST

START_TEST(deleted_under_us_is_eagain)
{
	struct txn *t = txn_start(&set);

	live_write("/a/b", "1");
	tx_write(t, "/a/b", "2");
	live_rm("/a");
	ck_assert_int_eq(commit(t), EAGAIN);
	ck_assert_ptr_null(store_lookup(&st, "/a"));
}
END_TEST

START_TEST(removed_and_made_again_under_us_is_eagain)
{
	struct txn *t = txn_start(&set);

	live_write("/a", "1");
	ck_assert_str_eq(tx_read(t, "/a"), "1");
	tx_write(t, "/b", "2");
	live_rm("/a");
	live_write("/a", "1");	/* the same value, but a new node */
	ck_assert_int_eq(commit(t), EAGAIN);
}
END_TEST

START_TEST(listed_while_missing_then_created_is_eagain)
{
	struct txn *t = txn_start(&set);

	ck_assert_int_eq(view_list(&st, t, "/d", add_name, (char[8]){ 0 }),
			 ENOENT);
	tx_write(t, "/other", "1");
	live_write("/d", "");
	ck_assert_int_eq(commit(t), EAGAIN);
}
END_TEST

START_TEST(a_transaction_holds_the_store_from_its_first_read_to_its_end)
{
	struct txn *t = txn_start(&set), *u;

	live_write("/a", "1");
	ck_assert_ptr_null(st.oldest);	/* started, read nothing yet */
	tx_read(t, "/a");
	ck_assert_ptr_nonnull(st.oldest);
	live_write("/a", "2");
	ck_assert_uint_eq(st.stamps.count, 1);
	u = txn_start(&set);
	tx_read(u, "/a");
	txn_discard(&set, t);
	ck_assert_ptr_nonnull(st.oldest);	/* u's */
	ck_assert_int_eq(commit(u), 0);
	ck_assert_ptr_null(st.oldest);
	ck_assert_uint_eq(st.stamps.count, 0);
}
END_TEST

/* A transaction left open while others come and go, and thousands of
 * writes made the stamps' table grow: what it read is still checked,
 * and the others' commits are not failed by what they did not read. */
START_TEST(a_long_transaction_keeps_its_conflicts_while_others_come_and_go)
{
	struct txn *old = txn_start(&set), *t;
	char path[32];

	live_write("/kept", "1");
	ck_assert_str_eq(tx_read(old, "/kept"), "1");
	live_write("/kept", "2");
	for (int i = 0; i < 3000; i++) {
		changes[0] = '\0';
		t = txn_start(&set);
		snprintf(path, sizeof(path), "/w/n%d", i);
		tx_read(t, path);
		tx_write(t, path, "v");
		ck_assert_int_eq(commit(t), 0);
	}
	ck_assert_uint_ge(st.stamps.count, 3000);	/* old is older */
	tx_write(old, "/x", "1");
	ck_assert_int_eq(commit(old), EAGAIN);
	ck_assert_uint_eq(st.stamps.count, 0);
}
END_TEST

START_TEST(write_write_conflict_is_eagain_for_the_second)
{
	struct txn *t1 = txn_start(&set), *t2 = txn_start(&set);

	live_write("/a", "0");
	tx_read(t1, "/a");
	tx_read(t2, "/a");
	tx_write(t1, "/a", "1");
	tx_write(t2, "/a", "2");
	ck_assert_int_eq(commit(t1), 0);
	ck_assert_int_eq(commit(t2), EAGAIN);
	ck_assert_str_eq(tx_read(NULL, "/a"), "1");
}
END_TEST

START_TEST(disjoint_writes_both_commit)
{
	struct txn *t1 = txn_start(&set), *t2 = txn_start(&set);

	live_write("/a", "0");
	live_write("/b", "0");
	ck_assert_str_eq(tx_read(t1, "/a"), "0");
	ck_assert_str_eq(tx_read(t2, "/b"), "0");
	tx_write(t1, "/a", "1");
	tx_write(t2, "/b", "2");
	ck_assert_int_eq(commit(t2), 0);
	ck_assert_int_eq(commit(t1), 0);
	ck_assert_str_eq(tx_read(NULL, "/a"), "1");
	ck_assert_str_eq(tx_read(NULL, "/b"), "2");
}
END_TEST

START_TEST(siblings_created_under_one_parent_both_commit)
{
	struct txn *t1 = txn_start(&set), *t2 = txn_start(&set);

	live_write("/p", "");
	tx_write(t1, "/p/one", "1");
	tx_write(t2, "/p/two", "2");
	ck_assert_int_eq(commit(t1), 0);
	ck_assert_int_eq(commit(t2), 0);
	ck_assert_str_eq(tx_list(NULL, "/p"), "one two ");
}
END_TEST

START_TEST(unrelated_outside_write_never_fails_a_commit)
{
	struct txn *t = txn_start(&set);

	live_write("/mine", "0");
	tx_read(t, "/mine");
	tx_write(t, "/mine", "1");
	live_write("/theirs", "x");
	live_write("/mine-not", "y");
	ck_assert_int_eq(commit(t), 0);
	ck_assert_str_eq(tx_read(NULL, "/mine"), "1");
}
END_TEST

START_TEST(listing_shows_created_and_hides_deleted_children)
{
	struct txn *t = txn_start(&set);

	live_write("/d/a", "");
	live_write("/d/b", "");
	live_write("/d/c", "");
	ck_assert_int_eq(view_remove(&st, t, "/d/b"), 0);
	tx_write(t, "/d/z", "");
	ck_assert_str_eq(tx_list(t, "/d"), "a c z ");
	ck_assert_str_eq(tx_list(NULL, "/d"), "a b c ");
	ck_assert_int_eq(commit(t), 0);
	ck_assert_str_eq(tx_list(NULL, "/d"), "a c z ");
}
END_TEST

START_TEST(create_then_delete_in_one_transaction_leaves_nothing)
{
	struct txn *t = txn_start(&set);
	unsigned long before = store_count(&st);

	tx_write(t, "/new/deep/node", "v");
	ck_assert_int_eq(view_remove(&st, t, "/new"), 0);
	ck_assert_ptr_null(tx_read(t, "/new/deep/node"));
	ck_assert_int_eq(commit(t), 0);
	ck_assert_ptr_null(store_lookup(&st, "/new"));
	ck_assert_uint_eq(store_count(&st), before);
	ck_assert_uint_eq(store_check(&st, NULL, NULL), 0);
}
END_TEST

START_TEST(rm_then_recreate_replaces_the_subtree)
{
	struct txn *t = txn_start(&set);

	live_write("/s/old/x", "1");
	live_write("/s/keep", "2");
	ck_assert_int_eq(view_remove(&st, t, "/s"), 0);
	ck_assert_ptr_null(tx_read(t, "/s/keep"));
	tx_write(t, "/s/new", "3");
	ck_assert_str_eq(tx_list(t, "/s"), "new ");
	ck_assert_int_eq(commit(t), 0);
	ck_assert_str_eq(tx_list(NULL, "/s"), "new ");
	ck_assert_ptr_null(store_lookup(&st, "/s/old/x"));
	ck_assert_str_eq(tx_read(NULL, "/s/new"), "3");
	ck_assert_uint_eq(store_check(&st, NULL, NULL), 0);
}
END_TEST

START_TEST(recreated_child_is_listed_where_commit_puts_it)
{
	struct txn *t = txn_start(&set);

	live_write("/o/a", "");
	live_write("/o/b", "");
	live_write("/o/c", "");
	ck_assert_int_eq(view_remove(&st, t, "/o/a"), 0);
	tx_write(t, "/o/a", "again");
	tx_write(t, "/o/d", "");
	ck_assert_str_eq(tx_list(t, "/o"), "b c a d ");
	ck_assert_int_eq(commit(t), 0);
	ck_assert_str_eq(tx_list(NULL, "/o"), "b c a d ");
}
END_TEST

START_TEST(many_siblings_created_in_one_transaction_keep_their_order)
{
	struct txn *t = txn_start(&set);
	char path[32], expect[512] = "", name[16];

	live_write("/p", "");
	for (int i = 40; i > 0; i--) {
		snprintf(path, sizeof(path), "/p/n%d", i);
		snprintf(name, sizeof(name), "n%d ", i);
		tx_write(t, path, "");
		strcat(expect, name);
	}
	ck_assert_str_eq(tx_list(t, "/p"), expect);
	ck_assert_int_eq(commit(t), 0);
	ck_assert_str_eq(tx_list(NULL, "/p"), expect);
}
END_TEST

START_TEST(write_below_then_remove_ancestor_then_rewrite_keeps_the_rewrite)
{
	struct txn *t = txn_start(&set);

	live_write("/x/y", "0");
	tx_write(t, "/x/y/z", "1");
	ck_assert_int_eq(view_remove(&st, t, "/x"), 0);
	tx_write(t, "/x/y/z", "2");
	ck_assert_int_eq(commit(t), 0);
	ck_assert_str_eq(tx_read(NULL, "/x/y/z"), "2");
	ck_assert_str_eq(tx_read(NULL, "/x/y"), "");
}
END_TEST

START_TEST(set_perms_applies_at_commit)
{
	struct txn *t = txn_start(&set);
	struct perms *p = perms_alloc(2);
	struct view_node n;

	p->e[0].domid = 5;
	p->e[0].access = PERM_READ | PERM_WRITE;
	p->e[1].domid = 7;
	p->e[1].access = PERM_READ;
	live_write("/a", "v");
	ck_assert(view_get(&st, t, "/a", &n));
	ck_assert_int_eq(view_set_perms(&st, t, "/a", p), 0);
	ck_assert(view_get(&st, t, "/a", &n));
	ck_assert(perms_equal(n.perms, p));
	ck_assert_uint_eq(node_perms(store_lookup(&st, "/a"))->n, 1);
	ck_assert_int_eq(commit(t), 0);
	ck_assert(perms_equal(node_perms(store_lookup(&st, "/a")), p));
	perms_unref(p);
}
END_TEST

START_TEST(commit_reports_changed_paths_in_first_change_order)
{
	struct txn *t = txn_start(&set);

	live_write("/gone/child", "");
	live_write("/kept", "");
	tx_write(t, "/kept", "1");
	tx_write(t, "/p/q", "2");
	ck_assert_int_eq(view_remove(&st, t, "/gone"), 0);
	tx_write(t, "/kept", "3");
	ck_assert_int_eq(commit(t), 0);
	ck_assert_str_eq(changes, "+/kept\n+/p/q\n-/gone\n");	/* not /p */
}
END_TEST

START_TEST(nodes_that_never_existed_outside_are_not_reported)
{
	struct txn *t = txn_start(&set);

	live_write("/d/x", "");
	tx_write(t, "/tmp/a", "1");
	ck_assert_int_eq(view_remove(&st, t, "/tmp"), 0);
	ck_assert_int_eq(view_remove(&st, t, "/d"), 0);	/* /d/x goes too */
	ck_assert_int_eq(commit(t), 0);
	ck_assert_str_eq(changes, "-/d\n");
}
END_TEST

START_TEST(failed_commit_reports_no_changes)
{
	struct txn *t = txn_start(&set);

	live_write("/a", "0");
	tx_read(t, "/a");
	tx_write(t, "/a", "1");
	live_write("/a", "x");
	ck_assert_int_eq(commit(t), EAGAIN);
	ck_assert_str_eq(changes, "");
}
END_TEST

START_TEST(commit_cost_does_not_touch_unrelated_nodes)
{
	struct store_hold h = { 0 };
	struct txn *t;
	uint64_t gen;
	char path[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(path, sizeof(path), "/many/n%d", i);
		live_write(path, "v");
	}
	gen = st.gen;
	store_hold(&st, &h);	/* another reader, to see the stamps */
	t = txn_start(&set);
	tx_write(t, "/many/n5", "w");
	ck_assert_int_eq(commit(t), 0);
	/* One node written: one new generation, nothing else restamped. */
	ck_assert_uint_eq(st.gen, gen + 1);
	ck_assert(node_changed_since(&st, store_lookup(&st, "/many/n5"), gen,
				     STAMP_NODE));
	ck_assert(!node_changed_since(&st, store_lookup(&st, "/many/n6"), gen,
				      STAMP_NODE));
	ck_assert_uint_eq(st.stamps.count, 1);
	store_release(&h);
}
END_TEST

static void count_change(const char *path, bool removed,
			 const struct perms *perms, void *arg)
{
	(void)path, (void)removed, (void)perms;
	++*(unsigned int *)arg;		/* no Check call: it allocates */
}

/*
 * A guest picks the paths its transactions touch.  Picked to share the
 * last bits of uthash's default hash (Jenkins', which anyone can
 * compute), they would all go in one bucket of the transaction's table,
 * walked by each of its lookups; the table is keyed
 * (store/keyed_hash.h), so they spread out.
 */
START_TEST(paths_chosen_to_collide_under_a_known_hash_spread_out)
{
	enum { N = 300 };
	struct txn *t = txn_start(&set);
	const UT_hash_table *tbl;
	unsigned int found = 0, most = 0;
	char path[48];

	for (unsigned int i = 0; found < N; i++) {
		unsigned int h;

		snprintf(path, sizeof(path), "/local/domain/5/c%u", i);
		HASH_JEN(path, strlen(path), h);
		if ((h & 0xfff) == 0) {
			tx_write(t, path, "v");
			found++;
		}
	}
	tbl = t->entries->hh.tbl;
	for (unsigned int b = 0; b < tbl->num_buckets; b++)
		if (tbl->buckets[b].count > most)
			most = tbl->buckets[b].count;
	ck_assert_uint_le(most, 16);
	ck_assert_str_eq(tx_read(t, path), "v");
	ck_assert_int_eq(txn_commit(&set, t, &st, NULL, count_change, &found),
			 0);
	ck_assert_uint_eq(found, 2 * N);	/* and the implicit parents */
	ck_assert_ptr_nonnull(store_lookup(&st, path));
}
END_TEST

START_TEST(clear_discards_every_open_transaction)
{
	tx_write(txn_start(&set), "/a", "1");
	tx_write(txn_start(&set), "/b", "1");
	txn_set_clear(&set);
	ck_assert_uint_eq(set.count, 0);
	ck_assert_ptr_null(set.head);
	ck_assert_ptr_null(store_lookup(&st, "/a"));
}
END_TEST

/* Each allocation of a transaction's write failing in turn: the write
 * or else the commit answers ENOMEM, and then nothing is applied nor
 * reported; never an exit. */
START_TEST(a_write_without_memory_fails_the_commit_and_applies_nothing)
{
	int n;

	live_write("/d", "x");
	for (n = 0;; n++) {
		struct txn *t = txn_start(&set);
		int err, cerr;

		ck_assert_ptr_nonnull(t);
		fail_alloc_after = n;
		err = view_write(&st, t, "/d/new/deep", dom0, "v", 1);
		fail_alloc_after = -1;
		cerr = commit(t);
		if (!err && !cerr)
			break;
		ck_assert(err == ENOMEM || err == 0);
		ck_assert_int_eq(cerr, ENOMEM);
		ck_assert_ptr_null(store_lookup(&st, "/d/new"));
		ck_assert_str_eq(changes, "");
	}
	ck_assert_int_ge(n, 2);
	ck_assert_ptr_nonnull(store_lookup(&st, "/d/new/deep"));
	ck_assert_str_eq(changes, "+/d/new/deep\n");
}
END_TEST

/* The whole tree as "path=value(owner,gen) ..." for comparing states. */
static bool dump_one(struct node *n, const char *path, void *arg)
{
	char *out = arg;
	size_t used = strlen(out);

	snprintf(out + used, 4096 - used, "%s=%.*s(%u) ", path,
		 (int)node_value_len(n), node_value(n),
		 (unsigned int)node_perms(n)->e[0].domid);
	return true;
}

static const char *dump(char *out)
{
	out[0] = '\0';
	store_walk(store_lookup(&st, "/"), dump_one, out);
	return out;
}

/* A commit that runs out of memory at any of its allocations applies
 * nothing and reports nothing (transaction.h), though it would have
 * removed a subtree before writing: every allocation fails in turn. */
START_TEST(a_commit_without_memory_applies_nothing)
{
	char before[4096], after[4096];
	int n;

	live_write("/a/x", "1");
	live_write("/a/y", "2");
	live_write("/keep", "k");
	dump(before);
	for (n = 0;; n++) {
		struct txn *t = txn_start(&set);
		unsigned int told = 0;
		int err;

		ck_assert_ptr_nonnull(t);
		ck_assert_int_eq(view_remove(&st, t, "/a"), 0);
		tx_write(t, "/a/new/deep", "v");
		tx_write(t, "/keep", "k2");
		tx_write(t, "/b/c", "w");
		/* The nodes' blocks, too, need an allocation each
		 * (store/slab.h). */
		slab_forget_free();
		fail_alloc_after = n;
		err = txn_commit(&set, t, &st, NULL, count_change, &told);
		fail_alloc_after = -1;
		if (!err) {
			ck_assert_uint_eq(told, 3);
			break;
		}
		ck_assert_int_eq(err, ENOMEM);
		ck_assert_str_eq(dump(after), before);
		ck_assert_uint_eq(told, 0);
	}
	ck_assert_int_ge(n, 3);
	ck_assert_str_eq(dump(after), "/=(0) /keep=k2(0) /a=(0) /a/new=(0) "
				      "/a/new/deep=v(0) /b=(0) /b/c=w(0) ");
}
END_TEST

static Suite *transaction_suite(void)
{
	Suite *s = suite_create("transaction");
	TCase *tc = tcase_create("overlay");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, start_copies_nothing_and_ids_are_nonzero);
	tcase_add_test(tc, ids_skip_zero_and_live_ids_after_wrapping);
	tcase_add_test(tc, transaction_sees_its_writes_and_nobody_else_does);
	tcase_add_test(tc, discard_leaves_no_trace);
	tcase_add_test(tc, reads_are_repeatable);
	tcase_add_test(tc, read_then_changed_is_eagain);
	tcase_add_test(tc, read_of_missing_node_then_created_is_eagain);
	tcase_add_test(tc, listed_then_child_added_is_eagain);
	tcase_add_test(tc, deleted_under_us_is_eagain);
	tcase_add_test(tc, removed_and_made_again_under_us_is_eagain);
	tcase_add_test(tc, listed_while_missing_then_created_is_eagain);
	tcase_add_test(tc, a_transaction_holds_the_store_from_its_first_read_to_its_end);
	tcase_add_test(tc, a_long_transaction_keeps_its_conflicts_while_others_come_and_go);
	tcase_add_test(tc, write_write_conflict_is_eagain_for_the_second);
	tcase_add_test(tc, disjoint_writes_both_commit);
	tcase_add_test(tc, siblings_created_under_one_parent_both_commit);
	tcase_add_test(tc, unrelated_outside_write_never_fails_a_commit);
	tcase_add_test(tc, listing_shows_created_and_hides_deleted_children);
	tcase_add_test(tc, create_then_delete_in_one_transaction_leaves_nothing);
	tcase_add_test(tc, rm_then_recreate_replaces_the_subtree);
	tcase_add_test(tc, recreated_child_is_listed_where_commit_puts_it);
	tcase_add_test(tc, many_siblings_created_in_one_transaction_keep_their_order);
	tcase_add_test(tc, write_below_then_remove_ancestor_then_rewrite_keeps_the_rewrite);
	tcase_add_test(tc, set_perms_applies_at_commit);
	tcase_add_test(tc, commit_reports_changed_paths_in_first_change_order);
	tcase_add_test(tc, nodes_that_never_existed_outside_are_not_reported);
	tcase_add_test(tc, failed_commit_reports_no_changes);
	tcase_add_test(tc, a_write_without_memory_fails_the_commit_and_applies_nothing);
	tcase_add_test(tc, a_commit_without_memory_applies_nothing);
	tcase_add_test(tc, commit_cost_does_not_touch_unrelated_nodes);
	tcase_add_test(tc, paths_chosen_to_collide_under_a_known_hash_spread_out);
	tcase_add_test(tc, clear_discards_every_open_transaction);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_main(transaction_suite());
}
