/*
 * daemon/log: the one logging API every module uses.
 *
 * Messages below the current level cost one comparison.  Output goes to
 * stderr (foreground) or syslog (daemonised).
 */
#ifndef XS_DAEMON_LOG_H
#define XS_DAEMON_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern enum log_level log_current_level;

void log_open(bool use_syslog, enum log_level level);
void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

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
