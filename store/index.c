/*
 * The path index (index.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store/index.h"
#include "store/pool.h"
#include "store/probe.h"
#include "store/store.h"

/* The fewest slots an index has once it has any. */
#define INDEX_MIN_SLOTS 64
/* A table of more slots than this is about to be written all over (a
 * rehash, or a load's inserts): its pages are made at once. */
#define INDEX_POPULATE 65536

int index_init(struct path_index *ix)
{
	memset(ix, 0, sizeof(*ix));
	return keyed_hash_secret(ix->secret);
}

void index_free(struct path_index *ix)
{
	free(ix->slots);
	ix->slots = NULL;
	ix->mask = 0;
	ix->count = 0;
}

#define ID_MASK ((UINT32_C(1) << INDEX_ID_BITS) - 1)

static uint64_t hash_path(const struct path_index *ix, const char *path,
			  size_t len)
{
	return keyed_hash64_with(ix->secret, path, len);
}

/* A slot for node id whose path hashed to h. */
static uint32_t slot_of(uint64_t h, uint32_t id)
{
	return id | (uint32_t)(h >> (64 - INDEX_TAG_BITS)) << INDEX_ID_BITS;
}

static bool tag_matches(uint32_t slot, uint64_t h)
{
	return slot >> INDEX_ID_BITS == (uint32_t)(h >> (64 - INDEX_TAG_BITS));
}

static struct node *slot_node(uint32_t slot)
{
	return pool_node(slot & ID_MASK);
}

/* The hash of the path of the node in slot, computed again. */
static uint64_t rehash(const struct path_index *ix, uint32_t slot)
{
	char path[NODE_PATH_BUF];

	return hash_path(ix, path,
			 node_path(slot_node(slot), path, sizeof(path)));
}

/*
 * The path of node id into path, where the path of node last (len bytes;
 * 0: none) is: built on it when id is last's child or sibling, as the
 * nodes of a fill taken in pool order mostly are, else from id's
 * ancestors.
 */
static size_t next_path(char *path, size_t len, uint32_t last, uint32_t id)
{
	const struct node *n = pool_node(id), *prev = pool_node(last);

	if (prev && n->parent_id && n->parent_id == last)
		return node_path_down(path, len, n);
	if (prev && n->parent_id && n->parent_id == prev->parent_id)
		return node_path_down(path, node_path_up(path, len, prev), n);
	return node_path(n, path, NODE_PATH_BUF);
}

/*
 * Every entry into slots (of mask + 1), at the home its path hashes to
 * again.  The entries are taken in the order of their records in the
 * pool, not of the old table, and each path is built on the one before
 * when it can (next_path): the growth at 786,000 nodes of a
 * million-key fill took 285 to 395 ms in the table's order, a record
 * missed in the cache for each entry and each of its ancestors, and 26
 * to 28 ms so (slots of 8 bytes, which kept 32 bits of the hash and so
 * needed no path, took 9 to 16).  0, or -1 without memory for the bitmap
 * of ids that orders them (a bit a record).
 */
#define MOVE_BATCH 16

static int move_all(const struct path_index *ix, uint32_t *slots,
		    size_t mask)
{
	size_t words = node_pool.fresh / 64 + 1, len = 0;
	uint64_t *have = calloc(words, sizeof(*have));
	char path[NODE_PATH_BUF];
	uint32_t last = 0, slot[MOVE_BATCH];
	size_t home[MOVE_BATCH], k = 0;

	if (!have)
		return -1;
	for (size_t i = 0; i <= ix->mask; i++) {
		uint32_t id = ix->slots[i] & ID_MASK;

		if (id)
			have[id / 64] |= UINT64_C(1) << (id % 64);
	}
	for (size_t w = 0; w < words; w++) {
		for (uint64_t bits = have[w]; bits; bits &= bits - 1) {
			uint32_t id = (uint32_t)(w * 64) +
				      (uint32_t)__builtin_ctzll(bits);
			uint64_t h;

			len = next_path(path, len, last, id);
			last = id;
			h = hash_path(ix, path, len);
			/* Taken in this order, the homes are all over the
			 * table: fetched a batch at a time, their misses
			 * overlap. */
			home[k] = h & mask;
			slot[k] = slot_of(h, id);
			__builtin_prefetch(&slots[home[k]], 1);
			if (++k == MOVE_BATCH) {
				for (k = 0; k < MOVE_BATCH; k++)
					probe_place(slots, mask, home[k],
						    slot[k]);
				k = 0;
			}
		}
	}
	for (size_t i = 0; i < k; i++)
		probe_place(slots, mask, home[i], slot[i]);
	free(have);
	return 0;
}

