/* bench/scratch: see scratch.h. */
#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/scratch.h"

int bench_pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) && errno != ENOENT ? -1 : 0;
}

void bench_rmtree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int bench_parse_list(const char *arg, unsigned long *out, int max,
		     unsigned long lo, unsigned long hi)
{
	int n = 0;

	for (;;) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(arg, &end, 10);
		if (end == arg || errno || v < lo || v > hi || n == max ||
		    (*end && *end != ','))
			return -1;
		out[n++] = v;
		if (!*end)
			return n;
		arg = end + 1;
	}
}
