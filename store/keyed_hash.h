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
 * slower.  The path index (index.h) keys its own the same way, with a
 * secret of its own.
 *
 * For uthash: #define HASH_FUNCTION KEYED_HASH_FUNCTION before including
 * <uthash.h>.
 */
#ifndef XS_KEYED_HASH_H
#define XS_KEYED_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of a secret: XXH3's default size. */
#define KEYED_HASH_SECRET 192

/* Fill secret with random bytes from the kernel: 0, or -1 with errno
 * when it has none to give (getrandom(2) missing). */
int keyed_hash_secret(unsigned char secret[KEYED_HASH_SECRET]);

/* The hash of len bytes at key under secret (one keyed_hash_secret
 * filled). */
uint32_t keyed_hash_with(const unsigned char secret[KEYED_HASH_SECRET],
			 const void *key, size_t len);
/* The same, all 64 bits of it. */
uint64_t keyed_hash64_with(const unsigned char secret[KEYED_HASH_SECRET],
			   const void *key, size_t len);

/* keyed_hash_with under this process's secret, drawn at its first use. */
uint32_t keyed_hash(const void *key, size_t len);
/* The same, all 64 bits of it. */
uint64_t keyed_hash64(const void *key, size_t len);

#define KEYED_HASH_FUNCTION(keyptr, keylen, hashv) \
	((hashv) = keyed_hash((keyptr), (keylen)))

#endif
