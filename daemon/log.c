/* Logging to stderr or syslog. */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "daemon/log.h"

enum log_level log_current_level = LOG_LVL_WARN;
static bool log_to_syslog;

void log_open(bool use_syslog, enum log_level level)
{
	log_to_syslog = use_syslog;
	log_current_level = level;
	if (use_syslog)
		openlog("xenstored", LOG_PID, LOG_DAEMON);
}

void log_write(enum log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const name[] = { "error", "warning", "info", "debug" };
	va_list ap;

	va_start(ap, fmt);
	if (log_to_syslog) {
		vsyslog(prio[level], fmt, ap);
	} else {
		fprintf(stderr, "xenstored: %s: ", name[level]);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}
