/*
 * store/ internals: the blocks that hold nodes' values.
 *
 * A node's value is one block (store.h; an empty value none, and names
 * are interned, names.h), which the node names by a 32-bit reference, not
 * a pointer, and whose length the slab knows: the node record keeps
 * neither a pointer nor a length.  From malloc a block costs its length
 * plus an 8-byte header, rounded up to 16 bytes and at least 32: a host's
 * typical value of 10 to 40 bytes would pay 32 to 48.  Here each length
 * is a class of its own, its blocks exactly that long (4 bytes at least,
 * where a freed one keeps its free list's link), with no header: a chunk
 * holds blocks of one length only, so a table of a 16-bit length a page
 * of the reservation says how long any block is (slab_len).  Classes 4
 * bytes apart, as they were, cost a host's values 1.5 bytes each on
 * average and their nodes 2 bytes of record for the length.  A class
 * carves its blocks out of chunks (4 KiB for blocks of up to 256 bytes),
 * and the chunks are carved one after another out of one reservation of
 * address space made at the first allocation: SLAB_RESERVE bytes, fewer
 * while the address space limit (RLIMIT_AS) refuses them, none of it
 * memory until made usable.  A reference is a block's offset in the
 * reservation, so 32 bits reach every byte of it: 4 GiB of values, a
 * thousand times a host's.  Past 8 MiB of chunks the kernel may
 * back the reservation with huge pages (a load of a million nodes faulted
 * 14,000 small pages one at a time otherwise, and took 440 ms of CPU
 * instead of 390); a smaller store never gets one.  A freed block goes on
 * its class's free list and is used again before the class takes a new
 * chunk; chunks stay for the life of the process, as the node pool's
 * records do (a host's guests come back).
 *
 * Under AddressSanitizer every block is malloc's, its length in 4 bytes
 * before it, so that the sanitizer sees each one's bounds, and a
 * reference is a slot of a table of them (slots.h).
 * Stores live on the loop's thread only.
 */
#ifndef XS_STORE_SLAB_H
#define XS_STORE_SLAB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/slots.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_OFF 1
#endif
#endif

/* A block; 0: none. */
typedef uint32_t slab_ref;

/* The longest block (a node's value is at most NODE_VALUE_MAX): its
 * length is 16 bits. */
#define SLAB_MAX 65535
#define SLAB_PAGE 4096

/* A block of len (1 .. SLAB_MAX) bytes: 0 with errno ENOMEM. */
slab_ref slab_alloc(size_t len);
/* r made len (1 .. SLAB_MAX) bytes long, its first bytes kept: the new
 * block (r itself when its length was len already, else r is freed), or
 * 0 with errno ENOMEM and r as it was. */
slab_ref slab_resize(slab_ref r, size_t len);
/* Give back r (0: nothing). */
void slab_free(slab_ref r);
/*
 * For the failure-injection tests: every class forgets its free and
 * fresh blocks (they stay allocated), and the usable part of the
 * reservation left after the last chunk is skipped, so that the next
 * block takes a new chunk that needs more of the reservation made
 * usable: an mprotect(2) that a test can make fail.
 */
void slab_forget_free(void);
/* Bytes of the chunks carved, in use or not. */
size_t slab_bytes(void);
/*
 * At rest: the reservation made usable past the last chunk given back.
 * It is made usable 2 MiB at a time and may be backed by a huge page
 * the moment a chunk first touches it, of which the chunks may use
 * little: up to 2 MB of a host's memory at rest held for nothing (the
 * benchmark's million nodes ended a huge page past their values or not,
 * by a few chunks, 2 bytes a node either way).  That huge page is split
 * and the pages past the chunks freed; the next chunks fault small pages
 * there, then a huge page again past it.
 */
void slab_rest(void);

#ifdef SLAB_OFF
extern struct slot_table slab_table;
#else
extern unsigned char *slab_base;
extern uint16_t *slab_page_len;	/* by page of the reservation carved */
#endif

/* The bytes of block r (not 0). */
static inline void *slab_ptr(slab_ref r)
{
#ifdef SLAB_OFF
	return slot_get(&slab_table, r);
#else
	return slab_base + r;
#endif
}

/* The length of block r (not 0). */
static inline size_t slab_len(slab_ref r)
{
#ifdef SLAB_OFF
	uint32_t len;

	memcpy(&len, (const unsigned char *)slab_ptr(r) - sizeof(len),
	       sizeof(len));
	return len;
#else
	return slab_page_len[r / SLAB_PAGE];
#endif
}

#endif
