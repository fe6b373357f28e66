/* The host probe of bench/steady.h. */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
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
#define SPINS 5			/* runs of the CPU probe: the fastest counts */
#define SPIN_STEPS 20000	/* its chain of multiplications: ~30 us */
#define CPU_FACTOR 1.3		/* slower than this times the fastest: a
				   spell of the host's CPU (BENCH_STEADY_CPU
				   sets another) */

static int to_echo[2] = { -1, -1 }, from_echo[2] = { -1, -1 };
static double usual_us, bound_us, factor_;
static double cpu_usual_us, cpu_bound_us, cpu_factor = CPU_FACTOR;
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
 * The CPU probe: the fastest of SPINS runs of a fixed chain of dependent
 * multiplications on this thread's CPU, microseconds.  An interrupt slows
 * one run; a spell in which the host gives this machine less CPU slows
 * them all, and slows its other CPU with it (seen here: a busy loop timed
 * on the idle client CPU and dom0's fixed work in QEMU on the other ran
 * slow in the same seconds), which the wakeups above do not always see.
 */
static double spin_probe(void)
{
	double best = 0;

	for (int i = 0; i < SPINS; i++) {
		uint64_t t0 = bench_now_ns(), x = t0;
		double t;

		for (int k = 0; k < SPIN_STEPS; k++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			__asm__ __volatile__("" : "+r"(x));
		}
		t = (double)(bench_now_ns() - t0) / 1e3;
		if (!best || t < best)
			best = t;
	}
	return best;
}

/*
 * The fastest calibrations of the run so far (the round trip's and the
 * CPU probe's), shared through the file: mine where they are faster (the
 * file is then written), else the file's.
 */
static void shared_usual(double *trip, double *cpu)
{
	const char *path = getenv("BENCH_STEADY_FILE");
	double their_trip = 0, their_cpu = 0;
	FILE *f;

	if (!path || !*path)
		return;
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%lf %lf", &their_trip, &their_cpu) < 1)
			their_trip = 0;
		fclose(f);
	}
	if (their_trip > 0 && their_trip < *trip)
		*trip = their_trip;
	if (their_cpu > 0 && their_cpu < *cpu)
		*cpu = their_cpu;
	if (*trip == their_trip && *cpu == their_cpu)
		return;		/* the file has them already */
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "%.3f %.3f\n", *trip, *cpu);
		fclose(f);
	}
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
	shared_usual(&usual_us, &cpu_usual_us);
}

/*
 * The usual time falls to the median of the last RECENT probes whenever
 * that is lower; the CPU probe's to any faster one (it takes the fastest
 * of its runs already).
 */
static void learn(double t, double cpu)
{
	double m;

	if (cpu > 0 && cpu < cpu_usual_us) {
		cpu_usual_us = cpu;
		cpu_bound_us = cpu_factor * cpu;
	}

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
	double cal[CALIBRATIONS], cpu_cal = 0;
	pthread_t th;

	if (factor <= 0)
		return;
	if (getenv("BENCH_STEADY_WAIT_S"))
		wait_s = strtod(getenv("BENCH_STEADY_WAIT_S"), NULL);
	if (getenv("BENCH_STEADY_CPU"))
		cpu_factor = strtod(getenv("BENCH_STEADY_CPU"), NULL);
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
		double cpu = spin_probe();

		cal[i] = probe();
		if (!cpu_cal || cpu < cpu_cal)
			cpu_cal = cpu;
		usleep(10000);
	}
	factor_ = factor;
	usual_us = bench_median(cal, CALIBRATIONS);
	cpu_usual_us = cpu_cal;
	shared_usual(&usual_us, &cpu_usual_us);
	bound_us = factor * usual_us;
	cpu_bound_us = cpu_factor * cpu_usual_us;
	atexit(share);
}

/* Probe now: whether the host is steady (always, with the probe off). */
static bool steady_now(void)
{
	double t, cpu;

	if (bound_us <= 0)
		return true;
	cpu = spin_probe();
	t = probe();
	learn(t, cpu);
	return t > 0 && t <= bound_us && cpu <= cpu_bound_us;
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

double steady_cpu_usual_us(void)
{
	return cpu_usual_us;
}
