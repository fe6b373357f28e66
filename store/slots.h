/*
 * store/ internals: tables that name objects by 32-bit slots.
 *
 * A node record names its permission list (store.h) and its name
 * (names.h) by a slot of such a table, 4 bytes instead of a pointer's 8.
 * Slot 0 is never used (it means none); a freed slot is used again first.
 * Stores live on the loop's thread only.
 */
#ifndef XS_STORE_SLOTS_H
#define XS_STORE_SLOTS_H

#include <stdbool.h>
#include <stdint.h>

struct slot_table {
	/* items[slot]: the object's pointer, or for a free slot the next
	 * free one, odd: (next << 1) | 1. */
	uintptr_t *items;
	uint32_t cap;			/* slots allocated, 0 unused */
	uint32_t used;			/* slots handed out at least once */
	uint32_t free_head;		/* a free slot, or 0 */
	uint32_t limit;			/* slots are below it (0: 2^32) */
};

static inline void *slot_get(const struct slot_table *t, uint32_t slot)
{
	return (void *)t->items[slot];
}

/* Slot (held) now names p instead. */
static inline void slot_set(struct slot_table *t, uint32_t slot, void *p)
{
	t->items[slot] = (uintptr_t)p;
}

/* A slot holding p: 0 without memory for the table to grow, or with
 * every slot below the limit held. */
uint32_t slot_take(struct slot_table *t, void *p);
/* Give slot back (its object gone). */
void slot_give(struct slot_table *t, uint32_t slot);
/* Whether slot holds an object (for the stores' checks). */
bool slot_holds(const struct slot_table *t, uint32_t slot);

#endif
