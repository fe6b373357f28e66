/*
 * store/index: the path index, and the store's answer when the index,
 * the node pool or a node's name cannot get memory.  Linked with calloc,
 * malloc, realloc and mprotect (the pool's growth) wrapped (Makefile), so
 * that a test can make an allocation fail.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"

#include "store/index.h"
#include "store/pool.h"
#include "store/slab.h"
#include "store/store.h"

/* calloc fails once this many more calls have succeeded; -1: never. */
static int calloc_fails_after = -1;

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

void *__wrap_calloc(size_t n, size_t size)
{
	if (calloc_fails_after == 0) {
		calloc_fails_after = -1;
		return NULL;
	}
	if (calloc_fails_after > 0)
		calloc_fails_after--;
	return __real_calloc(n, size);
}

/* malloc or realloc fails once this many more calls of either have
 * succeeded; -1: never. */
static int malloc_fails_after = -1;

void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_realloc(void *p, size_t size);

static bool malloc_fails(void)
{
	if (malloc_fails_after == 0) {
		malloc_fails_after = -1;
		return true;
	}
	if (malloc_fails_after > 0)
		malloc_fails_after--;
	return false;
}

void *__wrap_malloc(size_t size)
{
	return malloc_fails() ? NULL : __real_malloc(size);
}

void *__wrap_realloc(void *p, size_t size)
{
	return malloc_fails() ? NULL : __real_realloc(p, size);
}

/* mprotect fails at its next call when set: the node pool's growth. */
static bool mprotect_fails;

int __real_mprotect(void *addr, size_t len, int prot);
int __wrap_mprotect(void *addr, size_t len, int prot);

int __wrap_mprotect(void *addr, size_t len, int prot)
{
	if (mprotect_fails) {
		mprotect_fails = false;
		errno = ENOMEM;
		return -1;
	}
	return __real_mprotect(addr, len, prot);
}

/* A parentless node whose name is the whole path (as a special node's
 * is), which is all the index needs to confirm a match. */
static struct node *fake_node(const char *path)
{
	struct node *n = pool_alloc();
	uint32_t name;

	ck_assert_ptr_nonnull(n);
	name = name_intern(path, strlen(path));
	ck_assert_uint_ne(name, 0);
	n->name_id = name;
	return n;
}

static void drop(struct node *n)
{
	name_unref(node_name_id(n));
	pool_free(n);
}

static void insert(struct path_index *ix, struct node *n)
{
	index_insert(ix, n, node_name(n), node_name_len(n));
}

static void take_out(struct path_index *ix, struct node *n)
{
	index_remove(ix, n, node_name(n), node_name_len(n));
}

/* Where an entry of path makes its home in ix (what index.c computes). */
static size_t home_of(const struct path_index *ix, const char *path)
{
	return keyed_hash_with(ix->secret, path, strlen(path)) & ix->mask;
}

static struct node *find(const struct path_index *ix, const char *path)
{
	return index_find(ix, path, strlen(path));
}

#define MANY 5000

START_TEST(finds_what_was_inserted_and_nothing_else)
{
	static struct node *v[MANY];
	struct path_index ix;
	char path[64];

	ck_assert_int_eq(index_init(&ix), 0);
	ck_assert_ptr_null(find(&ix, "/"));	/* no slots yet */
	for (int i = 0; i < MANY; i++) {
		snprintf(path, sizeof(path), "/local/domain/%d/name", i);
		v[i] = fake_node(path);
		ck_assert_int_eq(index_reserve(&ix, 1), 0);
		insert(&ix, v[i]);
	}
	ck_assert_uint_eq(ix.count, MANY);
	ck_assert_uint_le(ix.count, (ix.mask + 1) / 4 * 3);
	for (int i = 0; i < MANY; i++)
		ck_assert_ptr_eq(find(&ix, node_name(v[i])), v[i]);
	/* A prefix, an extension and a near miss of stored paths. */
	ck_assert_ptr_null(find(&ix, "/local/domain/1/nam"));
	ck_assert_ptr_null(find(&ix, "/local/domain/1/names"));
	ck_assert_ptr_null(find(&ix, "/local/domain/1/namf"));
	/* Only the first len bytes count: "/local/domain/12" within a
	 * longer buffer. */
	ck_assert_ptr_eq(index_find(&ix, "/local/domain/12/name/x", 21), v[12]);
	for (int i = 0; i < MANY; i++)
		drop(v[i]);
	index_free(&ix);
}
END_TEST

/* A prefetch (for a load that names each path ahead of its insert)
 * changes nothing, with slots or before the first. */
