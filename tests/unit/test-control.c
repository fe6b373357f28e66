/*
 * ops/control_ops.c: the CONTROL commands, through the real dispatcher, as
 * xenstore-control sends them (the command and its arguments as strings),
 * with their answers, their refusals of bad arguments, and the privilege
 * they need.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/unit/server_rig.h"

#include "log/trace.h"

static char dir[64];		/* a scratch directory, "" when none */

static void setup(void)
{
	rig_setup();
	dir[0] = '\0';
}

/* Remove the scratch directory and the few files a test made in it. */
static void teardown(void)
{
	static const char *const files[] = { "trace", "mem" };

	trace_stop();
	rig_teardown();
	if (!dir[0])
		return;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[96];

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* dir/name, the scratch directory made at first use. */
static const char *scratch(const char *name)
{
	static char path[96];

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/xs-unit-control-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(dir));
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

/* Does the file at path contain s? */
static bool file_has(const char *path, const char *s)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "rb");
	size_t n;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return memmem(buf, n, s, strlen(s)) != NULL;
}

/* CONTROL with the strings joined by their NULs (NULL-terminated list). */
static uint32_t control(const char *first, ...)
{
	char buf[512];
	size_t len = 0;
	va_list ap;

	va_start(ap, first);
	for (const char *s = first; s; s = va_arg(ap, const char *)) {
		ck_assert_uint_lt(len + strlen(s) + 1, sizeof(buf));
		strcpy(buf + len, s);
		len += strlen(s) + 1;
	}
	va_end(ap);
	return rig_xs(c0, XS_CONTROL, buf, len);
}

#define CTL_OK(...) \
	ck_assert_msg(control(__VA_ARGS__, NULL) == XS_CONTROL, "%s", rbuf)
#define CTL_ERR(err, ...) do { \
	ck_assert_uint_eq(control(__VA_ARGS__, NULL), XS_ERROR); \
	ck_assert_str_eq(rbuf, (err)); \
} while (0)
#define OK(c, type, lit) \
	ck_assert_msg(rig_xs((c), (type), UNIT_BYTES(lit)) == (uint32_t)(type), \
		      "%s: %s", #lit, rbuf)

static const char *const commands[] = {
	"check", "help", "live-update", "log", "logfile", "memreport",
	"print", "quota", "quota-soft",
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* ---- the command line ---- */

START_TEST(help_lists_every_command)
{
	CTL_OK("help");
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char line[32];

		snprintf(line, sizeof(line), "%s\t", commands[i]);
		ck_assert_msg(strstr(rbuf, line), "help lacks %s: %s",
			      commands[i], rbuf);
	}
	CTL_ERR("EINVAL", "help", "me");
}
END_TEST

START_TEST(unknown_empty_and_overlong_commands_are_einval)
{
	CTL_ERR("EINVAL", "nonsense");
	CTL_ERR("EINVAL", "CHECK");
	ck_assert_uint_eq(rig_xs(c0, XS_CONTROL, "", 0), XS_ERROR);
	ck_assert_str_eq(rbuf, "EINVAL");
	/* Eight strings: more than any command takes. */
	CTL_ERR("EINVAL", "print", "a", "b", "c", "d", "e", "f", "g");
}
END_TEST

START_TEST(a_guest_may_use_no_command)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char buf[32];
		size_t len = strlen(commands[i]) + 1;

		memcpy(buf, commands[i], len);
		ck_assert_uint_eq(rig_xs(c5, XS_CONTROL, buf, len), XS_ERROR);
		ck_assert_str_eq(rbuf, "EACCES");
	}
	/* Not even to change a quota. */
	ck_assert_uint_eq(rig_xs(c5, XS_CONTROL,
			     UNIT_BYTES("quota\0set\0nodes\0" "1\0")),
			  XS_ERROR);
	ck_assert_str_eq(rbuf, "EACCES");
	ck_assert_uint_ne(srv.quotas.hard[QUOTA_NODES], 1);
}
END_TEST

/* ---- check, print, memreport ---- */

