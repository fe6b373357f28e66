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

static uint32_t hash_path(const struct path_index *ix, const char *path,
			  size_t len)
{
	return keyed_hash_with(ix->secret, path, len);
}

/* Where the entry (hash, id) goes in slots of mask + 1: the first empty
 * slot from its home. */
static void place(struct index_slot *slots, size_t mask, uint32_t hash,
		  uint32_t id)
{
	size_t i = hash & mask;

	while (slots[i].id)
		i = (i + 1) & mask;
	slots[i].hash = hash;
	slots[i].id = id;
}

int index_reserve(struct path_index *ix, size_t more)
{
	size_t want = ix->count + more, cap = ix->slots ? ix->mask + 1 : 0;
	struct index_slot *slots;

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
	for (size_t i = 0; ix->slots && i <= ix->mask; i++)
		if (ix->slots[i].id)
			place(slots, cap - 1, ix->slots[i].hash,
			      ix->slots[i].id);
	free(ix->slots);
	ix->slots = slots;
	ix->mask = cap - 1;
	return 0;
}

struct node *index_find(const struct path_index *ix, const char *path,
			size_t len)
{
	uint32_t h;

	if (!ix->slots)
		return NULL;
	h = hash_path(ix, path, len);
	for (size_t i = h & ix->mask; ix->slots[i].id;
	     i = (i + 1) & ix->mask) {
		const struct index_slot *sl = &ix->slots[i];
		struct node *n;

		if (sl->hash == h && node_has_path(n = pool_node(sl->id), path,
						   len))
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
	/* Reserved before: never past three quarters full. */
	if (!ix->slots || ix->count + 1 > (ix->mask + 1) / 4 * 3)
		abort();
	place(ix->slots, ix->mask, hash_path(ix, path, len), node_id(n));
	ix->count++;
}

struct node *index_insert_unique(struct path_index *ix, struct node *n,
				 const char *path, size_t len)
{
	uint32_t h = hash_path(ix, path, len);
	size_t i;

	if (!ix->slots || ix->count + 1 > (ix->mask + 1) / 4 * 3)
		abort();
	for (i = h & ix->mask; ix->slots[i].id; i = (i + 1) & ix->mask) {
		struct node *m;

		if (ix->slots[i].hash == h &&
		    node_has_path(m = pool_node(ix->slots[i].id), path, len))
			return m;
	}
	ix->slots[i].hash = h;
	ix->slots[i].id = node_id(n);
	ix->count++;
	return NULL;
}

void index_remove(struct path_index *ix, const struct node *n,
		  const char *path, size_t len)
{
	size_t i = hash_path(ix, path, len) & ix->mask;

	while (ix->slots[i].id != node_id(n)) {
		if (!ix->slots[i].id)
			abort();	/* not in the index: a store bug */
		i = (i + 1) & ix->mask;
	}
	/* No tombstones: later entries of the run move back over the gap,
	 * so that a probe never stops short of them. */
	for (size_t j = (i + 1) & ix->mask; ix->slots[j].id;
	     j = (j + 1) & ix->mask) {
		if (probe_may_fill(i, j, ix->slots[j].hash & ix->mask)) {
			ix->slots[i] = ix->slots[j];
			i = j;
		}
	}
	ix->slots[i].id = 0;
	ix->slots[i].hash = 0;
	ix->count--;
}

struct node *index_next(const struct path_index *ix, size_t *at)
{
	while (ix->slots && *at <= ix->mask) {
		uint32_t id = ix->slots[(*at)++].id;

		if (id)
			return pool_node(id);
	}
	return NULL;
}
