/*
 * TAP output for the C clients of the integration tests: ok() and
 * diag() lines, skips, and errno names for diagnostics.  Static inline so
 * each client compiles cleanly whichever it uses.
 */
#ifndef XS_TESTS_TAP_H
#define XS_TESTS_TAP_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int checks, failures;

static inline bool ok(bool good, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline bool ok(bool good, const char *fmt, ...)
{
	va_list ap;

	checks++;
	if (!good)
		failures++;
	printf("%sok %d - ", good ? "" : "not ", checks);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	return good;
}

static inline void diag(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static inline void skip(const char *name, const char *why)
{
	checks++;
	printf("ok %d - %s # SKIP %s\n", checks, name, why);
	fflush(stdout);
}

/* The errno names Xenstore uses, for diagnostics. */
static inline const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case EACCES: return "EACCES";
	case EEXIST: return "EEXIST";
	case EISDIR: return "EISDIR";
	case ENOSPC: return "ENOSPC";
	case ENOMEM: return "ENOMEM";
	case E2BIG: return "E2BIG";
	case ENOSYS: return "ENOSYS";
	case EPERM: return "EPERM";
	case EBUSY: return "EBUSY";
	case EAGAIN: return "EAGAIN";
	case EIO: return "EIO";
	case EBADF: return "EBADF";
	default: return strerror(e);
	}
}

#endif
