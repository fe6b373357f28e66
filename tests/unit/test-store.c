/* store: the tree of nodes. */
#include <errno.h>
#include <stdio.h>

#include "tests/unit/unit.h"

#include "store/path.h"
#include "store/store.h"

#define DEEP 2000

/* A one-entry permission list "<letter><domid>" with refs = 1. */
static struct perms *one_perm(uint32_t domid, uint32_t access)
{
	struct perms *p = perms_alloc(1);

	ck_assert_ptr_nonnull(p);
	p->e[0].domid = domid;
	p->e[0].access = access;
	return p;
}

/* A store whose root has "n0"; *root_perms keeps the caller's reference. */
static void new_store(struct store *s, struct perms **root_perms)
{
	*root_perms = one_perm(0, PERM_NONE);
	store_init(s, *root_perms);
}

static void free_store(struct store *s, struct perms *root_perms)
{
	store_destroy(s);
	perms_unref(root_perms);
}

static struct node *must_create(struct store *s, const char *path,
				struct perms *p)
{
	struct node *n = store_create(s, path, p);

	char got[NODE_PATH_BUF];

	ck_assert_msg(n != NULL, "store_create(%s) failed", path);
	node_path(n, got, sizeof(got));
	ck_assert_str_eq(got, path);
	return n;
}

/* The names of n's children, joined by ',' (",c,a,b"). */
/* store_listing, its length checked against the children's. */
static const char *listing(struct store *s, const struct node *n)
{
	size_t len = 12345;
	const char *l = store_listing(s, n, &len);

	ck_assert_uint_eq(len, node_children_len(n, SIZE_MAX));
	return l;
}

static void list_children(const struct node *n, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (const struct node *c = node_first_child(n); c; c = node_next(c)) {
		int w = snprintf(buf + len, size - len, ",%s", node_name(c));

		ck_assert(w > 0 && (size_t)w < size - len);
		len += (size_t)w;
	}
}

/* Paths recorded by a walk or a removal, in the order seen. */
struct trail {
	char paths[16][32];
	unsigned int n;
	unsigned long total;
	const char *stop_at;	/* walk: return false for this path */
};

static void trail_add(struct trail *t, const char *path)
{
	t->total++;
	if (t->n < 16) {
		snprintf(t->paths[t->n], sizeof(t->paths[0]), "%s", path);
		t->n++;
	}
}

static void trail_remove_cb(struct node *n, const char *path, void *arg)
{
	char own[NODE_PATH_BUF];

	node_path(n, own, sizeof(own));
	ck_assert_str_eq(own, path);	/* told the node's own path */
	trail_add(arg, path);
}

static bool trail_walk_cb(struct node *n, const char *path, void *arg)
{
	struct trail *t = arg;
	char own[NODE_PATH_BUF];

	node_path(n, own, sizeof(own));
	ck_assert_str_eq(own, path);
	trail_add(t, path);
	return !(t->stop_at && strcmp(path, t->stop_at) == 0);
}

static void assert_trail(const struct trail *t, const char *const *want,
			 unsigned int nwant)
{
	ck_assert_uint_eq(t->n, nwant);
	for (unsigned int i = 0; i < nwant; i++)
		ck_assert_str_eq(t->paths[i], want[i]);
}

/* /a/b/c, /a/d and /x, created in that order. */
static void small_tree(struct store *s, struct perms *p)
{
	must_create(s, "/a/b/c", p);
	must_create(s, "/a/d", p);
	must_create(s, "/x", p);
}

START_TEST(domid_use_follows_every_change)
{
	struct store s;
	struct perms *p, *q, *mixed;
	struct node *n;

	new_store(&s, &p);
	q = one_perm(5, PERM_NONE);
	ck_assert_uint_eq(s.use[5].owned, 0);
	ck_assert_uint_eq(s.use[5].bytes, 0);
	/* Two nodes owned by 5: both counted, bytes include the value. */
	n = store_write(&s, "/five/a", q, "12345", 5);
	ck_assert_ptr_nonnull(n);
	ck_assert_uint_eq(s.use[5].owned, 2);
	uint64_t with_value = s.use[5].bytes;
	ck_assert_ptr_nonnull(store_write(&s, "/five/a", q, "1", 1));
	ck_assert_uint_eq(s.use[5].bytes, with_value - 4);
	/* Given away to 0 with an entry for 5: named, no longer owned. */
	mixed = perms_alloc(2);
	mixed->e[0].domid = 0;
	mixed->e[1].domid = 5;
	mixed->e[1].access = PERM_READ;
	store_set_perms(&s, n, mixed);
	ck_assert_uint_eq(s.use[5].owned, 1);
	ck_assert_uint_eq(s.use[5].named, 1);
	ck_assert(store_domid_referenced(&s, 5));
	/* A recursive removal uncounts the whole subtree. */
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "/five"), NULL, NULL), 0);
	ck_assert_uint_eq(s.use[5].owned, 0);
	ck_assert_uint_eq(s.use[5].named, 0);
	ck_assert_uint_eq(s.use[5].bytes, 0);
	ck_assert(!store_domid_referenced(&s, 5));
	perms_unref(mixed);
	perms_unref(q);
	free_store(&s, p);
}
END_TEST

START_TEST(check_recounts_the_domid_use)
{
	struct store s;
	struct perms *p, *q, *mixed;

	new_store(&s, &p);
	q = one_perm(5, PERM_NONE);
	must_create(&s, "/five/a", q);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	s.use[5].owned++;
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 1);
	s.use[5].owned--;
	s.use[5].bytes += 3;
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 1);
	s.use[5].bytes -= 3;
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	/* A domid only named by an entry after the owner's, recounted
	 * too. */
	mixed = perms_alloc(2);
	mixed->e[0].domid = 5;
	mixed->e[1].domid = 40000;
	mixed->e[1].access = PERM_READ;
	must_create(&s, "/five/b", mixed);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	s.use[40000].named++;
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 1);
	s.use[40000].named--;
	/* Its nodes gone, its counts must be back to zero. */
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "/five"), NULL,
				      NULL), 0);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	s.use[5].owned++;
	s.use[40000].named++;
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 2);
	s.use[5].owned--;
	s.use[40000].named--;
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	perms_unref(mixed);
	perms_unref(q);
	free_store(&s, p);
}
END_TEST

