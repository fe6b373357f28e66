/* Crash points (crash.h): only in a build with XS_CRASH_POINTS. */
#ifdef XS_CRASH_POINTS
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist/crash.h"

static char target[64];
static unsigned long nth = 1;
static atomic_ulong hits;

/* Read once, before main(): the compaction thread may ask too. */
__attribute__((constructor)) static void crash_setup(void)
{
	const char *v = getenv("XENSTORED_CRASH_AT");
	const char *colon;
	size_t len;

	if (!v)
		return;
	colon = strchr(v, ':');
	len = colon ? (size_t)(colon - v) : strlen(v);
	if (len >= sizeof(target))
		return;
	memcpy(target, v, len);
	target[len] = '\0';
	if (colon)
		nth = strtoul(colon + 1, NULL, 10);
}

bool crash_at(const char *point)
{
	return target[0] && strcmp(point, target) == 0 &&
	       atomic_fetch_add(&hits, 1) + 1 == nth;
}

void crash_point_copy(const char *point, void *dst, const void *src,
		      size_t len)
{
	if (!crash_at(point))
		return;
	memcpy(dst, src, len / 2);
	crash_now();
}

void crash_now(void)
{
	char msg[128];
	int n = snprintf(msg, sizeof(msg), "crash point %s:%lu: killed\n",
			 target, nth);

	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0)
		msg[0] = '\0';
	raise(SIGKILL);
	_exit(137);
}
#else
/* ISO C wants something in a translation unit. */
typedef int crash_points_not_built;
#endif
