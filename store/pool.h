/*
 * store/ internals: the node pool, where every node record lives.
 *
 * The records are one array in a reservation of address space made at
 * the first allocation (POOL_RESERVE records, fewer if the address space
 * is limited), of which the pool makes usable what it needs, POOL_STEP
 * records at a time.  So a node never moves (a pointer to it stays good
 * until it is freed), its id is its index in the array (below
 * 2^POOL_ID_BITS: a record's links keep their spare bits), and a
 * record carries neither its id nor an allocator header: the tree's links
 * and the path index hold ids, half the size of pointers.  Id 0 is never
 * handed out: it means "none".  Freed records are reused before the pool
 * grows; the pool never shrinks (the tree grows back to its size, as a
 * host's guests come back).
 *
 * One pool serves every store of the process, as malloc would: stores
 * live on the loop's thread only.
 */
#ifndef XS_STORE_POOL_H
#define XS_STORE_POOL_H

#include <stddef.h>
#include <stdint.h>

struct node;

/* Records made usable at a time: a whole number of pages for a record of
 * any multiple of 4 bytes. */
#define POOL_STEP 1024u
/* Bits of an id: the pool hands out none of 2^POOL_ID_BITS or more. */
#define POOL_ID_BITS 26

struct node_pool {
	struct node *base;		/* the array (NULL: not reserved yet) */
	uint32_t reserved;		/* records the reservation can hold */
	uint32_t usable;		/* records made usable, from the first */
	uint32_t fresh;			/* ids below it have been handed out */
	uint32_t free_head;		/* a freed record's id, or 0 */
	uint32_t nfree;			/* records on that list */
	uint32_t live;			/* records in use */
};

extern struct node_pool node_pool;

/* A zeroed record, or NULL with errno ENOMEM. */
struct node *pool_alloc(void);

/* Room for more records, so that that many pool_alloc cannot fail: 0,
 * or -1 with errno ENOMEM. */
int pool_reserve(size_t more);

/*
 * The whole pages of [p, p + len) made resident now, where the kernel
 * can (MADV_POPULATE_WRITE, Linux 5.14), in huge pages where it will
 * (MADV_HUGEPAGE: in their "madvise" mode, as the benchmark's machines
 * have them, transparent huge pages come only where asked for): for a
 * large allocation about to be written all over, cheaper than a fault
 * for each page, and its random accesses (the path index's) then miss
 * the TLB much less.  A load of a million nodes took 460 ms of CPU
 * instead of 650 for the huge pages.
 */
void populate(void *p, size_t len);

/* Give a record back (it may be handed out again at once). */
void pool_free(struct node *n);

/* Bytes the pool holds from the system, in use or not. */
size_t pool_bytes(void);

#endif
