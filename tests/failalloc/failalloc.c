/*
 * The allocator of the failure-injection build (build/tests/
 * xenstored-failalloc, tests/integration/test-failalloc.py): the daemon
 * with malloc, calloc, realloc, strdup and strndup wrapped (-Wl,--wrap,
 * Makefile), and mprotect (the node pool grows by it), and libevent's allocations routed here too, so that one
 * chosen allocation fails.
 *
 * Driven through CONTROL, which this build answers itself (ops_dispatch
 * is wrapped as well; the daemon's sources know nothing of it):
 *   CONTROL failalloc <n>  the request dispatched next (on any connection)
 *                          and what it sets off (its commit, its events)
 *                          may make n allocations; the one after fails.
 *                          Answers "OK".
 *   CONTROL failalloc thread <n>
 *                          from now on, threads other than the event
 *                          loop's (a compaction's) may make n
 *                          allocations; the one after fails.  "OK".
 *   CONTROL failalloc      "fired" or "not fired": whether that failure
 *                          happened (a request that needs n allocations
 *                          or fewer never meets it).  Disarms.
 *
 * The loop's allocations and the other threads' are counted apart, so a
 * compaction running meanwhile does not move a request's count.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <event2/event.h>

#include "conn/conn.h"
#include "protocol/wire.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void __real_ops_dispatch(struct conn *c, const struct request *req);
int __real_mprotect(void *addr, size_t len, int prot);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void __wrap_ops_dispatch(struct conn *c, const struct request *req);
int __wrap_mprotect(void *addr, size_t len, int prot);

static long pending = -1;	/* armed at the next dispatch; -1: none */
static long left = -1;		/* the loop's allocations before the
				 * failing one */
static long thread_left = -1;	/* the same for other threads (atomic) */
static bool fired;		/* atomic */
static pthread_t loop_thread;	/* main()'s, which runs the loop */

static bool fail_now(void)
{
	if (!pthread_equal(pthread_self(), loop_thread)) {
		if (__atomic_load_n(&thread_left, __ATOMIC_ACQUIRE) < 0 ||
		    __atomic_fetch_sub(&thread_left, 1, __ATOMIC_ACQ_REL) != 0)
			return false;
	} else {
		if (left < 0)
			return false;
		if (left-- > 0)
			return false;
	}
	__atomic_store_n(&fired, true, __ATOMIC_RELEASE);
	errno = ENOMEM;
	return true;
}

void *__wrap_malloc(size_t size)
{
	return fail_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
	return fail_now() ? NULL : __real_realloc(p, size);
}

char *__wrap_strdup(const char *s)
{
	return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return fail_now() ? NULL : __real_strndup(s, n);
}

int __wrap_mprotect(void *addr, size_t len, int prot)
{
	return fail_now() ? -1 : __real_mprotect(addr, len, prot);
}

/* libevent's own allocations (its buffers, events) go through here. */
static void *ev_malloc(size_t size)
{
	return __wrap_malloc(size);
}

static void *ev_realloc(void *p, size_t size)
{
	return __wrap_realloc(p, size);
}

__attribute__((constructor)) static void route_libevent(void)
{
	loop_thread = pthread_self();
	event_set_mem_functions(ev_malloc, ev_realloc, free);
}

static void answer(struct conn *c, const struct request *req, const char *s)
{
	conn_send(c, req->hdr.type, req->hdr.req_id, req->hdr.tx_id, s,
		  strlen(s) + 1);
}

void __wrap_ops_dispatch(struct conn *c, const struct request *req)
{
	static const char cmd[] = "failalloc";

	if (req->hdr.type == XS_CONTROL && req->hdr.len >= sizeof(cmd) &&
	    !memcmp(req->payload, cmd, sizeof(cmd))) {
		const char *arg = req->payload + sizeof(cmd);
		char *end;

		static const char thread[] = "thread";

		if (req->hdr.len == sizeof(cmd)) {
			bool was = __atomic_load_n(&fired, __ATOMIC_ACQUIRE);

			pending = left = -1;	/* before the answer's own */
			__atomic_store_n(&thread_left, -1, __ATOMIC_RELEASE);
			__atomic_store_n(&fired, false, __ATOMIC_RELEASE);
			answer(c, req, was ? "fired" : "not fired");
			return;
		}
		if (req->hdr.len > sizeof(cmd) + sizeof(thread) &&
		    !memcmp(arg, thread, sizeof(thread))) {
			long n = strtol(arg + sizeof(thread), &end, 10);

			__atomic_store_n(&fired, false, __ATOMIC_RELEASE);
			__atomic_store_n(&thread_left, n < 0 ? -1 : n,
					 __ATOMIC_RELEASE);
			answer(c, req, n >= 0 && *end == '\0' ? "OK" : "EINVAL");
			return;
		}
		pending = strtol(arg, &end, 10);
		__atomic_store_n(&fired, false, __ATOMIC_RELEASE);
		left = -1;
		answer(c, req, pending >= 0 && *end == '\0' ? "OK" : "EINVAL");
		return;
	}
	if (pending >= 0) {
		left = pending;
		pending = -1;
	}
	__real_ops_dispatch(c, req);
}
