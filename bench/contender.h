/*
 * bench/contender: a daemon under test, named on the command line as
 * LABEL=SOCKET (e.g. ours=/tmp/x/socket upstream=/tmp/y/socket).
 */
#ifndef XS_BENCH_CONTENDER_H
#define XS_BENCH_CONTENDER_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <xenstore.h>

struct contender {
	const char *label;	/* borrowed from argv, like path */
	const char *path;
};

/* Split "LABEL=SOCKET" in place; false when arg has no label. */
static inline bool contender_parse(struct contender *c, char *arg)
{
	char *eq = strchr(arg, '=');

	if (!eq || eq == arg || !eq[1])
		return false;
	*eq = '\0';
	c->label = arg;
	c->path = eq + 1;
	return true;
}

/* Split a trailing "@PID" off c->path (bench/run names the daemons it
 * started LABEL=SOCKET@PID): the pid, or 0 when there is none. */
static inline pid_t contender_take_pid(struct contender *c)
{
	char *at = strrchr(c->path, '@'), *end;
	long pid;

	if (!at || !at[1])
		return 0;
	pid = strtol(at + 1, &end, 10);
	if (*end || pid <= 0)
		return 0;
	*at = '\0';
	return (pid_t)pid;
}

/* A libxenstore connection to c: xs_open honours XENSTORED_PATH. */
static inline struct xs_handle *contender_open(const struct contender *c)
{
	if (setenv("XENSTORED_PATH", c->path, 1) < 0)
		return NULL;
	return xs_open(0);
}

#endif