START_TEST(prefetch_changes_nothing)
{
	static struct node *v[MANY];
	struct path_index ix;
	uint32_t *copy;
	size_t bytes;
	char path[64];

	ck_assert_int_eq(index_init(&ix), 0);
	index_prefetch(&ix, "/", 1);		/* no slots yet */
	ck_assert_ptr_null(ix.slots);
	for (int i = 0; i < MANY; i++) {
		snprintf(path, sizeof(path), "/local/domain/%d/name", i);
		v[i] = fake_node(path);
		ck_assert_int_eq(index_reserve(&ix, 1), 0);
		insert(&ix, v[i]);
	}
	bytes = (ix.mask + 1) * sizeof(*ix.slots);
	copy = malloc(bytes);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, ix.slots, bytes);
	for (int i = 0; i < 2 * MANY; i++) {
		snprintf(path, sizeof(path), "/local/domain/%d/name", i);
		index_prefetch(&ix, path, strlen(path));
	}
	ck_assert_uint_eq(ix.count, MANY);
	ck_assert_mem_eq(copy, ix.slots, bytes);
	for (int i = 0; i < MANY; i++)
		ck_assert_ptr_eq(find(&ix, node_name(v[i])), v[i]);
	for (int i = 0; i < MANY; i++)
		drop(v[i]);
	free(copy);
	index_free(&ix);
}
END_TEST

START_TEST(removal_in_any_order_keeps_the_rest_findable)
{
	static struct node *v[MANY];
	static bool gone[MANY];
	struct path_index ix;
	char path[64];
	unsigned int seed = 12345;

	ck_assert_int_eq(index_init(&ix), 0);
	ck_assert_int_eq(index_reserve(&ix, MANY), 0);
	for (int i = 0; i < MANY; i++) {
		snprintf(path, sizeof(path), "/vm/%d", i);
		v[i] = fake_node(path);
		gone[i] = false;
		insert(&ix, v[i]);
	}
	for (int k = 0; k < MANY / 2; k++) {
		int i = (int)(rand_r(&seed) % MANY);

		if (gone[i])
			continue;
		take_out(&ix, v[i]);
		gone[i] = true;
		if (k % 97 == 0)	/* now and then, everything checked */
			for (int j = 0; j < MANY; j++)
				ck_assert_ptr_eq(find(&ix, node_name(v[j])),
						 gone[j] ? NULL : v[j]);
	}
	for (int j = 0; j < MANY; j++)
		ck_assert_ptr_eq(find(&ix, node_name(v[j])), gone[j] ? NULL : v[j]);
	for (int i = 0; i < MANY; i++)
		drop(v[i]);
	index_free(&ix);
}
END_TEST

/*
 * A run of entries that wraps from the table's last slots to its first,
 * then its members removed one by one: each removal moves later members
 * back over the gap across the wrap, or leaves them where a probe from
 * their home still reaches them.
 */
START_TEST(removal_across_the_end_of_the_table)
{
	struct node *v[8];
	struct path_index ix;
	char path[64];
	int found = 0;
	size_t cap;

	ck_assert_int_eq(index_init(&ix), 0);
	ck_assert_int_eq(index_reserve(&ix, 8), 0);
	cap = ix.mask + 1;
	/* Paths whose home is one of the last two slots, or the first. */
	for (int i = 0; found < 8 && i < 100000; i++) {
		size_t home;

		snprintf(path, sizeof(path), "/wrap/%d", i);
		home = home_of(&ix, path);
		if (home >= cap - 2 || (home == 0 && found >= 5))
			v[found++] = fake_node(path);
	}
	ck_assert_int_eq(found, 8);
	for (int i = 0; i < 8; i++)
		insert(&ix, v[i]);
	for (int i = 0; i < 8; i++) {
		take_out(&ix, v[i]);
		ck_assert_ptr_null(find(&ix, node_name(v[i])));
		for (int j = i + 1; j < 8; j++)
			ck_assert_ptr_eq(find(&ix, node_name(v[j])), v[j]);
	}
	ck_assert_uint_eq(ix.count, 0);
	for (size_t i = 0; i < cap; i++)
		ck_assert_uint_eq(ix.slots[i], 0);
	for (int i = 0; i < 8; i++)
		drop(v[i]);
	index_free(&ix);
}
END_TEST