START_TEST(init_creates_root)
{
	struct store s;
	struct perms *p;
	struct node *root;

	new_store(&s, &p);
	root = store_lookup(&s, "/");
	ck_assert_ptr_nonnull(root);
	ck_assert_str_eq(node_name(root), "/");
	ck_assert_ptr_null(node_parent(root));
	ck_assert_ptr_null(node_first_child(root));
	ck_assert_uint_eq(node_count_children(root), 0);
	ck_assert_uint_eq(node_value_len(root), 0);
	ck_assert_ptr_eq(node_perms(root), p);
	ck_assert_uint_eq(p->refs, 2);
	ck_assert_uint_eq(store_count(&s), 1);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

START_TEST(lookup_of_missing_path_is_null)
{
	struct store s;
	struct perms *p;

	new_store(&s, &p);
	must_create(&s, "/a/b", p);
	ck_assert_ptr_null(store_lookup(&s, "/a/c"));
	ck_assert_ptr_null(store_lookup(&s, "/a/b/c"));
	ck_assert_ptr_null(store_lookup(&s, "/b"));
	ck_assert_ptr_null(store_lookup(&s, "/a/"));
	free_store(&s, p);
}
END_TEST

START_TEST(create_makes_missing_ancestors_in_order)
{
	struct store s;
	struct perms *p, *q;
	struct node *a, *b, *c;

	new_store(&s, &p);
	q = one_perm(7, PERM_READ);
	c = must_create(&s, "/a/b/c", q);
	a = store_lookup(&s, "/a");
	b = store_lookup(&s, "/a/b");
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(store_count(&s), 4);
	ck_assert_ptr_eq(node_parent(a), store_lookup(&s, "/"));
	ck_assert_ptr_eq(node_parent(b), a);
	ck_assert_ptr_eq(node_parent(c), b);
	ck_assert_ptr_eq(node_first_child(a), b);
	ck_assert_ptr_eq(node_first_child(b), c);
	ck_assert_uint_eq(node_value_len(c), 0);
	/* an empty value: no bytes */
	ck_assert_str_eq(node_name(c), "c");
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	perms_unref(q);
	free_store(&s, p);
}
END_TEST

/* What the observer is told: each path changed, and its birth. */
struct told {
	unsigned int n;
	char path[8][16];
	uint64_t born[8];
};

static void told_changed(const struct node *n, const char *path,
			 size_t len, uint64_t born, void *arg)
{
	struct told *t = arg;

	(void)n;
	ck_assert_uint_lt(t->n, 8);
	snprintf(t->path[t->n], sizeof(t->path[0]), "%.*s", (int)len, path);
	t->born[t->n++] = born;
}

static void told_removed(const struct node *n, const char *path, void *arg)
{
	(void)n;
	(void)path;
	(void)arg;
}

/* A creation tells the generation the node is born with (the durable
 * copy orders siblings by it): ancestors before their child, each later
 * node a later one; a change tells 0 ("as before"). */
START_TEST(observer_is_told_births_of_creations_only)
{
	struct told t = { 0 };
	struct store_observer o = { told_changed, told_removed, &t };
	struct store s;
	struct perms *p, *q;
	struct node *c, *prep;

	new_store(&s, &p);
	s.observer = &o;
	c = store_write(&s, "/a/b/c", p, "v", 1);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(t.n, 3);
	ck_assert_str_eq(t.path[0], "/a");
	ck_assert_str_eq(t.path[2], "/a/b/c");
	ck_assert_uint_gt(t.born[0], 0);
	ck_assert_uint_lt(t.born[0], t.born[1]);
	ck_assert_uint_lt(t.born[1], t.born[2]);
	ck_assert_ptr_eq(store_write(&s, "/a/b/c", p, "w", 1), c);
	ck_assert_uint_eq(t.born[3], 0);
	q = one_perm(3, PERM_READ);
	store_set_perms(&s, c, q);
	ck_assert_uint_eq(t.born[4], 0);
	must_create(&s, "/a/d", p);
	ck_assert_uint_gt(t.born[5], t.born[2]);
	prep = store_prepare("/a/e", p, "x", 1);
	ck_assert_ptr_nonnull(prep);
	store_put(&s, "/a/e", prep);
	ck_assert_str_eq(t.path[6], "/a/e");
	ck_assert_uint_gt(t.born[6], t.born[5]);
	prep = store_prepare("/a/e", p, "y", 1);
	ck_assert_ptr_nonnull(prep);
	store_put(&s, "/a/e", prep);
	ck_assert_uint_eq(t.born[7], 0);
	ck_assert_uint_le(t.born[6], store_now(&s));
	s.observer = NULL;
	perms_unref(q);
	free_store(&s, p);
}
END_TEST

/* A record's links, its name and its permission list's slot share four
 * words (store.h): every slot beside the largest ids, and every id
 * beside the largest slot, read back as set. */
START_TEST(links_name_and_perms_slot_share_their_words_intact)
{
	static const uint32_t slots[] = { 0, 1, 63, 64, 4095, 4096,
					  0x5a5a5a, (1u << NODE_PERMS_BITS) - 1 };
	const uint32_t top = (1u << POOL_ID_BITS) - 1;
	struct node n;

	memset(&n, 0, sizeof(n));
	for (unsigned int i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		n.parent_id = top;
		n.child_id = top - 1;
		n.next_id = top - 2;
		n.name_id = top - 3;
		node_set_perms_slot(&n, slots[i]);
		ck_assert_uint_eq(node_perms_slot(&n), slots[i]);
		ck_assert_uint_eq(n.parent_id, top);
		ck_assert_uint_eq(n.child_id, top - 1);
		ck_assert_uint_eq(n.next_id, top - 2);
		ck_assert_uint_eq(n.name_id, top - 3);
		n.parent_id = n.child_id = n.next_id = n.name_id = 0;
		ck_assert_uint_eq(node_perms_slot(&n), slots[i]);
		ck_assert_uint_eq(n.value, 0);
	}
}
END_TEST

/*
 * Permission lists and names are numbered below a limit (the widths
 * their slots have in a node record, store.h): past it a new list or a
 * new name is ENOMEM, as when memory runs out, and the store is as it
 * was.  The limits are lowered here to what the test can reach.
 */
START_TEST(lists_and_names_past_their_limits_are_enomem)
{
	const uint32_t perms_limit = perms_table.limit;
	const uint32_t names_limit = node_names.ids.limit;
	struct perms *p, *lists[64];
	struct store s;
	char path[64];
	unsigned int n = 0;

	new_store(&s, &p);
	small_tree(&s, p);
	perms_table.limit = perms_table.used + 4;
	while (n < 64 && (lists[n] = perms_alloc(1)))
		n++;
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_ge(n, 3);
	ck_assert_uint_lt(n, 64);
	while (n)
		perms_unref(lists[--n]);
	perms_table.limit = perms_limit;

	node_names.ids.limit = node_names.ids.used + 4;
	for (n = 0; n < 64; n++) {
		snprintf(path, sizeof(path), "/a/new-name-%u", n);
		if (!store_create(&s, path, p))
			break;
	}
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_ge(n, 3);
	ck_assert_uint_lt(n, 64);
	ck_assert_ptr_null(store_lookup(&s, path));
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	/* A name already held is no new entry. */
	ck_assert_ptr_nonnull(store_create(&s, "/d/b", p));
	node_names.ids.limit = names_limit;
	ck_assert_ptr_nonnull(store_create(&s, path, p));
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

START_TEST(create_shares_perms_with_every_new_node)
{
	struct store s;
	struct perms *p, *q;

	new_store(&s, &p);
	q = one_perm(7, PERM_READ);
	must_create(&s, "/a/b/c", q);
	ck_assert_ptr_eq(node_perms(store_lookup(&s, "/a")), q);
	ck_assert_ptr_eq(node_perms(store_lookup(&s, "/a/b")), q);
	ck_assert_ptr_eq(node_perms(store_lookup(&s, "/a/b/c")), q);
	ck_assert_uint_eq(q->refs, 4);	/* ours and three nodes' */
	free_store(&s, p);
	ck_assert_uint_eq(q->refs, 1);	/* destroy dropped theirs */
	perms_unref(q);
}
END_TEST

START_TEST(create_returns_existing_node_untouched)
{
	struct store s;
	struct perms *p, *q;
	struct node *n, *again;
	struct store_hold h = { 0 };
	uint64_t sgen;

	new_store(&s, &p);
	n = store_write(&s, "/a", p, "v", 1);
	ck_assert_ptr_nonnull(n);
	store_hold(&s, &h);
	sgen = store_now(&s);
	q = one_perm(7, PERM_READ);
	again = store_create(&s, "/a", q);
	ck_assert_ptr_eq(again, n);
	ck_assert_ptr_eq(node_perms(n), p);
	ck_assert_uint_eq(q->refs, 1);
	ck_assert_uint_eq(node_value_len(n), 1);
	ck_assert_mem_eq(node_value(n), "v", 1);
	ck_assert(!node_changed_since(&s, n, sgen, STAMP_NODE));
	ck_assert_uint_eq(s.gen, sgen);
	ck_assert_uint_eq(store_count(&s), 2);
	store_release(&h);
	perms_unref(q);
	free_store(&s, p);
}
END_TEST

START_TEST(special_nodes_are_parentless)
{
	struct store s;
	struct perms *p;
	struct node *n, *root;

	new_store(&s, &p);
	n = must_create(&s, "@introduceDomain", p);
	root = store_lookup(&s, "/");
	ck_assert_ptr_null(node_parent(n));
	ck_assert_uint_eq(node_count_children(root), 0);
	ck_assert_ptr_null(node_first_child(root));
	ck_assert_str_eq(node_name(n), "@introduceDomain");
	ck_assert_ptr_eq(store_lookup(&s, "@introduceDomain"), n);
	/* A '/' inside a special path makes no ancestors. */
	n = must_create(&s, "@a/b", p);
	ck_assert_ptr_null(node_parent(n));
	ck_assert_ptr_null(store_lookup(&s, "@a"));
	ck_assert_uint_eq(store_count(&s), 3);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

START_TEST(write_stores_value_bytes_with_nuls)
{
	static const char value[] = { 'a', '\0', 'b', '\0', '\0', 'c' };
	struct store s;
	struct perms *p;
	struct node *n;

	new_store(&s, &p);
	n = store_write(&s, "/v", p, value, sizeof(value));
	ck_assert_ptr_nonnull(n);
	ck_assert_uint_eq(node_value_len(n), sizeof(value));
	ck_assert_mem_eq(node_value(n), value, sizeof(value));
	ck_assert_ptr_ne(node_value(n), value);	/* a copy */
	free_store(&s, p);
}
END_TEST

START_TEST(write_replaces_value)
{
	struct store s;
	struct perms *p;
	struct node *n;

	new_store(&s, &p);
	n = store_write(&s, "/v", p, UNIT_BYTES("a longer value"));
	ck_assert_ptr_nonnull(n);
	ck_assert_ptr_eq(store_write(&s, "/v", p, UNIT_BYTES("xy")), n);
	ck_assert_uint_eq(node_value_len(n), 2);
	ck_assert_mem_eq(node_value(n), "xy", 2);
	ck_assert_ptr_eq(store_write(&s, "/v", p, NULL, 0), n);
	ck_assert_uint_eq(node_value_len(n), 0);
	/* an empty value: no bytes */
	ck_assert_uint_eq(store_count(&s), 2);
	free_store(&s, p);
}
END_TEST

START_TEST(write_creates_missing_ancestors_with_perms)
{
	struct store s;
	struct perms *p, *q;
	struct node *n;

	new_store(&s, &p);
	q = one_perm(3, PERM_WRITE);
	n = store_write(&s, "/a/b", q, UNIT_BYTES("v"));
	ck_assert_ptr_nonnull(n);
	ck_assert_ptr_eq(node_perms(n), q);
	ck_assert_ptr_eq(node_perms(store_lookup(&s, "/a")), q);
	ck_assert_uint_eq(node_value_len(store_lookup(&s, "/a")), 0);
	perms_unref(q);
	free_store(&s, p);
}
END_TEST

START_TEST(write_of_existing_node_keeps_its_perms)
{
	struct store s;
	struct perms *p, *q;
	struct node *n;

	new_store(&s, &p);
	n = must_create(&s, "/a", p);
	q = one_perm(3, PERM_WRITE);
	ck_assert_ptr_eq(store_write(&s, "/a", q, UNIT_BYTES("v")), n);
	ck_assert_ptr_eq(node_perms(n), p);
	ck_assert_uint_eq(q->refs, 1);
	perms_unref(q);
	free_store(&s, p);
}
END_TEST

START_TEST(a_write_is_a_change_while_held)
{
	struct store s;
	struct perms *p;
	struct store_hold h = { 0 };
	struct node *n;
	uint64_t before;

	new_store(&s, &p);
	n = must_create(&s, "/a", p);
	store_hold(&s, &h);
	before = store_now(&s);
	ck_assert(!node_changed_since(&s, n, before, STAMP_NODE));
	ck_assert_ptr_nonnull(store_write(&s, "/a", p, UNIT_BYTES("1")));
	ck_assert(node_changed_since(&s, n, before, STAMP_NODE));
	ck_assert(!node_changed_since(&s, n, before, STAMP_LIST));
	before = store_now(&s);
	ck_assert(!node_changed_since(&s, n, before, STAMP_NODE));
	/* Even the same value again is a change. */
	ck_assert_ptr_nonnull(store_write(&s, "/a", p, UNIT_BYTES("1")));
	ck_assert(node_changed_since(&s, n, before, STAMP_NODE));
	store_release(&h);
	free_store(&s, p);
}
END_TEST

START_TEST(changes_are_stamped_only_while_held)
{
	struct store s;
	struct perms *p;
	struct store_hold h1 = { 0 }, h2 = { 0 };
	struct node *n;

	new_store(&s, &p);
	n = must_create(&s, "/a", p);
	ck_assert_ptr_nonnull(store_write(&s, "/a", p, UNIT_BYTES("1")));
	ck_assert_uint_eq(s.stamps.count, 0);	/* nobody asks */
	store_hold(&s, &h1);
	store_hold(&s, &h2);
	ck_assert_ptr_nonnull(store_write(&s, "/a", p, UNIT_BYTES("2")));
	ck_assert_uint_eq(s.stamps.count, 1);
	store_release(&h1);
	ck_assert(node_changed_since(&s, n, h2.since, STAMP_NODE));
	/* With the last hold, the stamps go. */
	store_release(&h2);
	ck_assert_uint_eq(s.stamps.count, 0);
	ck_assert_ptr_null(s.stamps.slots);
	store_release(&h2);	/* not held: nothing */
	ck_assert_ptr_null(s.oldest);
	free_store(&s, p);
}
END_TEST

START_TEST(stamps_older_than_every_hold_go_when_the_table_grows)
{
	struct store s;
	struct perms *p;
	struct store_hold h1 = { 0 }, h2 = { 0 };
	char path[32];
	struct node *early, *late = NULL;
	uint64_t between;

	new_store(&s, &p);
	store_hold(&s, &h1);
	early = must_create(&s, "/early", p);
	for (int i = 0; i < 40; i++) {
		snprintf(path, sizeof(path), "/e%d", i);
		must_create(&s, path, p);
	}
	store_hold(&s, &h2);
	between = store_now(&s);
	store_release(&h1);	/* h2 is the oldest: the stamps before it
				 * are no news to anyone now */
	for (int i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "/l%d", i);
		late = must_create(&s, path, p);
	}
	/* "/" and the 41 early nodes were dropped as the table grew. */
	ck_assert_uint_le(s.stamps.count, 201);
	ck_assert_uint_eq(stamps_get(&s.stamps, node_id(early)).gen, 0);
	ck_assert(!node_changed_since(&s, early, between, STAMP_NODE));
	ck_assert(node_changed_since(&s, late, between, STAMP_NODE));
	ck_assert(node_changed_since(&s, store_lookup(&s, "/"),
					  between, STAMP_LIST));
	store_release(&h2);
	free_store(&s, p);
}
END_TEST

START_TEST(set_perms_replaces_list_and_is_a_change)
{
	struct store s;
	struct perms *p, *q;
	struct store_hold h = { 0 };
	struct node *n;
	uint64_t before;

	new_store(&s, &p);
	n = must_create(&s, "/a", p);
	store_hold(&s, &h);
	before = store_now(&s);
	q = one_perm(4, PERM_READ);
	store_set_perms(&s, n, q);
	ck_assert_ptr_eq(node_perms(n), q);
	ck_assert_uint_eq(q->refs, 2);
	ck_assert_uint_eq(p->refs, 2);	/* ours and the root's */
	ck_assert(node_changed_since(&s, n, before, STAMP_NODE));
	perms_unref(q);
	free_store(&s, p);	/* which ends the hold */
	ck_assert_ptr_null(h.s);
}
END_TEST

START_TEST(adding_a_child_changes_the_parents_list_only)
{
	struct store s;
	struct perms *p;
	struct store_hold h = { 0 };
	struct node *a;
	uint64_t before;

	new_store(&s, &p);
	a = must_create(&s, "/a", p);
	store_hold(&s, &h);
	before = store_now(&s);
	must_create(&s, "/a/b", p);
	ck_assert(node_changed_since(&s, a, before, STAMP_LIST));
	/* Its value did not change. */
	ck_assert(!node_changed_since(&s, a, before, STAMP_NODE));
	/* A grandchild changes /a/b's list, not /a's. */
	before = store_now(&s);
	must_create(&s, "/a/b/c", p);
	ck_assert(!node_changed_since(&s, a, before, STAMP_LIST));
	ck_assert(node_changed_since(&s, store_lookup(&s, "/a/b"),
					  before, STAMP_LIST));
	store_release(&h);
	free_store(&s, p);
}
END_TEST

START_TEST(removing_a_child_changes_the_parents_list)
{
	struct store s;
	struct perms *p;
	struct store_hold h = { 0 };
	struct node *a, *b;
	uint64_t before;

	new_store(&s, &p);
	b = must_create(&s, "/a/b", p);
	a = store_lookup(&s, "/a");
	store_hold(&s, &h);
	before = store_now(&s);
	ck_assert_int_eq(store_remove(&s, b, NULL, NULL), 0);
	ck_assert(node_changed_since(&s, a, before, STAMP_LIST));
	store_release(&h);
	free_store(&s, p);
}
END_TEST

START_TEST(children_are_kept_in_creation_order)
{
	struct store s;
	struct perms *p;
	struct node *par;
	char list[128];

	new_store(&s, &p);
	par = must_create(&s, "/p", p);
	must_create(&s, "/p/ccc", p);
	must_create(&s, "/p/a", p);
	must_create(&s, "/p/bb", p);
	must_create(&s, "/p/a", p);	/* exists: no second entry */
	list_children(par, list, sizeof(list));
	ck_assert_str_eq(list, ",ccc,a,bb");
	ck_assert_uint_eq(node_count_children(par), 3);
	ck_assert_uint_eq(node_children_len(par, SIZE_MAX), 4 + 2 + 3);
	ck_assert_str_eq(node_name(node_last_child(par)), "bb");
	/* The parent names the last child, whose next is the first: a
	 * circle, which node_next ends at the last. */
	ck_assert_uint_eq(par->child_id, node_id(node_last_child(par)));
	ck_assert_uint_eq(node_last_child(par)->next_id,
			  node_id(node_first_child(par)));
	ck_assert_str_eq(node_name(node_first_child(par)), "ccc");
	ck_assert_ptr_null(node_next(node_last_child(par)));
	free_store(&s, p);
}
END_TEST

/* The cached listing: built once, the same bytes as the children, and
 * rebuilt after any child comes or goes. */
START_TEST(listing_is_cached_until_the_children_change)
{
	struct store s;
	struct perms *p;
	struct node *par;
	const char *l;

	new_store(&s, &p);
	par = must_create(&s, "/p", p);
	ck_assert_ptr_null(listing(&s, par));
	must_create(&s, "/p/a", p);
	must_create(&s, "/p/bb", p);
	l = listing(&s, par);
	ck_assert_ptr_nonnull(l);
	ck_assert_mem_eq(l, "a\0bb\0", 5);
	ck_assert_ptr_eq(listing(&s, par), l);
	must_create(&s, "/p/ccc", p);
	ck_assert_uint_eq(node_children_len(par, SIZE_MAX), 9);
	ck_assert_mem_eq(listing(&s, par), "a\0bb\0ccc\0", 9);
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "/p/a"), NULL,
				      NULL), 0);
	ck_assert_mem_eq(listing(&s, par), "bb\0ccc\0", 7);
	/* A value change is not a children change: the cache stays. */
	l = listing(&s, par);
	ck_assert_ptr_nonnull(store_write(&s, "/p/bb", p, "v", 1));
	ck_assert_ptr_eq(listing(&s, par), l);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	/* A cache that went stale is something check reports. */
	((char *)l)[0] = 'x';
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 1);
	((char *)l)[0] = 'b';
	/* Listings of other directories do not push this one out, unless
	 * they share its slot. */
	for (int i = 0; i < 10; i++) {
		char dir[32];
		struct node *d;

		snprintf(dir, sizeof(dir), "/d%d/c", i);
		must_create(&s, dir, p);
		d = store_lookup(&s, dir);
		d = node_parent(d);
		ck_assert_ptr_nonnull(listing(&s, d));
		if (node_id(d) % STORE_LISTINGS != node_id(par) % STORE_LISTINGS)
			ck_assert_ptr_eq(listing(&s, par), l);
	}
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

