/*
 * The node pool (pool.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store/pool.h"
#include "store/store.h"

#if defined(__SANITIZE_ADDRESS__)
#define POOL_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_LSAN 1
#endif
#endif
#ifdef POOL_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* The reservation: 2^26 records (1.25 GiB of address space for 20-byte
 * ones, none of it memory until made usable), halved while the address
 * space limit (RLIMIT_AS) refuses it.  The path index names a node in
 * INDEX_ID_BITS bits (index.h), a record its relatives in POOL_ID_BITS
 * (store.h): no id may be larger. */
#define POOL_RESERVE (1u << POOL_ID_BITS)
_Static_assert(POOL_ID_BITS <= INDEX_ID_BITS, "an id the index cannot name");
#define POOL_RESERVE_MIN (POOL_STEP * 16)

struct node_pool node_pool;

static int reserve(void)
{
	struct node_pool *p = &node_pool;

	for (uint32_t n = POOL_RESERVE; n >= POOL_RESERVE_MIN; n /= 2) {
		void *a = mmap(NULL, (size_t)n * sizeof(struct node), PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			       -1, 0);

		if (a == MAP_FAILED)
			continue;
		p->base = a;
		p->reserved = n;
		p->fresh = 1;		/* id 0 means none */
#ifdef POOL_LSAN
		/* The records hold the only pointers to their values and
		 * permission lists; the leak checker scans only what it is
		 * told of outside malloc's blocks (its readable pages). */
		__lsan_register_root_region(a, (size_t)n * sizeof(struct node));
#endif
		return 0;
	}
	errno = ENOMEM;
	return -1;
}

/* Records [usable, usable + n) made usable (n a multiple of POOL_STEP). */
static int grow(uint32_t n)
{
	struct node_pool *p = &node_pool;

	if (!p->base && reserve() != 0)
		return -1;
	if (n > p->reserved - p->usable ||
	    mprotect(p->base + p->usable, (size_t)n * sizeof(struct node),
		     PROT_READ | PROT_WRITE) != 0) {
		errno = ENOMEM;
		return -1;
	}
	p->usable += n;
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
	size_t have = p->nfree +
		      (size_t)(p->usable > p->fresh ? p->usable - p->fresh : 0);
	uint32_t from = p->usable;
	size_t n;

	if (more <= have)
		return 0;
	n = (more - have + POOL_STEP - 1) / POOL_STEP * POOL_STEP;
	if (n > UINT32_MAX || grow((uint32_t)n) != 0) {
		errno = ENOMEM;
		return -1;
	}
	/* Many records at once (a load): their pages made at once, which
	 * costs much less than a fault for each page (a third of a load's
	 * time before).  Without MADV_POPULATE_WRITE (Linux 5.14) the pages
	 * come as they are touched, as usual. */
	populate(p->base + from, n * sizeof(struct node));
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
		if (p->fresh >= p->usable && grow(POOL_STEP) != 0)
			return NULL;
		id = p->fresh++;
	}
	n = p->base + id;
	memset(n, 0, sizeof(*n));
	p->live++;
	return n;
}

void pool_free(struct node *n)
{
	uint32_t id = node_id(n);

	memset(n, 0, sizeof(*n));
	n->next_id = node_pool.free_head;
	node_pool.free_head = id;
	node_pool.nfree++;
	node_pool.live--;
}

size_t pool_bytes(void)
{
	return (size_t)node_pool.usable * sizeof(struct node);
}
