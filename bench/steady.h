/*
 * bench/steady: is the host running at its usual speed right now?
 *
 * The machines the benchmark runs on are virtual, and their host has
 * spells, seconds to minutes long, in which a wakeup from one CPU to the
 * other costs 3 to 10 times its usual time (bench/README.md, Steady
 * rounds).  A round measured in such a spell says nothing about a daemon:
 * its rates move 20-fold from one slice to the next whatever the daemon.
 * In others the host gives the machine less CPU: a fixed loop runs 1.5
 * to 5 times slower, on both CPUs at once.  A probe tells such moments
 * apart: a short ping-pong between this process and a thread on the
 * daemons' CPU, and a fixed chain of multiplications timed on this
 * process's CPU; the programs wait for a spell to end before each turn
 * they measure.  The probe exercises the same wakeups as a request but
 * no daemon: a slow daemon cannot make its own rounds look unsteady.
 *
 * The usual speed is the fastest calibration (the median of 40 probes'
 * round trips, the fastest of their CPU probes) of any program of the
 * run (kept in the file named by BENCH_STEADY_FILE, when set), lowered
 * as the program's own probes find it faster, so that a program started
 * inside a spell does not take the spell for the norm for long.
 */
#ifndef XS_BENCH_STEADY_H
#define XS_BENCH_STEADY_H

#include <sched.h>
#include <stdbool.h>
#include <sys/types.h>

/*
 * Start the probe: its thread runs on the CPUs of where (the daemons';
 * NULL: anywhere), calibrates, and sets the bound to factor times the
 * usual round trip.  factor 0 turns the probe off: every moment is
 * steady.
 */
void steady_start(const cpu_set_t *where, double factor);

/* Where process pid may run, into set; NULL when unknown (pid 0). */
const cpu_set_t *steady_where_pid(pid_t pid, cpu_set_t *set);

/* CPU cpu alone, into set; NULL for cpu < 0. */
const cpu_set_t *steady_where_cpu(int cpu, cpu_set_t *set);

/*
 * Wait, probing every 20 ms, until the host is steady; false when this
 * program has waited 60 s in all (BENCH_STEADY_WAIT_S) and the host is
 * still unsteady.
 */
bool steady_wait(void);

/* How many calls of steady_wait found the host unsteady. */
unsigned long steady_waits(void);

/* How long this program has waited, seconds. */
double steady_waited_s(void);

/* The usual round trip, microseconds (0 when off). */
double steady_usual_us(void);

/* The CPU probe's usual time, microseconds (0 when off). */
double steady_cpu_usual_us(void);

#endif
