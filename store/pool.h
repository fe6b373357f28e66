/*
 * store/ internals: the node pool, where every node record lives.
 *
 * Records are fixed-size and sit in chunks of POOL_CHUNK of them, so a
 * node never moves (a pointer to it stays good until it is freed) and can
 * also be named by a 32-bit id: the tree's links and the path index hold
 * ids, half the size of pointers, and a record carries no allocator
 * header.  Id 0 is never handed out: it means "none".  Freed records are
 * reused before the pool grows; chunks are kept for the life of the
 * process (the tree grows back to its size, as a host's guests come back).
 *
 * One pool serves every store of the process, as malloc would: stores
 * live on the loop's thread only.
 */
#ifndef XS_STORE_POOL_H
#define XS_STORE_POOL_H

#include <stddef.h>
#include <stdint.h>

struct node;

#define POOL_CHUNK_BITS 10
#define POOL_CHUNK (1u << POOL_CHUNK_BITS)

struct node_pool {
	struct node **chunks;		/* [nchunks], each POOL_CHUNK records */
	uint32_t nchunks;
	uint32_t fresh;			/* ids below it have been handed out */
	uint32_t free_head;		/* a freed record's id, or 0 */
	uint32_t nfree;			/* records on that list */
	uint32_t live;			/* records in use */
};

extern struct node_pool node_pool;

/* A zeroed record with its id set, or NULL with errno ENOMEM. */
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