int index_reserve(struct path_index *ix, size_t more)
{
	size_t want = ix->count + more, cap = ix->slots ? ix->mask + 1 : 0;
	uint32_t *slots;

	if (want < ix->count) {
		errno = ENOMEM;
		return -1;
	}
	if (ix->slots && want <= cap / 4 * 3)
		return 0;
	if (!cap)
		cap = INDEX_MIN_SLOTS;
	while (want > cap / 4 * 3) {
		if (cap > ((size_t)1 << 31) ||
		    cap > SIZE_MAX / 2 / sizeof(*slots)) {
			errno = ENOMEM;
			return -1;
		}
		cap *= 2;
	}
	slots = calloc(cap, sizeof(*slots));
	if (!slots) {
		errno = ENOMEM;
		return -1;
	}
	if (cap > INDEX_POPULATE)
		populate(slots, cap * sizeof(*slots));
	if (ix->count && move_all(ix, slots, cap - 1) != 0) {
		free(slots);
		errno = ENOMEM;
		return -1;
	}
	free(ix->slots);
	ix->slots = slots;
	ix->mask = cap - 1;
	return 0;
}

struct node *index_find(const struct path_index *ix, const char *path,
			size_t len)
{
	uint64_t h;

	if (!ix->slots)
		return NULL;
	h = hash_path(ix, path, len);
	for (size_t i = h & ix->mask; ix->slots[i]; i = (i + 1) & ix->mask) {
		uint32_t slot = ix->slots[i];
		struct node *n;

		if (tag_matches(slot, h) &&
		    node_has_path(n = slot_node(slot), path, len))
			return n;
	}
	return NULL;
}

void index_prefetch(const struct path_index *ix, const char *path,
		    size_t len)
{
	if (ix->slots)
		__builtin_prefetch(&ix->slots[hash_path(ix, path, len) &
					      ix->mask], 1);
}

void index_insert(struct path_index *ix, struct node *n, const char *path,
		  size_t len)
{
	uint64_t h = hash_path(ix, path, len);

	/* Reserved before: never past three quarters full. */
	if (!ix->slots || ix->count + 1 > (ix->mask + 1) / 4 * 3)
		abort();
	probe_place(ix->slots, ix->mask, h & ix->mask,
		    slot_of(h, node_id(n)));
	ix->count++;
}

struct node *index_insert_unique(struct path_index *ix, struct node *n,
				 const char *path, size_t len)
{
	uint64_t h = hash_path(ix, path, len);
	size_t i;

	if (!ix->slots || ix->count + 1 > (ix->mask + 1) / 4 * 3)
		abort();
	for (i = h & ix->mask; ix->slots[i]; i = (i + 1) & ix->mask) {
		struct node *m;

		if (tag_matches(ix->slots[i], h) &&
		    node_has_path(m = slot_node(ix->slots[i]), path, len))
			return m;
	}
	ix->slots[i] = slot_of(h, node_id(n));
	ix->count++;
	return NULL;
}

void index_remove(struct path_index *ix, const struct node *n,
		  const char *path, size_t len)
{
	size_t i = hash_path(ix, path, len) & ix->mask;

	while ((ix->slots[i] & ID_MASK) != node_id(n)) {
		if (!ix->slots[i])
			abort();	/* not in the index: a store bug */
		i = (i + 1) & ix->mask;
	}
	/* No tombstones: later entries of the run move back over the gap,
	 * so that a probe never stops short of them (their homes hashed
	 * again from their paths). */
	for (size_t j = (i + 1) & ix->mask; ix->slots[j];
	     j = (j + 1) & ix->mask) {
		if (probe_may_fill(i, j, rehash(ix, ix->slots[j]) & ix->mask)) {
			ix->slots[i] = ix->slots[j];
			i = j;
		}
	}
	ix->slots[i] = 0;
	ix->count--;
}

struct node *index_next(const struct path_index *ix, size_t *at)
{
	while (ix->slots && *at <= ix->mask) {
		uint32_t slot = ix->slots[(*at)++];

		if (slot)
			return slot_node(slot);
	}
	return NULL;
}
