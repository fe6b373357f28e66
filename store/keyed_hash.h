/*
 * store: a keyed hash for the daemon's tables of untrusted strings.
 *
 * Guests choose the paths they watch, the tokens of their watches and the
 * paths their transactions touch.  Under a hash anyone can compute (as
 * uthash's default is), a guest can pick thousands of keys for one
 * bucket, and every lookup in that table then walks them all, in the
 * loop every other client waits on.  keyed_hash is SipHash-2-4
 * (libsodium's crypto_shorthash) under a key drawn at its first use, in
 * each process: nobody outside can tell which keys collide.  The node
 * index (index.h) keys its own the same way.
 *
 * For uthash: #define HASH_FUNCTION KEYED_HASH_FUNCTION before including
 * <uthash.h>.
 */
#ifndef XS_KEYED_HASH_H
#define XS_KEYED_HASH_H

#include <stddef.h>
#include <stdint.h>

uint32_t keyed_hash(const void *key, size_t len);

#define KEYED_HASH_FUNCTION(keyptr, keylen, hashv) \
	((hashv) = keyed_hash((keyptr), (keylen)))

#endif
