/*
 * watch-example: the watch example of the XenStore reference usage, run against the daemon at
 * XENSTORED_PATH as a privileged (dom0) socket client, with TAP checks of what it sees.
 *
 * The example: xs_open, xs_get_domain_path(0) + "/mynode", xs_watch(path, "mytoken"), then a loop that
 * select()s on xs_fileno and, when it is readable, takes the event with xs_read_watch
 * (vec[XS_WATCH_PATH], vec[XS_WATCH_TOKEN]) and answers it by reading the node that fired and writing a
 * reply, each inside a transaction (xs_transaction_start / xs_transaction_end, retried on EAGAIN).
 *
 * Here it is driven by a second handle of this process and by a child process that write requests
 * under the watched node; the checks pin the initial event, one event per write in write order, the
 * event of the example's own committed reply, a commit retried after EAGAIN (which fires nothing for
 * the failed attempt), xs_check_watch, and that nothing arrives after xs_unwatch.
 *
 * Build: cc -Wall -Wextra -Werror -std=gnu11 watch-example.c $(pkg-config --cflags --libs xenstore)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* asprintf */
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xenstore.h>

#include "tests/integration/tap.h"

#define TOKEN		"mytoken"
#define WAIT_MS		5000	/* for an event that must come */
#define QUIET_MS	200	/* for "nothing is readable" */
#define BURST		20	/* writes of the child process */