START_TEST(check_is_ok_on_a_sound_tree)
{
	OK(c0, XS_WRITE, "/a/b/c\0v");
	CTL_OK("check");
	ck_assert_str_eq(rbuf, "OK");
	CTL_ERR("EINVAL", "check", "extra");
}
END_TEST

START_TEST(check_lists_the_problems_it_finds)
{
	char perms[512];
	size_t len;

	/* A node that names domains 7 and 100 to 124, so that the store
	 * counts them (check recounts only the domains it ever counted: no
	 * other code writes their entries). */
	len = (size_t)snprintf(perms, sizeof(perms), "/p%cn0%cr7", 0, 0) + 1;
	for (unsigned int d = 100; d < 125; d++)
		len += (size_t)snprintf(perms + len, sizeof(perms) - len,
					"r%u", d) + 1;
	OK(c0, XS_WRITE, "/p\0v");
	ck_assert_uint_eq(rig_xs(c0, XS_SET_PERMS, perms, len), XS_SET_PERMS);
	CTL_OK("check");
	ck_assert_str_eq(rbuf, "OK");
	srv.store.use[7].owned++;
	CTL_OK("check");
	ck_assert_msg(strstr(rbuf, "/: node accounting of domain 7 is wrong\n"),
		      "%s", rbuf);
	ck_assert_msg(strstr(rbuf, "1 problems in "), "%s", rbuf);
	srv.store.use[7].owned--;
	/* Past twenty, the rest are counted. */
	for (unsigned int d = 100; d < 125; d++)
		srv.store.use[d].owned++;
	CTL_OK("check");
	ck_assert_msg(strstr(rbuf, "... 5 more\n25 problems in "), "%s", rbuf);
	for (unsigned int d = 100; d < 125; d++)
		srv.store.use[d].owned--;
}
END_TEST

START_TEST(print_takes_exactly_one_string)
{
	CTL_OK("print", "hello from a test");
	ck_assert_str_eq(rbuf, "OK");
	CTL_ERR("EINVAL", "print");
	CTL_ERR("EINVAL", "print", "a", "b");
}
END_TEST

START_TEST(memreport_counts_nodes_connections_and_watches)
{
	unsigned long nodes = store_count(&srv.store);
	char want[64];

	OK(c5, XS_WATCH, "/local/domain/5/w\0t\0");
	evbuffer_drain(c5->out, evbuffer_get_length(c5->out));
	OK(c5, XS_TRANSACTION_START, "\0");
	CTL_OK("memreport");
	snprintf(want, sizeof(want), "nodes: %lu (", nodes);
	ck_assert_msg(strstr(rbuf, want), "memreport: %s", rbuf);
	ck_assert_msg(strstr(rbuf, "connections: 2 ("),
		      "memreport: %s", rbuf);
	ck_assert_msg(strstr(rbuf, "domains: 0\n"), "memreport: %s", rbuf);
	ck_assert_msg(strstr(rbuf, "watches: 1\n"), "memreport: %s", rbuf);
	ck_assert_msg(strstr(rbuf, "transactions: 1\n"), "memreport: %s", rbuf);
}
END_TEST

START_TEST(memreport_to_a_file)
{
	const char *path = scratch("mem");

	CTL_OK("memreport", path);
	ck_assert_str_eq(rbuf, "OK");
	ck_assert(file_has(path, "nodes: "));
	ck_assert(file_has(path, "watches: 0\n"));
	/* Only an absolute path; one argument; a file that can be made. */
	CTL_ERR("EINVAL", "memreport", "relative");
	CTL_ERR("EINVAL", "memreport", path, "again");
	CTL_ERR("ENOENT", "memreport", "/nonexistent/dir/mem");
}
END_TEST

/* ---- quota, quota-soft ---- */

