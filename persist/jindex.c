/*
 * Where the live journal holds each node's last change (jindex.h).
 */
#include <stdlib.h>
#include <string.h>

#include "persist/jindex.h"
#include "record/record.h"

void jindex_init(struct jindex *ix)
{
	memset(ix, 0, sizeof(*ix));
}

void jindex_free(struct jindex *ix)
{
	free(ix->v);
	free(ix->slots);
	memset(ix, 0, sizeof(*ix));
	ix->off = true;
}

static size_t slot_of(const struct jindex *ix, uint32_t id)
{
	/* Ids are dense: a multiply spreads neighbours apart. */
	return (size_t)(id * 0x9e3779b1u) & ix->mask;
}

/* The slot holding id's entry, or the empty one it would take. */
static uint32_t *find(const struct jindex *ix, uint32_t id)
{
	for (size_t i = slot_of(ix, id);; i = (i + 1) & ix->mask) {
		uint32_t *sl = &ix->slots[i];

		if (!*sl || ix->v[*sl - 1].id == id)
			return sl;
	}
}

/* Room for one more entry (slots at most half full); false: given up. */
static bool room(struct jindex *ix, bool node)
{
	size_t nodes;

	if (ix->count == ix->cap) {
		size_t cap = ix->cap ? 2 * ix->cap : 256;
		struct jindex_entry *v;

		/* Fewer than two changes an entry: reading the whole
		 * journal back costs little more than this. */
		if (ix->count >= JINDEX_MIN && ix->changes < 2 * ix->count)
			goto give_up;
		v = realloc(ix->v, cap * sizeof(*v));
		if (!v)
			goto give_up;
		ix->v = v;
		ix->cap = cap;
	}
	nodes = ix->count + 1;
	if (!node || (ix->slots && 2 * nodes <= ix->mask + 1))
		return true;
	{
		size_t n = ix->slots ? 2 * (ix->mask + 1) : 512;
		uint32_t *slots = calloc(n, sizeof(*slots));

		if (!slots)
			goto give_up;
		free(ix->slots);
		ix->slots = slots;
		ix->mask = n - 1;
		for (size_t i = 0; i < ix->count; i++)
			if (ix->v[i].id)
				*find(ix, ix->v[i].id) = (uint32_t)i + 1;
	}
	return true;

give_up:
	jindex_free(ix);
	return false;
}

/* Offsets are 32-bit: a journal past 4 GiB is read whole. */
static bool noted(struct jindex *ix, uint64_t at)
{
	if (ix->off)
		return false;
	if (at >= JINDEX_DEAD) {
		jindex_free(ix);
		return false;
	}
	ix->changes++;
	return true;
}

static void add(struct jindex *ix, uint32_t id, uint32_t at)
{
	ix->v[ix->count++] = (struct jindex_entry){ id, at, at };
}

void jindex_put(struct jindex *ix, uint32_t id, uint64_t at)
{
	uint32_t *sl;

	if (!noted(ix, at))
		return;
	if (ix->slots) {
		sl = find(ix, id);
		if (*sl) {
			struct jindex_entry *e = &ix->v[*sl - 1];

			if (e->last == JINDEX_DEAD)	/* a new node */
				e->first = (uint32_t)at;
			e->last = (uint32_t)at;
			return;
		}
	}
	if (!room(ix, true))
		return;
	*find(ix, id) = (uint32_t)ix->count + 1;
	add(ix, id, (uint32_t)at);
}

void jindex_removed(struct jindex *ix, uint32_t id, uint64_t at)
{
	uint32_t *sl;

	if (!noted(ix, at))
		return;
	if (ix->slots && *(sl = find(ix, id)))
		ix->v[*sl - 1].last = JINDEX_DEAD;
	if (room(ix, false))
		add(ix, 0, (uint32_t)at);
}

void jindex_other(struct jindex *ix, uint64_t at)
{
	if (noted(ix, at) && room(ix, false))
		add(ix, 0, (uint32_t)at);
}

static int by_first(const void *a, const void *b)
{
	const struct jindex_entry *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

int jindex_fold(const struct jindex *ix, const void *p, size_t len,
		struct fold *f, const char **why)
{
	struct jindex_entry *v = NULL;
	size_t n = 0;
	int rc = 0;

	if (ix->count && !(v = malloc(ix->count * sizeof(*v)))) {
		*why = "out of memory";
		return -1;
	}
	for (size_t i = 0; i < ix->count; i++)
		if (ix->v[i].last != JINDEX_DEAD)
			v[n++] = ix->v[i];
	if (n)	/* qsort's array may not be NULL */
		qsort(v, n, sizeof(*v), by_first);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct schema_change c;
		struct reader r;

		if (v[i].last >= len) {
			*why = "an indexed change is past the journal's end";
			rc = -1;
			break;
		}
		rd_init(&r, (const unsigned char *)p + v[i].last,
			len - v[i].last);
		if (!schema_read_change(&r, &c, false)) {
			*why = "an indexed offset holds no change";
			rc = -1;
		} else if (fold_add(f, &c) != 0) {
			*why = "out of memory";
			rc = -1;
		}
	}
	free(v);
	return rc;
}
