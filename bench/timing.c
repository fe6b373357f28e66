/* The clocks, the median and the generator of bench/timing.h. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/timing.h"

uint64_t bench_clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_now_ns(void)
{
	return bench_clock_ns(CLOCK_MONOTONIC);
}

void bench_spin_ns(uint64_t ns)
{
	uint64_t end = bench_now_ns() + ns;

	while (bench_now_ns() < end)
		;
}

/* Whether some thread of pid is running or waiting for a CPU (state R
 * in /proc/PID/task/TID/stat); false if that cannot be read. */
static bool any_thread_running(pid_t pid)
{
	char path[64], buf[512];
	struct dirent *e;
	bool running = false;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(dir = opendir(path)))
		return false;
	while (!running && (e = readdir(dir))) {
		const char *state;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/stat",
			 (int)pid, e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		/* "TID (COMM) STATE ...": COMM may hold spaces and ')'. */
		if (fgets(buf, sizeof(buf), f) &&
		    (state = strrchr(buf, ')')) && state[1] == ' ')
			running = state[2] == 'R';
		fclose(f);
	}
	closedir(dir);
	return running;
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
	/* Linux adds a thread's time to its process's clock as the thread
	 * leaves the CPU or at the scheduler's tick (every 4 ms here), so a
	 * read while the daemon runs can miss a tick's worth: a 2 ms burst
	 * read 0.  Wait, 50 to 75 ms at most, until no thread is on a CPU. */
	for (int i = 0; i < 500 && any_thread_running(pid); i++)
		usleep(100);
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
