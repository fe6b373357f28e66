/*
 * The node pool (pool.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/pool.h"
#include "store/store.h"

struct node_pool node_pool;

/* One more chunk, so that ids up to fresh + POOL_CHUNK exist. */
static int grow(void)
{
	struct node_pool *p = &node_pool;
	struct node **chunks, *chunk;

	if (p->nchunks >= UINT32_MAX >> POOL_CHUNK_BITS) {
		errno = ENOMEM;
		return -1;
	}
	chunks = realloc(p->chunks, (p->nchunks + 1) * sizeof(*chunks));
	if (!chunks)
		return -1;
	p->chunks = chunks;
	chunk = calloc(POOL_CHUNK, sizeof(*chunk));
	if (!chunk)
		return -1;
	chunks[p->nchunks++] = chunk;
	if (p->fresh == 0)
		p->fresh = 1;	/* id 0 means none */
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
	node_pool.live--;
}

size_t pool_bytes(void)
{
	return (size_t)node_pool.nchunks * POOL_CHUNK * sizeof(struct node);
}