START_TEST(children_counts_follow_removal)
{
	struct store s;
	struct perms *p;
	struct node *par;
	char list[128];

	new_store(&s, &p);
	par = must_create(&s, "/p", p);
	must_create(&s, "/p/ccc", p);
	must_create(&s, "/p/a/deep/er", p);
	must_create(&s, "/p/bb", p);
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "/p/a"), NULL,
				      NULL), 0);
	list_children(par, list, sizeof(list));
	ck_assert_str_eq(list, ",ccc,bb");
	ck_assert_uint_eq(node_count_children(par), 2);
	ck_assert_uint_eq(node_children_len(par, SIZE_MAX), 4 + 3);
	ck_assert_uint_eq(node_first_child(par)->next_id,
			  node_id(node_last_child(par)));
	ck_assert_uint_eq(node_last_child(par)->next_id,
			  node_id(node_first_child(par)));
	/* Removing the last child, then the only one. */
	must_create(&s, "/p/z", p);
	ck_assert_int_eq(store_remove(&s, node_last_child(par), NULL, NULL),
			 0);
	ck_assert_str_eq(node_name(node_last_child(par)), "bb");
	ck_assert_uint_eq(node_last_child(par)->next_id,
			  node_id(node_first_child(par)));
	ck_assert_int_eq(store_remove(&s, node_first_child(par), NULL, NULL),
			 0);
	ck_assert_ptr_eq(node_first_child(par), node_last_child(par));
	ck_assert_uint_eq(node_last_child(par)->next_id, par->child_id);
	ck_assert_int_eq(store_remove(&s, node_last_child(par), NULL, NULL),
			 0);
	ck_assert_uint_eq(par->child_id, 0);
	ck_assert_ptr_null(node_last_child(par));
	ck_assert_uint_eq(node_count_children(par), 0);
	ck_assert_uint_eq(node_children_len(par, SIZE_MAX), 0);
	/* A child added afterwards is the only one. */
	must_create(&s, "/p/new", p);
	list_children(par, list, sizeof(list));
	ck_assert_str_eq(list, ",new");
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

