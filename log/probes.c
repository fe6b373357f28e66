/*
 * The probes' sums (probes.h), printed when the daemon exits as one
 * results line: "probes unit=tsc|ns slow_ticks=S NAME_ticks=T
 * NAME_count=N ...".
 * Linked only into the probes build.
 */
#include <stdio.h>

#include "log/probes.h"

struct probe_sum probe_sums[PROBES];

static const char *const probe_names[PROBES] = {
	[PROBE_TURN] = "turn",
	[PROBE_REQUEST] = "request",
	[PROBE_RECORD] = "record",
	[PROBE_COMMIT] = "commit",
	[PROBE_SEAL] = "seal",
	[PROBE_COPY] = "copy",
	[PROBE_COPY_NEW_PAGE] = "copy_new_page",
	[PROBE_COPY_NEW_FILE] = "copy_new_file",
	[PROBE_SEND] = "send",
	[PROBE_SEND_SLOW] = "send_slow",
};

__attribute__((destructor)) static void probes_print(void)
{
#if defined(__x86_64__) || defined(__i386__)
	fputs("probes unit=tsc", stderr);
#else
	fputs("probes unit=ns", stderr);
#endif
	/* What PROBE_STOP_SPLIT calls slow, for the reader to say. */
	fprintf(stderr, " slow_ticks=%llu", (unsigned long long)PROBE_SLOW_TICKS);
	for (int i = 0; i < PROBES; i++)
		fprintf(stderr, " %s_ticks=%llu %s_count=%llu", probe_names[i],
			(unsigned long long)probe_sums[i].ticks, probe_names[i],
			(unsigned long long)probe_sums[i].count);
	fputc('\n', stderr);
}