START_TEST(next_visits_every_node_once)
{
	struct node *v[300], *n;
	struct path_index ix;
	int seen[300] = { 0 };
	char path[32];
	size_t at = 0;

	ck_assert_int_eq(index_init(&ix), 0);
	at = 0;
	ck_assert_ptr_null(index_next(&ix, &at));	/* empty, no slots */
	ck_assert_int_eq(index_reserve(&ix, 300), 0);
	for (int i = 0; i < 300; i++) {
		snprintf(path, sizeof(path), "/%d", i);
		v[i] = fake_node(path);
		insert(&ix, v[i]);
	}
	at = 0;
	while ((n = index_next(&ix, &at)))
		seen[atoi(node_name(n) + 1)]++;
	for (int i = 0; i < 300; i++) {
		ck_assert_int_eq(seen[i], 1);
		drop(v[i]);
	}
	index_free(&ix);
}
END_TEST

START_TEST(each_index_has_its_own_random_key)
{
	struct path_index a, b;

	ck_assert_int_eq(index_init(&a), 0);
	ck_assert_int_eq(index_init(&b), 0);
	ck_assert(memcmp(a.secret, b.secret, sizeof(a.secret)) != 0);
	index_free(&a);
	index_free(&b);
}
END_TEST

/* A slot is the node's id and, above it, the top bits of its path's
 * hash; the home is the hash's low bits.  A growth, which keeps no hash,
 * puts every entry at the home its path hashes to again. */
START_TEST(a_slot_holds_the_id_and_a_tag_of_the_hash)
{
	enum { N = 5000 };
	static struct node *v[N];
	struct path_index ix;
	char path[64];
	size_t grew = 0, mask = 0;

	ck_assert_int_eq(index_init(&ix), 0);
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "/tag/%d", i);
		v[i] = fake_node(path);
		ck_assert_int_eq(index_reserve(&ix, 1), 0);
		grew += ix.mask != mask;
		mask = ix.mask;
		insert(&ix, v[i]);
	}
	ck_assert_uint_ge(grew, 6);	/* 64 slots to 8,192 */
	for (size_t i = 0; i <= ix.mask; i++) {
		uint32_t slot = ix.slots[i], id = slot & ((1u << INDEX_ID_BITS) - 1);
		const char *name;
		uint64_t h;
		size_t home;

		if (!slot)
			continue;
		name = node_name(pool_node(id));
		h = keyed_hash64_with(ix.secret, name, strlen(name));
		ck_assert_uint_eq(slot >> INDEX_ID_BITS, h >> (64 - INDEX_TAG_BITS));
		/* Every slot from its home to it is taken. */
		for (home = h & ix.mask; home != i; home = (home + 1) & ix.mask)
			ck_assert_uint_ne(ix.slots[home], 0);
	}
	for (int i = 0; i < N; i++)
		ck_assert_ptr_eq(find(&ix, node_name(v[i])), v[i]);
	for (int i = 0; i < N; i++)
		drop(v[i]);
	index_free(&ix);
}
END_TEST

/* The pool hands out no id that a slot cannot hold. */
START_TEST(pool_ids_fit_a_slot)
{
	struct node *n = pool_alloc();

	ck_assert_ptr_nonnull(n);
	ck_assert_uint_le(node_pool.reserved, 1u << INDEX_ID_BITS);
	pool_free(n);
}
END_TEST

START_TEST(reserve_beyond_memory_fails_and_changes_nothing)
{
	struct path_index ix;
	struct node *n = fake_node("/a");
	uint32_t *slots;
	size_t mask;

	ck_assert_int_eq(index_init(&ix), 0);
	ck_assert_int_eq(index_reserve(&ix, 1), 0);
	insert(&ix, n);
	slots = ix.slots;
	mask = ix.mask;
	errno = 0;
	ck_assert_int_eq(index_reserve(&ix, SIZE_MAX / 4), -1);
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_int_eq(index_reserve(&ix, SIZE_MAX), -1);	/* wraps */
	ck_assert_int_eq(errno, ENOMEM);
	calloc_fails_after = 0;
	errno = 0;
	ck_assert_int_eq(index_reserve(&ix, 1000), -1);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_ptr_eq(ix.slots, slots);
	ck_assert_uint_eq(ix.mask, mask);
	ck_assert_ptr_eq(find(&ix, "/a"), n);
	drop(n);
	index_free(&ix);
}
END_TEST

/* The store with its index full up to the point of growing. */
static void full_store(struct store *s, struct perms **p)
{
	char path[32];

	*p = perms_alloc(1);
	ck_assert_ptr_nonnull(*p);
	store_init(s, *p);
	for (int i = 0; s->index.count < (s->index.mask + 1) / 4 * 3; i++) {
		snprintf(path, sizeof(path), "/n%d", i);
		ck_assert_ptr_nonnull(store_create(s, path, *p));
	}
}