START_TEST(root_children_len_counts_names_only)
{
	struct store s;
	struct perms *p;

	new_store(&s, &p);
	must_create(&s, "/tool", p);
	must_create(&s, "/local/domain", p);
	ck_assert_uint_eq(node_children_len(store_lookup(&s, "/"), SIZE_MAX), 5 + 6);
	ck_assert_str_eq(node_name(store_lookup(&s, "/local")), "local");
	free_store(&s, p);
}
END_TEST

START_TEST(children_len_counts_no_further_than_past_its_max)
{
	struct store s;
	struct perms *p;
	struct node *par;

	new_store(&s, &p);
	par = must_create(&s, "/p", p);
	for (int i = 0; i < 100; i++) {
		char path[32];

		snprintf(path, sizeof(path), "/p/%03d", i);	/* 4 bytes each */
		must_create(&s, path, p);
	}
	ck_assert_uint_eq(node_children_len(par, SIZE_MAX), 400);
	ck_assert_uint_eq(node_children_len(par, 400), 400);
	/* Past 10 after three names: the walk stops there. */
	ck_assert_uint_eq(node_children_len(par, 10), 12);
	ck_assert_uint_eq(node_children_len(par, 0), 4);
	free_store(&s, p);
}
END_TEST

START_TEST(remove_is_recursive)
{
	struct store s;
	struct perms *p;
	struct node *root;

	new_store(&s, &p);
	small_tree(&s, p);
	ck_assert_uint_eq(store_count(&s), 6);
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "/a"), NULL, NULL),
			 0);
	ck_assert_ptr_null(store_lookup(&s, "/a"));
	ck_assert_ptr_null(store_lookup(&s, "/a/b"));
	ck_assert_ptr_null(store_lookup(&s, "/a/b/c"));
	ck_assert_ptr_null(store_lookup(&s, "/a/d"));
	ck_assert_ptr_nonnull(store_lookup(&s, "/x"));
	ck_assert_uint_eq(store_count(&s), 2);
	root = store_lookup(&s, "/");
	ck_assert_uint_eq(node_count_children(root), 1);
	ck_assert_uint_eq(node_children_len(root, SIZE_MAX), 2);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	ck_assert_uint_eq(p->refs, 3);	/* ours, "/" and "/x" */
	free_store(&s, p);
}
END_TEST

