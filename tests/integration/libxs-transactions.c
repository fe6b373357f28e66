/*
 * libxs-transactions: transactions through libxenstore (the client library shipped with Xen), against
 * the daemon at XENSTORED_PATH, as a privileged (dom0) socket client; prints TAP on stdout.
 *
 * Pins what toolstacks rely on: xs_transaction_start / xs_transaction_end(h, t, abort), reads, writes
 * and listings with the transaction handle seeing the transaction's own changes while another
 * connection does not, EAGAIN (in errno) from xs_transaction_end on a conflict, and the usual retry
 * loop, also with two processes racing on one counter.
 *
 * With XS_DAEMON=upstream-c (Xen 4.17's C daemon), the one check where ours is deliberately more
 * precise (two transactions adding different children under one parent both commit) is skipped.
 *
 * Build: cc -Wall -Wextra -Werror -std=gnu11 libxs-transactions.c $(pkg-config --cflags --libs xenstore)
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
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xenstore.h>

#include "tests/integration/tap.h"

/* A fatal setup failure: report it, print the plan and stop. */
static void bail(const char *what)
{
	ok(false, "%s", what);
	diag("errno %s; cannot go on", errname(errno));
	printf("1..%d\n", checks);
	exit(1);
}

/* The value of path as seen through (h, t), or NULL with errno (ENOENT: missing). */
static char *get(struct xs_handle *h, xs_transaction_t t, const char *path)
{
	unsigned int len;

	errno = 0;
	return xs_read(h, t, path, &len);
}

static bool is_value(struct xs_handle *h, xs_transaction_t t, const char *path, const char *want,
		     const char *name)
{
	char *v = get(h, t, path);
	bool good = v && strcmp(v, want) == 0;

	if (!ok(good, "%s", name))
		diag("xs_read(t=%u, %s): %s (errno %s); expected \"%s\"", t, path, v ? v : "NULL",
		     errname(errno), want);
	free(v);
	return good;
}

static bool is_missing(struct xs_handle *h, xs_transaction_t t, const char *path, const char *name)
{
	char *v = get(h, t, path);
	bool good = !v && errno == ENOENT;

	if (!ok(good, "%s", name))
		diag("xs_read(t=%u, %s): %s (errno %s); expected NULL with ENOENT", t, path,
		     v ? v : "NULL", errname(errno));
	free(v);
	return good;
}

static void must_write(struct xs_handle *h, xs_transaction_t t, const char *path, const char *val)
{
	if (!xs_write(h, t, path, val, strlen(val))) {
		char what[512];

		snprintf(what, sizeof(what), "xs_write(t=%u, %s) succeeds", t, path);
		bail(what);
	}
}

static xs_transaction_t must_start(struct xs_handle *h)
{
	xs_transaction_t t;

	errno = 0;
	t = xs_transaction_start(h);
	if (t == XBT_NULL)
		bail("xs_transaction_start succeeds");
	return t;
}

/* The listing of path through (h, t) as "a,b,c", or "ERR:<errno>". */
static char *listing(struct xs_handle *h, xs_transaction_t t, const char *path)
{
	unsigned int n, i;
	size_t size = 1;
	char **v, *s;

	errno = 0;
	v = xs_directory(h, t, path, &n);
	if (!v) {
		if (asprintf(&s, "ERR:%s", errname(errno)) < 0)
			abort();
		return s;
	}
	for (i = 0; i < n; i++)
		size += strlen(v[i]) + 1;
	s = calloc(1, size);
	if (!s)
		abort();
	for (i = 0; i < n; i++) {
		if (i)
			strcat(s, ",");
		strcat(s, v[i]);
	}
	free(v);
	return s;
}

static void dir_is(struct xs_handle *h, xs_transaction_t t, const char *path, const char *want,
		   const char *name)
{
	char *got = listing(h, t, path);

	if (!ok(strcmp(got, want) == 0, "%s", name))
		diag("xs_directory(t=%u, %s): [%s]; expected [%s]", t, path, got, want);
	free(got);
}

/* xs_transaction_end(h, t, abort) returns want_ok, with errno want_errno when it fails. */
static void end_is(struct xs_handle *h, xs_transaction_t t, bool abort_it, bool want_ok,
		   int want_errno, const char *name)
{
	bool r;

	errno = 0;
	r = xs_transaction_end(h, t, abort_it);
	if (!ok(r == want_ok && (want_ok || errno == want_errno), "%s", name))
		diag("xs_transaction_end(t=%u, abort=%d): %s, errno %s; expected %s", t, abort_it,
		     r ? "true" : "false", errname(errno),
		     want_ok ? "true" : errname(want_errno));
}

