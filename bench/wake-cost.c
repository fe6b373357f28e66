/*
 * wake-cost: what waking a sleeping client costs the process that writes
 * to it, by how long the client's CPU has been idle.
 *
 * A reader, pinned to the clients' CPU (0), sleeps in poll on a Unix
 * socket; a writer, pinned to the daemons' CPU (1), spins for GAP µs (the
 * reader has gone back to sleep by then), then writes one small packet
 * and reads its own thread's CPU clock around the write, which is exact
 * for the calling thread.  The reader reads what came and sleeps again.
 * The wake-up happens inside the write, so its cost lands on the writer,
 * as a daemon's reply pays for waking its client.
 *
 * On the virtual machines the benchmark runs on, that cost has two levels
 * with a cliff between them: a CPU idle for a few µs wakes cheaply, one
 * idle for longer wakes through the hypervisor at several times the cost
 * (bench/README.md).  A pipelining client that sleeps between batches
 * sits near that cliff, so a few µs more a batch on the daemon's side
 * can cost it far more than those µs; the report prints these figures
 * beside the pipelined rows.
 *
 * Usage: wake-cost [-n WRITES_PER_GAP] [-g GAP_US,...]
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/results.h"
#include "bench/scratch.h"
#include "bench/timing.h"

#define MAX_GAPS 16
#define PACKET 64

static void die(const char *what)
{
	fprintf(stderr, "wake-cost: %s\n", what);
	exit(1);
}

static void reader(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[4096];

	(void)bench_pin_cpu(0);
	for (;;) {
		if (poll(&pfd, 1, -1) < 0)
			continue;
		if (read(fd, buf, sizeof(buf)) <= 0)
			_exit(0);
	}
}

/* The writer's CPU µs for one write after an idle gap of gap_us. */
static double cost_at(int fd, unsigned long gap_us)
{
	static const char packet[PACKET];
	uint64_t t0;

	bench_spin_ns(gap_us * 1000u);
	t0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	if (write(fd, packet, sizeof(packet)) != sizeof(packet))
		die("the write to the reader failed");
	return (double)(bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / 1e3;
}

int main(int argc, char **argv)
{
	unsigned long gaps[MAX_GAPS] = { 2, 5, 10, 20, 50 }, n = 400;
	char list[MAX_GAPS * 24] = "", costs[MAX_GAPS * 24] = "";
	int ngaps = 5, sv[2], o;
	double med[MAX_GAPS], *cpu[MAX_GAPS];
	uint64_t rng = 0x9e3779b97f4a7c15u;
	pid_t pid;

	while ((o = getopt(argc, argv, "n:g:")) != -1) {
		switch (o) {
		case 'n':
			n = strtoul(optarg, NULL, 10);
			break;
		case 'g':
			ngaps = bench_parse_list(optarg, gaps, MAX_GAPS, 0,
						 100000);
			break;
		default:
			ngaps = -1;
		}
		if (ngaps < 1 || n < 1 || n > 1000000) {
			fprintf(stderr, "usage: wake-cost [-n WRITES_PER_GAP] "
					"[-g GAP_US,...]\n");
			return 2;
		}
	}
	for (int i = 0; i < ngaps; i++)
		if (!(cpu[i] = malloc(n * sizeof(*cpu[i]))))
			die("no memory");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		die("no socket pair");
	pid = fork();
	if (pid < 0)
		die("fork failed");
	if (pid == 0) {
		close(sv[0]);
		reader(sv[1]);
	}
	close(sv[1]);
	(void)bench_pin_cpu(1);
	/* The reader's first sleep, and the writer's first page faults. */
	for (int i = 0; i < 50; i++)
		(void)cost_at(sv[0], gaps[0]);
	/* The gaps in turn, in a new order each pass: the hypervisor adapts
	 * how long it keeps an idle CPU ready to what came before (a run of
	 * short gaps moved the cliff from 5 µs past 12), so each gap is
	 * measured after a mix of all of them. */
	for (unsigned long k = 0; k < n; k++) {
		int order[MAX_GAPS];

		for (int i = 0; i < ngaps; i++)
			order[i] = i;
		for (int i = ngaps - 1; i > 0; i--) {
			int j = (int)(bench_rand(&rng) % (uint64_t)(i + 1)), t;

			t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		for (int i = 0; i < ngaps; i++)
			cpu[order[i]][k] = cost_at(sv[0], gaps[order[i]]);
	}
	for (int i = 0; i < ngaps; i++)
		med[i] = bench_median(cpu[i], n);
	close(sv[0]);
	waitpid(pid, NULL, 0);

	printf("A write that wakes a reader asleep on CPU 0, written from CPU 1: "
	       "the writer's CPU µs, median of %lu\n", n);
	printf("  %-22s %10s\n", "reader idle for", "CPU µs");
	for (int i = 0; i < ngaps; i++) {
		size_t a = strlen(list), b = strlen(costs);

		printf("  %-19lu µs %10.2f\n", gaps[i], med[i]);
		snprintf(list + a, sizeof(list) - a, "%s%lu", i ? "," : "",
			 gaps[i]);
		snprintf(costs + b, sizeof(costs) - b, "%s%.2f", i ? "," : "",
			 med[i]);
	}
	bench_result("wake_cost writes=%lu gaps_us=%s cpu_us=%s", n, list,
		     costs);
	for (int i = 0; i < ngaps; i++)
		free(cpu[i]);
	return 0;
}
