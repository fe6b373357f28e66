/* log: libevent's own messages and fatal errors go through our log. */
#include "tests/unit/unit.h"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log/log.h"

static char log_path[64];

static void open_log(enum log_level level)
{
	int fd;

	strcpy(log_path, "/tmp/xs-test-log-XXXXXX");
	fd = mkstemp(log_path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(log_open(LOG_TO_FILE, log_path, level), 0);
}

/* What the log holds (static buffer); the file is removed. */
static const char *close_log(void)
{
	static char buf[4096];
	FILE *f;
	size_t n;

	log_close();
	f = fopen(log_path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(log_path);
	return buf;
}

START_TEST(libevent_warnings_reach_our_log_at_their_level)
{
	struct event_config *cfg;
	const char *text;

	open_log(LOG_LVL_WARN);
	event_set_log_callback(log_libevent);
	/* A real warning: every backend refused. */
	cfg = event_config_new();
	event_config_avoid_method(cfg, "epoll");
	event_config_avoid_method(cfg, "poll");
	event_config_avoid_method(cfg, "select");
	ck_assert_ptr_null(event_base_new_with_config(cfg));
	event_config_free(cfg);
	log_libevent(EVENT_LOG_DEBUG, "hidden at warning level");
	log_libevent(EVENT_LOG_ERR, "an error");
	text = close_log();
	ck_assert_ptr_nonnull(strstr(text, "warning: libevent: "));
	ck_assert_ptr_nonnull(strstr(text, "no event mechanism"));
	ck_assert_ptr_nonnull(strstr(text, "error: libevent: an error"));
	ck_assert_ptr_null(strstr(text, "hidden"));
	event_set_log_callback(NULL);
}
END_TEST

START_TEST(libevent_fatal_error_is_logged_and_returns_for_exit)
{
	open_log(LOG_LVL_ERROR);
	log_libevent_fatal(1);	/* libevent then exits with 1 */
	ck_assert_ptr_nonnull(strstr(close_log(),
				     "error: libevent: fatal error (1)"));
}
END_TEST

static void nothing(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Run fn in a child with libevent's callbacks routed to our log; its
 * wait status, and the log it left in *text. */
static int in_child(void (*fn)(void), const char **text)
{
	int status;
	pid_t pid;

	open_log(LOG_LVL_ERROR);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		event_set_log_callback(log_libevent);
		event_set_fatal_callback(log_libevent_fatal);
		fn();
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	*text = close_log();
	return status;
}

/* libevent's own fatal error: debug mode asked for too late. */
static void debug_mode_too_late(void)
{
	struct event_base *base = event_base_new();

	(void)base;
	event_enable_debug_mode();
}

/* A failed libevent assertion: assigning an event that is added. */
static void assign_an_added_event(void)
{
	struct timeval tv = { 60, 0 };
	struct event_base *base;
	void *ev = calloc(1, event_get_struct_event_size());

	event_enable_debug_mode();
	base = event_base_new();
	event_assign(ev, base, -1, 0, nothing, NULL);
	event_add(ev, &tv);
	event_assign(ev, base, -1, 0, nothing, NULL);
}

START_TEST(libevent_fatal_errors_are_logged_then_exit_or_abort)
{
	const char *text;
	int status;

	status = in_child(debug_mode_too_late, &text);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	ck_assert_ptr_nonnull(strstr(text, "error: libevent: "));
	ck_assert_ptr_nonnull(strstr(text, "fatal error (1): exiting"));
	status = in_child(assign_an_added_event, &text);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	ck_assert_ptr_nonnull(strstr(text, "libevent: internal error: "
				       "aborting"));
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *t = tcase_create("libevent");

	tcase_add_test(t, libevent_warnings_reach_our_log_at_their_level);
	tcase_add_test(t, libevent_fatal_error_is_logged_and_returns_for_exit);
	tcase_add_test(t, libevent_fatal_errors_are_logged_then_exit_or_abort);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(log_suite());
}
