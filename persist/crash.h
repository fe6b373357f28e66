/*
 * persist/ internals: crash points, for the crash tests only.
 *
 * Compiled in only with XS_CRASH_POINTS, which the Makefile sets for the
 * test binary build/tests/xenstored-crash and never for the installed
 * daemon: a variable that kills the daemon has no place in a production
 * binary, even unset.  There, XENSTORED_CRASH_AT=POINT[:N] makes the Nth
 * pass (default the first) through POINT kill the process with SIGKILL,
 * as kill -9 would (tests/integration/test-crash-points.py).
 */
#ifndef XS_CRASH_H
#define XS_CRASH_H

#include <stdbool.h>

#ifdef XS_CRASH_POINTS
#include <stddef.h>

/* This pass through point is the one to die at. */
bool crash_at(const char *point);
void crash_now(void) __attribute__((noreturn));
#define CRASH_POINT(point) do { if (crash_at(point)) crash_now(); } while (0)
/* At point, write the first half of p's len bytes to fd, then die: a
 * write cut short. */
void crash_point_write(const char *point, int fd, const void *p,
		       size_t len);
#else
#define CRASH_POINT(point) do { } while (0)
#define crash_point_write(point, fd, p, len) do { } while (0)
#endif

#endif
