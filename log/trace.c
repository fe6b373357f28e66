/* The access trace: a line-buffered text file, one event per line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "log/trace.h"
#include "protocol/wire.h"

/* How much of a payload a line shows. */
#define TRACE_PAYLOAD_MAX 256

unsigned int trace_active;
static unsigned int trace_switches = TRACE_IO | TRACE_CONN;
static char *trace_path;	/* owned */
static FILE *trace_file;

/*
 * Ours first (trace_describe lists those), then upstream's names: obj
 * (its object lifetimes) is our conn; the others trace what this daemon
 * has not got, so they are accepted with the reason they do nothing.
 */
static const struct {
	const char *name;
	unsigned int bit;
	const char *note;	/* why it changes nothing, for a bit of 0 */
} switch_names[] = {
	{ "io", TRACE_IO, NULL },
	{ "conn", TRACE_CONN, NULL },
	{ "obj", TRACE_CONN, NULL },
	{ "wrl", 0, "there is no write rate limiting here (quotas bound "
		    "each guest instead)" },
	{ "acc", 0, "quota accounting is exact and not traced; "
		    "xenstore-control quota shows it" },
	{ "tdb", 0, "the database's writes are not traced; every change "
		    "in the io trace is committed to it" },
};

#define N_SWITCHES (sizeof(switch_names) / sizeof(switch_names[0]))
#define N_OURS 2

static void install(FILE *f)
{
	if (trace_file)
		fclose(trace_file);
	trace_file = f;
	trace_active = f ? trace_switches : 0;
}

int trace_set_file(const char *path, bool start)
{
	char *copy = strdup(path);
	FILE *f = NULL;

	if (!copy)
		return -1;
	if ((start || trace_file) && !(f = log_open_append(path, 0600))) {
		int e = errno;

		free(copy);
		errno = e;
		return -1;
	}
	free(trace_path);
	trace_path = copy;
	if (f)
		install(f);
	return 0;
}

/* (Re)open the named file and trace to it. */
static int open_named(void)
{
	FILE *f = log_open_append(trace_path, 0600);

	if (!f)
		return -1;
	install(f);
	return 0;
}

int trace_start(void)
{
	if (!trace_path) {
		errno = ENOENT;
		return -1;
	}
	return trace_file ? 0 : open_named();
}

void trace_stop(void)
{
	install(NULL);
}

int trace_reopen(void)
{
	return trace_file ? open_named() : 0;
}

const char *trace_file_name(void)
{
	return trace_path;
}

static int find_switch(const char *spec)
{
	if (*spec == '+' || *spec == '-')
		spec++;
	for (size_t i = 0; i < N_SWITCHES; i++)
		if (strcmp(spec, switch_names[i].name) == 0)
			return (int)i;
	return -1;
}

const char *trace_switch_note(const char *spec)
{
	int i = find_switch(spec);

	return i < 0 ? NULL : switch_names[i].note;
}

bool trace_control(const char *spec)
{
	bool on = *spec != '-';
	int i = find_switch(spec);

	if (i < 0)
		return false;
	if (on)
		trace_switches |= switch_names[i].bit;
	else
		trace_switches &= ~switch_names[i].bit;
	if (trace_file)
		trace_active = trace_switches;
	return true;
}

void trace_describe(char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_OURS && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%c%s",
				 i ? " " : "",
				 trace_switches & switch_names[i].bit ? '+' : '-',
				 switch_names[i].name);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static void stamp(unsigned long conn, unsigned int domid)
{
	char when[LOG_TIME_LEN];

	log_time(when, 6);
	fprintf(trace_file, "%s c%lu d%u ", when, conn, domid);
}

void trace_packet(unsigned long conn, unsigned int domid, bool out,
		  const struct xsd_sockmsg *hdr, const void *payload)
{
	const unsigned char *p = payload;
	size_t shown = hdr->len < TRACE_PAYLOAD_MAX ? hdr->len
						    : TRACE_PAYLOAD_MAX;

	stamp(conn, domid);
	fprintf(trace_file, "%s %s r%u t%u ", out ? "OUT" : "IN",
		wire_type_name(hdr->type), (unsigned int)hdr->req_id,
		(unsigned int)hdr->tx_id);
	/* Strings are NUL-separated: show them space-separated, and escape
	 * what is not printable so one packet is one line.  A final NUL is
	 * left out. */
	if (shown && shown == hdr->len && p[shown - 1] == '\0')
		shown--;
	for (size_t i = 0; i < shown; i++) {
		if (p[i] == '\0')
			fputc(' ', trace_file);
		else if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '\\')
			fprintf(trace_file, "\\x%02x", p[i]);
		else
			fputc(p[i], trace_file);
	}
	if (hdr->len > TRACE_PAYLOAD_MAX)
		fprintf(trace_file, "...(%u bytes)", (unsigned int)hdr->len);
	fputc('\n', trace_file);
}

void trace_conn(unsigned long conn, unsigned int domid, const char *kind,
		const char *event)
{
	stamp(conn, domid);
	fprintf(trace_file, "CONN %s %s\n", kind, event);
}

void trace_note(const char *text)
{
	if (!trace_file)
		return;
	stamp(0, 0);
	fprintf(trace_file, "NOTE %s\n", text);
}
