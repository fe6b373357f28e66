/*
 * log: the one logging API every module uses (the bottom layer: any
 * module may call it).
 *
 * Messages below the current level cost one comparison.  Output goes to
 * stderr (foreground), syslog (daemonised) or a file named by the
 * administrator; log_reopen() reopens that file after a rotation (SIGHUP).
 * When stderr is the journal (JOURNAL_STREAM names it), each line starts
 * with its sd-daemon priority ("<3>" error ... "<7>" debug), so journald
 * files it at that priority; elsewhere the lines stay plain.
 */
#ifndef XS_LOG_H
#define XS_LOG_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG, LOG_TO_FILE };

extern enum log_level log_current_level;

/*
 * Start logging to target at level; path names the file for LOG_TO_FILE.
 * Returns 0, or -1 with errno when the file cannot be opened.
 */
int log_open(enum log_target target, const char *path, enum log_level level);
/* Reopen the log file (no-op for other targets); -1 with errno on failure,
 * in which case the old file stays in use. */
int log_reopen(void);
void log_close(void);

/* Open path for appending, line-buffered, created with mode if missing
 * (for the log and the trace file); NULL with errno on failure. */
FILE *log_open_append(const char *path, mode_t mode);

/* Local time as "2026-11-23 16:05:42.123" with digits (1..6) decimals. */
#define LOG_TIME_LEN 32
void log_time(char buf[LOG_TIME_LEN], int digits);

/* "error", "warning", "info" or "debug" (case-insensitive) to a level. */
bool log_parse_level(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * libevent's own messages, for event_set_log_callback: its severities
 * become our levels, "libevent: " before the text.  log_libevent_fatal,
 * for event_set_fatal_callback, logs the error; for libevent's internal
 * assertions it aborts (a core for the bug), otherwise it returns and
 * libevent exits with err.
 */
void log_libevent(int severity, const char *msg);
void log_libevent_fatal(int err);

#define xs_log(level, ...) \
	do { \
		if ((level) <= log_current_level) \
			log_write((level), __VA_ARGS__); \
	} while (0)
#define log_error(...) xs_log(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) xs_log(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) xs_log(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) xs_log(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
