/*
 * Allocation failure for unit tests: a test binary linked with calloc,
 * malloc and realloc wrapped (-Wl,--wrap=..., Makefile) includes this
 * once, then sets fail_alloc_after = N to make the allocation after the
 * next N ones fail (once; -1, the default: never).
 */
#ifndef XS_TESTS_FAIL_ALLOC_H
#define XS_TESTS_FAIL_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

static int fail_alloc_after = -1;

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_realloc(void *p, size_t size);

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

#endif
