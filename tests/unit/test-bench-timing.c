/* bench/timing: the benchmark's reading of another process's CPU time. */
#include "tests/unit/unit.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/scratch.h"
#include "bench/timing.h"

#define MS 1000000

/* What the child tells the reader, in shared memory: a pipe would wake
 * the reader and so bring the child's clock up to date. */
struct shared {
	atomic_int spun;	/* the first burst is over */
	_Atomic int64_t total;	/* the child's CPU time as it idles */
};

/*
 * A process read while it runs a burst shorter than the scheduler's tick:
 * the kernel has not yet added the burst to its clock, so a plain read
 * lags.  The benchmark's read waits until the process leaves the CPU and
 * so gives all it used: at least what the process itself reads just
 * before it idles.
 */
START_TEST(a_burst_shorter_than_a_tick_is_counted)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(sh, MAP_FAILED);
	bench_pin_cpu(0);
	for (int round = 0; round < 8; round++) {
		pid_t pid;
		int64_t ns;

		atomic_store(&sh->spun, 0);
		atomic_store(&sh->total, 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			bench_pin_cpu(1);
			bench_spin_ns(3 * MS);
			atomic_store(&sh->spun, 1);
			bench_spin_ns(1 * MS);
			atomic_store(&sh->total, (int64_t)bench_clock_ns(
					 CLOCK_PROCESS_CPUTIME_ID));
			pause();
			_exit(0);
		}
		while (!atomic_load(&sh->spun))
			;
		ns = bench_cpu_ns(pid);
		while (!atomic_load(&sh->total))
			;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		ck_assert_msg(ns >= atomic_load(&sh->total),
			      "round %d: read %.3f ms of a process that had "
			      "used %.3f ms", round, ns / 1e6,
			      atomic_load(&sh->total) / 1e6);
	}
	munmap(sh, sizeof(*sh));
}
END_TEST

static Suite *timing_suite(void)
{
	Suite *s = suite_create("bench-timing");
	TCase *tc = tcase_create("cpu");

	tcase_add_test(tc, a_burst_shorter_than_a_tick_is_counted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_main(timing_suite());
}
