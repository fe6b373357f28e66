/*
 * persist/ internals: where the live journal holds each node's last
 * change.
 *
 * The event loop notes, for every change it records, its offset in the
 * journal: a node's put under the node's pool id (only its first and
 * last offsets are kept), anything else (a removal, a '#' record) as it
 * is.  The compaction of that journal then reads one change a node, not
 * every change: 64 writes in flight to 1,000 nodes fill a 4 MiB journal
 * with about 40,000 changes, and reading each back cold and folding it
 * was a fifth of the daemon's CPU.
 *
 * Node ids are exact keys while a node lives: a node's path never
 * changes, and every node freed was reported removed first (store.h), so
 * an id used again starts a new entry.  A journal of mostly distinct
 * nodes (a fill, a guest's boot) gains nothing: past JINDEX_MIN entries
 * with fewer than two changes an entry, the index is given up and the
 * compaction reads the whole journal, as it does for any journal this
 * daemon did not write from its start.
 */
#ifndef XS_JINDEX_H
#define XS_JINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persist/journal.h"

#define JINDEX_MIN 16384

struct jindex_entry {
	uint32_t id;		/* the node's; 0: a change kept as it is */
	uint32_t first;		/* the offset of its first change */
	uint32_t last;		/* of its last (JINDEX_DEAD: removed since) */
};

#define JINDEX_DEAD UINT32_MAX

/*
 * A node's entry lives in its slot of an open-addressing table, not
 * behind it, so that one prefetch (jindex_prefetch) brings all a put
 * needs: the writes to a thousand nodes in turn leave none of it in
 * cache, and two misses a put were a fifth of the database's own cost a
 * pipelined WRITE.
 */
struct jindex {
	bool off;		/* given up, or never started */
	struct jindex_entry *slots;	/* by id (id 0: empty), at most half
					 * full */
	size_t mask;		/* slots - 1, a power of two */
	size_t nodes;		/* entries in slots */
	uint32_t *v;		/* the other changes' offsets */
	size_t others, cap;
	size_t changes;		/* noted since the journal's start */
};

/* An empty index, taking notes. */
void jindex_init(struct jindex *ix);
/* Free it, or give it up: it is off then (its journal is read whole). */
void jindex_free(struct jindex *ix);

/* Where id's entry is looked for first.  Ids are dense: a multiply
 * spreads neighbours apart. */
static inline size_t jindex_slot(const struct jindex *ix, uint32_t id)
{
	return (size_t)(id * 0x9e3779b1u) & ix->mask;
}

/* Entries: nodes and other changes. */
static inline size_t jindex_count(const struct jindex *ix)
{
	return ix->nodes + ix->others;
}

/* A put at offset at of the node whose entry e is. */
static inline void jindex_entry_put(struct jindex_entry *e, uint64_t at)
{
	if (e->last == JINDEX_DEAD)	/* a new node */
		e->first = (uint32_t)at;
	e->last = (uint32_t)at;
}

/* A put of node id is coming: its slot is fetched meanwhile. */
static inline void jindex_prefetch(const struct jindex *ix, uint32_t id)
{
	if (ix->slots)
		__builtin_prefetch(&ix->slots[jindex_slot(ix, id)], 1);
}
/* A put of node id at offset at. */
void jindex_put_slow(struct jindex *ix, uint32_t id, uint64_t at);
static inline void jindex_put(struct jindex *ix, uint32_t id, uint64_t at)
{
	struct jindex_entry *e;

	/* Inline where the node has its entry at its slot already (most
	 * puts of a busy journal); else the whole rule (jindex.c). */
	if (!ix->off && at < JINDEX_DEAD && ix->slots &&
	    (e = &ix->slots[jindex_slot(ix, id)])->id == id) {
		ix->changes++;
		jindex_entry_put(e, at);
		return;
	}
	jindex_put_slow(ix, id, at);
}
/* Node id removed, the removal at offset at: its puts no longer count. */
void jindex_removed(struct jindex *ix, uint32_t id, uint64_t at);
/* Any other change, at offset at. */
void jindex_other(struct jindex *ix, uint64_t at);

/*
 * Fold the changes ix points at, in the len bytes of the journal at p,
 * into f, in the order of their keys' first changes: the same last change
 * of each key as a fold of the whole journal (journal_scan, fold_change).
 * 0, or -1 with *why (memory ran out, or an offset is not a change).
 */
int jindex_fold(const struct jindex *ix, const void *p, size_t len,
		struct fold *f, const char **why);

#endif
