/*
 * The keyed hash of untrusted strings (keyed_hash.h).
 */
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "store/keyed_hash.h"

static unsigned char key[crypto_shorthash_KEYBYTES];
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void draw_key(void)
{
	/* Idempotent.  Should it fail, the store's index_init fails too,
	 * and the daemon does not start. */
	if (sodium_init() >= 0)
		crypto_shorthash_keygen(key);
}

uint32_t keyed_hash(const void *p, size_t len)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint32_t h;

	pthread_once(&key_once, draw_key);
	crypto_shorthash(out, p, len, key);
	memcpy(&h, out, sizeof(h));
	return h;
}
