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

/* id's entry, or the empty slot it would take. */
static struct jindex_entry *find(const struct jindex *ix, uint32_t id)
{
	for (size_t i = jindex_slot(ix, id);; i = (i + 1) & ix->mask) {
		struct jindex_entry *e = &ix->slots[i];

		if (!e->id || e->id == id)
			return e;
	}
}

/* Fewer than two changes an entry: reading the whole journal back costs
 * little more than keeping this. */
static bool worth_it(const struct jindex *ix)
{
	size_t count = jindex_count(ix);

	return count < JINDEX_MIN || ix->changes >= 2 * count;
}

/* Room for one more node (slots at most half full); false: given up. */
static bool node_room(struct jindex *ix)
{
	struct jindex_entry *old = ix->slots;
	size_t n = old ? 2 * (ix->mask + 1) : 512, was = old ? ix->mask + 1 : 0;

	if (!worth_it(ix))
		goto give_up;
	if (old && 2 * (ix->nodes + 1) <= ix->mask + 1)
		return true;
	if (!(ix->slots = calloc(n, sizeof(*ix->slots)))) {
		ix->slots = old;
		goto give_up;
	}
	ix->mask = n - 1;
	for (size_t i = 0; i < was; i++)
		if (old[i].id)
			*find(ix, old[i].id) = old[i];
	free(old);
	return true;

give_up:
	jindex_free(ix);
	return false;
}

/* Room for one more other change; false: given up. */
static bool other_room(struct jindex *ix)
{
	if (!worth_it(ix))
		goto give_up;
	if (ix->others == ix->cap) {
		size_t cap = ix->cap ? 2 * ix->cap : 256;
		uint32_t *v = realloc(ix->v, cap * sizeof(*v));

		if (!v)
			goto give_up;
		ix->v = v;
		ix->cap = cap;
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

static void add_other(struct jindex *ix, uint32_t at)
{
	ix->v[ix->others++] = at;
}

void jindex_put_slow(struct jindex *ix, uint32_t id, uint64_t at)
{
	struct jindex_entry *e;

	if (!noted(ix, at))
		return;
	if (ix->slots && (e = find(ix, id))->id) {
		jindex_entry_put(e, at);
		return;
	}
	if (!node_room(ix))
		return;
	*find(ix, id) = (struct jindex_entry){ id, (uint32_t)at, (uint32_t)at };
	ix->nodes++;
}

void jindex_removed(struct jindex *ix, uint32_t id, uint64_t at)
{
	struct jindex_entry *e;

	if (!noted(ix, at))
		return;
	if (ix->slots && (e = find(ix, id))->id)
		e->last = JINDEX_DEAD;
	if (other_room(ix))
		add_other(ix, (uint32_t)at);
}

void jindex_other(struct jindex *ix, uint64_t at)
{
	if (noted(ix, at) && other_room(ix))
		add_other(ix, (uint32_t)at);
}

static int by_first(const void *a, const void *b)
{
	const struct jindex_entry *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* The change at offset at of the len bytes at p, into f: 0, or -1 with
 * *why. */
static int fold_at(const void *p, size_t len, uint32_t at, struct fold *f,
		   const char **why)
{
	struct schema_change c;
	struct reader r;

	if (at >= len) {
		*why = "an indexed change is past the journal's end";
		return -1;
	}
	rd_init(&r, (const unsigned char *)p + at, len - at);
	if (!schema_read_change(&r, &c, false)) {
		*why = "an indexed offset holds no change";
		return -1;
	}
	if (fold_add(f, &c) != 0) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

int jindex_fold(const struct jindex *ix, const void *p, size_t len,
		struct fold *f, const char **why)
{
	struct jindex_entry *v = NULL;
	size_t n = 0;
	int rc = 0;

	if (jindex_count(ix) &&
	    !(v = malloc(jindex_count(ix) * sizeof(*v)))) {
		*why = "out of memory";
		return -1;
	}
	for (size_t i = 0; ix->slots && i <= ix->mask; i++)
		if (ix->slots[i].id && ix->slots[i].last != JINDEX_DEAD)
			v[n++] = ix->slots[i];
	for (size_t i = 0; i < ix->others; i++)
		v[n++] = (struct jindex_entry){ 0, ix->v[i], ix->v[i] };
	if (n)	/* qsort's array may not be NULL */
		qsort(v, n, sizeof(*v), by_first);
	for (size_t i = 0; i < n && rc == 0; i++) {
		/* A node's first put too: where the journal made the node,
		 * it holds the birth its later puts say is "as before". */
		if (v[i].first != v[i].last)
			rc = fold_at(p, len, v[i].first, f, why);
		if (rc == 0)
			rc = fold_at(p, len, v[i].last, f, why);
	}
	free(v);
	return rc;
}
