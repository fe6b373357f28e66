/* The clocks, the median and the generator of bench/timing.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/timing.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t bench_cpu_ns(pid_t pid)
{
	struct timespec ts;
	clockid_t id;
	int err = clock_getcpuclockid(pid, &id);

	if (err) {
		errno = err;
		return -1;
	}
	if (clock_gettime(id, &ts) != 0)
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void bench_sort(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
}

double bench_median(const double *v, size_t n)
{
	double *c = malloc(n * sizeof(*c));
	double m;

	if (!c)
		abort();
	memcpy(c, v, n * sizeof(*c));
	bench_sort(c, n);
	m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return m;
}

double bench_percentile(double *v, size_t n, double p)
{
	/* ceil(p * n) without libm, which not every benchmark links. */
	size_t rank = (size_t)(p * (double)n);

	if ((double)rank < p * (double)n)
		rank++;
	qsort(v, n, sizeof(*v), cmp_double);
	return v[rank ? (rank <= n ? rank : n) - 1 : 0];
}

/* xorshift64*: fast, and good enough to scatter accesses over the store. */
uint64_t bench_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}