START_TEST(quota_lists_and_sets_the_global_limits)
{
	CTL_OK("quota");
	ck_assert_msg(strncmp(rbuf, "Quota settings:\n", 16) == 0, "%s", rbuf);
	for (int k = 0; k < QUOTA_KINDS; k++)
		ck_assert_msg(strstr(rbuf, quota_name((enum quota_kind)k)),
			      "quota lacks %s: %s",
			      quota_name((enum quota_kind)k), rbuf);
	CTL_OK("quota", "set", "nodes", "12");
	ck_assert_str_eq(rbuf, "OK");
	ck_assert_uint_eq(srv.quotas.hard[QUOTA_NODES], 12);
	CTL_OK("quota");
	ck_assert_msg(strstr(rbuf, "nodes            :       12 "), "%s", rbuf);
	/* It applies: the guest's thirteenth node is refused. */
	OK(c0, XS_MKDIR, "/local/domain/5\0");
	OK(c0, XS_SET_PERMS, "/local/domain/5\0n5\0");
	for (int i = 0; i < 11; i++) {
		char buf[32];
		int len = snprintf(buf, sizeof(buf), "n%d", i) + 1;

		ck_assert_uint_eq(rig_xs(c5, XS_WRITE, buf, (size_t)len), XS_WRITE);
	}
	ck_assert_uint_eq(rig_xs(c5, XS_WRITE, UNIT_BYTES("n11\0")), XS_ERROR);
	ck_assert_str_eq(rbuf, "ENOSPC");
}
END_TEST

START_TEST(quota_refuses_bad_names_values_and_shapes)
{
	unsigned int before = srv.quotas.hard[QUOTA_NODES];

	CTL_ERR("EINVAL", "quota", "set", "bogus", "1");
	CTL_ERR("EINVAL", "quota", "set", "nodes", "x");
	CTL_ERR("EINVAL", "quota", "set", "nodes", "-1");
	CTL_ERR("EINVAL", "quota", "set", "nodes", "4294967295");
	CTL_ERR("EINVAL", "quota", "set", "nodes");
	CTL_ERR("EINVAL", "quota", "a", "b");
	CTL_ERR("EINVAL", "quota", "notadomid");
	ck_assert_uint_eq(srv.quotas.hard[QUOTA_NODES], before);
}
END_TEST

START_TEST(quota_of_a_domain_is_what_it_holds)
{
	OK(c0, XS_WRITE, "/mine\0v");
	OK(c0, XS_WATCH, "/mine\0t\0");
	evbuffer_drain(c0->out, evbuffer_get_length(c0->out));
	CTL_OK("quota", "0");
	ck_assert_msg(strncmp(rbuf, "Domain 0:\n", 10) == 0, "%s", rbuf);
	ck_assert_msg(strstr(rbuf, "watches         :        1\n"), "%s", rbuf);
	ck_assert_msg(strstr(rbuf, "transactions    :        0\n"), "%s", rbuf);
	/* A domain never introduced has no quotas to show. */
	CTL_ERR("ENOENT", "quota", "5");
}
END_TEST

START_TEST(quota_soft_shows_and_sets_the_memory_warning)
{
	CTL_OK("quota-soft");
	ck_assert_msg(strstr(rbuf, "memory"), "%s", rbuf);
	CTL_OK("quota-soft", "set", "memory", "4096");
	ck_assert_uint_eq(srv.quotas.soft_memory, 4096);
	CTL_OK("quota-soft");
	ck_assert_msg(strstr(rbuf, "memory           :     4096 "), "%s", rbuf);
	CTL_ERR("EINVAL", "quota-soft", "set", "nodes", "1");
	CTL_ERR("EINVAL", "quota-soft", "set", "memory", "x");
	CTL_ERR("EINVAL", "quota-soft", "bogus");
	ck_assert_uint_eq(srv.quotas.soft_memory, 4096);
}
END_TEST

/* ---- log, logfile: the access trace ---- */

/* A request through c0's input, as the trace sees it (conn/ traces). */
static void traced_read(const char *path)
{
	unit_add_packet(c0->in, XS_READ, 99, 0, path, strlen(path) + 1);
	conn_handle_input(c0);
	evbuffer_drain(c0->out, evbuffer_get_length(c0->out));
}

