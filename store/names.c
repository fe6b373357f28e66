/*
 * The nodes' names (names.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/keyed_hash.h"
#include "store/names.h"
#include "store/probe.h"

struct name_set node_names = { .ids = { .limit = 1u << NAMES_ID_BITS } };

/* The slot of id, whose name has hash h (it is in the table). */
static uint32_t *slot_of(uint32_t id, uint32_t h)
{
	struct name_set *t = &node_names;
	uint32_t i = h & t->mask;

	while (t->slots[i] != id)
		i = (i + 1) & t->mask;
	return &t->slots[i];
}

/* Room in the table for one more name: false without memory. */
static int table_room(void)
{
	struct name_set *t = &node_names;
	uint32_t cap = t->mask + 1, *slots;

	if (t->mask && (uint64_t)(t->count + 1) * 4 <= (uint64_t)cap * 3)
		return 1;
	cap = t->mask ? cap * 2 : 64;
	if (!cap)
		return 0;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return 0;
	for (uint32_t i = 0; t->mask && i <= t->mask; i++)
		if (t->slots[i])
			probe_place(slots, cap - 1,
				    name_entry(t->slots[i])->hash & (cap - 1),
				    t->slots[i]);
	free(t->slots);
	t->slots = slots;
	t->mask = cap - 1;
	return 1;
}

uint32_t name_intern(const char *s, size_t len)
{
	struct name_set *t = &node_names;
	uint32_t h = keyed_hash(s, len), id;
	struct name_entry *e;

	for (uint32_t i = h & t->mask; t->mask && (id = t->slots[i]);
	     i = (i + 1) & t->mask) {
		const struct name_entry *c = name_entry(id);

		if (c->hash == h && c->len == len && !memcmp(c->s, s, len)) {
			name_ref(id);
			return id;
		}
	}
	if (len > UINT32_MAX - 1 || !table_room())
		goto nomem;
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		goto nomem;
	e->refs = 1;
	e->hash = h;
	e->len = (uint32_t)len;
	memcpy(e->s, s, len);
	e->s[len] = '\0';
	id = slot_take(&t->ids, e);
	if (!id) {
		free(e);
		goto nomem;
	}
	probe_place(t->slots, t->mask, h & t->mask, id);
	t->count++;
	return id;

nomem:
	errno = ENOMEM;
	return 0;
}

void name_ref(uint32_t id)
{
	((struct name_entry *)slot_get(&node_names.ids, id))->refs++;
}

void name_unref(uint32_t id)
{
	struct name_set *t = &node_names;
	struct name_entry *e = slot_get(&t->ids, id);
	uint32_t *hole, i, j;

	if (--e->refs)
		return;
	/* Out of the table, the ids after it in its run moved back so that
	 * each is still reached from its home slot (probe.h). */
	hole = slot_of(id, e->hash);
	i = (uint32_t)(hole - t->slots);
	for (j = (i + 1) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
		if (probe_may_fill(i, j,
				   name_entry(t->slots[j])->hash & t->mask)) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	t->slots[i] = 0;
	t->count--;
	slot_give(&t->ids, id);
	free(e);
}

bool name_valid(uint32_t id)
{
	return slot_holds(&node_names.ids, id) && name_entry(id)->refs;
}
