/*
 * store/ internals: the path index, which finds a node by its full path.
 *
 * Open addressing with linear probing over 4-byte slots, at most three
 * quarters full.  A slot holds a node's pool id (INDEX_ID_BITS bits: the
 * pool hands out no more ids, pool.h) and, above it, INDEX_TAG_BITS bits
 * of its path's hash, which rule out all but one in 64 of the other
 * paths met on a probe; a candidate is confirmed by comparing the path
 * with its node's name and those of its ancestors (node_has_path), since
 * nodes keep names, not paths.  The rest of the hash is not kept: where
 * an entry's home is, when the table grows or an entry moves back over a
 * removed one, comes from hashing its node's path again.  A growth so
 * hashes every path again, once each time the store doubles: 26 to 28 ms
 * at 786,000 nodes (index.c's move_all), where slots of 8 bytes that kept
 * 32 bits of the hash took 9 to 16 ms, and a megabyte more at a hundred
 * thousand nodes (8 at a million).  A removal hashes again the entries
 * after it in its run, one or two on average.  The hash is XXH3 (libxxhash)
 * under a secret of random bytes (getrandom(2)) drawn when the index is
 * made: guests choose their own paths, and against an unkeyed hash they
 * could choose paths that collide, turning every lookup into a walk of
 * them all.  It replaced SipHash-2-4: pipelined WRITEs (64 in flight) ran
 * 10% faster for it, with the database on and off (bench/ab, 15 rounds;
 * one request in flight did not move).
 *
 * Only index_reserve allocates.  Callers reserve room before they change
 * anything, so an insert cannot fail and running out of memory is an
 * ENOMEM answer with nothing half done, never an exit.
 */
#ifndef XS_STORE_INDEX_H
#define XS_STORE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "store/keyed_hash.h"

struct node;

#define INDEX_ID_BITS 26
#define INDEX_TAG_BITS (32 - INDEX_ID_BITS)

struct path_index {
	uint32_t *slots;		/* id | tag << INDEX_ID_BITS (0: empty);
					 * NULL until the first reserve */
	size_t mask;			/* slots - 1 (a power of two) */
	size_t count;
	unsigned char secret[KEYED_HASH_SECRET];
};

/* An empty index with a fresh random secret: 0, or -1 when the kernel
 * gives no random bytes. */
int index_init(struct path_index *ix);
void index_free(struct path_index *ix);

/* Room for more entries beyond count, so that that many inserts cannot
 * fail: 0, or -1 with errno ENOMEM (the index unchanged). */
int index_reserve(struct path_index *ix, size_t more);

/* The node whose path is the len bytes at path, or NULL. */
struct node *index_find(const struct path_index *ix, const char *path,
			size_t len);

/* Fetch into the cache the slot where a probe for path would start, for
 * an insert or a find of it a little later: a load inserts a million
 * paths at random slots, and taken one after another each waits for
 * memory (a third of a restart).  Changes nothing. */
void index_prefetch(const struct path_index *ix, const char *path,
		    size_t len);

/* Add n, whose path (len bytes; not in the index yet) is given, into
 * room reserved. */
void index_insert(struct path_index *ix, struct node *n, const char *path,
		  size_t len);

/* As index_insert, unless a node of that path is there already: then
 * that node, and n is not added (one probe for both). */
struct node *index_insert_unique(struct path_index *ix, struct node *n,
				 const char *path, size_t len);

/* Take n, whose path is given, out of the index (it must be in it). */
void index_remove(struct path_index *ix, const struct node *n,
		  const char *path, size_t len);

/* The first node at slot *at or after it, *at moved past it; NULL when
 * there are no more.  Start at 0.  The index must not change meanwhile. */
struct node *index_next(const struct path_index *ix, size_t *at);

#endif