START_TEST(store_answers_enomem_when_the_index_cannot_grow)
{
	struct store s;
	struct perms *p;
	unsigned long count;
	uint64_t gen;

	full_store(&s, &p);
	count = store_count(&s);
	gen = s.gen;
	/* Its first allocation is the index's: it fails. */
	calloc_fails_after = 0;
	errno = 0;
	ck_assert_ptr_null(store_create(&s, "/new/deeper/still", p));
	ck_assert_int_eq(errno, ENOMEM);
	calloc_fails_after = 0;
	errno = 0;
	ck_assert_ptr_null(store_write(&s, "/other", p, "v", 1));
	ck_assert_int_eq(errno, ENOMEM);
	calloc_fails_after = 0;
	errno = 0;
	ck_assert_ptr_null(store_restore(&s, "/restored", p, "v", 1,
					 gen + 1, NULL));
	ck_assert_int_eq(errno, ENOMEM);
	/* Nothing was made, and the tree is whole. */
	ck_assert_uint_eq(store_count(&s), count);
	ck_assert_uint_eq(s.gen, gen);
	ck_assert_ptr_null(store_lookup(&s, "/new"));
	ck_assert_ptr_null(store_lookup(&s, "/other"));
	ck_assert_ptr_null(store_lookup(&s, "/restored"));
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	/* With memory again, the same request works. */
	ck_assert_ptr_nonnull(store_create(&s, "/new/deeper/still", p));
	ck_assert_uint_eq(store_count(&s), count + 3);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	store_destroy(&s);
	perms_unref(p);
}
END_TEST

START_TEST(store_answers_enomem_when_a_node_cannot_be_made)
{
	struct store s;
	struct perms *p;
	unsigned long count;
	uint32_t names;

	full_store(&s, &p);
	ck_assert_int_eq(index_reserve(&s.index, 10), 0);	/* grown */
	count = store_count(&s);
	names = node_names.count;
	/* The index has room: the second of the three nodes' names fails.
	 * A name not yet held is an entry of its own (store/names.h), a
	 * malloc: "x", then "yyyyyyyyyy"; the nodes have no values. */
	malloc_fails_after = 1;
	errno = 0;
	ck_assert_ptr_null(store_create(&s, "/x/yyyyyyyyyy/z", p));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_int_eq(malloc_fails_after, -1);
	ck_assert_uint_eq(store_count(&s), count);
	ck_assert_ptr_null(store_lookup(&s, "/x"));
	ck_assert_uint_eq(node_names.count, names);	/* "x" went too */
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	/* A new value that cannot be had leaves the old one. */
	ck_assert_ptr_nonnull(store_write(&s, "/x", p, "old", 3));
	count = store_count(&s);
	slab_forget_free();		/* the new length's class is empty, and
					 * its chunk needs an mprotect */
#ifdef SLAB_OFF
	malloc_fails_after = 0;		/* a block is malloc's (slab.h) */
#else
	mprotect_fails = true;
#endif
	errno = 0;
	ck_assert_ptr_null(store_write(&s, "/x", p, "a longer value", 14));
	ck_assert(!mprotect_fails);
	ck_assert_int_eq(malloc_fails_after, -1);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(node_value_len(store_lookup(&s, "/x")), 3);
	ck_assert_mem_eq(node_value(store_lookup(&s, "/x")), "old", 3);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	store_destroy(&s);
	perms_unref(p);
}
END_TEST

START_TEST(store_answers_enomem_when_the_pool_cannot_grow)
{
	static struct node *extra[POOL_STEP];
	unsigned int nextra = 0;
	struct store s;
	struct perms *p;
	unsigned long count;

	full_store(&s, &p);
	ck_assert_int_eq(index_reserve(&s.index, 10), 0);
	/* Use up the pool but one record: /x takes it, and /x/y needs the
	 * pool to grow. */
	while (node_pool.nfree + node_pool.usable - node_pool.fresh > 1) {
		ck_assert_uint_lt(nextra, POOL_STEP);
		extra[nextra++] = fake_node("/extra");
	}
	count = store_count(&s);
	mprotect_fails = true;
	errno = 0;
	ck_assert_ptr_null(store_create(&s, "/x/y", p));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert(!mprotect_fails);	/* the pool's growth failed */
	ck_assert_uint_eq(store_count(&s), count);
	ck_assert_ptr_null(store_lookup(&s, "/x"));
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	ck_assert_ptr_nonnull(store_create(&s, "/x/y", p));
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	while (nextra)
		drop(extra[--nextra]);
	store_destroy(&s);
	perms_unref(p);
}
END_TEST

