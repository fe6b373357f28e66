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

#ifdef SLAB_OFF

/* A reference is a slot of this table (slots.h); each block is malloc's,
 * its length in the 4 bytes before the ones the slot names. */
struct slot_table slab_table;

#define HEAD sizeof(uint32_t)

slab_ref slab_alloc(size_t len)
{
	unsigned char *p = len && len <= SLAB_MAX ? malloc(HEAD + len) : NULL;
	slab_ref r = p ? slot_take(&slab_table, p + HEAD) : 0;
	uint32_t l = (uint32_t)len;

	if (!r) {
		free(p);
		errno = ENOMEM;
		return 0;
	}
	memcpy(p, &l, HEAD);
	return r;
}

void slab_free(slab_ref r)
{
	if (!r)
		return;
	free((unsigned char *)slab_ptr(r) - HEAD);
	slot_give(&slab_table, r);
}

slab_ref slab_resize(slab_ref r, size_t len)
{
	unsigned char *q = len && len <= SLAB_MAX ?
		realloc((unsigned char *)slab_ptr(r) - HEAD, HEAD + len) : NULL;
	uint32_t l = (uint32_t)len;

	if (!q) {
		errno = ENOMEM;
		return 0;
	}
	memcpy(q, &l, HEAD);
	slot_set(&slab_table, r, q + HEAD);
	return r;
}

void slab_forget_free(void)
{
}

size_t slab_bytes(void)
{
	return 0;
}

void slab_rest(void)
{
}

#else

/* The reservation: 2^32 bytes, every one a 32-bit reference can name,
 * halved while RLIMIT_AS refuses it.  Made usable SLAB_STEP bytes at a
 * time; advised for huge pages past SLAB_HUGE_AFTER. */
#define SLAB_RESERVE ((size_t)1 << 32)
#define SLAB_RESERVE_MIN ((size_t)64 << 20)
#define SLAB_HUGE ((size_t)2 << 20)
#define SLAB_STEP SLAB_HUGE
#define SLAB_HUGE_AFTER ((size_t)8 << 20)
/* The shortest block: a free one holds its list's next reference. */
#define SLAB_MIN_BLOCK sizeof(slab_ref)

struct slab_class {
	slab_ref free;			/* a freed block, whose first bytes name
					 * the next one */
	uint32_t left;			/* blocks at fresh */
	unsigned char *fresh;		/* never handed out, in its last chunk */
};

unsigned char *slab_base;
uint16_t *slab_page_len;
static size_t page_len_cap;		/* pages slab_page_len covers */
static size_t reserved, usable, carved;	/* bytes from slab_base */
static size_t chunk_bytes;
static struct slab_class classes[SLAB_MAX + 1];	/* by length */

static int reserve(void)
{
	for (size_t n = SLAB_RESERVE; n >= SLAB_RESERVE_MIN; n /= 2) {
		unsigned char *a = mmap(NULL, n + SLAB_HUGE, PROT_NONE,
					MAP_PRIVATE | MAP_ANONYMOUS |
						MAP_NORESERVE, -1, 0);

		if (a == MAP_FAILED)
			continue;
		/* Aligned so that a huge page can back each step. */
		slab_base = (unsigned char *)(((uintptr_t)a + SLAB_HUGE - 1) &
					      ~(uintptr_t)(SLAB_HUGE - 1));
		reserved = n;
		/* The first page is never a chunk's: reference 0 names
		 * nothing. */
		usable = 0;
		carved = SLAB_PAGE;
		return 0;
	}
	errno = ENOMEM;
	return -1;
}

/* A block's bytes for a value of len bytes. */
static size_t block_size(size_t len)
{
	return len < SLAB_MIN_BLOCK ? SLAB_MIN_BLOCK : len;
}

/* A chunk's size for blocks of size bytes: a page for the small ones,
 * else room for 16 of them in whole pages. */
static size_t chunk_size(size_t size)
{
	return size <= 256 ? SLAB_PAGE
			   : (16 * size + SLAB_PAGE - 1) / SLAB_PAGE * SLAB_PAGE;
}

/* slab_page_len covering pages up to the one before end: false without
 * memory. */
static bool page_lens_to(size_t end)
{
	size_t pages = end / SLAB_PAGE, cap = page_len_cap ? page_len_cap
							   : 1024;
	uint16_t *t;

	if (pages <= page_len_cap)
		return true;
	while (cap < pages)
		cap *= 2;
	if (!(t = realloc(slab_page_len, cap * sizeof(*t))))
		return false;
	memset(t + page_len_cap, 0, (cap - page_len_cap) * sizeof(*t));
	slab_page_len = t;
	page_len_cap = cap;
	return true;
}

/* A chunk of size bytes for blocks of len bytes. */
static unsigned char *new_chunk(size_t size, size_t len)
{
	unsigned char *p;

	if (!slab_base && reserve() != 0)
		return NULL;
	if (size > reserved - carved || !page_lens_to(carved + size)) {
		errno = ENOMEM;
		return NULL;
	}
	if (carved + size > usable) {
		size_t more = (carved + size - usable + SLAB_STEP - 1) /
			      SLAB_STEP * SLAB_STEP;
		size_t from = usable;

		if (more > reserved - usable)
			more = reserved - usable;
		if (mprotect(slab_base + usable, more,
			     PROT_READ | PROT_WRITE) != 0) {
			errno = ENOMEM;
			return NULL;
		}
		usable += more;
		if (usable > SLAB_HUGE_AFTER) {
			if (from < SLAB_HUGE_AFTER)
				from = SLAB_HUGE_AFTER;
			(void)madvise(slab_base + from, usable - from,
				      MADV_HUGEPAGE);
		}
	}
	p = slab_base + carved;
	for (size_t at = carved; at < carved + size; at += SLAB_PAGE)
		slab_page_len[at / SLAB_PAGE] = (uint16_t)len;
	carved += size;
	chunk_bytes += size;
	return p;
}

slab_ref slab_alloc(size_t len)
{
	struct slab_class *c;
	size_t size;
	unsigned char *p;

	if (!len || len > SLAB_MAX) {
		errno = ENOMEM;
		return 0;
	}
	c = &classes[len];
	size = block_size(len);
	if (c->free) {
		slab_ref r = c->free;

		memcpy(&c->free, slab_ptr(r), sizeof(c->free));
		return r;
	}
	if (!c->left) {
		size_t csize = chunk_size(size);

		if (!(c->fresh = new_chunk(csize, len)))
			return 0;
		c->left = (uint32_t)(csize / size);
	}
	p = c->fresh;
	c->fresh += size;
	c->left--;
	return (slab_ref)(p - slab_base);
}

void slab_free(slab_ref r)
{
	struct slab_class *c;

	if (!r)
		return;
	c = &classes[slab_len(r)];
	memcpy(slab_ptr(r), &c->free, sizeof(c->free));
	c->free = r;
}

slab_ref slab_resize(slab_ref r, size_t len)
{
	size_t old = slab_len(r);
	slab_ref q;

	if (len == old)
		return r;
	q = slab_alloc(len);
	if (!q)
		return 0;
	memcpy(slab_ptr(q), slab_ptr(r), old < len ? old : len);
	slab_free(r);
	return q;
}

void slab_forget_free(void)
{
	memset(classes, 0, sizeof(classes));
	if (carved < usable)
		carved = usable;
}

size_t slab_bytes(void)
{
	return chunk_bytes;
}

void slab_rest(void)
{
	/* carved is a whole number of pages (chunks are). */
	if (slab_base && usable > carved)
		(void)madvise(slab_base + carved, usable - carved,
			      MADV_DONTNEED);
}

#endif
