/*
 * Where the loop's time goes, counted in the running daemon: a test
 * build only (XS_PROBES, build/bench/xenstored-probes, which bench/probes
 * runs).  On the virtual machines the benchmark runs on, perf's samples
 * land after the hypervisor's exits and blamed the wrong code by a
 * factor of two and more; a timestamp read around each part does not
 * (bench/analysis.md).  Without XS_PROBES every macro is nothing, and
 * the installed daemon has not even the counters.
 *
 * PROBE_START(var) reads the clock into a new variable var; PROBE_STOP
 * (var, probe) adds the time since to probe's sum and counts it once;
 * PROBE_STOP_SPLIT(var, probe, slow) also to slow's when it was long;
 * PROBE_COUNT(probe, n) only counts.  The counts are printed to stderr,
 * the daemon's log, as one results line when the daemon exits.
 */
#ifndef XS_LOG_PROBES_H
#define XS_LOG_PROBES_H

enum probe {
	PROBE_TURN,		/* loop turns (a count) */
	PROBE_REQUEST,		/* requests handled (a count) */
	PROBE_RECORD,		/* a change recorded for the journal */
	PROBE_COMMIT,		/* a turn's commit, seal and copy within it */
	PROBE_SEAL,		/* a frame's checksums */
	PROBE_COPY,		/* a frame copied within pages its life wrote */
	PROBE_COPY_NEW_PAGE,	/* ... reaching a page new to its life, of a
				 * reused spare's file */
	PROBE_COPY_NEW_FILE,	/* ... of a new journal's file */
	PROBE_SEND,		/* the held replies sent (a call, also one
				 * that finds none held) */
	PROBE_SEND_SLOW,	/* ... of them, those past PROBE_SLOW_TICKS */
	PROBES
};

#ifdef XS_PROBES
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
/* Cycles of the TSC: cheap, and not a system call. */
static inline uint64_t probe_now(void)
{
	return __rdtsc();
}
/* A send past this woke a client whose CPU the hypervisor had halted
 * (about 17,000 cycles a send on the benchmark's hosts, against 2,000 to
 * 7,000 for a client woken sooner; bench/analysis.md). */
#define PROBE_SLOW_TICKS 10000
#else
#include <time.h>
static inline uint64_t probe_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#define PROBE_SLOW_TICKS 4800	/* ns: the TSC's 10,000 at 2.1 GHz */
#endif

struct probe_sum {
	uint64_t ticks, count;
};
extern struct probe_sum probe_sums[PROBES];

static inline void probe_add(enum probe probe, uint64_t ticks)
{
	probe_sums[probe].ticks += ticks;
	probe_sums[probe].count++;
}

/* The time since start into probe; also into slow when it was over
 * PROBE_SLOW_TICKS (slow == probe: never). */
static inline void probe_stop(uint64_t start, enum probe probe,
			      enum probe slow)
{
	uint64_t ticks = probe_now() - start;

	probe_add(probe, ticks);
	if (slow != probe && ticks > PROBE_SLOW_TICKS)
		probe_add(slow, ticks);
}

#define PROBE_START(var) uint64_t var = probe_now()
#define PROBE_STOP(var, probe) probe_stop(var, probe, probe)
#define PROBE_STOP_SPLIT(var, probe, slow) probe_stop(var, probe, slow)
#define PROBE_COUNT(probe, n) (probe_sums[probe].count += (n))
#else
#define PROBE_START(var) do { } while (0)
#define PROBE_STOP(var, probe) do { } while (0)
#define PROBE_STOP_SPLIT(var, probe, slow) do { } while (0)
#define PROBE_COUNT(probe, n) do { } while (0)
#endif

#endif