/* A fatal setup failure: report it, print the plan and stop. */
static void bail(const char *what)
{
	int e = errno;

	ok(false, "%s", what);
	diag("errno %s; cannot go on", errname(e));
	printf("1..%d\n", checks);
	exit(1);
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

/* A formatted string in one of a few rotating static buffers: for check names and diagnostics. */
static const char *f(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *f(const char *fmt, ...)
{
	static char bufs[4][512];
	static int next;
	char *b = bufs[next++ % 4];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(bufs[0]), fmt, ap);
	va_end(ap);
	return b;
}

static void must_write(struct xs_handle *h, const char *path, const char *val)
{
	if (!xs_write(h, XBT_NULL, path, val, strlen(val)))
		bail(f("xs_write(%s) succeeds", path));
}

/* As the reference example: select() on the watch fd, up to ms milliseconds. */
static bool fd_readable(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	fd_set set;
	int r;

	do {
		FD_ZERO(&set);
		FD_SET(fd, &set);
		r = select(fd + 1, &set, NULL, NULL, &tv);
	} while (r < 0 && errno == EINTR);
	return r > 0 && FD_ISSET(fd, &set);
}

/* The next event (caller frees), or NULL if the fd did not become readable within WAIT_MS. */
static char **next_event(struct xs_handle *h, unsigned int *num)
{
	*num = 0;
	errno = 0;
	if (!fd_readable(xs_fileno(h), WAIT_MS))
		return NULL;
	return xs_read_watch(h, num);
}

/* The next event must be (path, token). */
static bool event_is(struct xs_handle *h, const char *path, const char *token, const char *name)
{
	unsigned int num;
	char **vec = next_event(h, &num);
	bool good = vec && num == 2 && strcmp(vec[XS_WATCH_PATH], path) == 0 &&
		    strcmp(vec[XS_WATCH_TOKEN], token) == 0;

	if (!ok(good, "%s", name)) {
		if (!vec)
			diag("no event within %d ms (errno %s); expected (%s, %s)", WAIT_MS,
			     errname(errno), path, token);
		else
			diag("event (%s, %s) with %u strings; expected (%s, %s) with 2", vec[XS_WATCH_PATH],
			     num > 1 ? vec[XS_WATCH_TOKEN] : "(none)", num, path, token);
	}
	free(vec);
	return good;
}

/* No event is pending now: the fd stays unreadable for QUIET_MS. */
static void quiet(struct xs_handle *h, const char *name)
{
	if (!ok(!fd_readable(xs_fileno(h), QUIET_MS), "%s", name)) {
		unsigned int num = 0;
		char **vec = xs_read_watch(h, &num);

		if (vec)
			diag("unexpected event (%s, %s)", vec[XS_WATCH_PATH], vec[XS_WATCH_TOKEN]);
		free(vec);
	}
}

/* Set by the EAGAIN round: a change to the request made between the handler's read and its commit. */
static struct xs_handle *meddler;
static const char *meddle_path, *meddle_value;

/*
 * The example's answer to an event on `path`: in a transaction, read it and write "pong:<value>" to
 * reply_path; retried while the commit fails with EAGAIN. Returns the number of attempts (0: failed)
 * and the value that was read by the committed attempt in *seen.
 */
static int handle_event(struct xs_handle *xs, const char *path, const char *reply_path, char **seen)
{
	int attempt;

	*seen = NULL;
	for (attempt = 1; attempt <= 10; attempt++) {
		xs_transaction_t th;
		unsigned int len;
		char *buf, *reply;
		bool wrote;

		th = xs_transaction_start(xs);
		if (th == XBT_NULL) {
			diag("xs_transaction_start: errno %s", errname(errno));
			return 0;
		}
		buf = xs_read(xs, th, path, &len);
		if (!buf) {
			diag("xs_read(t=%u, %s): errno %s", th, path, errname(errno));
			xs_transaction_end(xs, th, true);
			return 0;
		}
		if (attempt == 1 && meddler)
			must_write(meddler, meddle_path, meddle_value);
		reply = xasprintf("pong:%s", buf);
		wrote = xs_write(xs, th, reply_path, reply, strlen(reply));
		free(reply);
		if (!wrote) {
			diag("xs_write(t=%u, %s): errno %s", th, reply_path, errname(errno));
			xs_transaction_end(xs, th, true);
			free(buf);
			return 0;
		}
		errno = 0;
		if (xs_transaction_end(xs, th, false)) {
			*seen = buf;
			return attempt;
		}
		free(buf);
		if (errno != EAGAIN) {
			diag("xs_transaction_end(t=%u): errno %s", th, errname(errno));
			return 0;
		}
	}
	diag("still EAGAIN after 10 attempts");
	return 0;
}

static void value_is(struct xs_handle *h, const char *path, const char *want, const char *name)
{
	unsigned int len;
	char *v = xs_read(h, XBT_NULL, path, &len);

	if (!ok(v && strcmp(v, want) == 0, "%s", name))
		diag("xs_read(%s): %s (errno %s); expected \"%s\"", path, v ? v : "NULL", errname(errno),
		     want);
	free(v);
}

/* The child process: waits for a byte on fd, then writes base/burst/0..BURST-1 with its own handle. */
static int child_writer(int fd, const char *base)
{
	struct xs_handle *h;
	char c;
	int i;

	if (read(fd, &c, 1) != 1)
		return 2;
	h = xs_open(0);
	if (!h)
		return 3;
	for (i = 0; i < BURST; i++) {
		char *p = xasprintf("%s/burst/%d", base, i);
		char *v = xasprintf("%d", i);

		if (!xs_write(h, XBT_NULL, p, v, strlen(v)))
			return 4;
		free(p);
		free(v);
	}
	xs_close(h);
	return 0;
}

int main(void)
{
	struct xs_handle *xs, *drv;
	char *path, *request, *reply, *seen, *p;
	char **vec;
	unsigned int num;
	int fd, go[2], r, attempts, st;
	pid_t kid;

	/* The child is forked before any handle exists (xs_open(0) handles do not survive fork). */
	if (pipe(go) < 0)
		bail("pipe");
	kid = fork();
	if (kid < 0)
		bail("fork");
	if (kid == 0) {
		close(go[1]);
		_exit(child_writer(go[0], "/local/domain/0/mynode"));
	}
	close(go[0]);

	/* ---- the example's set-up */
	xs = xs_open(0);
	if (!xs)
		bail("xs_open(0) connects to the daemon at XENSTORED_PATH");
	drv = xs_open(0);
	if (!drv)
		bail("a second xs_open(0) connects");

	path = xs_get_domain_path(xs, 0);
	if (!ok(path && strcmp(path, "/local/domain/0") == 0, "xs_get_domain_path(0) is /local/domain/0"))
		bail(f("domain path: %s", path ? path : "NULL"));
	path = realloc(path, strlen(path) + strlen("/mynode") + 1);
	if (!path)
		abort();
	strcat(path, "/mynode");
	request = xasprintf("%s/request", path);
	reply = xasprintf("%s/reply", path);

	ok(xs_watch(xs, path, TOKEN), "xs_watch(%s, %s) succeeds", path, TOKEN);
	fd = xs_fileno(xs);
	if (!ok(fd >= 0, "xs_fileno gives a file descriptor"))
		bail("no fd to select() on");

	event_is(xs, path, TOKEN, "the initial event: vec[XS_WATCH_PATH] is the watched path, "
		 "vec[XS_WATCH_TOKEN] the token");
	quiet(xs, "nothing more after the initial event");

	/* ---- requests from the other handle, answered by the example */
	for (r = 1; r <= 3; r++) {
		char *ping = xasprintf("ping %d", r), *pong = xasprintf("pong:ping %d", r);

		must_write(drv, request, ping);
		event_is(xs, request, TOKEN, f("round %d: the other handle's write of %s fires",
						       r, request));
		attempts = handle_event(xs, request, reply, &seen);
		ok(attempts == 1 && seen && strcmp(seen, ping) == 0,
		   "round %d: the transaction reads \"%s\" and commits at the first attempt", r, ping);
		if (attempts != 1)
			diag("attempts %d, read \"%s\"", attempts, seen ? seen : "NULL");
		free(seen);
		value_is(drv, reply, pong, f("round %d: the other handle reads the reply", r));
		event_is(xs, reply, TOKEN, f("round %d: the example's own committed write of %s "
						     "fires", r, reply));
		quiet(xs, f("round %d: no other event", r));
		free(ping);
		free(pong);
	}

	/* ---- EAGAIN: the request changes between the handler's read and its commit */
	must_write(drv, request, "ping 4");
	event_is(xs, request, TOKEN, "EAGAIN round: the write of \"ping 4\" fires");
	meddler = drv;
	meddle_path = request;
	meddle_value = "ping 5";
	attempts = handle_event(xs, request, reply, &seen);
	meddler = NULL;
	ok(attempts == 2 && seen && strcmp(seen, "ping 5") == 0,
	   "EAGAIN round: the first commit fails with EAGAIN, the retry reads \"ping 5\" and commits");
	if (attempts != 2)
		diag("attempts %d, read \"%s\"", attempts, seen ? seen : "NULL");
	free(seen);
	value_is(drv, reply, "pong:ping 5", "EAGAIN round: the reply is the retry's");
	event_is(xs, request, TOKEN, "EAGAIN round: the concurrent write of \"ping 5\" fires");
	event_is(xs, reply, TOKEN, "EAGAIN round: the retried commit fires once");
	quiet(xs, "EAGAIN round: the failed commit fired nothing");

	/* ---- a burst from the child process, in order */
	if (write(go[1], "g", 1) != 1)
		bail("start the child writer");
	close(go[1]);
	{
		int i, bad = -1;
		char *got = NULL;

		for (i = 0; i < BURST && bad < 0; i++) {
			char *want = xasprintf("%s/burst/%d", path, i);

			vec = next_event(xs, &num);
			if (!vec || num != 2 || strcmp(vec[XS_WATCH_PATH], want) != 0 ||
			    strcmp(vec[XS_WATCH_TOKEN], TOKEN) != 0) {
				bad = i;
				got = xasprintf("%s, %s", vec ? vec[XS_WATCH_PATH] : "no event",
						vec && num > 1 ? vec[XS_WATCH_TOKEN] : "-");
			}
			free(vec);
			free(want);
		}
		if (!ok(bad < 0, "the child process's %d writes fire %d events, in write order", BURST, BURST))
			diag("event #%d: (%s); expected (%s/burst/%d, %s)", bad, got, path, bad, TOKEN);
		free(got);
	}
	waitpid(kid, &st, 0);
	if (!ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child writer succeeded"))
		diag("child wait status %#x", st);
	quiet(xs, "no event after the burst");

	/* ---- xs_check_watch: the non-blocking way to take events */
	p = xasprintf("%s/check", path);
	must_write(drv, p, "1");
	ok(fd_readable(fd, WAIT_MS), "the fd becomes readable after a write");
	errno = 0;
	vec = xs_check_watch(xs);
	if (!ok(vec && strcmp(vec[XS_WATCH_PATH], p) == 0 && strcmp(vec[XS_WATCH_TOKEN], TOKEN) == 0,
		"xs_check_watch returns the event (%s, %s)", p, TOKEN))
		diag("got %s (errno %s)", vec ? f("(%s, %s)", vec[0], vec[1]) : "NULL",
		     errname(errno));
	free(vec);
	errno = 0;
	vec = xs_check_watch(xs);
	if (!ok(!vec && errno == EAGAIN, "then xs_check_watch returns NULL with EAGAIN"))
		diag("got %s (errno %s)", vec ? f("(%s, %s)", vec[0], vec[1]) : "NULL",
		     errname(errno));
	free(vec);
	free(p);

	/* ---- xs_unwatch: nothing more for that watch */
	ok(xs_unwatch(xs, path, TOKEN), "xs_unwatch(%s, %s) succeeds", path, TOKEN);
	must_write(drv, request, "after unwatch");
	must_write(drv, path, "after unwatch");
	/* A new watch's initial event comes after anything generated before it. */
	ok(xs_watch(xs, "/barrier", "barrier"), "xs_watch(/barrier, barrier) succeeds");
	event_is(xs, "/barrier", "barrier", "after xs_unwatch and two writes, the next event is "
		 "another watch's initial event");
	quiet(xs, "nothing after it");
	errno = 0;
	ok(!xs_unwatch(xs, path, TOKEN) && errno == ENOENT,
	   "a second xs_unwatch fails with ENOENT");
	errno = 0;
	ok(!xs_watch(xs, "/barrier", "barrier") && errno == EEXIST,
	   "xs_watch of an existing (path, token) fails with EEXIST");

	/* ---- clean-up, as the example */
	xs_close(drv);
	xs_close(xs);
	free(path);
	free(request);
	free(reply);
	printf("1..%d\n", checks);
	return failures ? 1 : 0;
}
