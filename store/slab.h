/*
 * store/ internals: the blocks that hold nodes' values.
 *
 * A node's value is one block (store.h; an empty value none, and names
 * are interned, names.h).  From malloc a block costs its length plus an
 * 8-byte header, rounded up to 16 bytes and at least 32: a host's
 * typical value of 10 to 40 bytes would pay 32 to 48.  Here a block of up to SLAB_MAX
 * bytes comes from one of the classes 8 bytes apart, carved out of 4 KiB
 * chunks (past 8 MiB of them, the chunks are carved out of 2 MiB regions
 * in huge pages), with no header: whoever frees or resizes a block says
 * how long it is (a node knows).  A freed block goes on its class's free
 * list and is used again before the class takes a new chunk; chunks stay
 * for the life of the process, as the node pool's do (a host's guests
 * come back).  Longer blocks are malloc's.
 *
 * Under AddressSanitizer every block is malloc's, so that the sanitizer
 * sees each one's bounds.  Stores live on the loop's thread only.
 */
#ifndef XS_STORE_SLAB_H
#define XS_STORE_SLAB_H

#include <stddef.h>

#define SLAB_MAX 256

/* A block of len (>= 1) bytes: NULL with errno ENOMEM. */
void *slab_alloc(size_t len);
/* p, of old bytes, made len bytes long (its first bytes kept): the new
 * block, or NULL with errno ENOMEM and p as it was. */
void *slab_resize(void *p, size_t old, size_t len);
/* Give back p, a block of len bytes (NULL: nothing). */
void slab_free(void *p, size_t len);
/*
 * For the failure-injection tests: every class forgets its free and
 * fresh blocks (they stay allocated), so that its next block takes a new
 * chunk, an allocation that a test can make fail.
 */
void slab_forget_free(void);
/* Bytes the classes hold from the system, in use or not. */
size_t slab_bytes(void);

#endif