START_TEST(rm_of_root_is_refused)
{
	struct store s;
	struct perms *p;
	struct trail t = { 0 };
	struct node *root;

	new_store(&s, &p);
	small_tree(&s, p);
	root = store_lookup(&s, "/");
	ck_assert_int_eq(store_remove(&s, root, trail_remove_cb, &t), -EINVAL);
	ck_assert_uint_eq(t.total, 0);
	ck_assert_ptr_eq(store_lookup(&s, "/"), root);
	ck_assert_ptr_nonnull(store_lookup(&s, "/a/b/c"));
	ck_assert_uint_eq(store_count(&s), 6);
	ck_assert_uint_eq(node_count_children(root), 2);
	free_store(&s, p);
}
END_TEST

START_TEST(remove_of_special_node_works)
{
	struct store s;
	struct perms *p;

	new_store(&s, &p);
	must_create(&s, "@releaseDomain", p);
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "@releaseDomain"),
				      NULL, NULL), 0);
	ck_assert_ptr_null(store_lookup(&s, "@releaseDomain"));
	ck_assert_uint_eq(store_count(&s), 1);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	/* The middle one of three, then the first, then the last. */
	must_create(&s, "@1", p);
	must_create(&s, "@2", p);
	must_create(&s, "@3", p);
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "@2"), NULL, NULL),
			 0);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "@3"), NULL, NULL),
			 0);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "@1"), NULL, NULL),
			 0);
	ck_assert_uint_eq(s.specials_id, 0);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

START_TEST(remove_calls_back_children_before_parent)
{
	struct store s;
	struct perms *p;
	struct trail t = { 0 };

	new_store(&s, &p);
	small_tree(&s, p);
	must_create(&s, "/a/b/e", p);
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "/a"),
				      trail_remove_cb, &t), 0);
	ck_assert_uint_eq(t.n, 5);
	/* Every node comes after all of its descendants. */
	for (unsigned int i = 0; i < t.n; i++) {
		size_t len = strlen(t.paths[i]);

		for (unsigned int j = i + 1; j < t.n; j++)
			ck_assert_msg(!(strncmp(t.paths[j], t.paths[i], len) == 0 &&
					t.paths[j][len] == '/'),
				      "%s came before its child %s",
				      t.paths[i], t.paths[j]);
	}
	ck_assert_str_eq(t.paths[t.n - 1], "/a");
	ck_assert_uint_eq(store_count(&s), 2);
	free_store(&s, p);
}
END_TEST

/* "/n/n/n..." of DEEP components. */
static char *deep_path(void)
{
	char *path = malloc(2 * DEEP + 1);

	ck_assert_ptr_nonnull(path);
	for (int i = 0; i < DEEP; i++) {
		path[2 * i] = '/';
		path[2 * i + 1] = 'n';
	}
	path[2 * DEEP] = '\0';
	return path;
}

START_TEST(remove_of_deep_tree_works)
{
	struct store s;
	struct perms *p;
	struct trail t = { 0 };
	char *path = deep_path();
	struct node *leaf;

	new_store(&s, &p);
	leaf = must_create(&s, path, p);
	ck_assert_uint_eq(store_count(&s), DEEP + 1);
	for (int i = 0; i < DEEP - 1; i++)
		leaf = node_parent(leaf);
	ck_assert_str_eq(node_name(leaf), "n");
	ck_assert_ptr_eq(node_parent(leaf), store_lookup(&s, "/"));
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	ck_assert_int_eq(store_remove(&s, leaf, trail_remove_cb, &t), 0);
	ck_assert_uint_eq(t.total, DEEP);
	ck_assert_uint_eq(store_count(&s), 1);
	ck_assert_ptr_null(store_lookup(&s, path));
	ck_assert_ptr_null(store_lookup(&s, "/n"));
	ck_assert_ptr_null(node_first_child(store_lookup(&s, "/")));
	free(path);
	free_store(&s, p);
}
END_TEST

START_TEST(walk_of_deep_tree_reaches_every_node)
{
	struct store s;
	struct perms *p;
	struct trail t = { 0 };
	char *path = deep_path();

	new_store(&s, &p);
	must_create(&s, path, p);
	store_walk(store_lookup(&s, "/"), trail_walk_cb, &t);
	ck_assert_uint_eq(t.total, DEEP + 1);
	free(path);
	free_store(&s, p);
}
END_TEST

START_TEST(walk_is_pre_order)
{
	static const char *const want[] = {
		"/", "/a", "/a/b", "/a/b/c", "/a/d", "/x",
	};
	struct store s;
	struct perms *p;
	struct trail t = { 0 };

	new_store(&s, &p);
	small_tree(&s, p);
	store_walk(store_lookup(&s, "/"), trail_walk_cb, &t);
	assert_trail(&t, want, 6);
	free_store(&s, p);
}
END_TEST

START_TEST(walk_of_subtree_stays_inside_it)
{
	static const char *const want[] = { "/a", "/a/b", "/a/b/c", "/a/d" };
	struct store s;
	struct perms *p;
	struct trail t = { 0 };

	new_store(&s, &p);
	small_tree(&s, p);
	store_walk(store_lookup(&s, "/a"), trail_walk_cb, &t);
	assert_trail(&t, want, 4);
	free_store(&s, p);
}
END_TEST

START_TEST(walk_skips_children_when_fn_returns_false)
{
	static const char *const want[] = { "/", "/a", "/x" };
	static const char *const want_top[] = { "/a" };
	struct store s;
	struct perms *p;
	struct trail t = { .stop_at = "/a" };

	new_store(&s, &p);
	small_tree(&s, p);
	store_walk(store_lookup(&s, "/"), trail_walk_cb, &t);
	assert_trail(&t, want, 3);
	/* Refusing the start node ends the walk. */
	memset(&t, 0, sizeof(t));
	t.stop_at = "/a";
	store_walk(store_lookup(&s, "/a"), trail_walk_cb, &t);
	assert_trail(&t, want_top, 1);
	free_store(&s, p);
}
END_TEST

/* Collects what store_check reports. */
struct reports {
	unsigned int n;
	char first_path[64], last_path[64];
};

static void report_cb(const char *what, const char *path, void *arg)
{
	struct reports *r = arg;

	ck_assert_ptr_nonnull(what);
	if (!r->n++)
		snprintf(r->first_path, sizeof(r->first_path), "%s", path);
	snprintf(r->last_path, sizeof(r->last_path), "%s", path);
}

