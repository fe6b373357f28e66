/*
 * Allocation failure for unit tests: a test binary linked with calloc,
 * malloc, realloc and mprotect wrapped (-Wl,--wrap=..., Makefile)
 * includes this once, then sets fail_alloc_after = N to make the
 * allocation after the next N ones fail (once; -1, the default: never).
 * An mprotect counts as one: the node pool and the value blocks are made
 * usable by it (store/pool.h, store/slab.h).
 */
#ifndef XS_TESTS_FAIL_ALLOC_H
#define XS_TESTS_FAIL_ALLOC_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

static int fail_alloc_after = -1;

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_realloc(void *p, size_t size);
int __real_mprotect(void *addr, size_t len, int prot);
int __wrap_mprotect(void *addr, size_t len, int prot);

static bool fail_alloc_now(void)
{
	if (fail_alloc_after == 0) {
		fail_alloc_after = -1;
		return true;
	}
	if (fail_alloc_after > 0)
		fail_alloc_after--;
	return false;
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_alloc_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_malloc(size_t size)
{
	return fail_alloc_now() ? NULL : __real_malloc(size);
}

void *__wrap_realloc(void *p, size_t size)
{
	return fail_alloc_now() ? NULL : __real_realloc(p, size);
}

int __wrap_mprotect(void *addr, size_t len, int prot)
{
	if (fail_alloc_now()) {
		errno = ENOMEM;
		return -1;
	}
	return __real_mprotect(addr, len, prot);
}

#endif
