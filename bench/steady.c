/* The host probe of bench/steady.h. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench/steady.h"
#include "bench/timing.h"

#define TRIPS 20		/* round trips a probe: 0.2 ms, 1.5 ms halting */
#define CALIBRATIONS 40		/* probes, 10 ms apart, at the start */
#define RECENT 15		/* the probes learn() takes the median of */
#define WAIT_S 60		/* the longest a program waits for spells to end
				   (BENCH_STEADY_WAIT_S sets another) */
#define WAIT_STEP_US 20000

static int to_echo[2] = { -1, -1 }, from_echo[2] = { -1, -1 };
static double usual_us, bound_us, factor_;
static double recent[RECENT];	/* the last probes, a ring */
static unsigned int nprobes;
static double waited_s, wait_s = WAIT_S;
static unsigned long waits;

static void *echo(void *arg)
{
	cpu_set_t *where = arg;
	char c;

	if (where)
		sched_setaffinity(0, sizeof(*where), where);
	while (read(to_echo[0], &c, 1) == 1)
		if (write(from_echo[1], &c, 1) != 1)
			break;
	return NULL;
}

/*
 * One probe: the median of TRIPS round trips, microseconds.  The median,
 * not the mean: a daemon's thread busy on the echo's CPU delays a trip
 * now and then, while a spell of the host slows every trip.
 */
static double probe(void)
{
	double trip[TRIPS];
	char c = 0;

	for (int i = 0; i < TRIPS; i++) {
		uint64_t t0 = bench_now_ns();

		if (write(to_echo[1], &c, 1) != 1 ||
		    read(from_echo[0], &c, 1) != 1)
			return 0;
		trip[i] = (double)(bench_now_ns() - t0) / 1e3;
	}
	return bench_median(trip, TRIPS);
}

/*
 * The fastest calibration of the run so far, shared through the file:
 * mine when it is faster (it is then written), else the file's.
 */
static double shared_usual(double mine)
{
	const char *path = getenv("BENCH_STEADY_FILE");
	double theirs = 0;
	FILE *f;

	if (!path || !*path)
		return mine;
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%lf", &theirs) != 1)
			theirs = 0;
		fclose(f);
	}
	if (theirs > 0 && theirs < mine)
		return theirs;
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "%.3f\n", mine);
		fclose(f);
	}
	return mine;
}

const cpu_set_t *steady_where_pid(pid_t pid, cpu_set_t *set)
{
	return pid > 0 && !sched_getaffinity(pid, sizeof(*set), set) ? set
								     : NULL;
}

const cpu_set_t *steady_where_cpu(int cpu, cpu_set_t *set)
{
	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return NULL;
	CPU_ZERO(set);
	CPU_SET(cpu, set);
	return set;
}

/* At exit: leave the fastest speed this program saw for the next one. */
static void share(void)
{
	shared_usual(usual_us);
}

/*
 * The usual time falls to the median of the last RECENT probes whenever
 * that is lower.
 */
static void learn(double t)
{
	double m;

	recent[nprobes++ % RECENT] = t;
	if (nprobes < RECENT)
		return;
	m = bench_median(recent, RECENT);
	if (m < usual_us) {
		usual_us = m;
		bound_us = factor_ * m;
	}
}

void steady_start(const cpu_set_t *where, double factor)
{
	static cpu_set_t echo_where;
	double cal[CALIBRATIONS];
	pthread_t th;

	if (factor <= 0)
		return;
	if (getenv("BENCH_STEADY_WAIT_S"))
		wait_s = strtod(getenv("BENCH_STEADY_WAIT_S"), NULL);
	if (pipe(to_echo) || pipe(from_echo)) {
		perror("steady: pipe");
		exit(1);
	}
	if (where)
		echo_where = *where;
	if (pthread_create(&th, NULL, echo, where ? &echo_where : NULL)) {
		perror("steady: thread");
		exit(1);
	}
	pthread_detach(th);
	for (int i = 0; i < CALIBRATIONS; i++) {
		cal[i] = probe();
		usleep(10000);
	}
	factor_ = factor;
	usual_us = shared_usual(bench_median(cal, CALIBRATIONS));
	bound_us = factor * usual_us;
	atexit(share);
}

/* Probe now: whether the host is steady (always, with the probe off). */
static bool steady_now(void)
{
	double t;

	if (bound_us <= 0)
		return true;
	t = probe();
	learn(t);
	return t > 0 && t <= bound_us;
}

bool steady_wait(void)
{
	if (steady_now())
		return true;
	waits++;
	do {
		if (waited_s >= wait_s)
			return false;
		usleep(WAIT_STEP_US);
		waited_s += WAIT_STEP_US / 1e6;
	} while (!steady_now());
	return true;
}

unsigned long steady_waits(void)
{
	return waits;
}

double steady_waited_s(void)
{
	return waited_s;
}

double steady_usual_us(void)
{
	return usual_us;
}