/* The index grows by hashing every path again, built from the records
 * in pool order (store/index.c): children, siblings, the root's
 * children, special nodes and records used again after a removal all
 * end up where a lookup of their path looks. */
START_TEST(every_path_is_found_after_the_index_grows)
{
	enum { N = 3000 };
	struct store s;
	struct perms *p;
	char path[64];

	new_store(&s, &p);
	for (int i = 0; i < N; i++) {
		switch (i % 5) {
		case 0:
			snprintf(path, sizeof(path), "/r%d", i);
			break;
		case 1:
			snprintf(path, sizeof(path), "/r%d/c", i - 1);
			break;
		case 2:
			snprintf(path, sizeof(path), "/r%d/c/deep/er", i - 2);
			break;
		case 3:
			snprintf(path, sizeof(path), "@s%d", i);
			break;
		default:
			snprintf(path, sizeof(path), "/r%d/sib", i - 4);
			break;
		}
		must_create(&s, path, p);
		if (i % 50 == 49) {	/* records to use again, out of order */
			snprintf(path, sizeof(path), "/r%d", i - 49);
			ck_assert_int_eq(store_remove(&s, store_lookup(&s, path),
						      NULL, NULL), 0);
		}
	}
	for (int i = 0; i < N; i += 5) {
		bool gone = i % 50 == 0;

		snprintf(path, sizeof(path), "/r%d/c/deep/er", i);
		ck_assert_msg((store_lookup(&s, path) == NULL) == gone, "%s",
			      path);
		snprintf(path, sizeof(path), "/r%d/sib", i);
		ck_assert_msg((store_lookup(&s, path) == NULL) == gone, "%s",
			      path);
		snprintf(path, sizeof(path), "@s%d", i + 3);
		ck_assert_ptr_nonnull(store_lookup(&s, path));
	}
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

START_TEST(check_of_healthy_tree_finds_nothing)
{
	struct store s;
	struct perms *p;
	struct reports r = { 0 };

	new_store(&s, &p);
	small_tree(&s, p);
	must_create(&s, "@introduceDomain", p);
	ck_assert_ptr_nonnull(store_write(&s, "/a/d", p, UNIT_BYTES("v")));
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "/a/b"), NULL,
				      NULL), 0);
	must_create(&s, "/a/b2", p);
	ck_assert_uint_eq(store_check(&s, report_cb, &r), 0);
	ck_assert_uint_eq(r.n, 0);
	free_store(&s, p);
}
END_TEST

START_TEST(check_reports_broken_back_link)
{
	struct store s;
	struct perms *p;
	struct reports r = { 0 };
	struct node *a, *first;
	uint32_t last_id;

	new_store(&s, &p);
	small_tree(&s, p);
	a = store_lookup(&s, "/a");
	first = node_first_child(a);
	ck_assert_ptr_nonnull(node_next(first));
	/* The first child names itself: the circle from it never comes
	 * back to the last.  The check ends all the same, and leaves the
	 * children it could not list unreached. */
	last_id = first->next_id;
	first->next_id = node_id(first);
	ck_assert_uint_ge(store_check(&s, report_cb, &r), 2);
	ck_assert_uint_ge(r.n, 2);
	ck_assert_str_eq(r.first_path, "/a");
	ck_assert_str_eq(r.last_path, "/");
	/* Without a report function the count is the same. */
	ck_assert_uint_eq(store_check(&s, NULL, NULL), r.n);
	first->next_id = last_id;
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

START_TEST(check_reports_a_cached_listing_of_the_wrong_size)
{
	struct store s;
	struct perms *p;
	struct node *a;

	new_store(&s, &p);
	small_tree(&s, p);
	a = store_lookup(&s, "/a");
	ck_assert_ptr_nonnull(listing(&s, a));
	s.listings[node_id(a) % STORE_LISTINGS].len += 3;
	ck_assert_uint_ge(store_check(&s, NULL, NULL), 1);
	s.listings[node_id(a) % STORE_LISTINGS].len -= 3;
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

START_TEST(check_reports_a_node_without_a_permission_list)
{
	struct store s;
	struct perms *p, *q;
	struct node *a;
	uint32_t slot;

	new_store(&s, &p);
	small_tree(&s, p);
	a = store_lookup(&s, "/a");
	slot = node_perms_slot(a);
	node_set_perms_slot(a, 0);
	ck_assert_uint_ge(store_check(&s, NULL, NULL), 1);
	/* A slot given back: it holds no list. */
	q = perms_alloc(1);
	ck_assert_ptr_nonnull(q);
	node_set_perms_slot(a, q->slot);
	perms_unref(q);
	ck_assert_uint_ge(store_check(&s, NULL, NULL), 1);
	node_set_perms_slot(a, slot);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

/*
 * A node names its permission list by a slot of perms_table: every node
 * finds its own list as the table grows, and a list's slot is given back
 * with it, so lists made and dropped do not grow the table.
 */
START_TEST(permission_lists_keep_their_slots_and_give_them_back)
{
	struct store s;
	struct perms *p, *lists[300];
	char path[32];
	uint32_t used;

	new_store(&s, &p);
	for (unsigned int i = 0; i < 300; i++) {
		lists[i] = perms_alloc(1);
		ck_assert_ptr_nonnull(lists[i]);
		lists[i]->e[0].domid = i;
		snprintf(path, sizeof(path), "/n%u", i);
		must_create(&s, path, lists[i]);
	}
	for (unsigned int i = 0; i < 300; i++) {
		snprintf(path, sizeof(path), "/n%u", i);
		ck_assert_ptr_eq(node_perms(store_lookup(&s, path)), lists[i]);
		perms_unref(lists[i]);	/* the node's reference stays */
	}
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	perms_unref(perms_alloc(2));
	used = perms_table.used;
	for (int round = 0; round < 1000; round++)
		perms_unref(perms_alloc(2));
	ck_assert_uint_eq(perms_table.used, used);
	for (unsigned int i = 0; i < 300; i++) {
		snprintf(path, sizeof(path), "/n%u", i);
		ck_assert_int_eq(store_remove(&s, store_lookup(&s, path), NULL,
					       NULL), 0);
	}
	/* The nodes' lists went with them: their slots serve new ones. */
	for (unsigned int i = 0; i < 300; i++)
		lists[i] = perms_alloc(1);
	ck_assert_uint_eq(perms_table.used, used);
	for (unsigned int i = 0; i < 300; i++)
		perms_unref(lists[i]);
	free_store(&s, p);
}
END_TEST

/*
 * A name is kept once (store/names.h): nodes of one name share its entry,
 * which goes with the last of them; a name found again after others went
 * is still found (the table's removals keep every run reachable).
 */
START_TEST(nodes_share_their_names)
{
	struct store s;
	struct perms *p;
	uint32_t id, names;
	char path[48], name[16];

	new_store(&s, &p);
	names = node_names.count;
	must_create(&s, "/a/state", p);
	must_create(&s, "/b/state", p);
	id = node_name_id(store_lookup(&s, "/a/state"));
	ck_assert_uint_eq(node_name_id(store_lookup(&s, "/b/state")), id);
	ck_assert_uint_eq(name_entry(id)->refs, 2);
	ck_assert_uint_eq(node_names.count, names + 3);	/* a, b, state */
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "/a"), NULL, NULL),
			 0);
	ck_assert_uint_eq(name_entry(id)->refs, 1);
	ck_assert_str_eq(node_name(store_lookup(&s, "/b/state")), "state");
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "/b"), NULL, NULL),
			 0);
	ck_assert(!name_valid(id));
	ck_assert_uint_eq(node_names.count, names);
	/* Many names, most of them gone again, in an order that empties
	 * slots in the middle of runs: those left are found. */
	for (int i = 0; i < 3000; i++) {
		snprintf(path, sizeof(path), "/m/k%d", i);
		must_create(&s, path, p);
	}
	for (int i = 0; i < 3000; i++) {
		if (i % 7 == 3)
			continue;
		snprintf(path, sizeof(path), "/m/k%d", i);
		ck_assert_int_eq(store_remove(&s, store_lookup(&s, path), NULL,
					      NULL), 0);
	}
	for (int i = 3; i < 3000; i += 7) {
		snprintf(name, sizeof(name), "k%d", i);
		snprintf(path, sizeof(path), "/m/k%d", i);
		id = name_intern(name, strlen(name));
		ck_assert_uint_eq(id, node_name_id(store_lookup(&s, path)));
		ck_assert_uint_eq(name_entry(id)->refs, 2);
		name_unref(id);
	}
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

