/*
 * Blocks for nodes' values (slab.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "store/slab.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_OFF 1
#endif
#endif

#define SLAB_GRAIN 8
#define SLAB_CLASSES (SLAB_MAX / SLAB_GRAIN)
/* A chunk is one 4 KiB malloc block: its header and this. */
#define SLAB_CHUNK (4096 - 16)

struct chunk {
	struct chunk *next;		/* every chunk, for the leak checker */
	unsigned char slots[];
};

struct slab_class {
	void *free;			/* a freed block, whose first bytes name
					 * the next one */
	unsigned char *fresh;		/* never handed out, in the last chunk */
	size_t left;			/* blocks there */
};

static struct slab_class classes[SLAB_CLASSES];
static struct chunk *chunks;
static size_t nchunks;

static size_t class_of(size_t len)
{
	return (len + SLAB_GRAIN - 1) / SLAB_GRAIN - 1;
}

/* Is a block of len bytes a slab's (else malloc's)? */
static bool in_slab(size_t len)
{
#ifdef SLAB_OFF
	(void)len;
	return false;
#else
	return len && len <= SLAB_MAX;
#endif
}

/*
 * A chunk's bytes.  Once the chunks hold SLAB_REGION_AFTER bytes, they are
 * carved one after another out of regions of SLAB_REGION bytes that the
 * kernel may back with huge pages (pool.h's populate): a load of a
 * million nodes faults 14,000 small pages in one at a time otherwise,
 * and took 440 ms of CPU instead of 390.  A store below it (100,000
 * nodes of a host's shape take 4 MB) still takes one malloc'd chunk at a
 * time, so that a huge page never holds a small store's few chunks.
 */
#define SLAB_REGION (2u << 20)
#define SLAB_REGION_AFTER (8u << 20)

static unsigned char *region;	/* the current region's unused bytes */
static size_t region_left;

static struct chunk *new_chunk(void)
{
	void *r;

	if (slab_bytes() < SLAB_REGION_AFTER)
		return malloc(SLAB_CHUNK);
	if (region_left < SLAB_CHUNK) {
		if (posix_memalign(&r, SLAB_REGION, SLAB_REGION) != 0)
			return NULL;
		(void)madvise(r, SLAB_REGION, MADV_HUGEPAGE);
		region = r;
		region_left = SLAB_REGION;
	}
	r = region;
	region += SLAB_CHUNK;
	region_left -= SLAB_CHUNK;
	return r;
}

void *slab_alloc(size_t len)
{
	struct slab_class *c;
	size_t cls, size;
	void *p;

	if (!in_slab(len)) {
		p = malloc(len ? len : 1);
		if (!p)
			errno = ENOMEM;
		return p;
	}
	cls = class_of(len);
	c = &classes[cls];
	size = (cls + 1) * SLAB_GRAIN;
	if (c->free) {
		p = c->free;
		memcpy(&c->free, p, sizeof(void *));
		return p;
	}
	if (!c->left) {
		struct chunk *k = new_chunk();

		if (!k) {
			errno = ENOMEM;
			return NULL;
		}
		k->next = chunks;
		chunks = k;
		nchunks++;
		c->fresh = k->slots;
		c->left = (SLAB_CHUNK - sizeof(*k)) / size;
	}
	p = c->fresh;
	c->fresh += size;
	c->left--;
	return p;
}

void slab_free(void *p, size_t len)
{
	if (!p)
		return;
	if (in_slab(len)) {
		struct slab_class *c = &classes[class_of(len)];

		memcpy(p, &c->free, sizeof(void *));
		c->free = p;
		return;
	}
	free(p);
}

void *slab_resize(void *p, size_t old, size_t len)
{
	void *q;

	if (!in_slab(old) && !in_slab(len)) {
		q = realloc(p, len ? len : 1);
		if (!q)
			errno = ENOMEM;
		return q;
	}
	if (in_slab(old) && in_slab(len) && class_of(old) == class_of(len))
		return p;
	q = slab_alloc(len);
	if (!q)
		return NULL;
	memcpy(q, p, old < len ? old : len);
	slab_free(p, old);
	return q;
}

void slab_forget_free(void)
{
	memset(classes, 0, sizeof(classes));
}

size_t slab_bytes(void)
{
	return nchunks * SLAB_CHUNK;
}