START_TEST(log_reports_the_trace_state)
{
	CTL_OK("log");
	ck_assert_str_eq(rbuf, "trace off, file (none), switches +io +conn\n");
	/* No file named yet: nothing to start. */
	CTL_ERR("ENOENT", "log", "on");
	CTL_OK("log", "-conn");
	CTL_OK("log");
	ck_assert_str_eq(rbuf, "trace off, file (none), switches +io -conn\n");
	CTL_ERR("EINVAL", "log", "+nonsense");
	CTL_ERR("EINVAL", "log", "io");
	CTL_ERR("EINVAL", "log", "maybe");
}
END_TEST

START_TEST(logfile_starts_a_trace_that_log_switches)
{
	const char *path = scratch("trace");
	char want[128];

	CTL_OK("logfile", path);
	ck_assert_int_ne(trace_active, 0);
	snprintf(want, sizeof(want), "trace on, file %s, switches +io +conn\n",
		 path);
	CTL_OK("log");
	ck_assert_str_eq(rbuf, want);
	traced_read("/first");
	CTL_OK("print", "a note");
	ck_assert(file_has(path, "IN READ r99 t0 /first"));
	ck_assert(file_has(path, "a note"));
	/* -io: requests are no longer traced. */
	CTL_OK("log", "-io");
	traced_read("/second");
	CTL_OK("print", "after second");
	ck_assert(file_has(path, "after second"));
	ck_assert(!file_has(path, "/second"));
	/* off, then on again: the same file. */
	CTL_OK("log", "off", "+io");
	ck_assert_uint_eq(trace_active, 0);
	CTL_OK("log", "on");
	traced_read("/third");
	ck_assert(file_has(path, "IN READ r99 t0 /third"));
}
END_TEST

START_TEST(logfile_refuses_what_it_cannot_open)
{
	CTL_ERR("EINVAL", "logfile");
	CTL_ERR("EINVAL", "logfile", "");
	CTL_ERR("EINVAL", "logfile", "a", "b");
	CTL_ERR("ENOENT", "logfile", "/nonexistent/dir/trace");
	ck_assert_uint_eq(trace_active, 0);
	ck_assert_ptr_null(trace_file_name());
}
END_TEST

/* ---- live-update ---- */

static unsigned int execs;
static char exec_binary[64], exec_cmdline[64];

/* daemon/'s hook would save the state and exec; this one only fails. */
static const char *fake_exec(struct server *s, struct conn *c,
			     const struct request *req, const char *binary,
			     const char *cmdline)
{
	ck_assert_ptr_eq(s, &srv);
	ck_assert_ptr_eq(c, c0);
	ck_assert_uint_eq(req->hdr.type, XS_CONTROL);
	execs++;
	snprintf(exec_binary, sizeof(exec_binary), "%s", binary);
	snprintf(exec_cmdline, sizeof(exec_cmdline), "%s",
		 cmdline ? cmdline : "(none)");
	return "not really";
}

START_TEST(live_update_needs_a_binary_and_can_be_aborted)
{
	CTL_OK("live-update", "-s");
	ck_assert_msg(strstr(rbuf, "no binary given"), "%s", rbuf);
	CTL_OK("live-update", "-f", "/nonexistent/xenstored");
	ck_assert_msg(strstr(rbuf, "cannot execute"), "%s", rbuf);
	ck_assert_ptr_null(srv.live_update.binary);
	CTL_OK("live-update", "-f", "/bin/true");
	ck_assert_str_eq(rbuf, "OK");
	/* No exec hook in a unit test: refused, not attempted. */
	CTL_OK("live-update", "-s");
	ck_assert_msg(strstr(rbuf, "not available"), "%s", rbuf);
	CTL_OK("live-update", "-a");
	ck_assert_str_eq(rbuf, "OK");
	ck_assert_ptr_null(srv.live_update.binary);
}
END_TEST

START_TEST(live_update_refuses_malformed_arguments)
{
	CTL_ERR("EINVAL", "live-update");
	CTL_ERR("EINVAL", "live-update", "-x");
	CTL_ERR("EINVAL", "live-update", "-f");
	CTL_ERR("EINVAL", "live-update", "-c");
	CTL_ERR("EINVAL", "live-update", "-a", "-s");
	CTL_ERR("EINVAL", "live-update", "-s", "-t");
	CTL_ERR("EINVAL", "live-update", "-s", "-t", "soon");
	CTL_ERR("EINVAL", "live-update", "-s", "-t", "86401");
	CTL_ERR("EINVAL", "live-update", "-s", "-Q");
}
END_TEST