START_TEST(check_reports_unreachable_node)
{
	struct store s;
	struct perms *p;
	struct reports r = { 0 };
	struct node *a, *d;

	new_store(&s, &p);
	small_tree(&s, p);
	/* Cut /a/d out of /a's list, leaving it in the index. */
	a = store_lookup(&s, "/a");
	d = store_lookup(&s, "/a/d");
	ck_assert_ptr_eq(node_last_child(a), d);
	for (struct node *c = node_first_child(a); c; c = node_next(c))
		if (c->next_id == node_id(d)) {
			c->next_id = d->next_id;
			a->child_id = node_id(c);
			break;
		}
	ck_assert_uint_ge(store_check(&s, report_cb, &r), 1);
	ck_assert_uint_ge(r.n, 1);
	free_store(&s, p);
}
END_TEST

START_TEST(check_reports_node_missing_from_tree)
{
	struct store s;
	struct perms *p;
	struct reports r = { 0 };
	struct node *a;

	new_store(&s, &p);
	must_create(&s, "/a/b", p);
	/* /a forgets its only child consistently: counts agree, but /a/b is
	 * still indexed and names /a as its parent. */
	a = store_lookup(&s, "/a");
	a->child_id = 0;
	ck_assert_uint_eq(store_check(&s, report_cb, &r), 1);
	ck_assert_uint_eq(r.n, 1);
	free_store(&s, p);
}
END_TEST

/* Restore path, born at born, with no value: true if it was. */
static bool restored(struct store *s, struct perms *p, const char *path,
		     uint64_t born, struct node **hint)
{
	return store_restore(s, path, p, "", 0, born, hint) != NULL;
}

/* Restore path, which must fail with err. */
static void restore_fails(struct store *s, struct perms *p, const char *path,
			  uint64_t born, struct node **hint, int err)
{
	errno = 0;
	ck_assert_msg(!restored(s, p, path, born, hint), "%s restored", path);
	ck_assert_int_eq(errno, err);
}

/* Restores in any order: a node whose parent is not there yet is told
 * ENOENT, children restored out of order are put in order of birth, a
 * second node of a sibling's generation is refused. */
START_TEST(restore_out_of_order_is_put_in_order_of_birth)
{
	struct store s;
	struct perms *p;
	struct node *hint = NULL;
	char list[64];

	new_store(&s, &p);
	restore_fails(&s, p, "/d/c", 20, &hint, ENOENT);
	ck_assert(restored(&s, p, "/d", 10, &hint));
	ck_assert(restored(&s, p, "/d/c", 40, &hint));
	ck_assert(restored(&s, p, "/d/a", 20, &hint));
	ck_assert(restored(&s, p, "/d/b", 30, &hint));
	ck_assert(restored(&s, p, "/d/a/x", 50, &hint));
	restore_fails(&s, p, "/d/e", 30, &hint, EINVAL);  /* born with /d/b */
	restore_fails(&s, p, "/d/c", 60, &hint, EINVAL);  /* there already */
	list_children(store_lookup(&s, "/d"), list, sizeof(list));
	ck_assert_str_eq(list, ",c,a,b");	/* as restored, for now */
	ck_assert_int_eq(store_restore_done(&s), 0);
	list_children(store_lookup(&s, "/d"), list, sizeof(list));
	ck_assert_str_eq(list, ",a,b,c");
	ck_assert_mem_eq(listing(&s, store_lookup(&s, "/d")),
			 "a\0b\0c\0", 6);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	/* Two siblings of one generation, found only when put in order. */
	ck_assert(restored(&s, p, "/e", 70, &hint));
	ck_assert(restored(&s, p, "/e/y", 90, &hint));
	ck_assert(restored(&s, p, "/e/z", 95, &hint));
	ck_assert(restored(&s, p, "/e/x", 90, &hint));
	errno = 0;
	ck_assert_int_eq(store_restore_done(&s), -1);
	ck_assert_int_eq(errno, EINVAL);
	free_store(&s, p);
}
END_TEST

/* A damaged file's invalid path is refused (EINVAL) whether its parent
 * is there (only the name is checked then) or not, found by the hint or
 * by a lookup; a valid one whose parent is missing is told ENOENT. */
START_TEST(restore_refuses_an_invalid_path)
{
	static const char *const bad[] = {
		"/a/", "/a/b c", "/a//b", "//", "/a/b.c", "a", "a/b", "/x y/z",
		"/nope//b", "/a/b/",
	};
	struct store s;
	struct perms *p;
	struct node *hint = NULL;
	char *huge = malloc(PATH_ABS_MAX + 2);

	ck_assert_ptr_nonnull(huge);
	memcpy(huge, "/a/", 3);
	memset(huge + 3, 'x', PATH_ABS_MAX - 2);
	huge[PATH_ABS_MAX + 1] = '\0';	/* one byte over */
	new_store(&s, &p);
	ck_assert(restored(&s, p, "/a", 10, &hint));
	ck_assert(restored(&s, p, "/a/b", 20, &hint));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct node *none = NULL;

		restore_fails(&s, p, bad[i], 30 + i, &hint, EINVAL);
		restore_fails(&s, p, bad[i], 30 + i, &none, EINVAL);
	}
	restore_fails(&s, p, huge, 50, &hint, EINVAL);
	huge[PATH_ABS_MAX] = '\0';	/* PATH_ABS_MAX bytes: valid */
	ck_assert(restored(&s, p, huge, 50, &hint));
	restore_fails(&s, p, "/nope/b", 60, &hint, ENOENT);
	ck_assert(restored(&s, p, "/a/b/@c-_9", 70, &hint));
	ck_assert(restored(&s, p, "/Z", 80, &hint));
	ck_assert_int_eq(store_restore_done(&s), 0);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
	free(huge);
}
END_TEST

/* A restored generation is 1 to 48 bits (store.h): a file naming 0 or a
 * larger one is damaged, and nothing of it is restored. */