/*
 * The toolstack's retry loop: add one to the decimal value of path in a transaction, starting over
 * on EAGAIN.  between(arg) runs after the read of every attempt (to inject a conflict, or to widen
 * the window for one).  Returns the number of attempts, or -1 on any other failure.
 */
static int increment(struct xs_handle *h, const char *path, void (*between)(int attempt, void *arg),
		     void *arg)
{
	for (int attempt = 1; attempt < 10000; attempt++) {
		xs_transaction_t t = xs_transaction_start(h);
		char buf[32], *v;

		if (t == XBT_NULL)
			return -1;
		v = get(h, t, path);
		if (!v) {
			xs_transaction_end(h, t, true);
			return -1;
		}
		snprintf(buf, sizeof(buf), "%ld", strtol(v, NULL, 10) + 1);
		free(v);
		if (between)
			between(attempt, arg);
		if (!xs_write(h, t, path, buf, strlen(buf))) {
			xs_transaction_end(h, t, true);
			return -1;
		}
		if (xs_transaction_end(h, t, false))
			return attempt;
		if (errno != EAGAIN)
			return -1;
	}
	return -1;
}

/* Inject a conflict into the first attempt only: another connection changes the value. */
static void conflict_once(int attempt, void *arg)
{
	struct xs_handle *other = arg;

	if (attempt == 1 && !xs_write(other, XBT_NULL, "/lx/retry", "100", 3))
		diag("injecting the conflict failed: errno %s", errname(errno));
}

static void pause_briefly(int attempt, void *arg)
{
	(void)attempt;
	(void)arg;
	usleep(300);
}

#define RACE_N 100

/* A child process: RACE_N increments of /lx/race on its own connection; exit status 0 if all went. */
static void race_child(void)
{
	struct xs_handle *h = xs_open(0);
	int retries = 0;

	if (!h)
		_exit(2);
	for (int i = 0; i < RACE_N; i++) {
		int a = increment(h, "/lx/race", pause_briefly, NULL);

		if (a < 0)
			_exit(3);
		retries += a - 1;
	}
	xs_close(h);
	printf("# the other process retried %d times\n", retries);
	fflush(stdout);
	_exit(0);
}

