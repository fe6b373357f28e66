/*
 * Tables of slots (slots.h).
 */
#include <stdlib.h>

#include "store/slots.h"

uint32_t slot_take(struct slot_table *t, void *p)
{
	uint32_t slot;

	if (t->free_head) {
		slot = t->free_head;
		t->free_head = (uint32_t)(t->items[slot] >> 1);
	} else {
		if (t->limit && t->used + 1 >= t->limit)
			return 0;
		if (t->used + 1 >= t->cap) {
			uint32_t cap = t->cap ? t->cap * 2 : 64;
			uintptr_t *items;

			if (cap <= t->cap)
				return 0;
			items = realloc(t->items, cap * sizeof(*items));
			if (!items)
				return 0;
			items[0] = 0;
			t->items = items;
			t->cap = cap;
		}
		slot = ++t->used;
	}
	t->items[slot] = (uintptr_t)p;
	return slot;
}

void slot_give(struct slot_table *t, uint32_t slot)
{
	t->items[slot] = ((uintptr_t)t->free_head << 1) | 1;
	t->free_head = slot;
}

bool slot_holds(const struct slot_table *t, uint32_t slot)
{
	return slot && slot <= t->used && !(t->items[slot] & 1);
}