/* A permission list needs a slot of perms_table: without memory for the
 * table to grow, the list is not made (ENOMEM) and the table is as it
 * was. */
START_TEST(a_permission_list_without_room_for_its_slot_is_enomem)
{
	struct perms **lists, *q;
	size_t k = 0, room;
	uint32_t used;

	perms_unref(perms_alloc(1));	/* the table exists */
	room = perms_table.cap + 1;
	lists = calloc(room, sizeof(*lists));
	ck_assert_ptr_nonnull(lists);
	/* Every slot taken, so that the next list needs the table to grow. */
	while (perms_table.free_head || perms_table.used + 1 < perms_table.cap) {
		ck_assert_uint_lt(k, room);
		ck_assert_ptr_nonnull(lists[k++] = perms_alloc(1));
	}
	used = perms_table.used;
	malloc_fails_after = 0;		/* the table's realloc */
	errno = 0;
	ck_assert_ptr_null(perms_alloc(1));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_int_eq(malloc_fails_after, -1);
	ck_assert_uint_eq(perms_table.used, used);
	ck_assert_uint_eq(perms_table.free_head, 0);
	q = perms_alloc(1);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq(q->slot, used + 1);
	perms_unref(q);
	while (k)
		perms_unref(lists[--k]);
	free(lists);
}
END_TEST

/* A change whose stamp finds no memory (stamps.h): every node counts as
 * changed for the holders, until the last hold ends; the change itself
 * is made. */
START_TEST(stamps_without_memory_make_every_node_count_as_changed)
{
	struct store s;
	struct perms *p = perms_alloc(1);
	struct store_hold h = { 0 };
	struct node *other;
	uint64_t since;

	ck_assert_ptr_nonnull(p);
	store_init(&s, p);
	other = store_write(&s, "/other", p, "v", 1);
	ck_assert_ptr_nonnull(other);
	ck_assert_ptr_nonnull(store_write(&s, "/a", p, "v", 1));
	store_hold(&s, &h);
	since = store_now(&s);
	calloc_fails_after = 0;		/* the stamps' first table */
	ck_assert_ptr_nonnull(store_write(&s, "/a", p, "x", 1));
	ck_assert_int_eq(calloc_fails_after, -1);
	ck_assert(s.stamps.lost);
	ck_assert(node_changed_since(&s, other, since, STAMP_NODE));
	ck_assert(node_changed_since(&s, other, since, STAMP_LIST));
	store_release(&h);
	ck_assert(!s.stamps.lost);
	store_hold(&s, &h);
	since = store_now(&s);
	ck_assert_ptr_nonnull(store_write(&s, "/a", p, "w", 1));
	ck_assert(!node_changed_since(&s, other, since, STAMP_NODE));
	ck_assert(node_changed_since(&s, store_lookup(&s, "/a"), since,
				     STAMP_NODE));
	store_release(&h);
	ck_assert_uint_eq(store_check(&s, NULL, NULL), 0);
	store_destroy(&s);
	perms_unref(p);
}
END_TEST

static Suite *index_suite(void)
{
	Suite *s = suite_create("index");
	TCase *t = tcase_create("index");

	tcase_add_test(t, finds_what_was_inserted_and_nothing_else);
	tcase_add_test(t, prefetch_changes_nothing);
	tcase_add_test(t, removal_in_any_order_keeps_the_rest_findable);
	tcase_add_test(t, removal_across_the_end_of_the_table);
	tcase_add_test(t, next_visits_every_node_once);
	tcase_add_test(t, each_index_has_its_own_random_key);
	tcase_add_test(t, reserve_beyond_memory_fails_and_changes_nothing);
	tcase_add_test(t, a_slot_holds_the_id_and_a_tag_of_the_hash);
	tcase_add_test(t, pool_ids_fit_a_slot);
	suite_add_tcase(s, t);
	t = tcase_create("store");
	tcase_add_test(t, store_answers_enomem_when_the_index_cannot_grow);
	tcase_add_test(t, store_answers_enomem_when_a_node_cannot_be_made);
	tcase_add_test(t, store_answers_enomem_when_the_pool_cannot_grow);
	tcase_add_test(t, a_permission_list_without_room_for_its_slot_is_enomem);
	tcase_add_test(t, stamps_without_memory_make_every_node_count_as_changed);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(index_suite());
}
