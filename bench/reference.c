/*
 * The reference workload (bench/reference.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/layout.h"
#include "bench/reference.h"
#include "bench/scratch.h"

/* The table's slot holding path, else the empty one where it goes
 * (FNV-1a, linear probing). */
static size_t reference_slot(char **slot, size_t mask, const char *path,
			     size_t len)
{
	uint64_t h = 14695981039346656037ull;
	size_t j;

	for (size_t k = 0; k < len; k++)
		h = (h ^ (unsigned char)path[k]) * 1099511628211ull;
	for (j = h & mask; slot[j] && strcmp(slot[j], path); j = (j + 1) & mask)
		;
	return j;
}

static int reference_work(unsigned long nodes)
{
	size_t cap = 1024, len;
	char **slot, path[BENCH_PATH_MAX];
	unsigned long found = 0;

	while (cap < 2 * nodes)
		cap <<= 1;
	slot = calloc(cap, sizeof(*slot));
	if (!slot)
		return 127;
	for (unsigned long i = 0; i < nodes; i++) {
		char **to;

		len = (size_t)bench_node_path(path, sizeof(path), i);
		to = &slot[reference_slot(slot, cap - 1, path, len)];
		*to = malloc(len + 1);
		if (!*to)
			return 127;
		memcpy(*to, path, len + 1);
	}
	for (unsigned long i = 0; i < nodes; i++) {
		len = (size_t)bench_node_path(path, sizeof(path), i);
		found += slot[reference_slot(slot, cap - 1, path, len)] != NULL;
	}
	return found == nodes ? 0 : 1;
}

double bench_reference_ms(unsigned long nodes, int cpu)
{
	struct rusage ru;
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (cpu >= 0 && bench_pin_cpu(cpu) != 0)
			_exit(127);
		_exit(reference_work(nodes));
	}
	if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return -1;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}
