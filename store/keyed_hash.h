/*
 * store: a keyed hash for the daemon's tables of untrusted strings.
 *
 * Guests choose the paths they watch, the tokens of their watches and the
 * paths their transactions touch.  Under a hash anyone can compute (as
 * uthash's default is), a guest can pick thousands of keys for one
 * bucket, and every lookup in that table then walks them all, in the
 * loop every other client waits on.  keyed_hash is XXH3 (libxxhash)
 * under a secret of random bytes drawn at its first use, in each
 * process: nobody outside can tell which keys collide.  SipHash-2-4,
 * tried first (and once the path index's hash), made the registration
 * of 100,000 watches 15 to 60% slower than under uthash's unkeyed hash
 * (bench/watch-register, the builds taking turns); XXH3 so keyed, no
 * slower.
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
