/*
 * log/trace: the access trace (-T, CONTROL log/logfile), beside the log
 * at the bottom layer.
 *
 * One line per packet received or sent and per connection opened or
 * closed, each switch (io, conn) on or off.  trace_active holds the
 * switches in effect, 0 while no trace file is open, so a traced event
 * costs one test when tracing is off.
 */
#ifndef XS_LOG_TRACE_H
#define XS_LOG_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xen/io/xs_wire.h>

enum trace_switch {
	TRACE_IO = 1 << 0,	/* every request, reply and watch event */
	TRACE_CONN = 1 << 1,	/* connections opened and closed */
};

extern unsigned int trace_active;

/*
 * Name the trace file (copied); the trace starts if start.  Returns 0, or
 * -1 with errno when the file cannot be opened (nothing changes then).
 */
int trace_set_file(const char *path, bool start);
/* Start (open the named file) or stop tracing; -1 with errno on failure. */
int trace_start(void);
void trace_stop(void);
/* Reopen the file after a rotation (SIGHUP); a no-op when stopped. */
int trace_reopen(void);
/* The trace file's name, or NULL if none was given. */
const char *trace_file_name(void);

/*
 * "+io", "-conn", "io": switch on or off; false for an unknown switch.
 * Upstream's names are accepted too: obj is conn, and wrl, acc and tdb
 * change nothing (trace_switch_note says why, NULL for a working one).
 */
bool trace_control(const char *spec);
const char *trace_switch_note(const char *spec);
/* The switches, e.g. "+io +conn", into buf. */
void trace_describe(char *buf, size_t len);

void trace_packet(unsigned long conn, unsigned int domid, bool out,
		  const struct xsd_sockmsg *hdr, const void *payload);
/* A line of the administrator's (CONTROL print), traced whatever the switches. */
void trace_note(const char *text);
void trace_conn(unsigned long conn, unsigned int domid, const char *kind,
		const char *event);

#endif
