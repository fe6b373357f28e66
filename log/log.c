/* Logging to stderr, syslog or a file. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log/log.h"

enum log_level log_current_level = LOG_LVL_WARN;
static enum log_target log_target = LOG_TO_STDERR;
static char *log_path;		/* LOG_TO_FILE: the file's name, owned */
static FILE *log_file;		/* LOG_TO_FILE: the open file */
static bool log_journal;	/* LOG_TO_STDERR: stderr is the journal */

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error", [LOG_LVL_WARN] = "warning",
	[LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug",
};

FILE *log_open_append(const char *path, mode_t mode)
{
	/* O_APPEND: several writers (or a logrotate copytruncate) stay sane. */
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode);
	FILE *f;

	if (fd < 0)
		return NULL;
	f = fdopen(fd, "a");
	if (!f) {
		int e = errno;

		close(fd);
		errno = e;
		return NULL;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	return f;
}

/*
 * systemd.exec(5): JOURNAL_STREAM is "device:inode" of the stream it gave
 * us; a redirected stderr (a pipe, a file, a terminal) no longer matches,
 * and there a "<3>" would only be noise.
 */
static bool stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char end;

	if (!env || sscanf(env, "%llu:%llu%c", &dev, &ino, &end) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

int log_open(enum log_target target, const char *path, enum log_level level)
{
	log_close();
	log_journal = target == LOG_TO_STDERR && stderr_is_journal();
	if (target == LOG_TO_FILE) {
		log_path = strdup(path);
		if (!log_path)
			return -1;
		log_file = log_open_append(path, 0640);
		if (!log_file) {
			int e = errno;

			free(log_path);
			log_path = NULL;
			errno = e;
			return -1;
		}
	} else if (target == LOG_TO_SYSLOG) {
		openlog("xenstored", LOG_PID, LOG_DAEMON);
	}
	log_target = target;
	log_current_level = level;
	return 0;
}

int log_reopen(void)
{
	FILE *f;

	if (log_target != LOG_TO_FILE)
		return 0;
	f = log_open_append(log_path, 0640);
	if (!f)
		return -1;
	fclose(log_file);
	log_file = f;
	return 0;
}

void log_close(void)
{
	if (log_target == LOG_TO_FILE && log_file)
		fclose(log_file);
	else if (log_target == LOG_TO_SYSLOG)
		closelog();
	log_file = NULL;
	free(log_path);
	log_path = NULL;
	log_target = LOG_TO_STDERR;
}

bool log_parse_level(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	return false;
}

const char *log_level_name(enum log_level level)
{
	return level_names[level];
}

void log_time(char buf[LOG_TIME_LEN], int digits)
{
	struct timeval tv;
	struct tm tm;
	long frac;
	size_t n;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = strftime(buf, LOG_TIME_LEN, "%Y-%m-%d %H:%M:%S", &tm);
	frac = tv.tv_usec;
	for (int i = digits; i < 6; i++)
		frac /= 10;
	snprintf(buf + n, LOG_TIME_LEN - n, ".%0*ld", digits, frac);
}

void log_write(enum log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	va_list ap;

	va_start(ap, fmt);
	if (log_target == LOG_TO_SYSLOG) {
		vsyslog(prio[level], fmt, ap);
	} else if (log_target == LOG_TO_FILE) {
		char when[LOG_TIME_LEN];

		log_time(when, 3);
		fprintf(log_file, "%s xenstored[%ld]: %s: ", when,
			(long)getpid(), level_names[level]);
		vfprintf(log_file, fmt, ap);
		fputc('\n', log_file);
	} else if (log_journal) {
		/* journald adds our name and pid, and reads the priority. */
		fprintf(stderr, "<%d>%s: ", prio[level], level_names[level]);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else {
		fprintf(stderr, "xenstored: %s: ", level_names[level]);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

void log_libevent(int severity, const char *msg)
{
	enum log_level level = severity >= EVENT_LOG_ERR ? LOG_LVL_ERROR
			       : severity == EVENT_LOG_WARN ? LOG_LVL_WARN
			       : severity == EVENT_LOG_MSG ? LOG_LVL_INFO
			       : LOG_LVL_DEBUG;

	xs_log(level, "libevent: %s", msg);
}

/* libevent's code for a failed internal assertion (log-internal.h). */
#define LIBEVENT_ERR_ABORT ((int)0xdeaddead)

void log_libevent_fatal(int err)
{
	if (err == LIBEVENT_ERR_ABORT) {
		log_write(LOG_LVL_ERROR, "libevent: internal error: aborting");
		abort();
	}
	log_write(LOG_LVL_ERROR, "libevent: fatal error (%d): exiting", err);
}
