/*
 * The keyed hash of untrusted strings (keyed_hash.h).
 */
#include <pthread.h>

#include <sodium.h>
#include <xxhash.h>

#include "store/keyed_hash.h"

int keyed_hash_secret(unsigned char secret[KEYED_HASH_SECRET])
{
	/* sodium_init is idempotent. */
	if (sodium_init() < 0)
		return -1;
	randombytes_buf(secret, KEYED_HASH_SECRET);
	return 0;
}

/* XXH3 keyed by a secret of random bytes (xxhash.h: a secret "makes it
 * more difficult for an external actor to prepare an intentional
 * collision"); its longer inputs also take it whole. */
uint32_t keyed_hash_with(const unsigned char secret[KEYED_HASH_SECRET],
			 const void *key, size_t len)
{
	return (uint32_t)XXH3_64bits_withSecret(key, len, secret,
						KEYED_HASH_SECRET);
}

static unsigned char secret[KEYED_HASH_SECRET];
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

static void draw_secret(void)
{
	/* Should it fail, the store's index_init fails too, and the daemon
	 * does not start. */
	(void)keyed_hash_secret(secret);
}

uint32_t keyed_hash(const void *p, size_t len)
{
	pthread_once(&secret_once, draw_secret);
	return keyed_hash_with(secret, p, len);
}