START_TEST(live_update_runs_the_hook_with_binary_and_cmdline)
{
	srv.live_update.exec = fake_exec;
	CTL_OK("live-update", "-f", "/bin/true");
	CTL_OK("live-update", "-c", "--verbose");
	CTL_OK("live-update", "-s", "-t", "5");
	ck_assert_str_eq(rbuf, "live update failed: not really");
	ck_assert_uint_eq(execs, 1);
	ck_assert_str_eq(exec_binary, "/bin/true");
	ck_assert_str_eq(exec_cmdline, "--verbose");
}
END_TEST

/* Open transactions: BUSY until the timeout, then refused, or forced. */
START_TEST(live_update_waits_for_open_transactions)
{
	srv.live_update.exec = fake_exec;
	CTL_OK("live-update", "-f", "/bin/true");
	OK(c5, XS_TRANSACTION_START, "\0");
	CTL_OK("live-update", "-s", "-t", "60");
	ck_assert_str_eq(rbuf, "BUSY");
	ck_assert(srv.live_update.trying);
	/* A timeout of one second is over at once (the last try comes a
	 * second before it ends). */
	CTL_OK("live-update", "-s", "-t", "1");
	ck_assert_msg(strstr(rbuf, "timeout: 1 transactions still open"),
		      "%s", rbuf);
	ck_assert(!srv.live_update.trying);
	ck_assert_uint_eq(execs, 0);
	CTL_OK("live-update", "-s", "-t", "1", "-F");
	ck_assert_str_eq(rbuf, "live update failed: not really");
	ck_assert_uint_eq(execs, 1);
}
END_TEST

static Suite *control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *cmd = tcase_create("commands");
	TCase *quota = tcase_create("quota");
	TCase *trace = tcase_create("trace");
	TCase *lu = tcase_create("live-update");

	tcase_add_checked_fixture(cmd, setup, teardown);
	tcase_add_test(cmd, help_lists_every_command);
	tcase_add_test(cmd, unknown_empty_and_overlong_commands_are_einval);
	tcase_add_test(cmd, a_guest_may_use_no_command);
	tcase_add_test(cmd, check_is_ok_on_a_sound_tree);
	tcase_add_test(cmd, check_lists_the_problems_it_finds);
	tcase_add_test(cmd, print_takes_exactly_one_string);
	tcase_add_test(cmd, memreport_counts_nodes_connections_and_watches);
	tcase_add_test(cmd, memreport_to_a_file);
	suite_add_tcase(s, cmd);

	tcase_add_checked_fixture(quota, setup, teardown);
	tcase_add_test(quota, quota_lists_and_sets_the_global_limits);
	tcase_add_test(quota, quota_refuses_bad_names_values_and_shapes);
	tcase_add_test(quota, quota_of_a_domain_is_what_it_holds);
	tcase_add_test(quota, quota_soft_shows_and_sets_the_memory_warning);
	suite_add_tcase(s, quota);

	tcase_add_checked_fixture(trace, setup, teardown);
	tcase_add_test(trace, log_reports_the_trace_state);
	tcase_add_test(trace, logfile_starts_a_trace_that_log_switches);
	tcase_add_test(trace, logfile_refuses_what_it_cannot_open);
	suite_add_tcase(s, trace);

	tcase_add_checked_fixture(lu, setup, teardown);
	tcase_add_test(lu, live_update_needs_a_binary_and_can_be_aborted);
	tcase_add_test(lu, live_update_refuses_malformed_arguments);
	tcase_add_test(lu, live_update_runs_the_hook_with_binary_and_cmdline);
	tcase_add_test(lu, live_update_waits_for_open_transactions);
	suite_add_tcase(s, lu);
	return s;
}

int main(void)
{
	return unit_main(control_suite());
}
