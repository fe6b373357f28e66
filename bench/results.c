/* Appending measurements to $BENCH_RESULTS (see bench/results.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/results.h"

void bench_result(const char *fmt, ...)
{
	const char *path = getenv("BENCH_RESULTS");
	va_list ap;
	FILE *f;

	if (!path || !*path)
		return;
	/* Opened per line: the programs write a handful, and forked
	 * children never share a buffered stream this way. */
	f = fopen(path, "a");
	if (!f) {
		perror(path);
		return;
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}
