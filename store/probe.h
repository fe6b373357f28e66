/*
 * store/ internals: what the store's open-addressing tables (index.h,
 * names.h) share.  Both probe linearly and delete without tombstones:
 * the entries after a removed one in its run move back over the gap, so
 * that a probe never stops short of them.
 */
#ifndef XS_STORE_PROBE_H
#define XS_STORE_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Put v (not 0) in the first empty slot from home, of mask + 1 slots. */
static inline void probe_place(uint32_t *slots, size_t mask, size_t home,
			       uint32_t v)
{
	while (slots[home])
		home = (home + 1) & mask;
	slots[home] = v;
}

/* Is slot j, whose entry's home is home, outside the run (gap, j]?  Then
 * the entry may move back into gap (backward-shift deletion). */
static inline bool probe_may_fill(size_t gap, size_t j, size_t home)
{
	return gap <= j ? home <= gap || home > j : home <= gap && home > j;
}

#endif
