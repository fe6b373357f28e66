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
/* At point, copy the first half of src's len bytes to dst, then die: a
 * copy into a mapped file cut short. */
void crash_point_copy(const char *point, void *dst, const void *src,
		      size_t len);
#else
#define CRASH_POINT(point) do { } while (0)
#define crash_point_copy(point, dst, src, len) do { } while (0)
#endif

#endif
