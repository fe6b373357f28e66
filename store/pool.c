/*
 * The node pool (pool.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store/pool.h"
#include "store/store.h"

struct node_pool node_pool;

/* Room in the chunk table for n more chunks. */
static int grow_table(uint32_t n)
{
	struct node_pool *p = &node_pool;
	struct node **chunks;

	if (n > (UINT32_MAX >> POOL_CHUNK_BITS) - p->nchunks) {
		errno = ENOMEM;
		return -1;
	}
	chunks = realloc(p->chunks, (p->nchunks + n) * sizeof(*chunks));
	if (!chunks)
		return -1;
	p->chunks = chunks;
	return 0;
}

static void add_chunk(struct node *chunk)
{
	node_pool.chunks[node_pool.nchunks++] = chunk;
	if (node_pool.fresh == 0)
		node_pool.fresh = 1;	/* id 0 means none */
}

/* One more chunk, so that ids up to fresh + POOL_CHUNK exist. */
static int grow(void)
{
	struct node *chunk;

	if (grow_table(1) != 0)
		return -1;
	chunk = calloc(POOL_CHUNK, sizeof(*chunk));
	if (!chunk)
		return -1;
	add_chunk(chunk);
	return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void populate(void *p, size_t len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1);
	uintptr_t end = ((uintptr_t)p + len) & ~(page - 1);

	if (end > start) {
		(void)madvise((void *)start, end - start, MADV_HUGEPAGE);
		(void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
	}
}

int pool_reserve(size_t more)
{
	struct node_pool *p = &node_pool;
	size_t have = p->nfree + (size_t)p->nchunks * POOL_CHUNK - p->fresh;
	size_t n, bytes;
	char *region;

	if (more <= have)
		return 0;
	n = (more - have + POOL_CHUNK - 1) / POOL_CHUNK;
	if (n > UINT32_MAX >> POOL_CHUNK_BITS || grow_table((uint32_t)n) != 0) {
		errno = ENOMEM;
		return -1;
	}
	/* Many chunks at once (a load): one allocation, its pages made at
	 * once, which costs much less than a fault for each page (a third
	 * of a load's time before).  Without MADV_POPULATE_WRITE (Linux
	 * 5.14) the pages come as they are touched, as usual. */
	bytes = n * POOL_CHUNK * sizeof(struct node);
	region = calloc(n * POOL_CHUNK, sizeof(struct node));
	if (!region) {
		errno = ENOMEM;
		return -1;
	}
	populate(region, bytes);
	for (size_t i = 0; i < n; i++)
		add_chunk((struct node *)(region +
					  i * POOL_CHUNK * sizeof(struct node)));
	return 0;
}

struct node *pool_alloc(void)
{
	struct node_pool *p = &node_pool;
	struct node *n;
	uint32_t id;

	if (p->free_head) {
		id = p->free_head;
		p->free_head = pool_node(id)->next_id;
		p->nfree--;
	} else {
		if (p->fresh >= p->nchunks * POOL_CHUNK && grow() != 0) {
			errno = ENOMEM;
			return NULL;
		}
		id = p->fresh++;
	}
	n = &p->chunks[id >> POOL_CHUNK_BITS][id & (POOL_CHUNK - 1)];
	memset(n, 0, sizeof(*n));
	n->id = id;
	p->live++;
	return n;
}

void pool_free(struct node *n)
{
	uint32_t id = n->id;

	memset(n, 0, sizeof(*n));
	n->next_id = node_pool.free_head;
	node_pool.free_head = id;
	node_pool.nfree++;
	node_pool.live--;
}

size_t pool_bytes(void)
{
	return (size_t)node_pool.nchunks * POOL_CHUNK * sizeof(struct node);
}
