/*
 * store/ internals: the nodes' names, each kept once.
 *
 * A host's nodes repeat a few dozen names: every guest's home holds the
 * same keys (name, domid, memory/target, device/vif/0/state...), and a
 * block of its own for each node's name cost about 10 bytes a node.  So
 * a name is interned: kept once, with a count of the nodes that bear it,
 * and a node names it by an id (never 0, below 2^NAMES_ID_BITS: 64
 * million names at once, as many as nodes), the index of its entry.
 * A table of ids, keyed by the names' keyed hash (guests choose names:
 * keyed_hash.h), finds the entry of a name.  An entry goes with the last
 * node that bears it, and its id is used again.
 *
 * One set of names serves every store of the process: stores live on
 * the loop's thread only.
 */
#ifndef XS_STORE_NAMES_H
#define XS_STORE_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/slots.h"

#define NAMES_ID_BITS 26

struct name_entry {
	uint32_t refs;			/* nodes (and prepared nodes) */
	uint32_t hash;			/* keyed_hash of the name */
	uint32_t len;			/* bytes, without the NUL */
	char s[];			/* the name and a NUL */
};

struct name_set {
	struct slot_table ids;		/* the entries by id (slots.h) */
	/* The ids by hash: open addressing with linear probing, at most
	 * three quarters full; 0 is an empty slot. */
	uint32_t *slots;
	uint32_t mask;			/* slots - 1 (0: no table yet) */
	uint32_t count;			/* names held */
};

extern struct name_set node_names;

/* The id of the name of len bytes at s, with one more reference: 0 with
 * errno ENOMEM when a new entry cannot be made. */
uint32_t name_intern(const char *s, size_t len);
/* One more reference on id. */
void name_ref(uint32_t id);
/* One reference fewer: the entry goes with the last. */
void name_unref(uint32_t id);

static inline const struct name_entry *name_entry(uint32_t id)
{
	return slot_get(&node_names.ids, id);
}

/* Whether id names a live entry (for store_check). */
bool name_valid(uint32_t id);

#endif
