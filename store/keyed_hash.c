/*
 * The keyed hash of untrusted strings (keyed_hash.h).
 */
#include <errno.h>
#include <pthread.h>
#include <sys/random.h>

#include <xxhash.h>

#include "store/keyed_hash.h"

int keyed_hash_secret(unsigned char secret[KEYED_HASH_SECRET])
{
	size_t got = 0;

	/* The kernel's generator (getrandom(2), Linux 3.17): it blocks only
	 * until its pool is first seeded, and up to 256 bytes come whole. */
	while (got < KEYED_HASH_SECRET) {
		ssize_t n = getrandom(secret + got, KEYED_HASH_SECRET - got, 0);

		if (n > 0)
			got += (size_t)n;
		else if (n < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

/* XXH3 keyed by a secret of random bytes (xxhash.h: a secret "makes it
 * more difficult for an external actor to prepare an intentional
 * collision"); its longer inputs also take it whole. */
uint32_t keyed_hash_with(const unsigned char secret[KEYED_HASH_SECRET],
			 const void *key, size_t len)
{
	return (uint32_t)keyed_hash64_with(secret, key, len);
}

uint64_t keyed_hash64_with(const unsigned char secret[KEYED_HASH_SECRET],
			   const void *key, size_t len)
{
	return XXH3_64bits_withSecret(key, len, secret, KEYED_HASH_SECRET);
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
	return (uint32_t)keyed_hash64(p, len);
}

uint64_t keyed_hash64(const void *p, size_t len)
{
	pthread_once(&secret_once, draw_secret);
	return keyed_hash64_with(secret, p, len);
}