START_TEST(restore_refuses_a_generation_past_48_bits)
{
	struct store s;
	struct perms *p;
	struct node *hint = NULL;

	new_store(&s, &p);
	restore_fails(&s, p, "/zero", 0, &hint, EINVAL);	/* no birth */
	restore_fails(&s, p, "/big", NODE_GEN_MAX + 1, &hint, EINVAL);
	ck_assert_ptr_null(store_lookup(&s, "/big"));
	ck_assert(restored(&s, p, "/big", NODE_GEN_MAX, &hint));
	ck_assert_uint_eq(s.gen, NODE_GEN_MAX);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

/* A value longer than a node holds (NODE_VALUE_MAX: no request carries
 * one) is refused whole, new node or old. */
START_TEST(value_longer_than_a_node_holds_is_einval)
{
	struct store s;
	struct perms *p;
	size_t big = (size_t)NODE_VALUE_MAX + 1;
	char *v = calloc(1, big);
	struct node *n;

	ck_assert_ptr_nonnull(v);
	new_store(&s, &p);
	errno = 0;
	ck_assert_ptr_null(store_write(&s, "/a/b", p, v, big));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(store_lookup(&s, "/a"));
	n = store_write(&s, "/a", p, v, NODE_VALUE_MAX);
	ck_assert_ptr_nonnull(n);
	ck_assert_uint_eq(node_value_len(n), NODE_VALUE_MAX);
	ck_assert_ptr_nonnull(store_write(&s, "/a", p, "", 0));
	errno = 0;
	ck_assert_ptr_null(store_write(&s, "/a", p, v, big));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(node_value_len(store_lookup(&s, "/a")), 0);
	ck_assert_ptr_null(store_prepare("/a", p, v, big));
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
	free(v);
}
END_TEST

/* The child list (next links forward, the first child's prev naming the
 * last) against a model, through random appends and removals of the
 * first, the last and middle children. */
START_TEST(child_list_follows_a_model_through_random_changes)
{
	struct store s;
	struct perms *p;
	char model[64][8], list[1024], want[1024], path[NODE_PATH_BUF];
	unsigned int n = 0, next = 0, seed = 12345;

	new_store(&s, &p);
	must_create(&s, "/p", p);
	for (int step = 0; step < 2000; step++) {
		seed = seed * 1103515245u + 12345u;
		if (n < 64 && (n == 0 || (seed >> 16) % 3 != 0)) {
			snprintf(model[n], sizeof(model[n]), "c%u", next++ % 100000);
			snprintf(path, sizeof(path), "/p/%s", model[n]);
			if (store_lookup(&s, path))
				continue;
			must_create(&s, path, p);
			n++;
		} else {
			unsigned int k = (seed >> 8) % 4 == 0 ? 0
				       : (seed >> 8) % 4 == 1 ? n - 1
				       : (seed >> 10) % n;

			snprintf(path, sizeof(path), "/p/%s", model[k]);
			ck_assert_int_eq(store_remove(&s, store_lookup(&s, path),
						      NULL, NULL), 0);
			memmove(model[k], model[k + 1],
				(n - k - 1) * sizeof(model[0]));
			n--;
		}
		want[0] = '\0';
		for (unsigned int i = 0; i < n; i++) {
			strcat(want, ",");
			strcat(want, model[i]);
		}
		list_children(store_lookup(&s, "/p"), list, sizeof(list));
		ck_assert_str_eq(list, want);
		ck_assert_uint_eq(node_count_children(store_lookup(&s, "/p")), n);
		if (n)
			ck_assert_str_eq(node_name(node_last_child(
						 store_lookup(&s, "/p"))),
					 model[n - 1]);
		if (step % 64 == 0)	/* a whole check is slow */
			ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	}
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

static void trail_each_cb(const struct node *n, const char *path, void *arg)
{
	char own[NODE_PATH_BUF];

	node_path(n, own, sizeof(own));
	ck_assert_str_eq(own, path);
	trail_add(arg, path);
}

/* store_each: the tree parents first, siblings in order, then the
 * special nodes (a checkpoint is written in that order). */
START_TEST(each_goes_parents_first_then_special_nodes)
{
	static const char *const want[] = { "/", "/b", "/a", "/a/x", "/c",
					    "@two", "@one" };
	struct store s;
	struct perms *p;
	struct trail t = { 0 };

	new_store(&s, &p);
	must_create(&s, "/b", p);
	must_create(&s, "@one", p);
	must_create(&s, "/a/x", p);
	must_create(&s, "@two", p);
	must_create(&s, "/c", p);
	store_each(&s, trail_each_cb, &t);
	assert_trail(&t, want, 7);
	ck_assert_int_eq(store_remove(&s, store_lookup(&s, "@two"), NULL,
				      NULL), 0);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	free_store(&s, p);
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *t = tcase_create("create");

	tcase_add_test(t, init_creates_root);
	tcase_add_test(t, lookup_of_missing_path_is_null);
	tcase_add_test(t, create_makes_missing_ancestors_in_order);
	tcase_add_test(t, observer_is_told_births_of_creations_only);
	tcase_add_test(t, links_name_and_perms_slot_share_their_words_intact);
	tcase_add_test(t, lists_and_names_past_their_limits_are_enomem);
	tcase_add_test(t, create_shares_perms_with_every_new_node);
	tcase_add_test(t, create_returns_existing_node_untouched);
	tcase_add_test(t, special_nodes_are_parentless);
	suite_add_tcase(s, t);

	t = tcase_create("write");
	tcase_add_test(t, write_stores_value_bytes_with_nuls);
	tcase_add_test(t, write_replaces_value);
	tcase_add_test(t, write_creates_missing_ancestors_with_perms);
	tcase_add_test(t, write_of_existing_node_keeps_its_perms);
	tcase_add_test(t, a_write_is_a_change_while_held);
	tcase_add_test(t, changes_are_stamped_only_while_held);
	tcase_add_test(t, stamps_older_than_every_hold_go_when_the_table_grows);
	tcase_add_test(t, set_perms_replaces_list_and_is_a_change);
	tcase_add_test(t, adding_a_child_changes_the_parents_list_only);
	tcase_add_test(t, removing_a_child_changes_the_parents_list);
	suite_add_tcase(s, t);

	t = tcase_create("children");
	tcase_add_test(t, children_are_kept_in_creation_order);
	tcase_add_test(t, children_counts_follow_removal);
	tcase_add_test(t, listing_is_cached_until_the_children_change);
	tcase_add_test(t, root_children_len_counts_names_only);
	tcase_add_test(t, children_len_counts_no_further_than_past_its_max);
	tcase_add_test(t, every_path_is_found_after_the_index_grows);
	suite_add_tcase(s, t);

	t = tcase_create("remove");
	tcase_add_test(t, remove_is_recursive);
	tcase_add_test(t, rm_of_root_is_refused);
	tcase_add_test(t, remove_of_special_node_works);
	tcase_add_test(t, remove_calls_back_children_before_parent);
	tcase_add_test(t, remove_of_deep_tree_works);
	suite_add_tcase(s, t);

	t = tcase_create("walk");
	tcase_add_test(t, walk_is_pre_order);
	tcase_add_test(t, walk_of_subtree_stays_inside_it);
	tcase_add_test(t, walk_skips_children_when_fn_returns_false);
	tcase_add_test(t, walk_of_deep_tree_reaches_every_node);
	suite_add_tcase(s, t);

	t = tcase_create("accounting");
	tcase_add_test(t, domid_use_follows_every_change);
	tcase_add_test(t, check_recounts_the_domid_use);
	suite_add_tcase(s, t);

	t = tcase_create("check");
	tcase_add_test(t, check_of_healthy_tree_finds_nothing);
	tcase_add_test(t, check_reports_broken_back_link);
	tcase_add_test(t, check_reports_a_cached_listing_of_the_wrong_size);
	tcase_add_test(t, check_reports_a_node_without_a_permission_list);
	tcase_add_test(t, permission_lists_keep_their_slots_and_give_them_back);
	tcase_add_test(t, nodes_share_their_names);
	tcase_add_test(t, check_reports_unreachable_node);
	tcase_add_test(t, check_reports_node_missing_from_tree);
	tcase_add_test(t, restore_out_of_order_is_put_in_order_of_birth);
	tcase_add_test(t, restore_refuses_an_invalid_path);
	tcase_add_test(t, restore_refuses_a_generation_past_48_bits);
	tcase_add_test(t, value_longer_than_a_node_holds_is_einval);
	tcase_add_test(t, child_list_follows_a_model_through_random_changes);
	tcase_add_test(t, each_goes_parents_first_then_special_nodes);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(store_suite());
}
