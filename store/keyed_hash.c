/*
 * The keyed hash of untrusted strings (keyed_hash.h).
 */
#include <pthread.h>

#include <sodium.h>
#include <xxhash.h>

#include "store/keyed_hash.h"

/* XXH3 keyed by a secret of random bytes (xxhash.h: a secret "makes it
 * more difficult for an external actor to prepare an intentional
 * collision"); its longer inputs also take it whole. */
static unsigned char secret[192];
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

static void draw_secret(void)
{
	/* Idempotent.  Should it fail, the store's index_init fails too,
	 * and the daemon does not start. */
	if (sodium_init() >= 0)
		randombytes_buf(secret, sizeof(secret));
}

uint32_t keyed_hash(const void *p, size_t len)
{
	pthread_once(&secret_once, draw_secret);
	return (uint32_t)XXH3_64bits_withSecret(p, len, secret, sizeof(secret));
}
