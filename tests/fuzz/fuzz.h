/*
 * tests/fuzz: what the libFuzzer targets share.  A broken invariant is a
 * finding: fail() says what broke and aborts, so libFuzzer keeps the input.
 */
#ifndef XS_TESTS_FUZZ_H
#define XS_TESTS_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The target's name, for fail()'s messages. */
extern const char fuzz_target[];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2),
						      noreturn, unused));

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", fuzz_target);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

/* The input's bytes after its first (the mode byte), copied to an
 * allocation of exactly their length, so that ASan sees any read past
 * them; *len says how many.  size must be at least 1. */
static unsigned char *after_mode_byte(const uint8_t *data, size_t size,
				      size_t *len) __attribute__((unused));

static unsigned char *after_mode_byte(const uint8_t *data, size_t size,
				      size_t *len)
{
	unsigned char *p;

	*len = size - 1;
	p = malloc(*len ? *len : 1);
	CHECK(p, "out of memory");
	memcpy(p, data + 1, *len);
	return p;
}

#endif
