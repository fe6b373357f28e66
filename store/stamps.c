/*
 * When nodes last changed, for the open transactions (stamps.h).
 */
#include <stdlib.h>

#include "store/stamps.h"

#define STAMPS_MIN 64

static size_t home(uint32_t id, size_t mask)
{
	return (size_t)(((uint64_t)id * UINT64_C(0x9e3779b97f4a7c15)) >> 32) &
	       mask;
}

static struct stamp *find(const struct stamps *st, uint32_t id)
{
	size_t i = home(id, st->mask);

	while (st->slots[i].id && st->slots[i].id != id)
		i = (i + 1) & st->mask;
	return &st->slots[i];
}

static uint64_t latest(const struct stamp *e)
{
	return e->gen > e->cgen ? e->gen : e->cgen;
}

/* Move the entries changed after floor into a table of enough slots for
 * them to fill it at most three eighths (so that it need not move again
 * soon): false, the table as it was, on ENOMEM. */
static bool rebuild(struct stamps *st, uint64_t floor)
{
	size_t keep = 0, cap = STAMPS_MIN, old_cap = st->slots ? st->mask + 1 : 0;
	struct stamps fresh = { 0 };

	for (size_t i = 0; i < old_cap; i++)
		if (st->slots[i].id && latest(&st->slots[i]) > floor)
			keep++;
	while (cap * 3 < (keep + 1) * 8)
		cap *= 2;
	fresh.slots = calloc(cap, sizeof(*fresh.slots));
	if (!fresh.slots)
		return false;
	fresh.mask = cap - 1;
	for (size_t i = 0; i < old_cap; i++) {
		const struct stamp *e = &st->slots[i];

		if (e->id && latest(e) > floor) {
			*find(&fresh, e->id) = *e;
			fresh.count++;
		}
	}
	free(st->slots);
	*st = fresh;
	return true;
}

void stamps_put(struct stamps *st, uint32_t id, uint64_t gen,
		unsigned int what, uint64_t floor)
{
	struct stamp *e;

	if (st->lost)
		return;
	if (!st->slots || (st->count + 1) * 4 > (st->mask + 1) * 3) {
		/* Without a new table, the last free slot still takes one
		 * (a probe needs an empty slot to end on). */
		if (!rebuild(st, floor) &&
		    (!st->slots || st->count + 2 > st->mask + 1)) {
			stamps_clear(st);
			st->lost = true;
			return;
		}
	}
	e = find(st, id);
	if (!e->id) {
		e->id = id;
		e->gen = e->cgen = 0;
		st->count++;
	}
	if (what & STAMP_NODE)
		e->gen = gen;
	if (what & STAMP_LIST)
		e->cgen = gen;
}

struct stamp stamps_get(const struct stamps *st, uint32_t id)
{
	struct stamp none = { .id = id };

	return st->slots ? *find(st, id) : none;
}

void stamps_clear(struct stamps *st)
{
	free(st->slots);
	*st = (struct stamps){ 0 };
}