int main(void)
{
	struct xs_handle *h, *h2;
	const char *sock = getenv("XENSTORED_PATH");
	const char *daemon = getenv("XS_DAEMON");
	bool upstream = daemon && strcmp(daemon, "upstream-c") == 0;
	xs_transaction_t t, t2;
	bool r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!sock) {
		printf("1..1\nnot ok 1 - XENSTORED_PATH is set to the daemon's socket\n");
		return 1;
	}
	diag("daemon socket: %s", sock);
	h = xs_open(0);
	if (!ok(h != NULL, "xs_open connects to the daemon's socket"))
		bail("xs_open");
	h2 = xs_open(0);
	if (!ok(h2 != NULL, "a second xs_open connects too"))
		bail("second xs_open");

	/* ---- commit */
	must_write(h, XBT_NULL, "/lx/c/old", "live");
	errno = 0;
	t = xs_transaction_start(h);
	if (!ok(t != XBT_NULL, "xs_transaction_start returns a transaction"))
		bail("xs_transaction_start");
	must_write(h, t, "/lx/c/new", "in tx");
	must_write(h, t, "/lx/c/old", "changed in tx");
	is_value(h, t, "/lx/c/new", "in tx", "a write in a transaction is read back through it");
	is_value(h, t, "/lx/c/old", "changed in tx", "an overwrite in a transaction is read back through it");
	is_missing(h2, XBT_NULL, "/lx/c/new", "another connection does not see the transaction's new node");
	is_value(h2, XBT_NULL, "/lx/c/old", "live", "another connection sees the old value before commit");
	is_missing(h, XBT_NULL, "/lx/c/new", "the same connection outside the transaction does not see it");
	end_is(h, t, false, true, 0, "xs_transaction_end(abort=false) commits");
	is_value(h2, XBT_NULL, "/lx/c/new", "in tx", "after commit another connection sees the new node");
	is_value(h2, XBT_NULL, "/lx/c/old", "changed in tx", "after commit another connection sees the new value");
	is_missing(h, t, "/lx/c/new", "the committed transaction's handle is dead: ENOENT");
	end_is(h, t, false, false, ENOENT, "ending a committed transaction again fails with ENOENT");

	/* ---- abort */
	t = must_start(h);
	must_write(h, t, "/lx/c/old", "aborted value");
	must_write(h, t, "/lx/a/new", "never");
	ok(xs_mkdir(h, t, "/lx/a/dir"), "xs_mkdir in a transaction succeeds");
	ok(xs_rm(h, t, "/lx/c/new"), "xs_rm in a transaction succeeds");
	is_missing(h, t, "/lx/c/new", "xs_rm in a transaction is seen through it");
	is_value(h2, XBT_NULL, "/lx/c/new", "in tx", "xs_rm in a transaction is not seen outside");
	end_is(h, t, true, true, 0, "xs_transaction_end(abort=true) succeeds");
	is_value(h2, XBT_NULL, "/lx/c/old", "changed in tx", "an aborted write is invisible");
	is_missing(h2, XBT_NULL, "/lx/a", "an aborted creation leaves no node behind");
	is_value(h2, XBT_NULL, "/lx/c/new", "in tx", "an aborted xs_rm leaves the node");
	end_is(h, t, true, false, ENOENT, "ending an aborted transaction again fails with ENOENT");

	/* ---- conflict: EAGAIN from xs_transaction_end */
	must_write(h, XBT_NULL, "/lx/k/v", "1");
	t = must_start(h);
	is_value(h, t, "/lx/k/v", "1", "a transaction reads the current value");
	must_write(h2, XBT_NULL, "/lx/k/v", "2");
	is_value(h, t, "/lx/k/v", "1", "the transaction's second read still gives the value it first read");
	must_write(h, t, "/lx/k/v", "3");
	must_write(h, t, "/lx/k/side", "effect");
	end_is(h, t, false, false, EAGAIN, "commit after another connection changed a read node fails with EAGAIN");
	is_value(h, XBT_NULL, "/lx/k/v", "2", "the failed commit kept the other connection's value");
	is_missing(h, XBT_NULL, "/lx/k/side", "the failed commit applied none of its writes");
	is_missing(h, t, "/lx/k/v", "after EAGAIN the transaction's handle is dead: ENOENT");

	/* write-write: the second committer fails */
	t = must_start(h);
	t2 = must_start(h2);
	must_write(h, t, "/lx/k/v", "from h");
	must_write(h2, t2, "/lx/k/v", "from h2");
	end_is(h2, t2, false, true, 0, "the first of two transactions writing one node commits");
	end_is(h, t, false, false, EAGAIN, "the second of two transactions writing one node fails with EAGAIN");
	is_value(h, XBT_NULL, "/lx/k/v", "from h2", "the node has the first committer's value");

	/* disjoint transactions of two connections, and two of one connection */
	must_write(h, XBT_NULL, "/lx/d1", "0");
	must_write(h, XBT_NULL, "/lx/d2", "0");
	must_write(h, XBT_NULL, "/lx/d3", "0");
	t = must_start(h);
	t2 = must_start(h2);
	{
		xs_transaction_t t3 = must_start(h);

		ok(t3 != t, "two open transactions of one handle have different ids");
		must_write(h, t, "/lx/d1", "t");
		must_write(h2, t2, "/lx/d2", "t2");
		must_write(h, t3, "/lx/d3", "t3");
		is_value(h, t3, "/lx/d1", "0", "a transaction does not see a sibling transaction's write");
		/* t3 read /lx/d1, which t writes: t3 must commit before t does. */
		end_is(h, t3, false, true, 0, "disjoint transactions: the first commits");
		end_is(h, t, false, true, 0, "disjoint transactions: the second commits");
		end_is(h2, t2, false, true, 0, "disjoint transactions: the third commits");
	}
	is_value(h2, XBT_NULL, "/lx/d1", "t", "first disjoint commit landed");
	is_value(h, XBT_NULL, "/lx/d2", "t2", "second disjoint commit landed");
	is_value(h2, XBT_NULL, "/lx/d3", "t3", "third disjoint commit landed");

	/* siblings created by two transactions */
	if (upstream) {
		skip("two transactions adding different children under one parent both commit",
		     "Xen 4.17 answers EAGAIN to the second");
	} else {
		bool both;

		ok(xs_mkdir(h, XBT_NULL, "/lx/sib"), "xs_mkdir of a parent succeeds");
		t = must_start(h);
		t2 = must_start(h2);
		must_write(h, t, "/lx/sib/a", "a");
		must_write(h2, t2, "/lx/sib/b", "b");
		r = xs_transaction_end(h, t, false);
		both = r && xs_transaction_end(h2, t2, false);
		if (!ok(both, "two transactions adding different children under one parent both commit"))
			diag("errno %s", errname(errno));
		dir_is(h, XBT_NULL, "/lx/sib", "a,b", "both children exist");
	}

	/* ---- the retry loop */
	must_write(h, XBT_NULL, "/lx/retry", "0");
	{
		int attempts = increment(h, "/lx/retry", conflict_once, h2);

		if (!ok(attempts == 2, "the retry loop gets EAGAIN once, then commits"))
			diag("attempts: %d (errno %s)", attempts, errname(errno));
		is_value(h, XBT_NULL, "/lx/retry", "101",
			 "the retried increment applies to the value written meanwhile");
	}

	/* two processes racing on one counter, each with the retry loop */
	must_write(h, XBT_NULL, "/lx/race", "0");
	{
		pid_t kid;
		int st = -1, mine = 0, retries = 0;

		fflush(stdout);
		kid = fork();
		if (kid < 0)
			bail("fork");
		if (kid == 0)
			race_child();
		for (int i = 0; i < RACE_N; i++) {
			int a = increment(h, "/lx/race", pause_briefly, NULL);

			if (a < 0)
				break;
			mine++;
			retries += a - 1;
		}
		waitpid(kid, &st, 0);
		ok(mine == RACE_N, "this process's %d transactional increments all commit, retrying on EAGAIN",
		   RACE_N);
		if (!ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			"the other process's %d increments all commit too", RACE_N))
			diag("child wait status %#x", st);
		{
			char want[16];

			snprintf(want, sizeof(want), "%d", 2 * RACE_N);
			is_value(h, XBT_NULL, "/lx/race", want,
				 "the counter counts every committed increment exactly once");
		}
		diag("this process retried %d times", retries);
	}

	/* ---- xs_directory inside a transaction */
	must_write(h, XBT_NULL, "/lx/dir/x", "");
	must_write(h, XBT_NULL, "/lx/dir/y", "");
	t = must_start(h);
	ok(xs_rm(h, t, "/lx/dir/x"), "xs_rm of a child in a transaction succeeds");
	must_write(h, t, "/lx/dir/z", "");
	ok(xs_mkdir(h, t, "/lx/dir/w"), "xs_mkdir of a child in a transaction succeeds");
	dir_is(h, t, "/lx/dir", "y,z,w", "xs_directory in a transaction hides deleted and shows created children");
	dir_is(h2, XBT_NULL, "/lx/dir", "x,y", "xs_directory outside the transaction shows the live children");
	dir_is(h, t, "/lx/dir/w", "", "xs_directory of a node made in the transaction is empty");
	{
		char *got = listing(h, t, "/lx/dir/x");

		ok(strcmp(got, "ERR:ENOENT") == 0, "xs_directory of a node deleted in the transaction fails with ENOENT");
		free(got);
	}
	end_is(h, t, false, true, 0, "the transaction that changed the children commits");
	dir_is(h2, XBT_NULL, "/lx/dir", "y,z,w", "after commit the live children are the transaction's");

	/* listed, then a child added outside: EAGAIN */
	t = must_start(h);
	dir_is(h, t, "/lx/dir", "y,z,w", "a transaction lists the children");
	must_write(h2, XBT_NULL, "/lx/dir/v", "");
	dir_is(h, t, "/lx/dir", "y,z,w", "a second listing in the transaction is unchanged by an outside add");
	must_write(h, t, "/lx/dir/mark", "");
	end_is(h, t, false, false, EAGAIN, "commit after a child was added to a listed node fails with EAGAIN");
	dir_is(h2, XBT_NULL, "/lx/dir", "y,z,w,v", "the failed commit added nothing");

	/* ---- permissions in a transaction */
	{
		struct xs_permissions set[2] = {
			{ .id = 0, .perms = XS_PERM_NONE }, { .id = 5, .perms = XS_PERM_READ },
		};
		struct xs_permissions *p;
		unsigned int n = 0;

		t = must_start(h);
		ok(xs_set_permissions(h, t, "/lx/dir/y", set, 2), "xs_set_permissions in a transaction succeeds");
		p = xs_get_permissions(h, t, "/lx/dir/y", &n);
		ok(p && n == 2 && p[1].id == 5 && p[1].perms == XS_PERM_READ,
		   "xs_get_permissions in the transaction sees the new permissions");
		free(p);
		p = xs_get_permissions(h2, XBT_NULL, "/lx/dir/y", &n);
		ok(p && n == 1 && p[0].id == 0 && p[0].perms == XS_PERM_NONE,
		   "another connection still sees the old permissions");
		free(p);
		end_is(h, t, false, true, 0, "the permission change commits");
		p = xs_get_permissions(h2, XBT_NULL, "/lx/dir/y", &n);
		ok(p && n == 2 && p[1].id == 5 && p[1].perms == XS_PERM_READ,
		   "after commit another connection sees the new permissions");
		free(p);
	}

	xs_close(h2);
	xs_close(h);
	printf("1..%d\n", checks);
	return failures ? 1 : 0;
}
